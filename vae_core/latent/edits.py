"""Edits of latent codes: attribute vectors, single-dimension traversals and prior samples."""

from __future__ import annotations

import numpy as np

__all__ = ["attribute_vector", "apply_attribute", "traverse", "traversal_dims", "traversal_grid", "sample_prior"]


def _selection_mask(labels: np.ndarray | None, which, n: int, what: str) -> np.ndarray:
    which_arr = np.asarray(which)
    if which_arr.dtype == bool:
        if which_arr.shape != (n,):
            raise ValueError(f"The {what} mask must have one entry per code ({n}).")
        mask = which_arr
    elif which_arr.ndim == 0:
        if labels is None:
            raise ValueError("Attribute vectors from labels need labels.")
        mask = np.asarray(labels) == int(which_arr)
    else:
        mask = np.zeros(n, dtype=bool)
        mask[which_arr.astype(np.int64)] = True
    if not mask.any():
        raise ValueError(f"The {what} set ({which if which_arr.ndim == 0 else 'given'}) has no points.")
    return mask


def attribute_vector(codes, labels, positive, negative) -> np.ndarray:
    """``mean(codes of positive) - mean(codes of negative)``.

    ``positive`` and ``negative`` are each a label (int), a boolean mask over the codes or
    an array of point indices.
    """
    codes = np.asarray(codes, dtype=np.float32)
    pos = _selection_mask(labels, positive, len(codes), "positive")
    neg = _selection_mask(labels, negative, len(codes), "negative")
    diff = codes[pos].mean(axis=0, dtype=np.float64) - codes[neg].mean(axis=0, dtype=np.float64)
    return diff.astype(np.float32)


def apply_attribute(z, vector, amount) -> np.ndarray:
    """``z + amount·vector``; ``amount`` may be an array of ``T`` amounts (returns ``T×d``)."""
    z = np.asarray(z, dtype=np.float64)
    amount = np.asarray(amount, dtype=np.float64)
    return (z + amount[..., None] * np.asarray(vector, dtype=np.float64)).astype(np.float32)



def traverse(z, dim: int, *, span: float = 3.0, steps: int = 9, std=None, mean=None,
             relative: bool = False) -> np.ndarray:
    """Copies of ``z`` with one dimension swept over ``center ± span·σ``.

    Parameters
    ----------
    z
        The ``d`` code whose other dimensions are kept.
    dim
        The dimension to vary.
    span, steps
        Sweep ``steps`` evenly spaced values over ``[-span, +span]`` standard deviations.
    std
        ``d`` array of per-dimension σ (e.g. of the aggregate posterior); default 1, the prior.
    mean
        ``d`` array of per-dimension centers; default 0, the prior mean.
    relative
        Center the sweep on ``z[dim]`` instead of ``mean[dim]``.

    Returns
    -------
    np.ndarray
        ``steps×d`` ``float32``.
    """
    z = np.asarray(z, dtype=np.float32)
    sigma = 1.0 if std is None else float(np.asarray(std)[dim])
    center = float(z[dim]) if relative else (0.0 if mean is None else float(np.asarray(mean)[dim]))
    out = np.repeat(z[None, :], int(steps), axis=0)
    out[:, dim] = center + np.linspace(-span, span, int(steps)) * sigma
    return out


def traversal_dims(latent_dim: int, kl_per_dim=None, dims=None, max_dims: int | None = None) -> np.ndarray:
    """The dimensions a traversal grid shows, in row order.

    ``kl_per_dim`` may be per-dimension KL (floats: rows sorted by KL descending, so the
    active units come first; ties keep index order) or an explicit integer order. ``dims``
    restricts the rows to a subset; ``max_dims`` keeps the first rows only.
    """
    candidates = list(range(latent_dim)) if dims is None else [int(d) for d in dims]
    if kl_per_dim is not None:
        arr = np.asarray(kl_per_dim)
        if np.issubdtype(arr.dtype, np.integer):
            wanted = set(candidates)
            candidates = [int(d) for d in arr if int(d) in wanted]
        else:
            candidates = sorted(candidates, key=lambda d: -float(arr[d]))
    out = np.asarray(candidates, dtype=np.int64)
    return out[:max_dims] if max_dims is not None else out


def traversal_grid(z, kl_per_dim=None, dims=None, *, steps: int = 9, span: float = 3.0, std=None,
                   mean=None, relative: bool = False, max_dims: int | None = None) -> np.ndarray:
    """Traversals of several dimensions: ``n_dims×steps×d`` codes.

    Rows follow :func:`traversal_dims` (by KL descending when ``kl_per_dim`` is given);
    each row is :func:`traverse` of that dimension. Decode the whole grid in one call with
    :func:`vae_core.latent.codec.decode` (leading shape is kept).
    """
    z = np.asarray(z, dtype=np.float32)
    order = traversal_dims(z.shape[-1], kl_per_dim, dims, max_dims)
    if len(order) == 0:
        return np.zeros((0, int(steps), z.shape[-1]), dtype=np.float32)
    return np.stack([traverse(z, int(d), span=span, steps=steps, std=std, mean=mean, relative=relative)
                     for d in order])


def sample_prior(n: int, latent_dim: int, seed: int | None = None) -> np.ndarray:
    """``n×latent_dim`` ``float32`` draws from the standard normal prior (seeded: reproducible)."""
    return np.random.default_rng(seed).standard_normal((int(n), int(latent_dim))).astype(np.float32)
