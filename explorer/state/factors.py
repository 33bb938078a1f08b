"""Which latent dimension carries which ground-truth factor (no Qt).

For a dataset with known generative factors (``shapes``, ``dsprites``:
``DatasetSplits.factors``, aligned with ``dataset.all()`` like the codes), the
factor × dimension mutual information says how disentangled the code is: a row with one
bright cell is a factor that one dimension captures alone. :func:`factor_information`
computes it with :func:`vae_core.metrics.mutual_info_matrix` (histogram estimate, 20 bins per
dimension, as MIG uses) and normalises each row by the factor's entropy, so a cell reads as
the fraction of the factor that the dimension determines (0 to 1).

:class:`FactorInformation` holds the current result for the document's codes; the panel
computes it in a worker (:meth:`FactorInformation.request` hands it what to compute) and
hands it back with :meth:`FactorInformation.set_result`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from psygnal import Signal

#: Codes beyond this many are subsampled (seeded) for the estimate: the histogram MI of
#: dSprites' 737,280 codes needs no more to be stable to two decimals.
MAX_POINTS = 100_000
SEED = 0


@dataclass(frozen=True)
class FactorMI:
    """Mutual information of every factor with every latent dimension."""

    factor_names: tuple[str, ...]
    mi: np.ndarray              # K×d, nats
    entropy: np.ndarray         # K, nats: H(factor), the most a dimension can carry
    normalized: np.ndarray      # K×d, mi / entropy in [0, 1]
    points: int                 # codes used

    def best_dimension(self, factor: int) -> int:
        """The dimension that carries most of factor ``factor``."""
        return int(np.argmax(self.normalized[factor]))


def factor_information(codes, factors: dict, *, n_bins: int | None = None, max_points: int = MAX_POINTS,
                       seed: int = SEED) -> FactorMI:
    """Factor × dimension mutual information of ``codes`` (pure; a worker may call it).

    Parameters
    ----------
    codes : array_like
        ``N×d`` codes of ``dataset.all()``.
    factors : dict of str to array
        ``DatasetSplits.factors`` (length N each); float factors are binned
        (:func:`vae_core.metrics.factor_matrix`).
    n_bins : int, optional
        Histogram bins per dimension and float factor (default: MIG's, 20).
    max_points : int
        At most this many codes are used (a seeded subsample beyond).
    """
    from vae_core.metrics import (
        MIG_BINS,
        discrete_entropy,
        factor_matrix,
        mutual_info_matrix,
    )

    n_bins = MIG_BINS if n_bins is None else int(n_bins)
    codes = np.asarray(codes)
    matrix, names = factor_matrix(factors, n_bins)
    if len(matrix) != len(codes):
        raise ValueError(f"There are {len(codes)} codes but {len(matrix)} rows of factors; they must match.")
    if len(codes) > max_points:
        keep = np.sort(np.random.default_rng(seed).choice(len(codes), max_points, replace=False))
        codes, matrix = codes[keep], matrix[keep]
    mi = mutual_info_matrix(codes, matrix, n_bins)
    entropy = discrete_entropy(matrix)
    normalized = np.divide(mi, entropy[:, None], out=np.zeros_like(mi), where=entropy[:, None] > 0)
    return FactorMI(tuple(names), mi, entropy, np.clip(normalized, 0.0, 1.0), len(codes))


class FactorInformation:
    """The factor × dimension information of the document's current codes.

    Signals
    -------
    result_changed(FactorMI | None)
    traversal_requested(int)
        Show the traversal of this latent dimension (a click on a heatmap cell).
    """

    result_changed = Signal(object)
    traversal_requested = Signal(int)

    def __init__(self, document) -> None:
        self.document = document
        self.result: FactorMI | None = None
        self.generation = 0        # counts the codes seen; a result of older codes is dropped
        document.codes_changed.connect(self._on_document_codes_changed)
        document.dataset_changed.connect(self._on_document_dataset_changed)

    @property
    def available(self) -> bool:
        """The dataset has ground-truth factors."""
        data = self.document.dataset
        return data is not None and bool(getattr(data, "factors", None))

    def request(self):
        """``(generation, codes, factors)`` to compute now, or None when there is nothing to compute."""
        codes = self.document.codes
        if not self.available or codes is None:
            return None
        return self.generation, codes, self.document.dataset.factors

    def compute(self) -> FactorMI | None:
        """Compute synchronously for the current codes (tests, scripts)."""
        job = self.request()
        if job is None:
            return None
        generation, codes, factors = job
        self.set_result(generation, factor_information(codes, factors))
        return self.result

    def set_result(self, generation: int, result: FactorMI | None) -> None:
        if generation == self.generation:
            self.result = result
            self.result_changed.emit(result)

    def request_traversal(self, dimension: int) -> None:
        latent_dim = self.result.mi.shape[1] if self.result is not None else 0
        if not 0 <= int(dimension) < latent_dim:
            raise ValueError(f"There is no latent dimension {dimension} in the heatmap.")
        self.traversal_requested.emit(int(dimension))

    def _forget(self) -> None:
        self.generation += 1
        if self.result is not None:
            self.result = None
            self.result_changed.emit(None)

    def _on_document_codes_changed(self) -> None:
        self._forget()

    def _on_document_dataset_changed(self, _data) -> None:
        self._forget()
