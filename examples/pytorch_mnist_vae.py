"""Adapter for the VAE of PyTorch's examples repository (``vae/main.py``).

The model below is that example's architecture, layer for layer: fc1 784→400, fc21 and
fc22 400→20 (μ and log σ²), fc3 20→400, fc4 400→784 with a sigmoid output. Train it with
the example's own script, then open it:

    latent-explorer --model-file examples/pytorch_mnist_vae.py --weights model.pt --dataset mnist

When the model class lives in your own project, import it instead of copying it
(``from main import VAE``): the adapter's folder is importable while it loads.
"""

import torch
import torch.nn.functional as F
from torch import nn

IMAGE_SHAPE = (1, 28, 28)
LATENT_DIM = 20
# The example trains with binary cross-entropy on sigmoid outputs: a Bernoulli likelihood.
LIKELIHOOD = "bernoulli"
DECODER_OUTPUT = "probabilities"
NAME = "pytorch-examples-vae"


class VAE(nn.Module):
    """pytorch/examples vae/main.py (BSD-3-Clause), unchanged."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 400)
        self.fc21 = nn.Linear(400, 20)
        self.fc22 = nn.Linear(400, 20)
        self.fc3 = nn.Linear(20, 400)
        self.fc4 = nn.Linear(400, 784)

    def encode(self, x):
        h1 = F.relu(self.fc1(x))
        return self.fc21(h1), self.fc22(h1)

    def reparameterize(self, mu, logvar):
        std = torch.exp(0.5 * logvar)
        eps = torch.randn_like(std)
        return mu + eps * std

    def decode(self, z):
        h3 = F.relu(self.fc3(z))
        return torch.sigmoid(self.fc4(h3))

    def forward(self, x):
        mu, logvar = self.encode(x.view(-1, 784))
        z = self.reparameterize(mu, logvar)
        return self.decode(z), mu, logvar


def loss_function(recon_x, x, mu, logvar):
    """The example's loss: summed binary cross-entropy plus the KL to N(0, I)."""
    bce = F.binary_cross_entropy(recon_x, x.view(-1, 784), reduction="sum")
    kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return bce + kld


def build_model():
    return VAE()


def encode(model, x):
    # The example flattens in forward(), not in encode(): do the same here.
    return model.encode(x.view(-1, 784))


def decode(model, z):
    return model.decode(z)  # B×784; the explorer reshapes it to IMAGE_SHAPE
