"""dSprites, rendered procedurally on its exact factor grid.

dSprites (Matthey et al., 2017, github.com/deepmind/dsprites-dataset) is the benchmark of
disentanglement papers: 737,280 binary 64×64 images, one for every combination of

=================  ======  ==========================================================
factor             values  grid
=================  ======  ==========================================================
``shape``          3       square, ellipse, heart (values 1, 2, 3 as in the original)
``scale``          6       linearly spaced in [0.5, 1]
``orientation``    40      linearly spaced in [0, 2π] (both ends included, as in the
                           original, so the first and last orientation coincide)
``pos_x``          32      linearly spaced in [0, 1], left to right
``pos_y``          32      linearly spaced in [0, 1], top to bottom
=================  ======  ==========================================================

(colour, the original's sixth factor, has a single value and is left out). Image ``i``
is the grid point ``np.unravel_index(i, FACTOR_SIZES)``: shape varies slowest and
``pos_y`` fastest, the original's order, so the factor indices of image ``i`` are
those of the original's image ``i``.

Rendering follows what the original documents: a shape is drawn at ``scale`` times a
base size, rotated by ``orientation``, and its centre moves over the image with a
margin so that every shape at every scale and rotation stays whole. Here the centre
moves by exactly one pixel per position step (pixel centres 16.5 … 47.5 of 64), which
lets each of the 720 (shape, scale, orientation) templates be rasterised once and
shifted by whole pixels into its 1,024 positions: the full set renders in seconds
instead of minutes, and a shifted template equals a direct rasterisation at that
centre bit for bit (a test checks it). Pixels are sampled at their centres; the
shapes are those of :mod:`vae_core.data`'s ``shapes`` spec (:func:`shape_mask`), so the
images are not byte-identical to the original files, whose exact rasteriser is not
published.
"""
from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

__all__ = [
    "COUNT",
    "FACTOR_NAMES",
    "FACTOR_SIZES",
    "FACTOR_VALUES",
    "IMAGE_SIZE",
    "SHAPE_NAMES",
    "factor_indices",
    "grid_index",
    "render",
    "shape_mask",
]

IMAGE_SIZE = 64
SHAPE_NAMES = ("square", "ellipse", "heart")
FACTOR_NAMES = ("shape", "scale", "orientation", "pos_x", "pos_y")
FACTOR_SIZES = (3, 6, 40, 32, 32)
#: The value of every grid index, as the original's ``latents_values`` (shape 1, 2, 3).
FACTOR_VALUES: dict[str, np.ndarray] = {
    "shape": np.array([1.0, 2.0, 3.0]),
    "scale": np.linspace(0.5, 1.0, 6),
    "orientation": np.linspace(0.0, 2.0 * np.pi, 40),
    "pos_x": np.linspace(0.0, 1.0, 32),
    "pos_y": np.linspace(0.0, 1.0, 32),
}
COUNT = int(np.prod(FACTOR_SIZES))  # 737,280

# Radius of a scale-1 shape in pixels (0.18 of the side, as the `shapes` spec): a scale-1
# square is 18.4 pixels wide (19 pixel centres), the ellipse 23 pixels long.
BASE_RADIUS = 0.18 * IMAGE_SIZE
# The centre of position 0 (pixel 16's centre); position k is k pixels further. The
# furthest any shape reaches from its centre is 1.15 radii (the square's corner), 13.2
# pixels at scale 1, so a shape spans at most pixels 3.3 … 60.7 and is never cut.
_FIRST_CENTRE = 16.5
_POSITIONS = FACTOR_SIZES[3]
_TEMPLATES = FACTOR_SIZES[0] * FACTOR_SIZES[1] * FACTOR_SIZES[2]   # 720
_PER_TEMPLATE = FACTOR_SIZES[3] * FACTOR_SIZES[4]                 # 1,024
_SQRT3_2 = math.sqrt(3.0) / 2.0


