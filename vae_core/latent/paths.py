"""Paths through latent space: linear and spherical interpolation, easing, keyframe paths."""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

__all__ = ["lerp", "slerp", "EASINGS", "interpolate"]


def _t_column(t):
    t = np.asarray(t, dtype=np.float64)
    return t, t[..., None]


def lerp(a, b, t) -> np.ndarray:
    """Linear interpolation ``(1 - t)·a + t·b``.

    ``t`` may be a scalar (returns a ``d`` vector) or an array of shape ``T`` (returns
    ``T×d``). Written as a weighted sum so that ``t = 0`` gives ``a`` and ``t = 1`` gives
    ``b`` exactly.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    t, tc = _t_column(t)
    return ((1.0 - tc) * a + tc * b).astype(np.float32)


def _orthogonal_unit(u: np.ndarray) -> np.ndarray:
    # Deterministic perpendicular: Gram-Schmidt on the axis u points least along.
    e = np.zeros_like(u)
    e[np.argmin(np.abs(u))] = 1.0
    p = e - (e @ u) * u
    n = np.linalg.norm(p)
    return p / n if n > 0 else e


def slerp(a, b, t, *, eps: float = 1e-7) -> np.ndarray:
    """Spherical interpolation of direction with linearly interpolated length.

    Convention: the direction moves along the great circle from ``a/|a|`` to ``b/|b|``
    at constant angular speed while the norm goes linearly from ``|a|`` to ``|b|``. So
    ``|slerp(a, b, t)| = (1 - t)|a| + t|b|`` (norm kept when ``|a| = |b|``), and the
    endpoints are returned exactly.

    Degenerate cases stay finite: nearly parallel vectors (angle < ``eps``) and zero
    vectors fall back to :func:`lerp`; exactly opposite vectors turn through a fixed,
    deterministic perpendicular direction.

    ``t`` may be a scalar (returns ``d``) or a ``T`` array (returns ``T×d``).
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    t, tc = _t_column(t)
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0.0 or nb == 0.0:
        return lerp(a, b, t)
    ua, ub = a / na, b / nb
    # 2·atan2(|ua-ub|, |ua+ub|) stays accurate near 0 and π, unlike arccos(ua·ub).
    omega = 2.0 * math.atan2(np.linalg.norm(ua - ub), np.linalg.norm(ua + ub))
    if omega < eps:
        return lerp(a, b, t)
    if math.pi - omega < eps:
        p = _orthogonal_unit(ua)
        direction = np.cos(math.pi * tc) * ua + np.sin(math.pi * tc) * p
    else:
        s = math.sin(omega)
        direction = (np.sin((1.0 - tc) * omega) / s) * ua + (np.sin(tc * omega) / s) * ub
    out = ((1.0 - tc) * na + tc * nb) * direction
    out = np.where(tc == 0.0, a, np.where(tc == 1.0, b, out))
    return out.astype(np.float32)


def _ease_in(t):
    return t * t * t


def _ease_out(t):
    u = 1.0 - t
    return 1.0 - u * u * u


def _ease_in_out(t):
    return t * t * (3.0 - 2.0 * t)


#: Easing curves ``[0, 1] -> [0, 1]`` with exact endpoints: cubic in/out, smoothstep in-out.
EASINGS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "linear": lambda t: t,
    "ease-in-out": _ease_in_out,
    "ease-in": _ease_in,
    "ease-out": _ease_out,
}

_METHODS = {"lerp": lerp, "slerp": slerp}


def interpolate(keyframes, steps: int, method: str = "lerp", easing: str = "linear") -> np.ndarray:
    """Codes along a path through two or more keyframes.

    The ``steps - 1`` intervals are shared as evenly as possible between the
    ``K - 1`` segments (earlier segments get the remainder), so every keyframe is one of
    the returned codes, exactly, and the first and last codes are the end keyframes.
    Easing applies within each segment (with ``ease-in-out`` the motion slows down at
    every keyframe).

    Parameters
    ----------
    keyframes
        ``K×d`` array, ``K >= 2``.
    steps
        Total number of codes returned, ``>= K``.
    method
        ``"lerp"`` or ``"slerp"`` (see :func:`slerp` for its norm convention).
    easing
        One of :data:`EASINGS`.

    Returns
    -------
    np.ndarray
        ``steps×d`` ``float32``.
    """
    keys = np.asarray(keyframes, dtype=np.float32)
    if keys.ndim != 2 or keys.shape[0] < 2:
        raise ValueError("interpolate needs a K×d array of at least 2 keyframes.")
    if method not in _METHODS:
        raise ValueError(f"Unknown interpolation method {method!r}: use one of {', '.join(_METHODS)}.")
    if easing not in EASINGS:
        raise ValueError(f"Unknown easing {easing!r}: use one of {', '.join(EASINGS)}.")
    k = keys.shape[0]
    steps = int(steps)
    if steps < k:
        raise ValueError(f"{steps} steps cannot pass through {k} keyframes: use at least {k}.")
    fn, ease = _METHODS[method], EASINGS[easing]
    per_segment = np.full(k - 1, (steps - 1) // (k - 1))
    per_segment[: (steps - 1) % (k - 1)] += 1
    parts = []
    for s, n in enumerate(per_segment):
        t = ease(np.arange(n, dtype=np.float64) / n)
        parts.append(np.atleast_2d(fn(keys[s], keys[s + 1], t)))
    parts.append(keys[-1:])
    return np.concatenate(parts).astype(np.float32)

