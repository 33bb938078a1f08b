"""Adapter for a small convolutional VAE whose decoder returns logits.

Shows the parts of the protocol the MLP example does not need: an encoder with one output
head that the adapter splits into μ and log σ², and ``DECODER_OUTPUT = "logits"`` for a
decoder trained with ``binary_cross_entropy_with_logits``.

    latent-explorer --model-file examples/conv_vae.py --weights conv_vae.safetensors --dataset mnist
"""

import torch.nn.functional as F
from torch import nn

IMAGE_SHAPE = (1, 28, 28)
LATENT_DIM = 16
LIKELIHOOD = "bernoulli"
DECODER_OUTPUT = "logits"
NAME = "conv-vae"


class ConvVAE(nn.Module):
    """28×28 → 14×14 → 7×7 feature maps and back, with one linear layer to and from the code."""

    def __init__(self, latent_dim=LATENT_DIM, channels=(16, 32)):
        super().__init__()
        a, b = channels
        self.encoder = nn.Sequential(
            nn.Conv2d(1, a, 4, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(a, b, 4, stride=2, padding=1), nn.ReLU(),
            nn.Flatten(), nn.Linear(b * 7 * 7, 2 * latent_dim),
        )
        self.decoder = nn.Sequential(
            nn.Linear(latent_dim, b * 7 * 7), nn.ReLU(), nn.Unflatten(1, (b, 7, 7)),
            nn.ConvTranspose2d(b, a, 4, stride=2, padding=1), nn.ReLU(),
            nn.ConvTranspose2d(a, 1, 4, stride=2, padding=1),
        )

    def forward(self, x):
        mu, logvar = self.encoder(x).chunk(2, dim=1)
        z = mu + (0.5 * logvar).exp() * mu.new_empty(mu.shape).normal_()
        return self.decoder(z), mu, logvar


def loss_function(logits, x, mu, logvar):
    """Summed Bernoulli negative log-likelihood plus the KL to N(0, I)."""
    bce = F.binary_cross_entropy_with_logits(logits, x, reduction="sum")
    kld = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum()
    return bce + kld


def build_model():
    return ConvVAE()


def encode(model, x):
    mu, logvar = model.encoder(x).chunk(2, dim=1)
    return mu, logvar


def decode(model, z):
    return model.decoder(z)  # logits, B×1×28×28
