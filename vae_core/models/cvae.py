"""Label-conditioned VAE (Sohn et al., 2015): encoder and decoder both see the one-hot label.

Decoding one code with different labels gives "this style, as a 7".
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from vae_core.errors import ConfigError
from vae_core.models.base import BaseVAE, ModelConfig, is_whole, mlp, one_hot
from vae_core.registry import register_model


@dataclass(frozen=True)
class CVAEConfig(ModelConfig):
    """Config of :class:`CVAE`.

    Attributes
    ----------
    num_classes : int
        Number of labels the model is conditioned on.
    hidden : tuple of int
        Hidden layer sizes of the encoder; the decoder mirrors them.
    """

    num_classes: int = 10
    hidden: tuple[int, ...] = (400,)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not is_whole(self.num_classes, 2):
            raise ConfigError("A conditional VAE needs a labelled dataset with at least 2 classes.")
        if not all(is_whole(h, 1) for h in self.hidden):
            raise ConfigError(f"hidden must be layer sizes ≥ 1, got {self.hidden!r}.")


@register_model("cvae", config=CVAEConfig)
class CVAE(BaseVAE):
    conditional = True
    description = "Label-conditioned VAE (Sohn et al., 2015): decode one style as any class"

    def __init__(self, config: CVAEConfig) -> None:
        super().__init__(config)
        n_pixels = math.prod(config.image_shape)
        hidden = list(config.hidden) or [400]
        self.encoder = nn.Sequential(mlp([n_pixels + config.num_classes, *hidden]), nn.ReLU())
        self.to_mu = nn.Linear(hidden[-1], config.latent_dim)
        self.to_logvar = nn.Linear(hidden[-1], config.latent_dim)
        self.decoder = mlp([config.latent_dim + config.num_classes, *reversed(hidden), n_pixels])

    def encode(self, x: Tensor, y: Tensor | None = None):
        c = one_hot(y, self.config.num_classes, x.shape[0], x.device)
        h = self.encoder(torch.cat([x.flatten(1), c], dim=1))
        return self.to_mu(h), self.to_logvar(h)

    def decode_logits(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        c = one_hot(y, self.config.num_classes, z.shape[0], z.device)
        return self.decoder(torch.cat([z, c], dim=1)).view(-1, *self.config.image_shape)