def shape_mask(kind: int, p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Inside-test in a shape's own frame (radius 1, ``q`` pointing up).

    ``kind`` 0 is a square (half side 0.8), 1 an ellipse (semi-axes 1 and 0.55), 2 a
    heart ((x² + y² − 1)³ ≤ x² y³, scaled by 0.9 and re-centred), 3 an equilateral
    triangle (circumradius 1.05, apex up; used by the ``shapes`` spec only).
    """
    if kind == 0:
        return np.maximum(np.abs(p), np.abs(q)) <= 0.8
    if kind == 1:
        return p * p + (q * q) * np.float32(1 / 0.55**2) <= 1.0
    if kind == 2:
        x = p * np.float32(1 / 0.9)
        y = q * np.float32(1 / 0.9) + np.float32(0.12)
        x2 = x * x
        r = x2 + y * y - 1.0
        return r * r * r <= x2 * y * y * y
    half = np.float32(0.525)
    return (q >= -half) & (_SQRT3_2 * p + 0.5 * q <= half) & (-_SQRT3_2 * p + 0.5 * q <= half)


def factor_indices(indices) -> dict[str, np.ndarray]:
    """The grid indices of dSprites images ``indices`` (0 … 737,279), one int64 array per factor."""
    indices = np.asarray(indices, dtype=np.int64)
    return {name: values.astype(np.int64)
            for name, values in zip(FACTOR_NAMES, np.unravel_index(indices, FACTOR_SIZES))}


def grid_index(factors: dict[str, np.ndarray]) -> np.ndarray:
    """The image indices of the grid points ``factors`` (name → index array); inverse of
    :func:`factor_indices`."""
    return np.ravel_multi_index(tuple(np.asarray(factors[name]) for name in FACTOR_NAMES),
                                FACTOR_SIZES).astype(np.int64)


def _rasterise(shape: int, scale: float, orientation: float, cx: float, cy: float) -> np.ndarray:
    """One binary ``uint8`` 64×64 image (0 or 255), sampled at pixel centres."""
    centres = np.arange(IMAGE_SIZE, dtype=np.float32) + np.float32(0.5)
    radius = np.float32(BASE_RADIUS * scale)
    dx = centres[None, :] - np.float32(cx)
    dy_up = np.float32(cy) - centres[:, None]  # image rows grow downwards
    # Dividing cos/sin by the radius folds the scaling into the rotation.
    c = np.float32(math.cos(orientation)) / radius
    s = np.float32(math.sin(orientation)) / radius
    p = c * dx + s * dy_up
    q = c * dy_up - s * dx
    return shape_mask(shape, p, q).astype(np.uint8) * np.uint8(255)


def _template(index: int) -> np.ndarray:
    """Template ``index`` (shape, scale, orientation) at position (0, 0)."""
    shape, scale, orientation = np.unravel_index(index, FACTOR_SIZES[:3])
    return _rasterise(int(shape), float(FACTOR_VALUES["scale"][scale]),
                      float(FACTOR_VALUES["orientation"][orientation]), _FIRST_CENTRE, _FIRST_CENTRE)


def render_direct(index: int) -> np.ndarray:
    """Image ``index`` rasterised at its own centre (slow; the reference :func:`render` is
    checked against)."""
    f = {name: int(v) for name, v in factor_indices(index).items()}
    return _rasterise(f["shape"], float(FACTOR_VALUES["scale"][f["scale"]]),
                      float(FACTOR_VALUES["orientation"][f["orientation"]]),
                      _FIRST_CENTRE + f["pos_x"], _FIRST_CENTRE + f["pos_y"])


def render(indices, *, progress: Callable[[int, int], None] | None = None,
           out: np.ndarray | None = None) -> np.ndarray:
    """Render dSprites images ``indices`` into a binary ``uint8`` ``N×1×64×64`` array.

    Parameters
    ----------
    indices : array of int
        Image indices 0 … 737,279 in any order; ``out[k]`` is image ``indices[k]``.
    progress : callable, optional
        ``progress(done, total)`` in images, after each template (at most 720 calls).
    out : np.ndarray, optional
        Where to write (``uint8``, ``N×1×64×64``), for example a memory map.

    Returns
    -------
    np.ndarray
        Pixels 0 or 255 (``to_unit_float`` reads them as 0 and 1).
    """
    indices = np.asarray(indices, dtype=np.int64).reshape(-1)
    n = len(indices)
    if n and (indices.min() < 0 or indices.max() >= COUNT):
        raise ValueError(f"dSprites image indices lie in 0 … {COUNT - 1}.")
    if out is None:
        out = np.empty((n, 1, IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
    template_of = indices // _PER_TEMPLATE
    position = indices % _PER_TEMPLATE
    pos_x, pos_y = position // _POSITIONS, position % _POSITIONS
    grouped = np.argsort(template_of, kind="stable")
    bounds = np.searchsorted(template_of[grouped], np.arange(_TEMPLATES + 1))
    shift = _POSITIONS - 1
    canvas = np.zeros((IMAGE_SIZE + shift, IMAGE_SIZE + shift), dtype=np.uint8)
    # Window (a, b) of the padded canvas is the template moved down 31 − a rows and right
    # 31 − b columns: a shift by whole pixels, which is exact because the sampling points
    # move with it.
    windows = np.lib.stride_tricks.sliding_window_view(canvas, (IMAGE_SIZE, IMAGE_SIZE))
    done = 0
    for t in range(_TEMPLATES):
        members = grouped[bounds[t]:bounds[t + 1]]
        if not len(members):
            continue
        canvas[shift:, shift:] = _template(t)
        out[members, 0] = windows[shift - pos_y[members], shift - pos_x[members]]
        done += len(members)
        if progress is not None:
            progress(done, n)
    if n == 0 and progress is not None:
        progress(0, 0)
    return out
