"""Index grids of codes, for models with a discrete code grid (no Qt)."""

from __future__ import annotations

import numpy as np

from explorer.state.lazy import LazyModule

torch = LazyModule("torch")

#: Codes quantized per batch (a 70,000-image MNIST map in 70 matrix products).
BATCH = 1000


def grid_model(document):
    """The document's model if it has a discrete code grid, else None."""
    model = document.model
    if model is None or not all(hasattr(model, name) for name in ("quantize", "decode_indices", "grid_shape")):
        return None
    return model


def index_grids(model, codes) -> np.ndarray:
    """Index grids (``N×rows×columns`` int64) of flat codes (``N×d`` or ``d``)."""
    codes = np.atleast_2d(np.asarray(codes, dtype=np.float32))
    out = np.empty((len(codes), *model.grid_shape), dtype=np.int64)
    with torch.inference_mode():
        for start in range(0, len(codes), BATCH):
            chunk = torch.from_numpy(codes[start:start + BATCH])
            out[start:start + BATCH] = model.quantize(chunk)[0].numpy()
    return out


def decode_grids(model, grids) -> np.ndarray:
    """Images (``N×C×H×W`` in [0, 1]) of index grids (``N×rows×columns`` or one grid)."""
    grids = np.asarray(grids, dtype=np.int64)
    if grids.ndim == 2:
        grids = grids[None]
    with torch.inference_mode():
        parts = [model.decode_indices(torch.from_numpy(grids[start:start + BATCH])).numpy()
                 for start in range(0, len(grids), BATCH)]
    return np.concatenate(parts) if parts else np.zeros((0, *model.image_shape), dtype=np.float32)


def codes_from_grid(model, grid) -> np.ndarray:
    """The flat code (``d``, float32) whose vectors are the entries ``grid`` names."""
    with torch.inference_mode():
        return model.codes_from_indices(torch.as_tensor(np.asarray(grid, dtype=np.int64)))[0].numpy()
