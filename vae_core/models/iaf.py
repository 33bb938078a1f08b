"""VAE whose posterior is a diagonal Gaussian followed by inverse autoregressive flow steps.

Kingma et al. (2016): the encoder gives μ₀, σ₀ and a context h; z₀ = μ₀ + σ₀ ⊙ ε, then
each step z_t = μ_t(z_{t-1}, h) + σ_t(z_{t-1}, h) ⊙ z_{t-1}, where μ_t, σ_t of dimension i
only see dimensions before i (a MADE network), so the Jacobian is triangular and
log|det| = Σ_i log σ_t,i. The order is reversed between steps so every dimension can
depend on every other. The density is log q(z_T|x) = log N(z₀; μ₀, σ₀²) − Σ_t log|det|.

The flow steps are zuko's ``MaskedAutoregressiveTransform`` (affine, with a context).
Its forward call is the one-pass direction, z_t from z_{t-1} in parallel: exactly IAF's
sampling direction (the ``passes`` of its inverse are never needed). We read each step's
per-dimension log-scale so the KL can be split over the map code's dimensions.

The map code is the flow's output at the base posterior's mean (ε = 0).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import zuko
from torch import Tensor, nn

from vae_core.models.base import (BaseVAE, ImportanceTerms, ModelConfig, elbo_from_terms, mlp,
                                  normal_log_density, randn, repeat_batch)
from vae_core.registry import register_model


@dataclass(frozen=True)
class IAFConfig(ModelConfig):
    """Config of :class:`IAFVAE`.

    Attributes
    ----------
    hidden : tuple of int
        Hidden layer sizes of the encoder; the decoder mirrors them.
    flow_steps : int
        Number of IAF steps after the Gaussian (0 gives a plain Gaussian VAE).
    flow_hidden : tuple of int
        Hidden layers of each step's masked autoregressive network.
    context_dim : int
        Size of the encoder's context h that every step also reads.
    """

    hidden: tuple[int, ...] = (400,)
    flow_steps: int = 2
    flow_hidden: tuple[int, ...] = (64, 64)
    context_dim: int = 32

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.flow_steps < 0:
            raise ValueError("flow_steps must not be negative.")
        if self.context_dim < 1 or not self.flow_hidden or min(self.flow_hidden) < 1:
            raise ValueError("context_dim and the flow_hidden sizes must be positive.")


@register_model("iaf", config=IAFConfig)
class IAFVAE(BaseVAE):
    description = "VAE with an inverse autoregressive flow posterior (Kingma et al., 2016)"
    gaussian_posterior = False

    def __init__(self, config: IAFConfig) -> None:
        super().__init__(config)
        d = config.latent_dim
        n_pixels = math.prod(config.image_shape)
        hidden = list(config.hidden)
        self.encoder = nn.Sequential(mlp([n_pixels, *hidden]), nn.ReLU()) if hidden else nn.Identity()
        width = hidden[-1] if hidden else n_pixels
        self.to_mu = nn.Linear(width, d)
        self.to_logvar = nn.Linear(width, d)
        self.to_context = nn.Sequential(nn.Linear(width, config.context_dim), nn.ELU())
        steps = []
        # zuko derives its masks with torch.unique, which has no kernel on the meta device
        # that build_model sizes models on; the flow steps are small, so build them on the CPU.
        with torch.device("cpu"):
            for t in range(config.flow_steps):
                # A one-dimensional code has no order: zuko then builds an element-wise step.
                order = {} if d == 1 else {"order": torch.arange(d) if t % 2 == 0 else torch.arange(d).flip(0)}
                steps.append(zuko.flows.MaskedAutoregressiveTransform(
                    d, config.context_dim, hidden_features=tuple(config.flow_hidden), **order))
        self.steps = nn.ModuleList(steps)
        self.decoder = mlp([d, *reversed(hidden), n_pixels])

    # -- the posterior -----------------------------------------------------------------------
    def _base(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        h = self.encoder(x.flatten(1))
        return self.to_mu(h), self.to_logvar(h), self.to_context(h)

    def flow(self, z0: Tensor, context: Tensor) -> tuple[Tensor, Tensor]:
        """Push base samples through the IAF steps: ``(z_T, log|∂z_T/∂z_0| per dimension)``.

        The per-dimension terms are the log-diagonals of each step's triangular Jacobian,
        summed over the steps; their sum over dimensions is the log-determinant of the
        whole flow (the composed Jacobian is not triangular when orders alternate).
        """
        z = z0
        log_det = torch.zeros_like(z0)
        for step in self.steps:
            transform = step(context)
            # AutoregressiveTransform: the affine map for z's parameters; element-wise: itself.
            affine = transform.meta(z) if hasattr(transform, "meta") else transform
            z_next = affine.base(z)
            log_det = log_det + affine.base.log_abs_det_jacobian(z, z_next)
            z = z_next
        return z, log_det

    def _samples(self, x: Tensor, k: int, generator=None, sample: bool = True):
        mu, logvar, context = self._base(x)
        eps = randn((k, *mu.shape), mu, generator) if sample else torch.zeros((k, *mu.shape), dtype=mu.dtype,
                                                                              device=mu.device)
        z0 = (mu + eps * torch.exp(0.5 * logvar)).reshape(-1, mu.shape[1])
        z, log_det = self.flow(z0, repeat_batch(context, k))
        return mu, logvar, eps.reshape(-1, mu.shape[1]), z, log_det

    # -- BaseVAE contract ----------------------------------------------------------------------
    def encode(self, x: Tensor, y: Tensor | None = None):
        """The flow's output at the base mean, and the base log-variance scaled by the flow.

        The log-variance is log σ₀² plus twice the flow's per-dimension log-scale at the
        mean (see :meth:`flow`): a spread the map can show; the exact posterior is not
        Gaussian.
        """
        _, logvar, _, z, log_det = self._samples(x, 1, sample=False)
        return z, logvar + 2 * log_det

    def decode_logits(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        return self.decoder(z).view(-1, *self.config.image_shape)

    def forward(self, x: Tensor, y: Tensor | None = None):
        _, logvar, _, z, log_det = self._samples(x, 1, sample=self.training)
        mean_code, mean_logvar = (self.encode(x, y) if self.training else (z, logvar + 2 * log_det))
        return self.decode_logits(z, y), mean_code, mean_logvar, z

    def sample_posterior(self, x: Tensor, n: int, y: Tensor | None = None, generator=None) -> Tensor:
        z = self._samples(x, n, generator)[3]
        return z.view(n, x.shape[0], -1)

    def importance_terms(self, x: Tensor, y: Tensor | None = None, k: int = 1, generator=None) -> ImportanceTerms:
        """log q(z_T|x) = log N(z₀; μ₀, σ₀²) − log|det|; KL by sampling (no closed form)."""
        b = x.shape[0]
        _, logvar, eps, z, log_det = self._samples(x, k, generator)
        log_q = normal_log_density(eps) - 0.5 * repeat_batch(logvar, k) - log_det
        log_p = normal_log_density(z)
        log_likelihood = -self.recon_nll(self.decode_logits(z), repeat_batch(x, k)).view(k, b)
        kl_dims = (log_q - log_p).view(k, b, -1).mean(0)
        return ImportanceTerms(log_likelihood, log_p.sum(1).view(k, b), log_q.sum(1).view(k, b),
                               kl_dims.sum(1), kl_dims)

    def loss(self, x: Tensor, y: Tensor | None = None, beta: float = 1.0) -> dict[str, Tensor]:
        """Negative β-ELBO with the KL sampled through the flow."""
        return elbo_from_terms(self.importance_terms(x, y, 1), beta)
