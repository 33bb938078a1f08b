"""The shared VAE interface: encode → (μ, log σ²), reparameterize, decode, named loss terms."""

from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vae_core.errors import ConfigError

LIKELIHOODS = ("bernoulli", "gaussian")
_LOG_2PI = math.log(2 * math.pi)


@dataclass(frozen=True)
class ModelConfig:
    """Fields every model config has.

    Attributes
    ----------
    image_shape : tuple of int
        ``(channels, height, width)`` of the images the model reads and writes.
    latent_dim : int
        Size of the latent code z.
    likelihood : {"bernoulli", "gaussian"}
        Decoder distribution. Bernoulli (binary cross-entropy) suits near-binary images
        such as digits; Gaussian with a fixed ``gaussian_std`` suits photographs.
    gaussian_std : float
        Standard deviation of the Gaussian likelihood, in pixel units of [0, 1].
    """

    image_shape: tuple[int, int, int] = (1, 28, 28)
    latent_dim: int = 20
    likelihood: str = "bernoulli"
    gaussian_std: float = 0.1

    def __post_init__(self) -> None:
        shape = self.image_shape
        if not (isinstance(shape, (tuple, list)) and len(shape) == 3 and all(is_whole(s, 1) for s in shape)):
            raise ConfigError(f"image_shape must be (channels, height, width) of whole numbers ≥ 1, got {shape!r}.")
        if not is_whole(self.latent_dim, 1):
            raise ConfigError(f"latent_dim must be a whole number ≥ 1, got {self.latent_dim!r}.")
        if not isinstance(self.likelihood, str) or self.likelihood not in LIKELIHOODS:
            raise ConfigError(f"likelihood must be one of {', '.join(LIKELIHOODS)}, got {self.likelihood!r}.")
        std = self.gaussian_std
        if not (isinstance(std, numbers.Real) and not isinstance(std, bool) and math.isfinite(std) and std > 0):
            raise ConfigError(f"gaussian_std must be a finite number > 0, got {std!r}.")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


class BaseVAE(nn.Module):
    """Base class of every registered model.

    Subclasses implement :meth:`encode` and :meth:`decode_logits`; everything else
    (sampling, reparameterization, the ELBO terms) is shared so that every model
    reports losses in the same units: nats per image.
    """

    name: str = ""
    config_class: type = ModelConfig
    conditional: bool = False

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config

    # -- properties -----------------------------------------------------------------
    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.config.image_shape)

    @property
    def num_classes(self) -> int:
        return int(getattr(self.config, "num_classes", 0))

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    # -- the model --------------------------------------------------------------------
    def encode(self, x: Tensor, y: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Posterior parameters ``(mu, logvar)``, each ``B×latent_dim``."""
        raise NotImplementedError

    def decode_logits(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        """Decoder output before the sigmoid, ``B×C×H×W``."""
        raise NotImplementedError

    def decode(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        """Mean image of p(x|z) in [0, 1], ``B×C×H×W``."""
        return torch.sigmoid(self.decode_logits(z, y))

    @staticmethod
    def reparameterize(mu: Tensor, logvar: Tensor) -> Tensor:
        return mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)

    def forward(self, x: Tensor, y: Tensor | None = None):
        """One stochastic pass: ``(logits, mu, logvar, z)``.

        The training loop calls this (not :meth:`loss`) so that DistributedDataParallel
        sees the forward pass and synchronizes gradients.
        """
        mu, logvar = self.encode(x, y)
        # In eval mode the pass is deterministic (z = mu): reconstructions shown to users
        # and checkpoint round-trips must not flicker with noise.
        z = self.reparameterize(mu, logvar) if self.training else mu
        return self.decode_logits(z, y), mu, logvar, z

    def sample(self, n: int, y: Tensor | None = None, generator: torch.Generator | None = None) -> Tensor:
        """Decode ``n`` codes drawn from the prior N(0, I)."""
        z = torch.randn(n, self.latent_dim, generator=generator).to(self.device)
        return self.decode(z, y)

    # -- the objective ------------------------------------------------------------------
    def recon_nll(self, logits: Tensor, x: Tensor) -> Tensor:
        """-log p(x|z) in nats for each image (summed over pixels), shape ``B``."""
        if self.config.likelihood == "bernoulli":
            nll = F.binary_cross_entropy_with_logits(logits, x, reduction="none")
        else:
            std = self.config.gaussian_std
            diff = (torch.sigmoid(logits) - x) / std
            nll = 0.5 * diff.pow(2) + math.log(std) + 0.5 * _LOG_2PI
        return nll.flatten(1).sum(1)

    @staticmethod
    def kl_per_dim(mu: Tensor, logvar: Tensor) -> Tensor:
        """KL(q(z|x) || N(0, I)) per image and dimension, ``B×d``."""
        return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)

    def loss_terms(self, x: Tensor, logits: Tensor, mu: Tensor, logvar: Tensor, beta: float = 1.0) -> dict[str, Tensor]:
        """Named loss terms, averaged over the batch (nats per image)."""
        recon = self.recon_nll(logits, x).mean()
        kl_dims = self.kl_per_dim(mu, logvar).mean(0)
        kl = kl_dims.sum()
        return {"loss": recon + beta * kl, "recon": recon, "kl": kl, "kl_per_dim": kl_dims}

    def loss(self, x: Tensor, y: Tensor | None = None, beta: float = 1.0) -> dict[str, Tensor]:
        """Negative β-ELBO and its terms for a batch (see :meth:`loss_terms`)."""
        logits, mu, logvar, _ = self(x, y)
        return self.loss_terms(x, logits, mu, logvar, beta)


def is_whole(value, minimum: int) -> bool:
    """True for an integer (not a bool) of at least ``minimum``: the check every size field needs."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= minimum


def one_hot(y: Tensor | None, num_classes: int, batch: int, device) -> Tensor:
    """One-hot labels; conditional models need them, so a missing label is an error."""
    if y is None:
        raise ValueError("This model is conditional on the label: pass labels y.")
    return F.one_hot(y.long().to(device), num_classes).float()


def mlp(sizes: list[int]) -> nn.Sequential:
    """Linear layers with ReLU between them (none after the last)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)
