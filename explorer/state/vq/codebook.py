"""The codebook of a code-grid model (no Qt): usage, patch images, a map of the vectors.

Usage counts every cell of every data point's grid (the document's codes, quantized);
an entry no cell uses is *dead*. An entry's patch image is the decoder's output for a
grid filled with that entry alone (what the code draws when it fills the grid). The map of the vectors is their first two
principal components (PCA of the K×D codebook), computed with NumPy.
"""

from __future__ import annotations

import numpy as np
from psygnal import Signal

from explorer.state.vq.grid import decode_grids, grid_model, index_grids


class Codebook:
    """Usage, images and 2-D layout of the codebook; cached until the model, weights or codes change."""

    codebook_changed = Signal()

    def __init__(self, document) -> None:
        self.document = document
        self._cache: dict[str, np.ndarray] = {}
        document.model_changed.connect(self._on_document_changed)
        document.weights_changed.connect(self._on_document_changed)
        document.codes_changed.connect(self._on_document_changed)

    @property
    def available(self) -> bool:
        return grid_model(self.document) is not None

    @property
    def size(self) -> int:
        model = grid_model(self.document)
        return 0 if model is None else int(model.num_codes)

    def _cached(self, key: str, compute) -> np.ndarray | None:
        if grid_model(self.document) is None:
            return None
        if key not in self._cache:
            value = compute()
            if value is None:
                return None
            self._cache[key] = value
        return self._cache[key]

    def vectors(self) -> np.ndarray | None:
        """The ``K×D`` codebook (float32 copy)."""
        return self._cached("vectors", lambda: grid_model(self.document).codebook.cpu().numpy().copy())

    def index_grids(self) -> np.ndarray | None:
        """``N×rows×columns`` indices of every data point (None until the codes are there)."""
        codes = self.document.codes
        if codes is None:
            return None
        model = grid_model(self.document)
        if model is None or codes.shape[1] != int(model.latent_dim):
            return None
        return self._cached("grids", lambda: index_grids(model, codes))

    def usage(self) -> np.ndarray | None:
        """How many cells of the data use each entry: int64 ``K``."""
        grids = self.index_grids()
        if grids is None:
            return None
        return self._cached("usage", lambda: np.bincount(grids.ravel(), minlength=self.size).astype(np.int64))

    def dead(self) -> np.ndarray | None:
        """Boolean ``K``: entries no cell uses."""
        usage = self.usage()
        return None if usage is None else usage == 0

    def perplexity(self) -> float | None:
        """exp(entropy) of the usage distribution (1: one code; K: all used equally)."""
        usage = self.usage()
        if usage is None or usage.sum() == 0:
            return None
        p = usage[usage > 0] / usage.sum()
        return float(np.exp(-(p * np.log(p)).sum()))

    def patch_images(self) -> np.ndarray | None:
        """``K×C×H×W``: each entry decoded from a grid filled with it."""
        model = grid_model(self.document)
        if model is None:
            return None
        rows, cols = model.grid_shape
        grids = np.broadcast_to(np.arange(self.size, dtype=np.int64)[:, None, None], (self.size, rows, cols))
        return self._cached("patches", lambda: decode_grids(model, np.ascontiguousarray(grids)))

    def layout(self) -> np.ndarray | None:
        """``K×2``: the codebook vectors on their first two principal axes (signs fixed)."""
        def compute():
            vectors = self.vectors().astype(np.float64)
            centred = vectors - vectors.mean(0)
            _, _, vt = np.linalg.svd(centred, full_matrices=False)
            axes = vt[:2]
            # An SVD's signs are arbitrary: make each axis's largest loading positive.
            axes *= np.sign(axes[np.arange(len(axes)), np.abs(axes).argmax(1)])[:, None]
            xy = centred @ axes.T
            if xy.shape[1] < 2:  # one-number vectors: a line
                xy = np.column_stack([xy[:, 0], np.zeros(len(xy))])
            return xy.astype(np.float32)
        return self._cached("layout", compute)

    def _on_document_changed(self, *_args) -> None:
        self._cache.clear()
        self.codebook_changed.emit()
