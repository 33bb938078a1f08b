"""Encode images to latent codes and decode codes to images, in batches.

Both functions accept any model object with ``encode(x, y=None) -> (mu, logvar)``,
``decode(z, y=None) -> images`` torch methods and the attributes ``latent_dim`` and
``conditional`` (see :class:`~vae_core.models.base.BaseVAE`), and return NumPy arrays.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from vae_core.data import to_unit_float
from vae_core.errors import Cancelled

__all__ = ["Cancelled", "encode_dataset", "decode"]

ProgressFn = Callable[[int, int], None]
StopFn = Callable[[], bool]


def _model_device(model, device):
    if device is not None:
        return device
    try:
        return next(model.parameters()).device
    except (AttributeError, StopIteration):
        return "cpu"


def _as_label_tensor(labels, start, stop, device):
    import torch

    if labels is None:
        return None
    return torch.as_tensor(np.array(labels[start:stop], dtype=np.int64), device=device)


class _EvalMode:
    """Put a module in eval mode for the duration of a block (BatchNorm/Dropout matter)."""

    def __init__(self, model):
        self.model = model
        self.was_training = bool(getattr(model, "training", False))

    def __enter__(self):
        if self.was_training:
            self.model.eval()
        return self.model

    def __exit__(self, *exc):
        if self.was_training:
            self.model.train()
        return False


def _check_labels(model, labels, n: int, what: str):
    if labels is None:
        if getattr(model, "conditional", False):
            raise ValueError(f"This model is conditional: {what} needs labels.")
        return None
    labels = np.asarray(labels)
    if labels.ndim == 0:
        labels = np.full(n, int(labels), dtype=np.int64)
    if labels.shape[0] != n:
        raise ValueError(f"Got {labels.shape[0]} labels for {n} {what.split()[0]}.")
    return labels


def encode_dataset(
    model,
    images: np.ndarray,
    labels: np.ndarray | None = None,
    *,
    batch_size: int = 2048,
    device="cpu",
    progress: ProgressFn | None = None,
    should_stop: StopFn | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Encode images to posterior means and log-variances.

    Parameters
    ----------
    model
        Object with ``encode(x, y=None) -> (mu, logvar)`` and ``latent_dim``; put in eval
        mode for the call and restored afterwards.
    images
        ``N×C×H×W`` stored pixels (``ImageDataset.images``): float images in [0, 1], or
        ``uint8`` read as ``value / 255`` (:func:`vae_core.data.to_unit_float`), converted
        one batch at a time.
    labels
        ``N`` integer labels, passed to ``encode`` (required by conditional models).
    batch_size
        Images per forward pass; large batches keep Python overhead negligible.
    device
        Where batches are sent (the model must already live there); ``None`` = the
        model's parameter device.
    progress
        ``progress(done, total)`` after every batch.
    should_stop
        Polled before every batch; returning True raises :class:`Cancelled`.

    Returns
    -------
    mu, logvar : np.ndarray
        ``N×d`` ``float32`` arrays.
    """
    import torch

    images = np.asarray(images)
    n = int(images.shape[0])
    labels = _check_labels(model, labels, n, "images to encode")
    d = int(model.latent_dim)
    mu = np.empty((n, d), dtype=np.float32)
    logvar = np.empty((n, d), dtype=np.float32)
    device = _model_device(model, device)
    batch_size = max(1, int(batch_size))
    with _EvalMode(model), torch.inference_mode():
        for start in range(0, n, batch_size):
            if should_stop is not None and should_stop():
                raise Cancelled("Encoding was cancelled.")
            stop = min(start + batch_size, n)
            chunk = images[start:stop]
            if not chunk.flags.writeable:  # torch warns on read-only buffers (memmaps)
                chunk = chunk.copy()
            x = to_unit_float(torch.as_tensor(chunk, device=device))
            m, lv = model.encode(x, _as_label_tensor(labels, start, stop, device))
            mu[start:stop] = m.detach().to("cpu", torch.float32).numpy()
            logvar[start:stop] = lv.detach().to("cpu", torch.float32).numpy()
            if progress is not None:
                progress(stop, n)
    if n == 0 and progress is not None:
        progress(0, 0)
    return mu, logvar


def decode(model, codes, labels=None, *, batch_size: int = 1024, device=None) -> np.ndarray:
    """Decode latent codes to images (the one batched decode every operation uses).

    Parameters
    ----------
    model
        Object with ``decode(z, y=None) -> images`` (means in [0, 1]) and ``latent_dim``.
    codes
        ``(..., d)`` array or tensor; a single ``d`` vector is allowed.
    labels
        For conditional models: one label for all codes, or one per code (shape ``codes.shape[:-1]``).
    batch_size
        Codes per forward pass.
    device
        Where codes are sent; ``None`` = the model's parameter device.

    Returns
    -------
    np.ndarray
        ``float32`` images of shape ``codes.shape[:-1] + (C, H, W)``, clipped to [0, 1].
    """
    import torch

    if isinstance(codes, torch.Tensor):
        codes = codes.detach().to("cpu").numpy()
    codes = np.asarray(codes, dtype=np.float32)
    lead = codes.shape[:-1]
    flat = codes.reshape(-1, codes.shape[-1])
    if not flat.flags.writeable:  # torch.from_numpy warns on read-only buffers
        flat = flat.copy()
    n = flat.shape[0]
    if labels is not None:
        labels = np.broadcast_to(np.asarray(labels, dtype=np.int64), lead).reshape(-1)
    labels = _check_labels(model, labels, n, "codes to decode")
    device = _model_device(model, device)
    chunks = []
    with _EvalMode(model), torch.inference_mode():
        for start in range(0, n, max(1, int(batch_size))):
            stop = min(start + batch_size, n)
            z = torch.from_numpy(flat[start:stop]).to(device)
            x = model.decode(z, _as_label_tensor(labels, start, stop, device))
            chunks.append(x.detach().to("cpu", torch.float32).numpy())
    if chunks:
        out = chunks[0] if len(chunks) == 1 else np.concatenate(chunks)
    else:
        shape = tuple(getattr(model, "image_shape", (1, 1, 1)))
        out = np.zeros((0, *shape), dtype=np.float32)
    np.clip(out, 0.0, 1.0, out=out)
    return out.reshape(lead + out.shape[1:])

