"""The shared VAE interface: encode → (μ, log σ²), reparameterize, decode, named loss terms.

Every model also answers two generic questions, so that objectives and metrics never
branch on a model's name:

* :meth:`BaseVAE.importance_terms` — K posterior samples per image with
  ``log p(x|z)``, ``log p(z)`` and ``log q(z|x)`` over *all* stochastic variables
  (every layer of a hierarchy, the flow's log-determinant of an IAF); their sum is the
  importance log-weight of IWAE.
* :meth:`BaseVAE.map_code` / :meth:`BaseVAE.sample_posterior` — the code the latent map
  shows (``latent_dim`` numbers) and samples of it from q(z|x).
"""

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


def normal_log_density(z: Tensor, mu: Tensor | float = 0.0, logvar: Tensor | float = 0.0) -> Tensor:
    """Elementwise log N(z; mu, exp(logvar)) in nats (no sum over dimensions)."""
    logvar = torch.as_tensor(logvar, dtype=z.dtype, device=z.device)
    return -0.5 * ((z - mu).pow(2) * torch.exp(-logvar) + logvar + _LOG_2PI)


def randn(shape, like: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Standard normal noise shaped ``shape`` on ``like``'s device and dtype.

    With a generator the numbers come from it (on the generator's device, then moved),
    so a seeded evaluation gives the same samples on every device.
    """
    if generator is None:
        return torch.randn(shape, dtype=like.dtype, device=like.device)
    return torch.randn(shape, dtype=like.dtype, device=generator.device, generator=generator).to(like.device)


def repeat_batch(t: Tensor | None, k: int) -> Tensor | None:
    """``t`` repeated ``k`` times along a new leading axis and flattened: ``(k·B)×…``."""
    if t is None:
        return None
    return t.unsqueeze(0).expand(k, *t.shape).reshape(k * t.shape[0], *t.shape[1:])


@dataclass
class ImportanceTerms:
    """K posterior samples per image and their log densities, in nats.

    Attributes
    ----------
    log_likelihood, log_prior, log_posterior : Tensor
        ``K×B``: log p(x|z_k), log p(z_k) and log q(z_k|x) of each sample, where z_k
        holds every stochastic variable of the model.
    kl : Tensor
        ``B``: the model's lowest-variance unbiased estimate of KL(q(z|x) || p(z)) — in
        closed form where one exists (Gaussian posterior), else the sample mean of
        ``log_posterior - log_prior``.
    kl_per_dim : Tensor
        ``B×latent_dim``: the same estimate split over the map code's dimensions.
    """

    log_likelihood: Tensor
    log_prior: Tensor
    log_posterior: Tensor
    kl: Tensor
    kl_per_dim: Tensor

    @property
    def log_weights(self) -> Tensor:
        """``K×B`` importance log-weights log p(x, z_k) − log q(z_k|x)."""
        return self.log_likelihood + self.log_prior - self.log_posterior


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
    #: One line shown by model pickers.
    description: str = ""
    #: True when q(z|x) of the map code is the factorised Gaussian that :meth:`encode`
    #: returns (objectives such as ``tcvae`` need its density at every pair of images).
    gaussian_posterior: bool = True
    #: False when q(z|x) is a point mass (``vqvae``): importance sampling (``iwae``) would
    #: draw the same code K times.
    stochastic_posterior: bool = True

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
        """The map code's posterior parameters ``(mu, logvar)``, each ``B×latent_dim``.

        ``mu`` is the *map code*: the point the latent map shows for ``x`` and that
        :meth:`decode` turns back into an image. For a Gaussian VAE it is the posterior
        mean; models with richer posteriors say what they return (see :meth:`map_code`).
        """
        raise NotImplementedError

    def map_code(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        """The code the latent map shows for ``x``, ``B×latent_dim`` (``encode(x)[0]``).

        Gaussian VAEs: the posterior mean μ. ``hvae``: the top layer's mean (or a chosen
        layer, or all layers) with the layers below at their means. ``iaf``: the flow's
        output at the base posterior's mean.
        """
        return self.encode(x, y)[0]

    def map_code_choices(self) -> dict[str, str]:
        """The codes the map can show for this model, value → label; empty when there is one.

        ``hvae`` offers its top layer, each lower layer and all layers concatenated.
        """
        return {}

    @property
    def map_code_choice(self) -> str | None:
        """The chosen entry of :meth:`map_code_choices` (None when there is no choice)."""
        return None

    def set_map_code(self, choice: str) -> None:
        """Make the map code (and :attr:`latent_dim`, :meth:`decode`) the one named ``choice``.

        Raises
        ------
        ValueError
            For a choice not in :meth:`map_code_choices`.
        """
        choices = self.map_code_choices()
        if choice not in choices:
            raise ValueError(f"The {self.name} model's map can show {', '.join(choices) or 'only its one code'}, "
                             f"not {choice!r}.")

    @property
    def lower_layers(self) -> int:
        """Stochastic layers below the map code that :meth:`decode` passes through (0 for most models)."""
        return 0

    @property
    def lower_noise_seed(self) -> int | None:
        """The seed of the fixed noise :meth:`decode` adds to the layers below the map code, or None (their means)."""
        return None

    def set_lower_noise(self, seed: int | None) -> None:
        """Decode with the layers below the map code sampled with noise drawn once from ``seed``
        (None: at their conditional means).

        Raises
        ------
        ValueError
            When the map code has no layers below it.
        """
        if seed is not None:
            raise ValueError(f"The {self.name} model's map code has no layers below it to sample.")

    def sample_posterior(self, x: Tensor, n: int, y: Tensor | None = None,
                         generator: torch.Generator | None = None) -> Tensor:
        """``n`` samples of the map code from q(z|x) per image, ``n×B×latent_dim``."""
        mu, logvar = self.encode(x, y)
        return mu + randn((n, *mu.shape), mu, generator) * torch.exp(0.5 * logvar)

    def importance_terms(self, x: Tensor, y: Tensor | None = None, k: int = 1,
                         generator: torch.Generator | None = None) -> ImportanceTerms:
        """Draw ``k`` samples z_k ~ q(z|x) per image and score them (see :class:`ImportanceTerms`).

        The default serves a factorised Gaussian posterior with a standard normal prior;
        models with more stochastic variables override it. Samples are reparameterized,
        so every term is differentiable.
        """
        mu, logvar = self.encode(x, y)
        eps = randn((k, *mu.shape), mu, generator)
        z = mu + eps * torch.exp(0.5 * logvar)
        logits = self.decode_logits(z.reshape(-1, mu.shape[1]), repeat_batch(y, k))
        log_likelihood = -self.recon_nll(logits, repeat_batch(x, k)).view(k, -1)
        log_prior = normal_log_density(z).sum(-1)
        # log N(z; mu, σ²) written through eps: no division by σ, exact for tiny σ.
        log_posterior = (normal_log_density(eps) - 0.5 * logvar).sum(-1)
        kl_dims = self.kl_per_dim(mu, logvar)
        return ImportanceTerms(log_likelihood, log_prior, log_posterior, kl_dims.sum(1), kl_dims)

    def importance_weights(self, x: Tensor, k: int, y: Tensor | None = None,
                           generator: torch.Generator | None = None) -> Tensor:
        """``k×B`` log-weights log p(x, z_k) − log q(z_k|x) for z_k ~ q(z|x).

        ``logsumexp(w, 0) - log k`` is the k-sample IWAE bound on log p(x) (Burda et al., 2016).
        """
        return self.importance_terms(x, y, k, generator).log_weights

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

    # -- model-specific evaluation ----------------------------------------------------------
    def metric_sums(self, x: Tensor, y: Tensor | None = None) -> dict[str, Tensor]:
        """Per-batch quantities that :func:`~vae_core.metrics.evaluate` sums over the data.

        Models with statistics beyond the ELBO (``vqvae``: code counts) return tensors
        here and turn the sums into numbers in :meth:`metrics_from_sums`; others return {}.
        """
        return {}

    def metrics_from_sums(self, sums: dict[str, Tensor], n: int) -> dict:
        """Extra entries of the evaluation result from :meth:`metric_sums` over ``n`` images."""
        return {}

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


def elbo_from_terms(terms: ImportanceTerms, beta: float = 1.0) -> dict[str, Tensor]:
    """Negative β-ELBO terms (batch means) from one sample of :meth:`BaseVAE.importance_terms`.

    The reconstruction term averages over the samples; the KL is the model's best estimate.
    """
    recon = -terms.log_likelihood.mean(0).mean()
    kl = terms.kl.mean()
    return {"loss": recon + beta * kl, "recon": recon, "kl": kl, "kl_per_dim": terms.kl_per_dim.mean(0)}


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
