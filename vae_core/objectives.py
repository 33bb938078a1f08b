"""Training objectives: functions from a model and a batch to named loss terms.

Every objective returns batch means in nats per image: ``loss`` (what the optimizer
minimizes), ``recon`` and ``kl`` (so curves of different objectives share a baseline),
``kl_per_dim`` (``latent_dim`` values, for the per-dimension view) and its own terms:

========  ==============================================================================
``elbo``  the negative β-ELBO, ``recon + β·kl`` (Kingma & Welling, 2014)
``iwae``  the negative K-sample importance-weighted bound (Burda et al., 2016), plus
          ``neg_elbo``: the single-sample bound averaged over the same K samples
``tcvae`` ``recon + α·mi + β·tc + γ·dim_kl`` (Chen et al., 2018): the KL split into
          index-code mutual information, total correlation and dimension-wise KL
========  ==============================================================================

Objectives reach a model only through :meth:`~vae_core.models.base.BaseVAE.loss`,
:meth:`~vae_core.models.base.BaseVAE.importance_terms` and (``tcvae``) ``encode`` /
``decode_logits``, so every registered model trains with every objective it supports.
``vqvae`` supports only ``elbo``: its posterior is a point mass, neither Gaussian (``tcvae``)
nor worth sampling (``iwae``).
"""

from __future__ import annotations

import math
import torch
from torch import Tensor, nn

from vae_core.models.base import BaseVAE, normal_log_density, randn

OBJECTIVES: dict[str, str] = {
    "elbo": "Evidence lower bound (β-VAE when β ≠ 1)",
    "iwae": "Importance-weighted bound with K samples (tighter than the ELBO)",
    "tcvae": "β-TCVAE: penalize the total correlation of the codes for disentanglement",
}
TC_ESTIMATORS = ("mss", "mws")


def list_objectives() -> list[str]:
    """Names of the objectives, in a stable order."""
    return list(OBJECTIVES)


def check_objective(model: BaseVAE, name: str, samples: int = 1) -> None:
    """Raise ``ValueError`` (one sentence) if ``model`` cannot train with objective ``name``."""
    if name not in OBJECTIVES:
        raise ValueError(f"Unknown objective {name!r}; choose one of {', '.join(OBJECTIVES)}.")
    if samples < 1:
        raise ValueError(f"The number of samples must be at least 1, got {samples}.")
    if name == "tcvae" and not model.gaussian_posterior:
        raise ValueError(
            f"The tcvae objective needs a factorised Gaussian posterior; the {model.name!r} model's "
            "posterior is not one (its per-dimension marginals have no closed form)."
        )
    if name == "iwae" and not model.stochastic_posterior:
        raise ValueError(
            f"The iwae objective needs a posterior to sample from; the {model.name!r} model's posterior is a "
            "point mass (one code per image), so every importance sample would be the same: train it with elbo."
        )


def supports(model: BaseVAE, name: str) -> bool:
    """Whether ``model`` can train with objective ``name``."""
    try:
        check_objective(model, name)
    except ValueError:
        return False
    return True


# -- the objectives ------------------------------------------------------------------------
def elbo(model: BaseVAE, x: Tensor, y: Tensor | None = None, *, beta: float = 1.0,
         kl: str = "closed-form", generator: torch.Generator | None = None) -> dict[str, Tensor]:
    """Negative β-ELBO: ``recon + beta·kl``.

    Parameters
    ----------
    kl : {"closed-form", "sampled"}
        ``closed-form`` (training's choice) uses the model's lowest-variance KL estimate —
        exact for a Gaussian posterior. ``sampled`` uses log q(z|x) − log p(z) at the same
        single sample as the reconstruction, which makes it the K=1 case of :func:`iwae`.
    generator : torch.Generator, optional
        Source of the posterior noise for ``kl="sampled"``.
    """
    if kl == "closed-form":
        return model.loss(x, y, beta)
    if kl != "sampled":
        raise ValueError(f"kl must be 'closed-form' or 'sampled', got {kl!r}.")
    terms = model.importance_terms(x, y, 1, generator)
    recon = -terms.log_likelihood.mean()
    kl_value = (terms.log_posterior - terms.log_prior).mean()
    return {"loss": recon + beta * kl_value, "recon": recon, "kl": kl_value,
            "kl_per_dim": terms.kl_per_dim.mean(0)}


def iwae(model: BaseVAE, x: Tensor, y: Tensor | None = None, *, samples: int = 5, beta: float = 1.0,
         generator: torch.Generator | None = None) -> dict[str, Tensor]:
    """Negative K-sample importance-weighted bound (Burda et al., 2016).

    ``loss = -mean_x [logsumexp_k w_k - log K]`` with ``w_k = log p(x|z_k) + β·(log p(z_k) -
    log q(z_k|x))``; β ≠ 1 only serves KL warm-up. With ``samples=1`` it is the sampled ELBO.
    ``neg_elbo`` is ``-mean_k w_k`` over the same samples, never below ``loss``.
    """
    terms = model.importance_terms(x, y, samples, generator)
    log_w = terms.log_likelihood + beta * (terms.log_prior - terms.log_posterior)
    bound = torch.logsumexp(log_w, 0) - math.log(samples)
    return {"loss": -bound.mean(), "recon": -terms.log_likelihood.mean(), "kl": terms.kl.mean(),
            "neg_elbo": -log_w.mean(), "kl_per_dim": terms.kl_per_dim.mean(0)}


