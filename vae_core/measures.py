"""Per-point measures of a dataset under a model: what the map can colour, filter and rank by.

For every image x of a dataset, :func:`compute_measures` gives, in nats where they are nats:

``recon_nll``
    −E_q[log p(x|z)], the reconstruction error, averaged over ``k`` posterior samples.
``kl``
    KL(q(z|x) ‖ p(z)), in closed form where the model has one (the model's own estimate,
    :attr:`~vae_core.models.base.ImportanceTerms.kl`).
``neg_elbo``
    ``recon_nll + kl``: the negative ELBO, an upper bound on −log p(x).
``iwae_ll``
    The ``k``-sample IWAE bound on log p(x) (Burda et al., 2016): higher is more likely.
    The same samples as ``recon_nll``, so one pass through the decoder serves both.
``posterior_std``
    The mean over dimensions of the map code's posterior σ = exp(½ log σ²).
``nn_distance``
    Euclidean distance from the point's map code to the nearest *other* code.
``cluster``
    HDBSCAN cluster ids of the codes (scikit-learn); −1 is noise.

Models say what is undefined for them (:func:`undefined_measures`): a ``vqvae``'s q(z|x) is
a point mass, so it has no posterior σ and importance sampling gives nothing beyond the
ELBO; an adapted model without a likelihood or a log-variance has neither. Those measures
are absent from the result and their reason is in :attr:`Measures.unavailable`, so a
caller shows a sentence instead of a wrong number.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from vae_core.errors import Cancelled, ConfigError
from vae_core.ranges import whole

__all__ = ["MEASURES", "MEASURE_LABELS", "Measures", "cluster_codes", "compute_measures", "nearest_distances",
           "undefined_measures"]

#: Every measure, in the order pickers list them.
MEASURES = ("recon_nll", "kl", "neg_elbo", "iwae_ll", "posterior_std", "nn_distance", "cluster")

#: What a picker or a column header calls each measure.
MEASURE_LABELS = {
    "recon_nll": "Reconstruction NLL",
    "kl": "KL",
    "neg_elbo": "−ELBO",
    "iwae_ll": "IWAE log-likelihood",
    "posterior_std": "Mean posterior σ",
    "nn_distance": "Nearest-neighbour distance",
    "cluster": "Cluster (HDBSCAN)",
}

#: The measures that need the model's likelihood (one decoder pass over k samples).
LIKELIHOOD_MEASURES = ("recon_nll", "kl", "neg_elbo", "iwae_ll")

# HDBSCAN's cost grows faster than N² in practice (10k codes of 20 numbers: 2 s; 20k: 10 s on
# one core), so it is fitted on a seeded subset and every other code joins its nearest
# fitted code's cluster, the way the map's UMAP fits a subset.
CLUSTER_MAX_FIT = 10_000


@dataclass
class Measures:
    """Per-point measures of ``n`` images (see the module docstring for each one).

    Attributes
    ----------
    values : dict of str to np.ndarray
        Measure name → ``n`` values (``float64``; ``cluster``: ``int64``).
    unavailable : dict of str to str
        Measure name → one sentence saying why it is not defined for this model.
    k, seed : int
        Importance samples per image and the seed that drew them.
    """

    values: dict[str, np.ndarray] = field(default_factory=dict)
    unavailable: dict[str, str] = field(default_factory=dict)
    k: int = 16
    seed: int = 0

    def __len__(self) -> int:
        return len(next(iter(self.values.values()))) if self.values else 0

    def __contains__(self, name: str) -> bool:
        return name in self.values

    def __getitem__(self, name: str) -> np.ndarray:
        return self.values[name]


def undefined_measures(model) -> dict[str, str]:
    """Measures that ``model`` cannot give, each with the sentence that says why.

    Our models with a stochastic posterior give everything; ``vqvae`` (a point-mass
    posterior) has no posterior σ and no IWAE estimate beyond its ELBO; an adapted model
    lacks what its adapter does not declare (a likelihood, a log-variance).
    """
    from vae_core.adapter import limitation

    out: dict[str, str] = {}
    reason = limitation(model, "evaluate")
    if reason is not None:
        for name in LIKELIHOOD_MEASURES:
            out[name] = reason
    if not getattr(model, "stochastic_posterior", True):
        out["posterior_std"] = (f"The {model.name} model's posterior is a point mass (one code per image): "
                                "it has no spread.")
        out.setdefault("iwae_ll", f"The {model.name} model's posterior is a point mass: importance sampling "
                                  "adds nothing to its ELBO, so there is no IWAE estimate.")
    else:
        reason = limitation(model, "logvar")
        if reason is not None:
            out["posterior_std"] = reason
    return out


def compute_measures(model, images: np.ndarray, labels: np.ndarray | None = None, *, codes: np.ndarray | None = None,
                     logvar: np.ndarray | None = None, k: int = 16, seed: int = 0, batch_size: int = 256,
                     clusters: bool = True, min_cluster_size: int | None = None, device="cpu",
                     progress: Callable[[int, int], None] | None = None,
                     should_stop: Callable[[], bool] | None = None) -> Measures:
    """Every per-point measure of ``images`` under ``model``, batched and cancellable.

    Parameters
    ----------
    model : BaseVAE
        Put in eval mode for the call and restored afterwards.
    images : np.ndarray
        ``N×C×H×W`` floats in [0, 1] (``uint8`` is scaled by 1/255).
    labels : np.ndarray, optional
        ``N`` labels (conditional models need them).
    codes, logvar : np.ndarray, optional
        The map codes of ``images`` and their log-variances when the caller has them
        (the app's document does); encoded here otherwise.
    k : int
        Importance samples per image (1 to 10,000) for ``recon_nll`` and ``iwae_ll``.
    seed : int
        Seeds the samples: the same seed and batch size give the same numbers. With
        ``batch_size`` equal to :func:`~vae_core.metrics.iwae_nll`'s, ``iwae_ll`` is exactly
        minus its ``nll_per_image``.
    batch_size : int
        Images scored together (each goes through the decoder ``k`` times).
    clusters : bool
        Also cluster the codes with HDBSCAN (``cluster``).
    min_cluster_size : int, optional
        HDBSCAN's smallest cluster; default ``max(5, n_fit // 100)``.
    progress : callable, optional
        ``progress(done, total)``: images scored, then ``total, total`` after the codes'
        neighbours and clusters.
    should_stop : callable, optional
        Polled between batches and stages; True raises :class:`~vae_core.errors.Cancelled`.

    Returns
    -------
    Measures

    Raises
    ------
    ConfigError
        For ``k`` or ``batch_size`` out of range, or codes of the wrong length.
    Cancelled
        When ``should_stop()`` returned True.
    """
    import torch

    from vae_core.latent.codec import encode_dataset

    k = whole("k", k, 1, 10_000)
    batch_size = whole("batch_size", batch_size, 1, 1_000_000)
    images = np.asarray(images)
    n = int(images.shape[0])
    if labels is not None and len(labels) != n:
        raise ConfigError(f"Got {len(labels)} labels for {n} images.")
    if labels is None and getattr(model, "conditional", False):
        raise ConfigError("This model is conditional on the label: its measures need the labels.")
    stop = should_stop or (lambda: False)
    result = Measures(unavailable=undefined_measures(model), k=int(k), seed=int(seed))
    if codes is None or (logvar is None and "posterior_std" not in result.unavailable):
        codes, logvar = encode_dataset(model, images, labels, device=device, should_stop=should_stop)
    codes = np.asarray(codes, dtype=np.float32)
    if len(codes) != n:
        raise ConfigError(f"Got {len(codes)} codes for {n} images.")

    wanted = [m for m in LIKELIHOOD_MEASURES if m not in result.unavailable]
    if wanted:
        recon = np.empty(n)
        kl = np.empty(n)
        iwae = np.empty(n)
        generator = torch.Generator(device="cpu").manual_seed(int(seed))
        scale = 1.0 / 255.0 if images.dtype == np.uint8 else None
        was_training = model.training
        model.eval()
        try:
            with torch.inference_mode():
                for start in range(0, n, batch_size):
                    if stop():
                        raise Cancelled("Computing the measures was cancelled.")
                    end = min(n, start + batch_size)
                    chunk = images[start:end]
                    x = torch.as_tensor(np.array(chunk, copy=not chunk.flags.writeable), device=device).float()
                    if scale is not None:
                        x = x * scale
                    y = torch.as_tensor(np.asarray(labels[start:end], dtype=np.int64), device=device) \
                        if labels is not None else None
                    terms = model.importance_terms(x, y, k, generator)
                    # The same k samples give the ELBO's reconstruction term and the IWAE bound.
                    recon[start:end] = (-terms.log_likelihood.double().mean(0)).cpu().numpy()
                    kl[start:end] = terms.kl.double().cpu().numpy()
                    iwae[start:end] = (torch.logsumexp(terms.log_weights.double(), 0) - math.log(k)).cpu().numpy()
                    if progress is not None:
                        progress(end, n)
        finally:
            if was_training:
                model.train()
        for name, value in (("recon_nll", recon), ("kl", kl), ("neg_elbo", recon + kl), ("iwae_ll", iwae)):
            if name in wanted:
                result.values[name] = value
    if "posterior_std" not in result.unavailable:
        if logvar is None:
            result.unavailable["posterior_std"] = "The encoder gives no log-variance."
        else:
            result.values["posterior_std"] = np.exp(0.5 * np.asarray(logvar, dtype=np.float64)).mean(1)
    if stop():
        raise Cancelled("Computing the measures was cancelled.")
    result.values["nn_distance"] = nearest_distances(codes, should_stop=should_stop)
    if clusters:
        if stop():
            raise Cancelled("Computing the measures was cancelled.")
        result.values["cluster"] = cluster_codes(codes, min_cluster_size=min_cluster_size, seed=seed)
    if progress is not None:
        progress(n, n)
    return result


def nearest_distances(codes: np.ndarray, *, should_stop: Callable[[], bool] | None = None) -> np.ndarray:
    """Distance from every code to its nearest other code (float64, exact).

    A code that has an identical twin elsewhere gets 0; a single code gets NaN.
    """
    from sklearn.neighbors import NearestNeighbors

    codes = np.ascontiguousarray(codes, dtype=np.float32)
    n, d = codes.shape
    out = np.full(n, np.nan)
    if n < 2:
        return out
    # A k-d tree is O(N log N) for the few dimensions maps usually have (70k 2-D codes: 0.2 s);
    # beyond about a dozen it loses to brute force. Our own NeighborIndex answers cursor queries
    # and was 15x slower here (its blocks are sized for one query, not for N).
    index = NearestNeighbors(n_neighbors=2, algorithm="kd_tree" if d <= 12 else "brute").fit(codes)
    step = 8192
    wide = codes.astype(np.float64)
    for start in range(0, n, step):
        if should_stop is not None and should_stop():
            raise Cancelled("Computing the measures was cancelled.")
        end = min(n, start + step)
        idx = index.kneighbors(codes[start:end], return_distance=False)
        # The two candidates are the code itself and its nearest other code, in either order
        # (or two twins); exact float64 distances, the code itself excluded.
        diff = wide[idx] - wide[start:end, None, :]
        dist = np.sqrt(np.einsum("mkd,mkd->mk", diff, diff))
        dist[idx == np.arange(start, end)[:, None]] = np.inf
        out[start:end] = dist.min(1)
    return out


def cluster_codes(codes: np.ndarray, *, min_cluster_size: int | None = None, max_fit: int = CLUSTER_MAX_FIT,
                  seed: int = 0) -> np.ndarray:
    """HDBSCAN cluster ids of ``codes`` (``int64``; −1 is noise).

    Up to ``max_fit`` codes are clustered with :class:`sklearn.cluster.HDBSCAN` directly.
    Beyond that a seeded subset of ``max_fit`` codes is clustered and every other code takes
    the id of its nearest code in the subset (see :data:`CLUSTER_MAX_FIT` for why).
    """
    from sklearn.cluster import HDBSCAN

    from vae_core.latent.neighbors import NeighborIndex

    codes = np.ascontiguousarray(codes, dtype=np.float32)
    n = len(codes)
    if n < 2:
        return np.full(n, -1, dtype=np.int64)
    fit = np.sort(np.random.default_rng(seed).choice(n, max_fit, replace=False)) if n > max_fit else np.arange(n)
    size = min_cluster_size if min_cluster_size is not None else max(5, len(fit) // 100)
    size = max(2, min(int(size), len(fit)))
    fitted = HDBSCAN(min_cluster_size=size, copy=True).fit_predict(codes[fit]).astype(np.int64)
    if len(fit) == n:
        return fitted
    out = np.empty(n, dtype=np.int64)
    out[fit] = fitted
    rest = np.setdiff1d(np.arange(n), fit)
    nearest, _ = NeighborIndex(codes[fit]).query(codes[rest], 1)
    out[rest] = fitted[nearest[:, 0]]
    return out
