"""2D projections of latent codes, with inverses so any point of the map can be decoded.

Every projection maps ``N×d`` codes to ``N×2`` points and back:

- :class:`DimsProjection` shows two latent dimensions; the inverse fills the others with
  zero, the data mean, a fixed vector, or a settable ``reference`` code.
- :class:`PCAProjection` is the best linear plane; its inverse is exact on the plane.
- :class:`UMAPProjection` uses umap-learn for the layout and :class:`KNNInverse` (not
  umap's slow ``inverse_transform``) to go back.

All of them share an optional 2D affine post-transform (``affine``, a ``2×3`` matrix
``[A | b]`` mapping ``p -> A p + b``) so that a refitted map can be rotated/scaled onto
the previous one with :func:`align_to` without points jumping; ``inverse`` undoes it first.

Projections save to one ``.safetensors`` file (arrays) whose metadata holds the JSON
settings — never pickle. Nothing here imports Qt.
"""

from __future__ import annotations

import json
import os
import sys
import time
import uuid
import warnings
from pathlib import Path
from typing import Callable, Mapping

import numpy as np

from vae_core.errors import Cancelled, NotFittedError
from vae_core.latent.neighbors import NeighborIndex

__all__ = [
    "NotFittedError",
    "Projection",
    "DimsProjection",
    "PCAProjection",
    "UMAPProjection",
    "KNNInverse",
    "warm_up_umap",
    "cache_umap_kernels",
    "precompile_umap",
    "PROJECTION_KINDS",
    "make_projection",
    "align_to",
    "apply_affine",
    "invert_affine",
    "compose_affine",
    "IDENTITY_AFFINE",
    "save_projection",
    "load_projection",
]

ProgressFn = Callable[[int, int], None]
StopFn = Callable[[], bool]
LayoutFn = Callable[[np.ndarray], None]
FORMAT = "latent-explorer-projection"
FORMAT_VERSION = 1
IDENTITY_AFFINE = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])


# ---------------------------------------------------------------------------------------
# 2D affine helpers
# ---------------------------------------------------------------------------------------
def _as_affine(m) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    if m.shape == (3, 3):
        m = m[:2]
    if m.shape != (2, 3) or not np.isfinite(m).all():
        raise ValueError("An affine transform is a finite 2×3 matrix [A | b].")
    if abs(np.linalg.det(m[:, :2])) < 1e-12:
        raise ValueError("The affine transform is singular: it cannot be inverted.")
    return m


def apply_affine(m, points) -> np.ndarray:
    """``points @ A.T + b`` for a ``2×3`` matrix ``[A | b]`` and ``M×2`` points."""
    m = np.asarray(m, dtype=np.float64)
    return np.asarray(points, dtype=np.float64) @ m[:, :2].T + m[:, 2]


def invert_affine(m) -> np.ndarray:
    """The ``2×3`` inverse of an affine transform."""
    m = _as_affine(m)
    a_inv = np.linalg.inv(m[:, :2])
    return np.hstack([a_inv, (-a_inv @ m[:, 2])[:, None]])


def compose_affine(outer, inner) -> np.ndarray:
    """``outer ∘ inner``: apply ``inner`` first."""
    outer, inner = np.asarray(outer, np.float64), np.asarray(inner, np.float64)
    return np.hstack([outer[:, :2] @ inner[:, :2], (outer[:, :2] @ inner[:, 2] + outer[:, 2])[:, None]])


def align_to(previous_xy, new_xy, *, scale: bool = True, reflection: bool = True) -> np.ndarray:
    """Similarity transform that best maps ``new_xy`` onto ``previous_xy`` (Procrustes).

    Finds rotation (and reflection, if allowed), uniform scale and translation minimising
    ``Σ |s R new_i + t - previous_i|²`` over corresponding rows.

    Returns
    -------
    np.ndarray
        ``2×3`` matrix ``[sR | t]``; ``apply_affine(m, new_xy) ≈ previous_xy``. Assign it to a
        projection's ``affine`` when ``new_xy`` are its raw coordinates (see
        :meth:`Projection.align_with`), or compose it with the current one.
    """
    prev = np.asarray(previous_xy, dtype=np.float64)
    new = np.asarray(new_xy, dtype=np.float64)
    if prev.shape != new.shape or prev.ndim != 2 or prev.shape[1] != 2:
        raise ValueError("align_to needs two M×2 arrays of corresponding points.")
    ok = np.isfinite(prev).all(1) & np.isfinite(new).all(1)
    prev, new = prev[ok], new[ok]
    if len(prev) == 0:
        return IDENTITY_AFFINE.copy()
    mp, mn = prev.mean(0), new.mean(0)
    p, n = prev - mp, new - mn
    u, s, vt = np.linalg.svd(n.T @ p)
    if not reflection and np.linalg.det(u @ vt) < 0:
        u[:, -1] *= -1
        s[-1] *= -1
    r = (u @ vt).T  # rotation applied as r @ n_i
    denom = float(np.sum(n * n))
    k = float(s.sum()) / denom if scale and denom > 0 else 1.0
    a = k * r
    return np.hstack([a, (mp - a @ mn)[:, None]])


# ---------------------------------------------------------------------------------------
# Base class
# ---------------------------------------------------------------------------------------
def _hull_points(xy: np.ndarray) -> np.ndarray:
    """Few points whose affine image has the same bounding box as ``xy``'s."""
    xy = np.asarray(xy, dtype=np.float64)
    xy = xy[np.isfinite(xy).all(1)]
    if len(xy) == 0:
        return np.zeros((0, 2))
    extremes = xy[[xy[:, 0].argmin(), xy[:, 0].argmax(), xy[:, 1].argmin(), xy[:, 1].argmax()]]
    if len(xy) < 4:
        return xy.copy()
    try:
        from scipy.spatial import ConvexHull, QhullError

        return xy[ConvexHull(xy).vertices]
    except (QhullError, ValueError):  # collinear or duplicate points: the extremes suffice
        return extremes


