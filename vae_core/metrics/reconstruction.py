"""Reconstruction quality: MSE, PSNR and SSIM of images against their reconstructions.

A reconstruction is ``decode(map_code(x))``: the deterministic image the app shows for a
data point (the posterior mean decoded, for a Gaussian VAE). Pixel values are in [0, 1],
so PSNR and SSIM use a data range of 1. Means are over images: MSE per image is the mean
squared error over its pixels and channels; PSNR is computed per image and averaged (a
perfect reconstruction is capped at :data:`PSNR_MAX` dB rather than infinite).
"""

from __future__ import annotations

import numpy as np
import torch

from vae_core.errors import ConfigError, DatasetError
from vae_core.metrics.pixels import unit_float

#: PSNR of an image reconstructed exactly (MSE below 1e-10): finite so that means stay finite.
PSNR_MAX = 100.0
#: SSIM's Gaussian window (Wang et al., 2004): 11×11, σ = 1.5; smaller images use the largest
#: odd window that fits.
SSIM_WINDOW = 11
SSIM_SIGMA = 1.5


def _as_tensors(images, reconstructions) -> tuple[torch.Tensor, torch.Tensor]:
    a, b = (x if isinstance(x, torch.Tensor) else torch.from_numpy(_stored(np.asarray(x)))
            for x in (images, reconstructions))
    if a.shape != b.shape or a.ndim != 4:
        raise ConfigError(f"Images and reconstructions must both be N×C×H×W arrays of the same shape, "
                          f"not {tuple(a.shape)} and {tuple(b.shape)}.")
    return a.double(), b.double()


def _stored(pixels: np.ndarray) -> np.ndarray:
    # uint8 pixels are read as value / 255; floats keep their precision.
    return unit_float(pixels) if pixels.dtype == np.uint8 else np.ascontiguousarray(pixels)


def mse(images, reconstructions) -> np.ndarray:
    """Mean squared error of each image over its pixels and channels (length-N float64 array)."""
    a, b = _as_tensors(images, reconstructions)
    return (a - b).pow(2).flatten(1).mean(1).numpy()


def psnr(images, reconstructions) -> np.ndarray:
    """Peak signal-to-noise ratio of each image in dB, 10·log10(1 / MSE) for data in [0, 1].

    Capped at :data:`PSNR_MAX` for (near-)exact reconstructions.
    """
    errors = mse(images, reconstructions)
    with np.errstate(divide="ignore"):
        values = 10.0 * np.log10(1.0 / np.maximum(errors, 1e-10))
    return np.minimum(values, PSNR_MAX)


def ssim_window(height: int, width: int) -> int:
    """The Gaussian window SSIM uses for images of this size: 11, or the largest odd size that fits."""
    side = min(SSIM_WINDOW, height, width)
    return side if side % 2 == 1 else side - 1


def ssim(images, reconstructions) -> np.ndarray:
    """Structural similarity of each image (Wang et al., 2004), averaged over its channels.

    torchmetrics' ``structural_similarity_index_measure`` with a Gaussian window
    (:func:`ssim_window`, σ = 1.5), K1 = 0.01, K2 = 0.03 and data range 1, the constants of
    the paper and of scikit-image's ``structural_similarity(gaussian_weights=True)``.
    """
    from torchmetrics.functional.image import structural_similarity_index_measure

    a, b = _as_tensors(images, reconstructions)
    window = ssim_window(a.shape[-2], a.shape[-1])
    if window < 3:
        raise ConfigError("SSIM needs images of at least 3×3 pixels.")
    values = structural_similarity_index_measure(b, a, gaussian_kernel=True, sigma=SSIM_SIGMA,
                                                 kernel_size=window, data_range=1.0, reduction="none")
    return values.reshape(len(a)).numpy()


@torch.inference_mode()
def reconstruction_quality(model, data, *, batch_size: int = 500, device="cpu",
                           max_images: int | None = None) -> dict:
    """MSE, PSNR and SSIM of a model's reconstructions of ``data`` (an ``ImageDataset``).

    Parameters
    ----------
    model : BaseVAE
    data : ImageDataset
    batch_size : int
    device : str or torch.device
    max_images : int, optional
        Score only the first ``max_images`` images.

    Returns
    -------
    dict
        ``mse``, ``psnr`` (dB) and ``ssim``, each the mean over images, and ``num_images``.
    """
    images = data.images if max_images is None else data.images[:max_images]
    if len(images) == 0:
        raise DatasetError("There are no images to reconstruct (the split is empty).")
    labels = data.labels
    device = torch.device(device)
    dtype = next(model.parameters()).dtype
    was_training = model.training
    model.eval()
    sums = {"mse": 0.0, "psnr": 0.0, "ssim": 0.0}
    try:
        for start in range(0, len(images), batch_size):
            x = torch.from_numpy(unit_float(images[start:start + batch_size])).to(device, dtype)
            y = (torch.from_numpy(labels[start:start + len(x)]).to(device)
                 if labels is not None and model.conditional else None)
            recon = model.decode(model.map_code(x, y), y).clamp(0, 1).cpu()
            x = x.cpu()
            sums["mse"] += float(mse(x, recon).sum())
            sums["psnr"] += float(psnr(x, recon).sum())
            sums["ssim"] += float(ssim(x, recon).sum())
    finally:
        if was_training:
            model.train()
    n = len(images)
    result = {name: value / n for name, value in sums.items()}
    result["num_images"] = int(n)
    return result