def tcvae(model: BaseVAE, x: Tensor, y: Tensor | None = None, *, alpha: float = 1.0, beta: float = 1.0,
          gamma: float = 1.0, dataset_size: int | None = None, estimator: str = "mss",
          generator: torch.Generator | None = None) -> dict[str, Tensor]:
    """β-TCVAE (Chen et al., 2018): ``recon + α·mi + β·tc + γ·dim_kl``.

    The aggregate posterior q(z) and its marginals q(z_d) are estimated from the batch
    by importance-weighting the batch's posteriors.

    Parameters
    ----------
    dataset_size : int, optional
        N, the number of training images (defaults to the batch size).
    estimator : {"mss", "mws"}
        Minibatch stratified sampling (default) or minibatch weighted sampling, the
        paper's two estimators. MWS normalizes by N·M, which shifts the reported ``mi``,
        ``tc`` and ``dim_kl`` by multiples of log N (TC by (d−1)·log N, about 99 nats on
        MNIST with 10 dimensions) while leaving their gradients and their sum unchanged;
        MSS reports values near the true ones, so the curves are readable.

    The three terms sum exactly to the sampled KL ``log q(z|x) − log p(z)`` (returned as
    ``kl``), whatever the estimator.
    """
    if not model.gaussian_posterior:
        raise ValueError(f"The tcvae objective needs a factorised Gaussian posterior, which {model.name!r} lacks.")
    if estimator not in TC_ESTIMATORS:
        raise ValueError(f"estimator must be one of {TC_ESTIMATORS}, got {estimator!r}.")
    mu, logvar = model.encode(x, y)
    z = mu + randn(mu.shape, mu, generator) * torch.exp(0.5 * logvar)
    recon = model.recon_nll(model.decode_logits(z, y), x).mean()
    parts = tc_decomposition(z, mu, logvar, dataset_size or mu.shape[0], estimator)
    loss = recon + alpha * parts["mi"] + beta * parts["tc"] + gamma * parts["dim_kl"]
    kl_dims = BaseVAE.kl_per_dim(mu, logvar).mean(0)
    return {"loss": loss, "recon": recon, "kl": parts["mi"] + parts["tc"] + parts["dim_kl"],
            "mi": parts["mi"], "tc": parts["tc"], "dim_kl": parts["dim_kl"], "kl_per_dim": kl_dims}


def tc_decomposition(z: Tensor, mu: Tensor, logvar: Tensor, dataset_size: int,
                     estimator: str = "mss") -> dict[str, Tensor]:
    """Index-code MI, total correlation and dimension-wise KL of a batch (batch means).

    ``z[i]`` is a sample of q(z|x_i) = N(mu[i], exp(logvar[i])); the prior is N(0, I).
    """
    batch = z.shape[0]
    # log q(z_i,d | x_j) for every pair: B×B×d
    pair = normal_log_density(z.unsqueeze(1), mu.unsqueeze(0), logvar.unsqueeze(0))
    log_weights = _log_importance_weights(batch, dataset_size, estimator, z)
    log_qz = torch.logsumexp(log_weights + pair.sum(2), 1)
    log_prod_marginals = torch.logsumexp(log_weights.unsqueeze(2) + pair, 1).sum(1)
    log_qz_x = normal_log_density(z, mu, logvar).sum(1)
    log_pz = normal_log_density(z).sum(1)
    return {"mi": (log_qz_x - log_qz).mean(), "tc": (log_qz - log_prod_marginals).mean(),
            "dim_kl": (log_prod_marginals - log_pz).mean()}


def _log_importance_weights(batch: int, dataset_size: int, estimator: str, like: Tensor) -> Tensor:
    """``B×B`` log-weights of q(z_i|x_j) in the estimate of q(z_i) (Chen et al., 2018, App. C)."""
    n = float(max(dataset_size, batch))
    if estimator == "mws" or batch < 2:
        return torch.full((batch, batch), -math.log(n * batch), dtype=like.dtype, device=like.device)
    # MSS: z_i was drawn from x_i, which stands for itself (1/N); the others stand for
    # the rest of the data set, one of them also for the M-th stratum.
    # Written with explicit indices: the reference code's strided assignments fill
    # columns, not the diagonal, for our q(z_i|x_j) layout (rows i, columns j).
    m = batch - 1
    weights = torch.full((batch, batch), 1.0 / m, dtype=torch.float64)
    rows = torch.arange(batch)
    weights[rows, rows] = 1.0 / n
    weights[rows, (rows + 1) % batch] = (n - m) / (n * m)
    return weights.log().to(dtype=like.dtype, device=like.device)


# -- the training step -----------------------------------------------------------------------
class ObjectiveStep(nn.Module):
    """The model plus an objective as one module, whose ``forward(x, y, beta)`` gives the terms.

    The training loop calls (and DistributedDataParallel wraps) this module, so gradients
    are synchronized whatever model methods the objective uses.
    """

    def __init__(self, model: BaseVAE, objective: str = "elbo", *, samples: int = 1, alpha: float = 1.0,
                 gamma: float = 1.0, dataset_size: int | None = None) -> None:
        super().__init__()
        check_objective(model, objective, samples)
        self.model = model
        self.objective = objective
        self.samples = samples
        self.alpha = alpha
        self.gamma = gamma
        self.dataset_size = dataset_size

    def forward(self, x: Tensor, y: Tensor | None = None, beta: float = 1.0) -> dict[str, Tensor]:
        if self.objective == "iwae":
            return iwae(self.model, x, y, samples=self.samples, beta=beta)
        if self.objective == "tcvae":
            return tcvae(self.model, x, y, alpha=self.alpha, beta=beta, gamma=self.gamma,
                         dataset_size=self.dataset_size)
        return elbo(self.model, x, y, beta=beta)

