"""Evaluation in nats per image: negative ELBO, its terms, active units and the IWAE bound."""

from __future__ import annotations

import math

import numpy as np
import torch

from vae_core.adapter import require_capability
from vae_core.errors import DatasetError
from vae_core.models.base import BaseVAE
from vae_core.ranges import whole

IWAE_K_MAX = 1_000_000

ACTIVE_UNIT_THRESHOLD = 0.01  # Burda et al. (2016): Cov_x(E_q[z_i]) above this counts as active


@torch.inference_mode()
def evaluate(model: BaseVAE, data, *, batch_size: int = 1000, iwae_k: int | None = None,
             device="cpu", seed: int = 0) -> dict:
    """Evaluate ``model`` on an :class:`~vae_core.data.ImageDataset`.

    Returns a dict, all per image and in nats: ``neg_elbo`` (recon + KL, one posterior
    sample per image), ``recon``, ``kl``, ``kl_per_dim`` (list), ``active_units`` and,
    when ``iwae_k`` is given, ``iwae_nll``: the importance-weighted bound with ``k``
    samples (Burda et al., 2016), a log-likelihood estimate comparable with published
    tables.

    An adapted model without a logvar or a likelihood is refused with
    :class:`~vae_core.adapter.AdapterError`: its ELBO is not defined.

    Raises
    ------
    ConfigError
        For ``iwae_k`` or ``batch_size`` outside 1 to 1,000,000.
    DatasetError
        For a dataset without images: its metrics would be meaningless zeros.
    """
    if iwae_k is not None:
        iwae_k = whole("iwae_k", iwae_k, 1, IWAE_K_MAX)
    batch_size = whole("batch_size", batch_size, 1, 1_000_000)
    if len(data.images) == 0:
        raise DatasetError("There are no images to evaluate on (the split is empty).")
    require_capability(model, "evaluate")
    was_training = model.training
    model.eval()
    device = torch.device(device) if not isinstance(device, torch.device) else device
    generator = torch.Generator(device="cpu").manual_seed(seed)
    images = data.images
    labels = data.labels
    n = len(images)
    recon_sum = kl_sum = iwae_sum = 0.0
    kl_dims = torch.zeros(model.latent_dim, dtype=torch.float64)
    mus = []
    for start in range(0, n, batch_size):
        x = torch.from_numpy(images[start : start + batch_size]).to(device)
        y = torch.from_numpy(labels[start : start + batch_size]).to(device) if labels is not None else None
        mu, logvar = model.encode(x, y)
        eps = torch.randn(mu.shape, generator=generator).to(device)
        z = mu + eps * torch.exp(0.5 * logvar)
        recon = model.recon_nll(model.decode_logits(z, y), x)
        kl = model.kl_per_dim(mu, logvar)
        recon_sum += float(recon.sum())
        kl_sum += float(kl.sum())
        kl_dims += kl.sum(0).double().cpu()
        mus.append(mu.double().cpu())
        if iwae_k:
            iwae_sum += float(_iwae_nll(model, x, y, mu, logvar, iwae_k, generator).sum())
    if was_training:
        model.train()
    mu_all = torch.cat(mus) if mus else torch.zeros(0, model.latent_dim)
    variance = mu_all.var(0, unbiased=False) if n > 1 else torch.zeros(model.latent_dim)
    result = {
        "neg_elbo": (recon_sum + kl_sum) / max(1, n),
        "recon": recon_sum / max(1, n),
        "kl": kl_sum / max(1, n),
        "kl_per_dim": (kl_dims / max(1, n)).tolist(),
        "active_units": int((variance > ACTIVE_UNIT_THRESHOLD).sum()),
    }
    if iwae_k:
        result["iwae_nll"] = iwae_sum / max(1, n)
        result["iwae_k"] = int(iwae_k)
    return result


def _iwae_nll(model, x, y, mu, logvar, k, generator, max_rows: int = 8_192):
    """-log p̂(x) per image from ``k`` importance samples.

    Samples go through the decoder in chunks of at most ``max_rows`` images: a conv
    decoder's activations for 50k rows would take gigabytes.
    """
    b, d = mu.shape
    std = torch.exp(0.5 * logvar)
    chunk = max(1, min(k, max_rows // max(1, b)))
    log_w = []
    for s in range(0, k, chunk):
        kk = min(chunk, k - s)
        eps = torch.randn((kk, b, d), generator=generator).to(mu.device)
        z = mu + eps * std  # kk×b×d
        zf = z.reshape(kk * b, d)
        xf = x.unsqueeze(0).expand(kk, *x.shape).reshape(kk * b, *x.shape[1:])
        yf = y.repeat(kk) if y is not None else None
        log_px = -model.recon_nll(model.decode_logits(zf, yf), xf).view(kk, b)
        log_pz = (-0.5 * (z.pow(2) + math.log(2 * math.pi))).sum(-1)
        log_qz = (-0.5 * (eps.pow(2) + math.log(2 * math.pi)) - 0.5 * logvar).sum(-1)
        log_w.append(log_px + log_pz - log_qz)
    log_w = torch.cat(log_w, 0)
    return -(torch.logsumexp(log_w, 0) - math.log(k))


def active_units(kl_per_dim, threshold: float = ACTIVE_UNIT_THRESHOLD) -> np.ndarray:
    """Boolean mask of dimensions whose average KL exceeds ``threshold`` nats."""
    return np.asarray(kl_per_dim) > threshold
