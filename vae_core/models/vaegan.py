"""VAE/GAN (Larsen et al., 2016): a convolutional VAE trained against a discriminator.

The discriminator D tells data from reconstructions and from decoded prior samples.
The VAE minimizes its objective (any of :mod:`vae_core.objectives`) plus
``gan_weight`` × the non-saturating generator loss, plus ``feature_weight`` × the
distance between D's hidden features of an image and of its reconstruction — Larsen et
al.'s learned similarity, which is what sharpens the images. D is a submodule, so it is
saved in the checkpoint's weights, and its Adam moments live in the same optimizer as
the VAE's (parameter order is stable), so training resumes exactly.

The map code, ``encode`` and ``decode`` are the conv VAE's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vae_core.models.base import randn
from vae_core.models.conv import ConvConfig, ConvVAE, n_downsamples
from vae_core.registry import register_model


@dataclass(frozen=True)
class VAEGANConfig(ConvConfig):
    """Config of :class:`VAEGAN`.

    Attributes
    ----------
    disc_channels : tuple of int
        Feature maps of the discriminator's stride-2 stages.
    gan_weight : float
        Weight of the adversarial (generator) loss in the VAE's loss.
    feature_weight : float
        Weight of the discriminator-feature reconstruction loss.
    """

    disc_channels: tuple[int, ...] = (32, 64)
    gan_weight: float = 1.0
    feature_weight: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.disc_channels or min(self.disc_channels) < 1:
            raise ValueError("disc_channels must be positive sizes.")
        if self.gan_weight < 0 or self.feature_weight < 0:
            raise ValueError("gan_weight and feature_weight must not be negative.")


class Discriminator(nn.Module):
    """Stride-2 convolutions to features, then one logit (real vs generated)."""

    def __init__(self, image_shape: tuple[int, int, int], channels: tuple[int, ...]) -> None:
        super().__init__()
        c, h, w = image_shape
        n = n_downsamples(h, w, len(channels))
        chans = list(channels[: max(1, n)])
        conv = dict(kernel_size=4, stride=2, padding=1) if n else dict(kernel_size=3, padding=1)
        layers: list[nn.Module] = []
        prev = c
        for ch in chans:
            layers += [nn.Conv2d(prev, ch, **conv), nn.LeakyReLU(0.2)]
            prev = ch
        self.features = nn.Sequential(*layers, nn.Flatten())
        self.head = nn.Linear(prev * (h >> n) * (w >> n), 1)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        features = self.features(x)
        return self.head(features).squeeze(1), features


@register_model("vaegan", config=VAEGANConfig)
class VAEGAN(ConvVAE):
    description = "VAE/GAN: a conv VAE sharpened by a discriminator (Larsen et al., 2016)"

    def __init__(self, config: VAEGANConfig) -> None:
        super().__init__(config)
        self.discriminator = Discriminator(config.image_shape, config.disc_channels)

    def vae_parameters(self):
        """Parameters of the encoder and decoder (everything but the discriminator)."""
        return (p for name, p in self.named_parameters() if not name.startswith("discriminator."))

    def adversarial_terms(self, x: Tensor, y: Tensor | None = None) -> dict[str, Tensor]:
        """Generator-side terms and the images the discriminator judges.

        Returns ``gan`` (non-saturating generator loss on reconstructions and prior
        samples), ``feature`` (squared distance of D's features, per image), and the
        generated ``reconstructions`` and ``prior_images``.
        """
        mu, logvar = self.encode(x, y)
        z = mu + randn(mu.shape, mu) * torch.exp(0.5 * logvar)
        reconstructions = self.decode(z, y)
        prior_images = self.decode(randn(mu.shape, mu), y)
        fake_logits, fake_features = self.discriminator(torch.cat([reconstructions, prior_images]))
        _, real_features = self.discriminator(x)
        gan = F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))
        b = x.shape[0]
        feature = 0.5 * (fake_features[:b] - real_features.detach()).pow(2).sum(1).mean()
        return {"gan": gan, "feature": feature, "reconstructions": reconstructions, "prior_images": prior_images}

    def discriminator_loss(self, x: Tensor, fakes: Tensor) -> Tensor:
        """Binary cross-entropy of D on real images (label 1) and ``fakes`` (label 0)."""
        real_logits, _ = self.discriminator(x)
        fake_logits, _ = self.discriminator(fakes.detach())
        return (F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
                + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))

    def train_step(self, x: Tensor, y: Tensor | None, optimizer: torch.optim.Optimizer,
                   objective_terms: Callable[[], dict[str, Tensor]],
                   check_finite: Callable[[Tensor], None]) -> dict[str, Tensor]:
        """One alternating update; the training loop calls this instead of its own step.

        First the encoder and decoder step on the objective plus the adversarial terms
        (the discriminator's gradients are dropped, so Adam skips it), then the
        discriminator steps on its own loss (only it has gradients then).

        Parameters
        ----------
        optimizer : torch.optim.Optimizer
            Holds every parameter, the discriminator's included.
        objective_terms : callable
            Computes the training objective's terms for this batch.
        check_finite : callable
            Raises (after restoring good weights) when a loss is NaN or infinite.
        """
        if torch.distributed.is_available() and torch.distributed.is_initialized() \
                and torch.distributed.get_world_size() > 1:
            raise ValueError("The vaegan model trains in a single process only (its discriminator step is not synchronized).")
        terms = dict(objective_terms())
        adversarial = self.adversarial_terms(x, y)
        config = self.config
        loss = terms["loss"] + config.gan_weight * adversarial["gan"] + config.feature_weight * adversarial["feature"]
        check_finite(loss)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        for p in self.discriminator.parameters():
            p.grad = None
        optimizer.step()

        fakes = torch.cat([adversarial["reconstructions"], adversarial["prior_images"]])
        disc = self.discriminator_loss(x, fakes)
        check_finite(disc)
        optimizer.zero_grad(set_to_none=True)
        disc.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        terms.update(loss=loss.detach(), gan=adversarial["gan"].detach(), feature=adversarial["feature"].detach(),
                     disc=disc.detach())
        return {k: v.detach() for k, v in terms.items()}

