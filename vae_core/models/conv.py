"""Convolutional VAE for any image size the datasets produce (8×8 up to 64×64, gray or RGB).

The encoder halves the resolution with stride-2 convolutions while the side stays even
and at least 8 pixels (28 → 14 → 7, 32 → 16 → 8 → 4, 64 → … → 4, 8 → 4); the decoder
mirrors it with transposed convolutions, so no size needs padding or cropping.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from vae_core.errors import ConfigError
from vae_core.models.base import BaseVAE, ModelConfig, is_whole
from vae_core.registry import register_model


@dataclass(frozen=True)
class ConvConfig(ModelConfig):
    """Config of :class:`ConvVAE`.

    Attributes
    ----------
    channels : tuple of int
        Feature maps after each downsampling stage (used from the start, as many
        as the image size allows).
    hidden : int
        Width of the fully-connected layer between the feature maps and the code.
    """

    channels: tuple[int, ...] = (32, 64, 128, 256)
    hidden: int = 256

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.channels or not all(is_whole(c, 1) for c in self.channels):
            raise ConfigError(f"channels must be one or more feature map counts ≥ 1, got {self.channels!r}.")
        if not is_whole(self.hidden, 1):
            raise ConfigError(f"hidden must be a whole number ≥ 1, got {self.hidden!r}.")


def n_downsamples(height: int, width: int, limit: int) -> int:
    n = 0
    while n < limit and height % 2 == 0 and width % 2 == 0 and min(height, width) >= 8:
        height, width, n = height // 2, width // 2, n + 1
    return n


@register_model("conv", config=ConvConfig)
class ConvVAE(BaseVAE):
    description = "Convolutional Gaussian VAE for larger and colour images"
    def __init__(self, config: ConvConfig) -> None:
        super().__init__(config)
        c, h, w = config.image_shape
        n = n_downsamples(h, w, len(config.channels))
        chans = list(config.channels[:n]) or [config.channels[0]]
        enc: list[nn.Module] = []
        prev = c
        if n == 0:  # tiny or odd-sized images: one stride-1 layer keeps the resolution
            enc += [nn.Conv2d(c, chans[0], 3, padding=1), nn.LeakyReLU(0.2)]
            prev = chans[0]
        for ch in chans[:n]:
            enc += [nn.Conv2d(prev, ch, 4, stride=2, padding=1), nn.BatchNorm2d(ch), nn.LeakyReLU(0.2)]
            prev = ch
        self.encoder = nn.Sequential(*enc, nn.Flatten())
        self._feature_shape = (prev, h >> n, w >> n)
        n_features = prev * (h >> n) * (w >> n)
        self.fc = nn.Sequential(nn.Linear(n_features, config.hidden), nn.LeakyReLU(0.2))
        self.to_mu = nn.Linear(config.hidden, config.latent_dim)
        self.to_logvar = nn.Linear(config.hidden, config.latent_dim)

        self.from_z = nn.Sequential(
            nn.Linear(config.latent_dim, config.hidden), nn.LeakyReLU(0.2),
            nn.Linear(config.hidden, n_features), nn.LeakyReLU(0.2),
        )
        dec: list[nn.Module] = []
        rev = list(reversed(chans[:n]))
        for a, b in zip(rev[:-1], rev[1:]):
            dec += [nn.ConvTranspose2d(a, b, 4, stride=2, padding=1), nn.BatchNorm2d(b), nn.LeakyReLU(0.2)]
        if n > 0:
            dec += [nn.ConvTranspose2d(rev[-1], rev[-1], 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
        dec += [nn.Conv2d(prev if n == 0 else rev[-1], c, 3, padding=1)]
        self.decoder = nn.Sequential(*dec)

    def encode(self, x: Tensor, y: Tensor | None = None):
        h = self.fc(self.encoder(x))
        return self.to_mu(h), self.to_logvar(h)

    def decode_logits(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        h = self.from_z(z).view(-1, *self._feature_shape)
        return self.decoder(h)
