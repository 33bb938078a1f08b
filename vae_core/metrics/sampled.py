"""Disentanglement scores that sample from the generative process: FactorVAE and β-VAE.

Both need images whose factors are chosen: batches where one factor is held fixed and the
others vary. A :class:`FactorSampler` provides them; :class:`DatasetFactorSampler` builds one
from any dataset with factors (``DatasetSplits.factors``) by looking images up. Both scores
follow disentanglement_lib (``evaluation/metrics/factor_vae.py``, ``beta_vae.py``), with its
sample counts as defaults: batches of 64, 10,000 training and 5,000 evaluation votes or
points, 10,000 images for the global variances, and the FactorVAE prune threshold 0.05.
"""

from __future__ import annotations

from typing import Callable, Protocol, runtime_checkable

import numpy as np
import torch

from vae_core.errors import ConfigError, DatasetError
from vae_core.metrics.disentanglement import MIG_BINS, factor_matrix
from vae_core.metrics.pixels import unit_float


@runtime_checkable
class FactorSampler(Protocol):
    """Where the sampled scores get images with chosen factors.

    Factors are integer values per factor, rows of an ``n×K`` array (column order
    :attr:`factor_names`).
    """

    factor_names: tuple[str, ...]

    def sample_factors(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` independent draws of all K factors from the data's distribution, ``n×K`` int."""

    def resample_except(self, factors: np.ndarray, factor_index: int, rng: np.random.Generator) -> np.ndarray:
        """New rows that keep column ``factor_index`` of ``factors`` and draw the other factors anew.

        The others come from their distribution given the kept factor, which for a full
        factor grid (dSprites) is the same as drawing them independently, as
        disentanglement_lib does by overwriting one column of fresh samples.
        """

    def images(self, factors: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One image per factor row, ``n×C×H×W`` float32 in [0, 1]."""


class DatasetFactorSampler:
    """A :class:`FactorSampler` over a fixed set of images and their (discretised) factors.

    Sampling draws rows of the dataset, so factor values follow the data's distribution;
    :meth:`resample_except` draws rows that share the kept factor's value, and
    :meth:`images` returns, for each factor row, a random image among those with exactly
    those factors (there is always one: every row the sampler hands out is a dataset row).
    On a dataset with the complete factor grid (``dsprites``) this is exactly sampling the
    generative process; on ``shapes``, whose factors are continuous and drawn independently,
    it samples the process at the resolution of :func:`~vae_core.metrics.factor_matrix`'s bins.

    Parameters
    ----------
    images : np.ndarray
        ``N×C×H×W`` images (e.g. ``DatasetSplits.all().images``).
    factors : np.ndarray
        ``N×K`` integer factors aligned with ``images``.
    factor_names : sequence of str
    """

    def __init__(self, images: np.ndarray, factors: np.ndarray, factor_names=None):
        factors = np.asarray(factors)
        if factors.ndim != 2 or len(factors) != len(images) or len(images) == 0:
            raise ConfigError("The factors must be an N×K array with one row per image.")
        if not np.issubdtype(factors.dtype, np.integer):
            raise ConfigError("The factors must be integers (discretise them with factor_matrix).")
        self._images = images
        self._factors = factors.astype(np.int64)
        self.factor_names = tuple(factor_names) if factor_names is not None else tuple(
            f"factor {k}" for k in range(factors.shape[1]))
        # Rows sorted by their whole factor tuple (for images) and by each single factor
        # (for resample_except): lookups are binary searches, not scans.
        self._sizes = self._factors.max(axis=0) + 1
        self._keys = self._row_keys(self._factors)
        self._by_key = np.argsort(self._keys, kind="stable")
        self._sorted_keys = self._keys[self._by_key]
        self._by_factor = [np.argsort(self._factors[:, k], kind="stable") for k in range(factors.shape[1])]
        self._sorted_factor = [self._factors[order, k] for k, order in enumerate(self._by_factor)]

    @classmethod
    def from_splits(cls, data, n_bins: int = MIG_BINS) -> "DatasetFactorSampler":
        """Build one from a loaded dataset with ground-truth factors (``DatasetSplits.factors``).

        Raises
        ------
        DatasetError
            When the dataset has no factors.
        """
        if not data.factors:
            raise DatasetError(f"The dataset {data.spec} has no ground-truth factors; disentanglement "
                               "needs one that has them, such as shapes or dsprites.")
        matrix, names = factor_matrix(data.factors, n_bins)
        return cls(data.all().images, matrix, names)

    def _row_keys(self, factors: np.ndarray) -> np.ndarray:
        if np.any(factors < 0) or np.any(factors >= self._sizes):
            raise ConfigError("A factor value is outside the values of this dataset.")
        return np.ravel_multi_index(tuple(factors.T), tuple(int(s) for s in self._sizes))

    @property
    def num_factors(self) -> int:
        return self._factors.shape[1]

    def sample_factors(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return self._factors[rng.integers(0, len(self._factors), size=int(n))].copy()

    def resample_except(self, factors: np.ndarray, factor_index: int, rng: np.random.Generator) -> np.ndarray:
        values = np.asarray(factors)[:, factor_index]
        column = self._sorted_factor[factor_index]
        lo = np.searchsorted(column, values, side="left")
        hi = np.searchsorted(column, values, side="right")
        if np.any(hi <= lo):
            raise ConfigError("A kept factor value does not occur in this dataset.")
        pick = lo + (rng.random(len(values)) * (hi - lo)).astype(np.int64)
        return self._factors[self._by_factor[factor_index][pick]].copy()

    def images(self, factors: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        keys = self._row_keys(np.asarray(factors))
        lo = np.searchsorted(self._sorted_keys, keys, side="left")
        hi = np.searchsorted(self._sorted_keys, keys, side="right")
        if np.any(hi <= lo):
            raise ConfigError("No image of this dataset has the requested factors.")
        pick = lo + (rng.random(len(keys)) * (hi - lo)).astype(np.int64)
        return unit_float(self._images[self._by_key[pick]])


def model_representation(model, *, device="cpu", batch_size: int = 256) -> Callable[[np.ndarray], np.ndarray]:
    """A function from images (``N×C×H×W`` float32) to the model's map codes (``N×d`` float64).

    The map code is the posterior mean for a Gaussian VAE (what disentanglement_lib scores).
    Conditional models are refused: their code depends on a label the factors do not give.
    """
    if getattr(model, "conditional", False):
        raise ConfigError("Disentanglement scores need an unconditional model: a conditional model's "
                          "code depends on the label as well as on the image.")
    device = torch.device(device)
    dtype = next(model.parameters()).dtype

    @torch.inference_mode()
    def represent(images: np.ndarray) -> np.ndarray:
        was_training = model.training
        model.eval()
        try:
            out = [model.map_code(torch.from_numpy(unit_float(images[s:s + batch_size]))
                                  .to(device, dtype)).double().cpu().numpy()
                   for s in range(0, len(images), batch_size)]
        finally:
            if was_training:
                model.train()
        return np.concatenate(out).reshape(len(images), -1)

    return represent


def _representation(encoder, device) -> Callable[[np.ndarray], np.ndarray]:
    return model_representation(encoder, device=device) if isinstance(encoder, torch.nn.Module) else encoder


def _check_counts(**counts) -> None:
    for name, value in counts.items():
        if int(value) != value or value < 1:
            raise ConfigError(f"{name} must be a whole number of at least 1, not {value!r}.")


def factor_vae_score(sampler: FactorSampler, encoder, *, batch_size: int = 64, num_train: int = 10_000,
                     num_eval: int = 5_000, num_variance_estimate: int = 10_000,
                     prune_threshold: float = 0.05, seed: int = 0, device="cpu") -> dict:
    """The FactorVAE score (Kim & Mnih, 2018): accuracy of a majority-vote classifier.

    The codes are divided by their standard deviation over ``num_variance_estimate``
    images; dimensions whose standard deviation is below ``prune_threshold`` (collapsed)
    are left out. Each vote fixes one random factor at a random value in a batch of
    ``batch_size`` images and votes (factor, dimension of least normalised variance). The
    classifier maps each dimension to its most voted factor; its accuracy is the share of
    votes it gets right, on ``num_train`` training votes and ``num_eval`` fresh ones.

    Parameters
    ----------
    sampler : FactorSampler
    encoder : torch.nn.Module or callable
        A model (its map code, :func:`model_representation`) or a function images → codes.
    seed : int
        Seeds every draw: the same seed gives the same score.

    Returns
    -------
    dict
        ``train_accuracy``, ``eval_accuracy`` (the score) and ``num_active_dims``.
    """
    _check_counts(batch_size=batch_size, num_train=num_train, num_eval=num_eval,
                  num_variance_estimate=num_variance_estimate)
    if batch_size < 2:
        raise ConfigError("batch_size must be at least 2: the score compares variances within a batch.")
    represent = _representation(encoder, device)
    rng = np.random.default_rng(seed)
    codes = represent(sampler.images(sampler.sample_factors(num_variance_estimate, rng), rng))
    global_var = np.var(codes, axis=0, ddof=1)
    active = np.sqrt(global_var) >= prune_threshold
    if not active.any():
        return {"train_accuracy": 0.0, "eval_accuracy": 0.0, "num_active_dims": 0}
    num_factors = len(sampler.factor_names)

    def votes(count: int) -> np.ndarray:
        table = np.zeros((num_factors, int(active.sum())), dtype=np.int64)
        for _ in range(int(count)):
            k = int(rng.integers(num_factors))
            fixed = np.repeat(sampler.sample_factors(1, rng), batch_size, axis=0)
            factors = sampler.resample_except(fixed, k, rng)
            local = np.var(represent(sampler.images(factors, rng)), axis=0, ddof=1)
            table[k, int(np.argmin(local[active] / global_var[active]))] += 1
        return table

    train = votes(num_train)
    classifier = np.argmax(train, axis=0)  # dimension → its majority factor
    columns = np.arange(train.shape[1])
    evaluation = votes(num_eval)
    return {"train_accuracy": float(train[classifier, columns].sum() / train.sum()),
            "eval_accuracy": float(evaluation[classifier, columns].sum() / evaluation.sum()),
            "num_active_dims": int(active.sum())}


def beta_vae_score(sampler: FactorSampler, encoder, *, batch_size: int = 64, num_train: int = 10_000,
                   num_eval: int = 5_000, seed: int = 0, device="cpu") -> dict:
    """The β-VAE score (Higgins et al., 2017): accuracy of a linear classifier of the fixed factor.

    Each point fixes one random factor k: two batches of ``batch_size`` images share
    factor k pairwise (each pair its own value) and differ in the others; the point is the
    mean absolute difference of their codes, labelled k. A logistic regression (scikit-learn,
    as disentanglement_lib's ``compute_beta_vae_sklearn``) is fitted on ``num_train``
    points; the score is its accuracy on ``num_eval`` fresh ones.

    Returns
    -------
    dict
        ``train_accuracy`` and ``eval_accuracy`` (the score).
    """
    from sklearn.linear_model import LogisticRegression

    _check_counts(batch_size=batch_size, num_train=num_train, num_eval=num_eval)
    represent = _representation(encoder, device)
    rng = np.random.default_rng(seed)
    num_factors = len(sampler.factor_names)

    def points(count: int) -> tuple[np.ndarray, np.ndarray]:
        features, labels = [], []
        for _ in range(int(count)):
            k = int(rng.integers(num_factors))
            first = sampler.sample_factors(batch_size, rng)
            second = sampler.resample_except(first, k, rng)
            a = represent(sampler.images(first, rng))
            b = represent(sampler.images(second, rng))
            features.append(np.mean(np.abs(a - b), axis=0))
            labels.append(k)
        return np.array(features), np.array(labels)

    x_train, y_train = points(num_train)
    x_eval, y_eval = points(num_eval)
    if len(np.unique(y_train)) < 2:
        return {"train_accuracy": 1.0, "eval_accuracy": float(np.mean(y_eval == y_train[0]))}
    model = LogisticRegression(max_iter=1000, random_state=seed)
    model.fit(x_train, y_train)
    return {"train_accuracy": float(model.score(x_train, y_train)),
            "eval_accuracy": float(model.score(x_eval, y_eval))}
