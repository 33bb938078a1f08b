"""Stored pixels as float32 in [0, 1], whatever the dataset stores.

The rule is the dataset's own (:func:`vae_core.data.to_unit_float`: ``uint8`` is
``value / 255``, anything else is only cast); the metrics add only C-contiguity, so that
a strided slice of a memory map goes to torch as one block.
"""

from __future__ import annotations

import numpy as np

from vae_core.data import to_unit_float


def unit_float(pixels) -> np.ndarray:
    """``pixels`` (any shape; a slice of a memory map too) as a C-contiguous float32 array in [0, 1]."""
    return np.ascontiguousarray(to_unit_float(np.asarray(pixels)))