class Projection:
    """Base class: latent codes (``N×d``) ↔ 2D points (``N×2``).

    Subclasses implement ``_fit``, ``_transform_raw`` and ``_inverse_raw`` and the state
    hooks; this class adds the affine post-transform, bounds and (de)serialisation.

    Attributes
    ----------
    kind : str
        Registry key (``"dims"``, ``"pca"``, ``"umap"``).
    name : str
        Human-readable label for the GUI.
    fitted : bool
    latent_dim : int or None
    affine : np.ndarray
        ``2×3`` post-transform applied after the raw projection (identity by default;
        reset to identity by :meth:`fit`).
    """

    kind = "base"

    def __init__(self):
        self.fitted = False
        self.latent_dim: int | None = None
        self._affine = IDENTITY_AFFINE.copy()
        self._hull = np.zeros((0, 2))

    # -- public API
    @property
    def name(self) -> str:
        return self.kind

    @property
    def affine(self) -> np.ndarray:
        return self._affine.copy()

    @affine.setter
    def affine(self, m) -> None:
        self._affine = _as_affine(m).copy()

    def fit(self, codes, progress: ProgressFn | None = None, should_stop: StopFn | None = None, *,
            intermediate: LayoutFn | None = None) -> "Projection":
        """Fit to ``N×d`` codes; resets ``affine`` to identity. Returns ``self``.

        ``progress(done, total)`` reports points placed; ``should_stop()`` returning True
        raises :class:`~vae_core.errors.Cancelled`. An iterative fit (UMAP) calls
        ``intermediate(xy)`` with the ``N×2`` float32 layout of every code while it is being
        optimised (see :meth:`with_layout`); a closed-form fit never calls it. Watching
        the fit does not change its result.
        """
        codes = self._check_codes(codes, fitting=True)
        if should_stop is not None and should_stop():
            raise Cancelled("Projection fitting was cancelled.")
        raw = self._fit(codes, progress, should_stop, intermediate)
        self.latent_dim = int(codes.shape[1])
        self._affine = IDENTITY_AFFINE.copy()
        self._hull = _hull_points(raw)
        self.fitted = True
        if progress is not None:
            progress(len(codes), len(codes))
        return self

    def transform(self, codes) -> np.ndarray:
        """``N×d`` codes (or one ``d`` code) → ``N×2`` (or ``2``) float64 points."""
        codes, single = self._batch(codes, self.latent_dim, "codes")
        self._check_codes(codes)
        xy = apply_affine(self._affine, self._transform_raw(codes))
        return xy[0] if single else xy

    def inverse(self, points) -> np.ndarray:
        """``M×2`` points (or one point) → ``M×d`` (or ``d``) float32 codes; deterministic."""
        pts, single = self._batch(points, 2, "points")
        raw = apply_affine(invert_affine(self._affine), pts) if not self._is_identity() else pts
        codes = np.asarray(self._inverse_raw(raw), dtype=np.float32)
        return codes[0] if single else codes

    def linear_map(self) -> tuple[np.ndarray, np.ndarray] | None:
        """``(W, b)`` with ``transform(z) == z @ W.T + b`` when the projection is linear, else None.

        ``W`` is ``2×d`` and ``b`` is ``2`` (float64), the affine post-transform included.
        Dims and PCA are linear, so a Gaussian ``N(μ, Σ)`` in latent space is exactly
        ``N(W μ + b, W Σ Wᵀ)`` on the map; UMAP is not (None).
        """
        self._require_fitted()
        raw = self._linear_raw()
        if raw is None:
            return None
        w_raw, b_raw = raw
        a, t = self._affine[:, :2], self._affine[:, 2]
        return a @ w_raw, a @ b_raw + t

    def bounds(self) -> tuple[float, float, float, float]:
        """``(xmin, ymin, xmax, ymax)`` of the fitted data in display coordinates."""
        self._require_fitted()
        if len(self._hull) == 0:
            return (0.0, 0.0, 0.0, 0.0)
        xy = apply_affine(self._affine, self._hull)
        lo, hi = xy.min(0), xy.max(0)
        return (float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1]))

    def align_with(self, previous_xy, codes) -> np.ndarray:
        """Set ``affine`` so that ``transform(codes)`` best matches ``previous_xy``.

        Call after refitting (e.g. at the end of a training epoch) with the positions the
        same points had on the previous map. Returns the new affine.
        """
        self._require_fitted()
        codes, _ = self._batch(codes, self.latent_dim, "codes")
        self.affine = align_to(previous_xy, self._transform_raw(codes))
        return self.affine

    def state(self) -> tuple[dict, dict[str, np.ndarray]]:
        """JSON-safe settings and named arrays that :meth:`from_state` rebuilds from."""
        meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "kind": self.kind,
                "fitted": self.fitted, "latent_dim": self.latent_dim,
                "affine": self._affine.tolist(), "params": self._params()}
        arrays = {"hull": np.ascontiguousarray(self._hull, dtype=np.float64)}
        if self.fitted:
            arrays.update(self._arrays())
        return meta, arrays

    @classmethod
    def from_state(cls, meta: Mapping, arrays: Mapping[str, np.ndarray]) -> "Projection":
        """Rebuild a projection saved by :meth:`state` (dispatches on ``meta["kind"]``)."""
        if meta.get("format") != FORMAT:
            raise ValueError("This is not a Latent Explorer projection.")
        if int(meta.get("format_version", 0)) > FORMAT_VERSION:
            raise ValueError(f"This projection was saved by a newer version (format {meta['format_version']}).")
        kind = meta.get("kind")
        if kind not in PROJECTION_KINDS:
            raise ValueError(f"Unknown projection kind {kind!r}.")
        target = PROJECTION_KINDS[kind]
        if cls is not Projection and not issubclass(target, cls):
            raise ValueError(f"This state holds a {kind!r} projection, not {cls.kind!r}.")
        proj = target(**target._params_to_kwargs(meta.get("params", {}), arrays))
        proj.latent_dim = meta.get("latent_dim")
        proj._affine = _as_affine(meta.get("affine", IDENTITY_AFFINE))
        proj._hull = np.asarray(arrays.get("hull", np.zeros((0, 2))), dtype=np.float64)
        if meta.get("fitted"):
            proj._restore(arrays)
            proj.fitted = True
        return proj

    # -- subclass hooks
    def _fit(self, codes, progress, should_stop, intermediate) -> np.ndarray:
        raise NotImplementedError

    def _transform_raw(self, codes: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _inverse_raw(self, points: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _linear_raw(self) -> tuple[np.ndarray, np.ndarray] | None:
        return None

    def _params(self) -> dict:
        return {}

    @classmethod
    def _params_to_kwargs(cls, params: Mapping, arrays: Mapping) -> dict:
        return dict(params)

    def _arrays(self) -> dict[str, np.ndarray]:
        return {}

    def _restore(self, arrays: Mapping[str, np.ndarray]) -> None:
        pass

    # -- helpers
    def _is_identity(self) -> bool:
        return np.array_equal(self._affine, IDENTITY_AFFINE)

    def _require_fitted(self) -> None:
        if not self.fitted:
            raise NotFittedError(f"The {self.name} projection is not fitted yet: call fit(codes) first.")

    @staticmethod
    def _batch(x, width, what) -> tuple[np.ndarray, bool]:
        arr = np.asarray(x, dtype=np.float64 if what == "points" else np.float32)
        single = arr.ndim == 1
        arr = np.atleast_2d(arr)
        if arr.ndim != 2 or (width is not None and arr.shape[1] != width):
            if what == "codes" and width is not None:
                raise ValueError(f"Expected {width}-dimensional codes, got an array of shape {np.shape(x)}.")
            raise ValueError(f"Expected {what} of shape M×{width or 'd'}, got {np.shape(x)}.")
        return arr, single

    def _check_codes(self, codes, fitting: bool = False) -> np.ndarray:
        codes = np.asarray(codes, dtype=np.float32)
        if codes.ndim != 2:
            raise ValueError("codes must be an N×d array.")
        if fitting and len(codes) == 0:
            raise ValueError("Cannot fit a projection to zero codes.")
        if not fitting and self.latent_dim is not None and codes.shape[1] != self.latent_dim:
            raise ValueError(f"Expected {self.latent_dim}-dimensional codes, got {codes.shape[1]}.")
        return codes

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} fitted={self.fitted}>"


# ---------------------------------------------------------------------------------------
# Two latent dimensions
# ---------------------------------------------------------------------------------------
class DimsProjection(Projection):
    """Show latent dimensions ``i`` (x) and ``j`` (y).

    Parameters
    ----------
    i, j
        The two dimensions.
    fill
        What the inverse puts in the other dimensions: ``"zero"`` (the prior mean),
        ``"mean"`` (the fitted data mean) or a ``d`` vector.

    Attributes
    ----------
    reference : np.ndarray or None
        When set (e.g. to a pinned point's code), the inverse keeps this code's other
        dimensions instead of ``fill``. Set to None to go back to ``fill``.
    """

    kind = "dims"

    def __init__(self, i: int = 0, j: int = 1, fill="zero"):
        super().__init__()
        self.i, self.j = int(i), int(j)
        if self.i == self.j or min(self.i, self.j) < 0:
            raise ValueError("Pick two different, non-negative latent dimensions.")
        if isinstance(fill, str):
            if fill not in ("zero", "mean"):
                raise ValueError('fill must be "zero", "mean" or a latent vector.')
            self.fill = fill
        else:
            self.fill = np.asarray(fill, dtype=np.float32).copy()
            self._set_dim(len(self.fill))
        self.mean: np.ndarray | None = None
        self._reference: np.ndarray | None = None

    @property
    def name(self) -> str:
        return f"z{self.i} × z{self.j}"

    @property
    def reference(self) -> np.ndarray | None:
        return None if self._reference is None else self._reference.copy()

    @reference.setter
    def reference(self, z) -> None:
        if z is None:
            self._reference = None
            return
        z = np.asarray(z, dtype=np.float32).reshape(-1)
        self._set_dim(len(z))
        self._reference = z.copy()

    def _set_dim(self, d: int) -> None:
        if self.latent_dim is not None and d != self.latent_dim:
            raise ValueError(f"Expected a {self.latent_dim}-dimensional vector, got {d}.")
        if max(self.i, self.j) >= d:
            raise ValueError(f"Dimension {max(self.i, self.j)} does not exist in a {d}-dimensional latent space.")
        self.latent_dim = d

    def _fit(self, codes, progress, should_stop, intermediate=None):
        if isinstance(self.fill, np.ndarray) and len(self.fill) != codes.shape[1]:
            raise ValueError(f"fill has {len(self.fill)} dimensions, the codes have {codes.shape[1]}.")
        self.latent_dim = None
        self._set_dim(codes.shape[1])
        self.mean = codes.mean(axis=0, dtype=np.float64).astype(np.float32)
        return self._transform_raw(codes)

    def _transform_raw(self, codes):
        return codes[:, [self.i, self.j]].astype(np.float64)

    def _linear_raw(self):
        w = np.zeros((2, self.latent_dim))
        w[0, self.i] = w[1, self.j] = 1.0
        return w, np.zeros(2)

    def _base(self) -> np.ndarray:
        if self._reference is not None:
            return self._reference
        if isinstance(self.fill, np.ndarray):
            return self.fill
        if self.fill == "mean":
            self._require_fitted()
            return self.mean
        if self.latent_dim is None:
            self._require_fitted()
        return np.zeros(self.latent_dim, np.float32)

    def _inverse_raw(self, points):
        out = np.repeat(self._base()[None, :], len(points), axis=0)
        out[:, self.i] = points[:, 0]
        out[:, self.j] = points[:, 1]
        return out

    def _params(self):
        return {"i": self.i, "j": self.j, "fill": self.fill if isinstance(self.fill, str) else "vector"}

    @classmethod
    def _params_to_kwargs(cls, params, arrays):
        kw = dict(params)
        if kw.get("fill") == "vector":
            kw["fill"] = arrays["fill"]
        return kw

    def state(self):
        meta, arrays = super().state()
        if isinstance(self.fill, np.ndarray):
            arrays["fill"] = self.fill
        if self._reference is not None:
            arrays["reference"] = self._reference
        return meta, arrays

    def _arrays(self):
        return {"mean": self.mean}

    def _restore(self, arrays):
        self.mean = np.asarray(arrays["mean"], dtype=np.float32)
        if "reference" in arrays:
            self._reference = np.asarray(arrays["reference"], dtype=np.float32)

    @classmethod
    def from_state(cls, meta, arrays):
        proj = super().from_state(meta, arrays)
        if "reference" in arrays and proj._reference is None:
            proj._reference = np.asarray(arrays["reference"], dtype=np.float32)
        return proj


# ---------------------------------------------------------------------------------------
# PCA
# ---------------------------------------------------------------------------------------
class PCAProjection(Projection):
    """The plane of the two principal components (NumPy SVD of the centered codes).

    ``inverse(p) = mean + p @ components`` is exact linear, so
    ``transform(inverse(p)) == p`` to float precision. Component signs are fixed (largest
    loading positive) so refits of the same data give the same picture.

    Attributes
    ----------
    mean : np.ndarray
        ``d`` data mean.
    components : np.ndarray
        ``2×d`` orthonormal rows.
    explained_variance_ratio : np.ndarray
        Fraction of the total variance along each of the two axes.
    """

    kind = "pca"

    def __init__(self):
        super().__init__()
        self.mean = None
        self.components = None
        self.explained_variance_ratio = None

    @property
    def name(self) -> str:
        return "PCA"

    def _fit(self, codes, progress, should_stop, intermediate=None):
        from threadpoolctl import threadpool_limits

        x = codes.astype(np.float64)
        self.mean = x.mean(axis=0)
        with threadpool_limits(1):
            _, s, vt = np.linalg.svd(x - self.mean, full_matrices=False)
        d = x.shape[1]
        comps = np.zeros((2, d))
        k = min(2, vt.shape[0])
        comps[:k] = vt[:k]
        if k < 2 and d >= 2:  # one point / rank 0: any orthonormal pair is as good
            comps = np.eye(2, d)
        signs = np.sign(comps[np.arange(2), np.abs(comps).argmax(axis=1)])
        signs[signs == 0] = 1.0
        self.components = comps * signs[:, None]
        var = np.zeros(2)
        var[:k] = s[:k] ** 2
        total = float(np.sum(s**2))
        self.explained_variance_ratio = var / total if total > 0 else np.zeros(2)
        return self._transform_raw(codes)

    def _transform_raw(self, codes):
        self._require_fitted_arrays()
        return (codes.astype(np.float64) - self.mean) @ self.components.T

    def _inverse_raw(self, points):
        self._require_fitted_arrays()
        return self.mean + points @ self.components

    def _linear_raw(self):
        self._require_fitted_arrays()
        return self.components.copy(), -(self.components @ self.mean)

    def _require_fitted_arrays(self):
        if self.components is None:
            self._require_fitted()

    def _arrays(self):
        return {"mean": self.mean, "components": self.components,
                "explained_variance_ratio": self.explained_variance_ratio}

    def _restore(self, arrays):
        self.mean = np.asarray(arrays["mean"], dtype=np.float64)
        self.components = np.asarray(arrays["components"], dtype=np.float64)
        self.explained_variance_ratio = np.asarray(arrays["explained_variance_ratio"], dtype=np.float64)


# ---------------------------------------------------------------------------------------
# k-NN inverse (2D -> latent), usable by any projection
# ---------------------------------------------------------------------------------------
def _smoothstep(x):
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


class KNNInverse:
    """Fast, deterministic, smooth map from 2D map points back to latent codes.

    Inside the data: a kernel blend of the codes of the ``k`` nearest embedded points,
    found with a ``cKDTree`` over the 2D embedding. Weights are
    ``w_i = (1 - (r_i/R)²)² / ((r_i/R)² + eps²)`` where ``R`` is the distance to the
    (k+1)-th neighbour: the compact factor makes a neighbour's weight reach zero exactly
    when it leaves the neighbour set (so the map is continuous), and the ``eps`` term
    peaks the blend at data points (``eps`` → 0: exact interpolation; larger: smoother).

    Outside the data: the blend of the nearest codes plus a linear extension
    ``G·(p - q)``, where ``q`` is the blend's 2D centre and ``G`` the gradient of a global
    least-squares linear map 2D → latent. It is faded in smoothly as the distance to the
    nearest point grows from 1 to 3 typical neighbour spacings, so beyond the data the
    code keeps changing in the data's overall direction instead of freezing. The length
    of ``p - q`` saturates softly (``L·tanh(|p - q|/L)``, ``L = extension_limit`` × the
    map's diameter) so points far off the map still decode to plausible codes.

    Parameters
    ----------
    points
        ``N×2`` embedded positions.
    codes
        ``N×d`` latent codes of the same points.
    k
        Neighbours blended (capped at ``N - 1``).
    eps
        Peak width relative to the neighbourhood radius.
    extrapolate
        Add the linear extension outside the data.
    extension_limit
        Soft cap of the extension's 2D reach, in map diameters.
    """

    def __init__(self, points, codes, *, k: int = 12, eps: float = 0.1, extrapolate: bool = True,
                 extension_limit: float = 1.0):
        from scipy.spatial import cKDTree

        self.points = np.ascontiguousarray(points, dtype=np.float64)
        self.codes = np.ascontiguousarray(codes, dtype=np.float64)
        if self.points.ndim != 2 or self.points.shape[1] != 2 or len(self.points) != len(self.codes):
            raise ValueError("KNNInverse needs N×2 points and N×d codes with the same N.")
        if len(self.points) == 0:
            raise ValueError("KNNInverse needs at least one point.")
        self.k = max(1, min(int(k), len(self.points) - 1))
        self.eps = float(eps)
        self.extrapolate = bool(extrapolate)
        self.reach = float(extension_limit) * max(float(np.ptp(self.points, axis=0).max()), 1e-12)
        self.tree = cKDTree(self.points)
        self.spacing = self._typical_spacing()
        self.gradient = self._global_gradient()

    def _typical_spacing(self) -> float:
        n = len(self.points)
        if n < 2:
            return 1.0
        sample = self.points[np.linspace(0, n - 1, min(n, 2000)).astype(np.int64)]
        dist, _ = self.tree.query(sample, k=min(self.k + 1, n))
        spacing = float(np.median(dist[:, -1]))
        if spacing <= 0:
            spacing = float(np.ptp(self.points, axis=0).max()) or 1.0
        return spacing

    def _global_gradient(self) -> np.ndarray:
        design = np.hstack([self.points, np.ones((len(self.points), 1))])
        coef, *_ = np.linalg.lstsq(design, self.codes, rcond=None)
        return coef[:2]  # 2×d

    def __call__(self, points) -> np.ndarray:
        """``M×2`` (or ``2``) points → ``M×d`` (or ``d``) float32 codes."""
        p = np.asarray(points, dtype=np.float64)
        single = p.ndim == 1
        p = np.atleast_2d(p)
        if len(self.points) == 1:
            out = np.repeat(self.codes, len(p), axis=0)
        else:
            out = self._blend(p)
        out = out.astype(np.float32)
        return out[0] if single else out

    def _blend(self, p: np.ndarray) -> np.ndarray:
        dist, idx = self.tree.query(p, k=self.k + 1)
        radius = dist[:, -1:]
        dist, idx = dist[:, :-1], idx[:, :-1]
        rho2 = np.divide(dist * dist, radius * radius, out=np.zeros_like(dist), where=radius > 0)
        w = (1.0 - rho2) ** 2 / (rho2 + self.eps * self.eps)
        total = w.sum(axis=1, keepdims=True)
        degenerate = total[:, 0] <= 0  # all neighbours tied at the radius
        if degenerate.any():
            w[degenerate] = 1.0
            total[degenerate] = self.k
        w /= total
        out = np.einsum("mk,mkd->md", w, self.codes[idx])
        if self.extrapolate:
            centre = np.einsum("mk,mkc->mc", w, self.points[idx])
            fade = _smoothstep((dist[:, 0] / self.spacing - 1.0) / 2.0)
            offset = p - centre
            length = np.linalg.norm(offset, axis=1, keepdims=True)
            squash = np.divide(self.reach * np.tanh(length / self.reach), length,
                               out=np.ones_like(length), where=length > 0)
            out += (fade[:, None] * squash * offset) @ self.gradient
        return out


# ---------------------------------------------------------------------------------------
# UMAP
# ---------------------------------------------------------------------------------------
class _TqdmProgress:
    """A file-like sink for umap's tqdm bar: turns its ``n/total`` into callbacks.

    Raising :class:`Cancelled` from ``write`` unwinds umap's epoch loop, so a long fit can
    be stopped between epochs.
    """

    def __init__(self, on_epoch: Callable[[int, int], None]):
        self.on_epoch = on_epoch
        self.cancelled = False

    def write(self, text: str) -> int:
        parts = text.strip().split("/")
        if self.cancelled or not (len(parts) == 2 and parts[0].isdigit() and parts[1].isdigit()):
            return len(text)
        try:
            self.on_epoch(int(parts[0]), int(parts[1]))
        except Cancelled:
            # tqdm calls write() from refresh() between acquiring and releasing its global
            # write lock, without a finally: left as is, every cancelled fit would leave that
            # lock held and hang the next tqdm bar in this process (torch's ONNX exporter
            # makes one). Release it here; the bar's close() then writes once more, which
            # must not raise again inside its own `with lock:`.
            self.cancelled = True
            _release_tqdm_lock()
            raise
        return len(text)

    def flush(self) -> None:
        pass


def _release_tqdm_lock() -> None:
    from tqdm import tqdm

    try:
        tqdm.get_lock().release()
    except (RuntimeError, AssertionError, ValueError):
        pass  # not held by this thread (e.g. a bar refreshed without its lock)


def _exact_knn(codes: np.ndarray, k: int, should_stop: StopFn | None, chunk: int = 2048):
    """Exact k nearest neighbours of every code among all codes (itself included), for umap."""
    index = NeighborIndex(codes)
    idx = np.empty((len(codes), k), dtype=np.int32)
    dist = np.empty((len(codes), k), dtype=np.float32)
    for start in range(0, len(codes), chunk):
        if should_stop is not None and should_stop():
            raise Cancelled("UMAP fitting was cancelled.")
        i, d = index.query(codes[start:start + chunk], k=k)
        idx[start:start + chunk], dist[start:start + chunk] = i, d
    return idx, dist


def _place(index: NeighborIndex, embedding: np.ndarray, codes: np.ndarray, k: int) -> np.ndarray:
    """2D positions for codes: inverse-square-distance blend of their nearest fitted codes'
    positions (umap's own starting guess for new points); an exact match gets its position."""
    return _blend_positions(embedding, *_placement_neighbours(index, codes, k))


def _placement_neighbours(index: NeighborIndex, codes: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The part of :func:`_place` that does not depend on the layout (kept across a fit)."""
    k = min(k, len(index))
    idx, dist = index.query(codes, k=k)
    return np.atleast_2d(idx), np.atleast_2d(dist).astype(np.float64)


def _blend_positions(embedding: np.ndarray, idx: np.ndarray, dist: np.ndarray) -> np.ndarray:
    exact = dist[:, 0] == 0
    w = 1.0 / np.maximum(dist, 1e-12) ** 2
    xy = np.einsum("mk,mkc->mc", w / w.sum(1, keepdims=True), embedding[idx].astype(np.float64))
    xy[exact] = embedding[idx[exact, 0]]
    return xy


def _live_layout() -> np.ndarray | None:
    """The layout umap-learn is optimising right now, read from its epoch loop's frame.

    Called from the epoch callback (umap's tqdm bar writes into :class:`_TqdmProgress`
    between two epochs). umap has no public hook for intermediate layouts: its
    ``optimize_layout_euclidean`` moves ``head_embedding`` in place and returns it only at
    the end. Reading (never writing) that array leaves the fit exactly as it would be
    unwatched; ``None`` if a future umap renames the loop or its array.
    """
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_name == "optimize_layout_euclidean":
            head = frame.f_locals.get("head_embedding")
            return head if isinstance(head, np.ndarray) else None
        frame = frame.f_back
    return None


_UMAP_KERNELS = (("umap.umap_", "smooth_knn_dist"), ("umap.umap_", "compute_membership_strengths"),
                 ("umap.layouts", "_nb_optimize_layout_euclidean_single_epoch"))
_kernels_cached = False


def cache_umap_kernels() -> None:
    """Let numba keep umap-learn's graph and epoch kernels in its on-disk cache.

    umap compiles ``smooth_knn_dist``, ``compute_membership_strengths`` (parallel) and the
    single-epoch layout kernel without ``cache=True``, so every new process compiles them
    again: 10-50 s on a busy 2-core machine, most of the wait before a first layout. Each
    is replaced, once per process, by the same Python function jitted with the same options
    plus ``cache=True`` (same machine code, so the same results); a process that finds them
    in ``NUMBA_CACHE_DIR`` loads them in well under a second. Kernels a future umap
    renames are left alone.
    """
    global _kernels_cached
    if _kernels_cached:
        return
    _kernels_cached = True
    import importlib

    import numba

    for module_name, name in _UMAP_KERNELS:
        module = importlib.import_module(module_name)
        kernel = getattr(module, name, None)
        if kernel is None or not hasattr(kernel, "py_func") or not hasattr(kernel, "targetoptions"):
            continue
        options = {k: v for k, v in kernel.targetoptions.items() if k in ("parallel", "fastmath", "nogil")}
        cached = numba.njit(cache=True, locals=dict(getattr(kernel, "locals", {}) or {}), **options)(kernel.py_func)
        setattr(module, name, cached)


def warm_up_umap() -> float:
    """Compile umap-learn's numba code ahead of the first real fit; returns seconds spent.

    Numba caches only part of umap/pynndescent, so the first fit in a process pays for
    compilation: about 10 s for the exact-neighbour path and about a minute more when
    pynndescent runs (more than ``exact_knn_limit`` codes). A GUI can call this in a
    background thread at start-up. Compilation depends on dtypes, not sizes, so a small
    synthetic fit covers real ones.
    """
    import time

    start = time.perf_counter()
    x = np.random.default_rng(0).standard_normal((4200, 4)).astype(np.float32)
    UMAPProjection(n_neighbors=5, n_epochs=6, knn="nndescent", max_fit=4100).fit(x)
    UMAPProjection(n_neighbors=5, n_epochs=6, knn="exact").fit(x[:500])
    return time.perf_counter() - start


def precompile_umap() -> float:
    """Fill numba's on-disk cache with what the map's UMAP compiles; returns seconds spent.

    The first UMAP on a machine otherwise compiles umap-learn and pynndescent (those of
    their functions numba can cache, plus the kernels :func:`cache_umap_kernels` makes
    cacheable) while the user waits: about 25 s more before the first layout on a 2-core
    machine. Run once per install (``latent-explorer --precompile``; ``scripts/bootstrap.sh``
    does it) with the same ``NUMBA_CACHE_DIR`` as the app. It fits the map's default
    path -- exact neighbours, watched layouts, the codes left out of the fit placed by
    their neighbours -- on synthetic float32 codes: numba compiles per dtype, not per size.
    What numba cannot cache is compiled again by every process either way.
    """
    import time

    start = time.perf_counter()
    x = np.random.default_rng(0).standard_normal((1500, 8)).astype(np.float32)
    UMAPProjection(n_epochs=20, max_fit=1000, knn="exact", intermediate_interval=0).fit(x, intermediate=lambda xy: None)
    return time.perf_counter() - start


class UMAPProjection(Projection):
    """UMAP layout (umap-learn) with a :class:`KNNInverse` inverse.

    Fitting: above ``max_fit`` codes, UMAP is fitted on a seeded random subset and
    the rest is placed afterwards, in chunks (with progress). BLAS threads are pinned to
    1; a fixed ``seed`` makes umap deterministic (and single-threaded).

    Nearest neighbours: up to ``exact_knn_limit`` fitted codes (Euclidean metric) they are
    computed exactly with :class:`~vae_core.latent.NeighborIndex` and handed to umap as
    ``precomputed_knn``. That skips pynndescent, whose numba code takes about a minute
    to compile in every new process (see :func:`warm_up_umap`); the remaining codes are
    then placed like :meth:`transform` places new codes. Above the limit pynndescent
    finds the neighbours and umap's own ``transform`` places the remaining codes.

    ``transform`` of the fitted codes returns their layout; other codes are placed by
    the inverse-distance blend of their nearest fitted codes' positions (umap's own
    initial guess for new points), which is fast, deterministic and survives save/load.
    The umap-learn model itself is not kept.

    While umap optimises, ``fit(..., intermediate=f)`` hands ``f`` the layout of every code
    (umap's initial layout at once, then one every ``intermediate_interval`` seconds), so a
    viewer can show the points gliding into place; :meth:`with_layout` makes one of them a
    usable projection. Watching does not change the result.

    Parameters
    ----------
    n_neighbors, min_dist, metric, n_epochs
        Passed to ``umap.UMAP`` (``n_epochs=None``: umap's default).
    seed
        ``random_state`` for umap and the subset choice.
    max_fit
        Largest number of codes UMAP is fitted on directly.
    inverse_k, inverse_eps
        :class:`KNNInverse` settings.
    knn
        ``"auto"`` (exact up to ``exact_knn_limit`` codes), ``"exact"`` or ``"nndescent"``.
    intermediate_interval
        Seconds between two layouts handed to ``fit(..., intermediate=)`` while umap
        optimises (the initial layout is handed over at once; 0: every epoch).
    """

    kind = "umap"

    def __init__(self, n_neighbors: int = 15, min_dist: float = 0.1, seed: int = 0, max_fit: int = 50_000, *,
                 n_epochs: int | None = None, metric: str = "euclidean", inverse_k: int = 12,
                 inverse_eps: float = 0.1, transform_chunk: int = 5000, knn: str = "auto",
                 exact_knn_limit: int = 20_000, intermediate_interval: float = 1.0):
        super().__init__()
        self.intermediate_interval = float(intermediate_interval)
        if knn not in ("auto", "exact", "nndescent"):
            raise ValueError('knn must be "auto", "exact" or "nndescent".')
        self.knn = knn
        self.exact_knn_limit = int(exact_knn_limit)
        self.n_neighbors = int(n_neighbors)
        self.min_dist = float(min_dist)
        self.seed = int(seed)
        self.max_fit = int(max_fit)
        self.n_epochs = None if n_epochs is None else int(n_epochs)
        self.metric = str(metric)
        self.inverse_k = int(inverse_k)
        self.inverse_eps = float(inverse_eps)
        self.transform_chunk = int(transform_chunk)
        self.codes: np.ndarray | None = None
        self.embedding: np.ndarray | None = None
        self._inverse: KNNInverse | None = None
        self._forward: NeighborIndex | None = None

    @property
    def name(self) -> str:
        return "UMAP"

    def with_layout(self, codes, embedding) -> "UMAPProjection":
        """A fitted copy with these settings that lays ``codes`` out at ``embedding`` (``N×2``).

        What a viewer shows while a fit is being optimised (the ``intermediate`` layouts of
        :meth:`fit`): transform, inverse, bounds and alignment work on it as on a finished fit.
        """
        codes = np.ascontiguousarray(codes, dtype=np.float32)
        embedding = np.ascontiguousarray(embedding, dtype=np.float32)
        if codes.ndim != 2 or embedding.shape != (len(codes), 2):
            raise ValueError("with_layout needs N×d codes and an N×2 embedding.")
        meta, _ = self.state()
        meta = dict(meta, fitted=True, latent_dim=int(codes.shape[1]), affine=IDENTITY_AFFINE.tolist())
        return Projection.from_state(meta, {"codes": codes, "embedding": embedding, "hull": _hull_points(embedding)})

    @property
    def knn_inverse(self) -> KNNInverse:
        self._require_fitted()
        if self._inverse is None:
            self._inverse = KNNInverse(self.embedding, self.codes, k=self.inverse_k, eps=self.inverse_eps)
        return self._inverse

    def _fit(self, codes, progress, should_stop, intermediate=None):
        from threadpoolctl import threadpool_limits

        n = len(codes)
        if n < 4:
            raise ValueError(f"UMAP needs at least 4 codes, got {n}.")
        rng = np.random.default_rng(self.seed)
        fit_idx = np.sort(rng.choice(n, self.max_fit, replace=False)) if n > self.max_fit else np.arange(n)
        rest_idx = np.setdiff1d(np.arange(n), fit_idx, assume_unique=True)
        n_fit = len(fit_idx)

        # umap's tqdm bar reports epochs, both in fit_transform and in every transform
        # call; map them onto "points placed" so progress stays monotone across phases.
        phase = {"start": 0, "size": n_fit}

        def on_epoch(done, total):
            if should_stop is not None and should_stop():
                raise Cancelled("UMAP fitting was cancelled.")
            if progress is not None and total:
                progress(phase["start"] + int(phase["size"] * min(done, total) / total), n)

        n_neighbors = max(2, min(self.n_neighbors, n_fit - 1))
        exact = self.knn == "exact" or (
            self.knn == "auto" and self.metric == "euclidean" and n_fit <= self.exact_knn_limit)
        embedding = np.empty((n, 2), dtype=np.float32)
        chunks = [rest_idx[start:start + self.transform_chunk]
                  for start in range(0, len(rest_idx), self.transform_chunk)]
        # The codes left out of the fit follow their nearest fitted codes. Which ones those
        # are does not depend on the layout: found once, they place the rest in every
        # intermediate layout and (exact k-NN) in the final one, by the same arithmetic.
        forward = NeighborIndex(codes[fit_idx]) if len(rest_idx) and (exact or intermediate is not None) else None
        placement: list[tuple[np.ndarray, np.ndarray]] = []

        def find_placement(upto: int) -> None:
            while len(placement) < upto:
                if should_stop is not None and should_stop():
                    raise Cancelled("UMAP fitting was cancelled.")
                placement.append(_placement_neighbours(forward, codes[chunks[len(placement)]], self.n_neighbors))

        watch = {"next": 0.0}

        def on_fit_epoch(done, total):
            on_epoch(done, total)
            if intermediate is None or done >= total or time.monotonic() < watch["next"]:
                return
            head = _live_layout()
            if head is None or head.shape != (n_fit, 2):
                return
            find_placement(len(chunks))
            xy = np.empty((n, 2), dtype=np.float32)
            xy[fit_idx] = head
            for chunk, (idx, dist) in zip(chunks, placement):
                xy[chunk] = _blend_positions(head, idx, dist)
            intermediate(xy)
            watch["next"] = time.monotonic() + self.intermediate_interval

        with threadpool_limits(1), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*n_jobs value.*")
            warnings.filterwarnings("ignore", message=".*knn_search_index.*")
            warnings.filterwarnings("ignore", category=FutureWarning)
            knn = _exact_knn(codes[fit_idx], n_neighbors, should_stop) if exact else None
            reducer = self._make_umap(n_neighbors, on_fit_epoch, knn)
            embedding[fit_idx] = reducer.fit_transform(codes[fit_idx])
            for number, chunk in enumerate(chunks):
                phase["start"], phase["size"] = n_fit + number * self.transform_chunk, len(chunk)
                on_epoch(0, 1)
                if exact:
                    find_placement(number + 1)
                    embedding[chunk] = _blend_positions(embedding[fit_idx], *placement[number])
                else:
                    embedding[chunk] = reducer.transform(codes[chunk])
                on_epoch(1, 1)
        self.codes = np.ascontiguousarray(codes, dtype=np.float32)
        self.embedding = embedding
        self._inverse = None
        self._forward = None
        return embedding.astype(np.float64)

    def _make_umap(self, n_neighbors: int, on_epoch, knn=None):
        import umap  # slow import (numba): only when a UMAP is actually fitted

        cache_umap_kernels()
        return umap.UMAP(
            n_neighbors=n_neighbors, min_dist=self.min_dist, metric=self.metric,
            n_epochs=self.n_epochs, random_state=self.seed, n_jobs=1, verbose=False,
            precomputed_knn=(None, None, None) if knn is None else (knn[0], knn[1], None),
            tqdm_kwds={"disable": False, "file": _TqdmProgress(on_epoch), "bar_format": "{n}/{total}",
                       "mininterval": 0, "miniters": 1, "ascii": True},
        )

    def _transform_raw(self, codes):
        self._require_fitted()
        if codes.shape == self.codes.shape and np.array_equal(codes, self.codes):
            return self.embedding.astype(np.float64)
        if self._forward is None:
            self._forward = NeighborIndex(self.codes)
        return _place(self._forward, self.embedding, codes, self.n_neighbors)

    def _inverse_raw(self, points):
        return self.knn_inverse(points)

    def _params(self):
        return {"n_neighbors": self.n_neighbors, "min_dist": self.min_dist, "seed": self.seed,
                "max_fit": self.max_fit, "n_epochs": self.n_epochs, "metric": self.metric,
                "inverse_k": self.inverse_k, "inverse_eps": self.inverse_eps,
                "transform_chunk": self.transform_chunk, "knn": self.knn, "exact_knn_limit": self.exact_knn_limit,
                "intermediate_interval": self.intermediate_interval}

    def _arrays(self):
        return {"codes": self.codes, "embedding": self.embedding}

    def _restore(self, arrays):
        self.codes = np.ascontiguousarray(arrays["codes"], dtype=np.float32)
        self.embedding = np.ascontiguousarray(arrays["embedding"], dtype=np.float32)


# ---------------------------------------------------------------------------------------
# Factory and persistence
# ---------------------------------------------------------------------------------------
PROJECTION_KINDS: dict[str, type[Projection]] = {
    "dims": DimsProjection,
    "pca": PCAProjection,
    "umap": UMAPProjection,
}


def make_projection(kind: str, **kwargs) -> Projection:
    """Create an unfitted projection: ``kind`` is ``"dims"``, ``"pca"`` or ``"umap"``."""
    key = str(kind).lower()
    if key not in PROJECTION_KINDS:
        raise ValueError(f"Unknown projection {kind!r}: use one of {', '.join(PROJECTION_KINDS)}.")
    return PROJECTION_KINDS[key](**kwargs)


def save_projection(path, proj: Projection) -> Path:
    """Write ``proj`` to one ``.safetensors`` file (arrays + JSON metadata), atomically."""
    from safetensors.numpy import save_file

    path = Path(path)
    meta, arrays = proj.state()
    tensors = {k: np.ascontiguousarray(v) for k, v in arrays.items() if v is not None}
    path.parent.mkdir(parents=True, exist_ok=True)
    # A unique sibling name (not mkstemp, whose 0600 mode would stick to the result).
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")
    try:
        save_file(tensors, tmp, metadata={"projection": json.dumps(meta)})
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_projection(path) -> Projection:
    """Read a projection written by :func:`save_projection` (no pickle involved)."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No projection file at {path}.")
    try:
        with safe_open(str(path), framework="np") as f:
            metadata = f.metadata() or {}
            arrays = {key: f.get_tensor(key) for key in f.keys()}
    except (SafetensorError, OSError) as exc:
        raise ValueError(f"{path} is not a readable projection file ({exc}).") from None
    if "projection" not in metadata:
        raise ValueError(f"{path} is not a Latent Explorer projection.")
    return Projection.from_state(json.loads(metadata["projection"]), arrays)
