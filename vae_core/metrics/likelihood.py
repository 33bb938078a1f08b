"""Likelihood metrics in nats per image: negative ELBO, its terms, active units and the IWAE bound."""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch

from vae_core.adapter import require_capability
from vae_core.errors import DatasetError
from vae_core.models.base import BaseVAE
from vae_core.ranges import whole

IWAE_K_MAX = 1_000_000

ACTIVE_UNIT_THRESHOLD = 0.01  # Burda et al. (2016): Cov_x(E_q[z_i]) above this counts as active


@torch.inference_mode()
def evaluate(model: BaseVAE, data, *, batch_size: int = 1000, iwae_k: int | None = None,
             device="cpu", seed: int = 0) -> dict:
    """Evaluate ``model`` on an :class:`~vae_core.data.ImageDataset`.

    Returns a dict, all per image and in nats: ``neg_elbo`` (recon + KL, one posterior
    sample per image, the KL in closed form where the model has one), ``recon``, ``kl``,
    ``kl_per_dim`` (list), ``active_units`` (of the map code) and, when ``iwae_k`` is
    given, ``iwae_nll``: the importance-weighted bound with ``k`` samples (Burda et al.,
    2016), a log-likelihood estimate comparable with published tables. Models add their
    own entries through :meth:`~vae_core.models.base.BaseVAE.metric_sums` (``vqvae``:
    ``codebook_usage``, ``codebook_size``, ``perplexity``, ``prior_trained``; its ``kl`` is
    −log p(codes) under its prior and ``neg_elbo`` bounds −log p(x)).

    An adapted model without a logvar or a likelihood is refused with
    :class:`~vae_core.adapter.AdapterError`: its ELBO is not defined.

    Raises
    ------
    ConfigError
        For ``iwae_k`` or ``batch_size`` outside 1 to 1,000,000.
    DatasetError
        For a dataset without images: its metrics would be meaningless zeros.
    """
    if iwae_k is not None:
        iwae_k = whole("iwae_k", iwae_k, 1, IWAE_K_MAX)
    batch_size = whole("batch_size", batch_size, 1, 1_000_000)
    if len(data.images) == 0:
        raise DatasetError("There are no images to evaluate on (the split is empty).")
    require_capability(model, "evaluate")
    was_training = model.training
    model.eval()
    device = torch.device(device) if not isinstance(device, torch.device) else device
    generator = torch.Generator(device="cpu").manual_seed(seed)
    images = data.images
    labels = data.labels
    n = len(images)
    recon_sum = kl_sum = iwae_sum = 0.0
    kl_dims = torch.zeros(model.latent_dim, dtype=torch.float64)
    mus = []
    extra_sums: dict = {}
    for start in range(0, n, batch_size):
        x = torch.from_numpy(images[start : start + batch_size]).to(device)
        y = torch.from_numpy(labels[start : start + batch_size]).to(device) if labels is not None else None
        terms = model.importance_terms(x, y, 1, generator)
        recon_sum += float(-terms.log_likelihood.sum())
        kl_sum += float(terms.kl.sum())
        kl_dims += terms.kl_per_dim.sum(0).double().cpu()
        mus.append(model.map_code(x, y).double().cpu())
        for name, value in model.metric_sums(x, y).items():
            extra_sums[name] = extra_sums[name] + value if name in extra_sums else value
        if iwae_k:
            iwae_sum += float(-_log_marginal(model, x, y, iwae_k, generator).sum())
    if was_training:
        model.train()
    mu_all = torch.cat(mus) if mus else torch.zeros(0, model.latent_dim)
    variance = mu_all.var(0, unbiased=False) if n > 1 else torch.zeros(model.latent_dim)
    result = {
        "neg_elbo": (recon_sum + kl_sum) / max(1, n),
        "recon": recon_sum / max(1, n),
        "kl": kl_sum / max(1, n),
        "kl_per_dim": (kl_dims / max(1, n)).tolist(),
        "active_units": int((variance > ACTIVE_UNIT_THRESHOLD).sum()),
    }
    result.update(model.metrics_from_sums(extra_sums, n) if extra_sums else {})
    if iwae_k:
        result["iwae_nll"] = iwae_sum / max(1, n)
        result["iwae_k"] = int(iwae_k)
    return result


def _log_marginal(model, x, y, k, generator, chunk: int | None = None, max_rows: int = 8_192):
    """log p̂(x) per image from ``k`` importance samples, drawn ``chunk`` at a time.

    Samples go through the decoder in chunks of at most ``max_rows`` rows (a conv
    decoder's activations for 50k rows would take gigabytes); the chunks' log-weights
    are combined by a running logsumexp, so memory does not grow with ``k``.
    """
    b = x.shape[0]
    chunk = chunk or max(1, min(k, max_rows // max(1, b)))
    total = None
    for s in range(0, k, chunk):
        log_w = model.importance_weights(x, min(chunk, k - s), y, generator)
        part = torch.logsumexp(log_w.double(), 0)
        total = part if total is None else torch.logaddexp(total, part)
    return total - math.log(k)


@torch.inference_mode()
def iwae_nll(model: BaseVAE, data, k: int = 5000, *, seed: int = 0, batch_size: int = 100,
             max_rows: int = 50_000, device="cpu",
             progress: Callable[[int, int], None] | None = None) -> dict:
    """Negative log-likelihood of ``data`` estimated with ``k`` importance samples per image.

    The IWAE bound log (1/k) Σ_k p(x, z_k)/q(z_k|x) (Burda et al., 2016) approaches
    log p(x) from below as ``k`` grows; k = 5000 is the usual protocol. It works for every
    model through :meth:`~vae_core.models.base.BaseVAE.importance_weights` (all layers of a
    hierarchy, the flow's log-determinant).

    Parameters
    ----------
    data : ImageDataset
    k : int
        Importance samples per image.
    seed : int
        Seeds the samples: the same seed gives the same estimate.
    batch_size : int
        Images scored together.
    max_rows : int
        Images × samples that go through the decoder at once (bounds memory).
    progress : callable, optional
        ``progress(done, total)`` in images, after every batch (for a progress bar and
        its ETA); an exception it raises stops the evaluation (cancel).

    Returns
    -------
    dict
        ``nll`` (nats per image, mean), ``nll_per_image`` (numpy array), ``k``, ``seed``.
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}.")
    was_training = model.training
    model.eval()
    device = torch.device(device) if not isinstance(device, torch.device) else device
    generator = torch.Generator(device="cpu").manual_seed(seed)
    dtype = next(model.parameters()).dtype
    n = len(data.images)
    out = np.zeros(n, dtype=np.float64)
    try:
        for start in range(0, n, batch_size):
            x = torch.from_numpy(data.images[start : start + batch_size]).to(device, dtype)
            y = (torch.from_numpy(data.labels[start : start + batch_size]).to(device)
                 if data.labels is not None else None)
            chunk = max(1, min(k, max_rows // x.shape[0]))
            out[start : start + x.shape[0]] = -_log_marginal(model, x, y, k, generator, chunk).cpu().numpy()
            if progress is not None:
                progress(min(n, start + batch_size), n)
    finally:
        if was_training:
            model.train()
    return {"nll": float(out.mean()) if n else float("nan"), "nll_per_image": out, "k": int(k), "seed": int(seed)}


def active_units(kl_per_dim, threshold: float = ACTIVE_UNIT_THRESHOLD) -> np.ndarray:
    """Boolean mask of dimensions whose average KL exceeds ``threshold`` nats."""
    return np.asarray(kl_per_dim) > threshold
