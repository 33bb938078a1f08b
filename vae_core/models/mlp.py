"""The classic fully-connected VAE (Kingma & Welling, 2014); 784-400-20 by default."""

from __future__ import annotations

import math
from dataclasses import dataclass

from torch import Tensor, nn

from vae_core.errors import ConfigError
from vae_core.models.base import BaseVAE, ModelConfig, is_whole, mlp
from vae_core.registry import register_model


@dataclass(frozen=True)
class MLPConfig(ModelConfig):
    """Config of :class:`MLPVAE`.

    Attributes
    ----------
    hidden : tuple of int
        Hidden layer sizes of the encoder; the decoder mirrors them.
    """

    hidden: tuple[int, ...] = (400,)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not all(is_whole(h, 1) for h in self.hidden):
            raise ConfigError(f"hidden must be layer sizes ≥ 1, got {self.hidden!r}.")


@register_model("mlp", config=MLPConfig)
class MLPVAE(BaseVAE):
    """Fully-connected encoder and decoder with ReLU hidden layers."""
    description = "Fully-connected Gaussian VAE (Kingma & Welling, 2014)"

    def __init__(self, config: MLPConfig) -> None:
        super().__init__(config)
        n_pixels = math.prod(config.image_shape)
        hidden = list(config.hidden)
        self.encoder = nn.Sequential(mlp([n_pixels, *hidden]), nn.ReLU()) if hidden else nn.Identity()
        width = hidden[-1] if hidden else n_pixels
        self.to_mu = nn.Linear(width, config.latent_dim)
        self.to_logvar = nn.Linear(width, config.latent_dim)
        self.decoder = mlp([config.latent_dim, *reversed(hidden), n_pixels])

    def encode(self, x: Tensor, y: Tensor | None = None):
        h = self.encoder(x.flatten(1))
        return self.to_mu(h), self.to_logvar(h)

    def decode_logits(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        return self.decoder(z).view(-1, *self.config.image_shape)
