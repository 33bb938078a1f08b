"""Stored pixels as float32 in [0, 1], whatever the dataset stores.

Datasets may store 8-bit sources as ``uint8`` (read as ``value / 255``) and others as float32
in [0, 1]; the metrics read images through :func:`unit_float` so that both give the same
numbers (the same rule as the dataset's own reader).
"""

from __future__ import annotations

import numpy as np


def unit_float(pixels) -> np.ndarray:
    """``pixels`` (any shape; a slice of a memory map too) as a C-contiguous float32 array in [0, 1]."""
    pixels = np.asarray(pixels)
    if pixels.dtype == np.uint8:
        out = pixels.astype(np.float32)
        out /= np.float32(255.0)
        return out
    return np.ascontiguousarray(pixels, dtype=np.float32)
