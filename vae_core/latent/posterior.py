"""The posterior on the map: q(z|x) as an ellipse or a cloud, the prior's holes, pixel samples.

A Gaussian VAE's encoder gives each image a diagonal Gaussian q(z|x) = N(μ, diag σ²). On a
linear map (latent dimensions, PCA: ``xy = W z + b``) that Gaussian is exactly
``N(W μ + b, W diag(σ²) Wᵀ)``, so its k-σ contour is an ellipse
(:func:`posterior_ellipse`, :func:`ellipse_outline`). Through a non-linear map (UMAP) the
image of a Gaussian has no closed form; :func:`posterior_cloud` pushes samples through the
projection instead.

:func:`holes_map` compares the prior N(0, I) with the aggregate posterior
q(z) = (1/N) Σ_i q(z|x_i) on a grid of map positions: where ``log p(z) − log q(z)`` is large,
prior draws land where no encoded image lives ("holes").

:func:`likelihood_samples` draws pixels from p(x|z) around decoded means: the mean image is
what the decoder shows, the samples are what the model actually generates (why VAE means
look blurry: the noise is in the likelihood, the mean averages it away).

Plain NumPy in and out; nothing here imports Qt.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = [
    "HolesMap",
    "ellipse_outline",
    "holes_map",
    "likelihood_samples",
    "posterior_cloud",
    "posterior_ellipse",
]

_LOG_2PI = math.log(2.0 * math.pi)


def _linear(projection):
    linear = projection.linear_map()
    if linear is None:
        raise ValueError(f"The {projection.name} projection is not linear: use posterior_cloud for it.")
    return linear


def posterior_ellipse(projection, mu, logvar) -> tuple[np.ndarray, np.ndarray]:
    """The exact map image of q(z|x) = N(μ, diag exp(logvar)) through a linear projection.

    Parameters
    ----------
    projection
        A fitted :class:`~vae_core.projection.Projection` with a :meth:`linear_map`
        (dims, PCA).
    mu, logvar
        ``d`` posterior mean and log-variance.

    Returns
    -------
    centre, covariance : np.ndarray
        ``2`` and ``2×2`` (float64): ``W μ + b`` and ``W diag(σ²) Wᵀ``.

    Raises
    ------
    ValueError
        For a non-linear projection (UMAP) or codes of another size.
    """
    w, b = _linear(projection)
    mu = np.asarray(mu, dtype=np.float64).reshape(-1)
    var = np.exp(np.asarray(logvar, dtype=np.float64).reshape(-1))
    if mu.shape != var.shape or mu.shape[0] != w.shape[1]:
        raise ValueError(f"Expected {w.shape[1]}-dimensional μ and log-variance, got {mu.shape[0]} and "
                         f"{var.shape[0]}.")
    return w @ mu + b, (w * var) @ w.T


def ellipse_outline(centre, covariance, n_sigma: float = 1.0, points: int = 96) -> np.ndarray:
    """``points×2`` positions on the ``n_sigma`` contour of ``N(centre, covariance)`` (closed).

    The contour is ``centre + n_sigma · V diag(√λ) (cos t, sin t)`` for the eigenpairs
    ``(λ, V)`` of the covariance; the first point is repeated at the end.
    """
    centre = np.asarray(centre, dtype=np.float64).reshape(2)
    lam, vec = np.linalg.eigh(np.asarray(covariance, dtype=np.float64).reshape(2, 2))
    scale = vec * np.sqrt(np.clip(lam, 0.0, None))
    t = np.linspace(0.0, 2.0 * math.pi, int(points))
    unit = np.stack([np.cos(t), np.sin(t)])
    return centre + float(n_sigma) * (scale @ unit).T


def posterior_cloud(projection, mu, logvar, n: int = 64, *, seed: int = 0) -> np.ndarray:
    """``n×2`` map positions of samples z ~ N(μ, diag exp(logvar)) pushed through the projection.

    Works for every projection (for UMAP, ``transform`` places codes from their nearest
    fitted neighbours); seeded, so the same point shows the same cloud.
    """
    mu = np.asarray(mu, dtype=np.float32).reshape(-1)
    sigma = np.exp(0.5 * np.asarray(logvar, dtype=np.float32).reshape(-1))
    eps = np.random.default_rng(seed).standard_normal((int(n), mu.shape[0])).astype(np.float32)
    return np.asarray(projection.transform(mu + eps * sigma), dtype=np.float64)


# ---------------------------------------------------------------------------------------
# Holes: prior vs aggregate posterior
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class HolesMap:
    """``log p(z) − log q(z)`` on a grid of map positions (see :func:`holes_map`).

    Attributes
    ----------
    log_ratio : np.ndarray
        ``rows×columns`` float32, clipped to ``±clip``; row 0 is the lowest ``y``.
    log_prior, log_aggregate : np.ndarray
        The two log densities (unclipped), same shape.
    prior_quantile : np.ndarray
        The prior's probability mass inside the prior density contour through each cell
        (``chi2.cdf(r², dof)`` of the cell's Mahalanobis radius under the prior; ``dof`` 2
        on a linear map, ``d`` off it): 0 at the prior's centre, → 1 far out. Cells
        above 0.99 lie outside the region where the prior has its mass.
    extent : tuple
        ``(xmin, ymin, xmax, ymax)`` of the grid's outer edges.
    exact : bool
        True for linear projections (densities of the 2-D marginals); False for UMAP
        (latent densities at the inverse-projected grid positions).
    components : int
        Posteriors in the aggregate mixture (all of them, or a seeded subset).
    clip : float
    """

    log_ratio: np.ndarray
    log_prior: np.ndarray
    log_aggregate: np.ndarray
    prior_quantile: np.ndarray
    extent: tuple[float, float, float, float]
    exact: bool
    components: int
    clip: float


def _grid(extent, resolution):
    xmin, ymin, xmax, ymax = (float(v) for v in extent)
    if not (xmax > xmin and ymax > ymin) or not all(map(math.isfinite, (xmin, ymin, xmax, ymax))):
        raise ValueError("The holes grid needs a finite extent with xmax > xmin and ymax > ymin.")
    if isinstance(resolution, int):
        resolution = (resolution, resolution)
    cols, rows = (int(v) for v in resolution)
    if cols < 2 or rows < 2:
        raise ValueError("The holes grid needs at least 2×2 cells.")
    xs = xmin + (np.arange(cols) + 0.5) * (xmax - xmin) / cols
    ys = ymin + (np.arange(rows) + 0.5) * (ymax - ymin) / rows
    gx, gy = np.meshgrid(xs, ys)
    return np.column_stack([gx.ravel(), gy.ravel()]), (rows, cols)


def _gauss2_log_density(points, means, covs):
    """``M×K`` log N(points_m; means_k, covs_k) for 2-D Gaussians (closed-form 2×2 inverse)."""
    a, b, c = covs[:, 0, 0], covs[:, 0, 1], covs[:, 1, 1]
    det = a * c - b * b
    dx = points[:, None, 0] - means[None, :, 0]
    dy = points[:, None, 1] - means[None, :, 1]
    quad = (c * dx * dx - 2.0 * b * dx * dy + a * dy * dy) / det
    return -_LOG_2PI - 0.5 * np.log(det) - 0.5 * quad


def _logsumexp(x, axis):
    top = np.max(x, axis=axis, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    return (np.log(np.sum(np.exp(x - top), axis=axis)) + np.squeeze(top, axis=axis))


def holes_map(projection, codes, logvar, extent, resolution=96, *, max_components: int = 4000,
              seed: int = 0, clip: float = 10.0, chunk: int = 256) -> HolesMap:
    """Where the prior N(0, I) has mass and the encoded data has none, on a map grid.

    The aggregate posterior is the mixture q(z) = (1/N) Σ_i N(z; μ_i, diag σ_i²) of the
    encoders' Gaussians. With more than ``max_components`` codes, a seeded random subset
    of them stands for the mixture (an unbiased estimate of its density).

    *Linear projections (dims, PCA)*: exact. Both densities are the 2-D marginals on the
    map: the prior is ``N(b, W Wᵀ)``, each posterior ``N(W μ_i + b, W Σ_i Wᵀ)``.

    *UMAP* (not linear): the 2-D marginals have no closed form. Each grid position is sent
    back to latent space with ``projection.inverse`` and both densities are evaluated there
    in all ``d`` dimensions: the value says whether the code the map decodes at that
    position is likelier under the prior than under the data's posteriors.

    Parameters
    ----------
    projection
        A fitted projection.
    codes, logvar
        ``N×d`` posterior means and log-variances of the data.
    extent
        ``(xmin, ymin, xmax, ymax)`` of the grid in map coordinates.
    resolution
        Cells per side, or ``(columns, rows)``.
    clip
        ``log_ratio`` is clipped to ``[−clip, clip]`` nats.

    Returns
    -------
    HolesMap
    """
    codes = np.asarray(codes, dtype=np.float64)
    logvar = np.asarray(logvar, dtype=np.float64)
    if codes.ndim != 2 or codes.shape != logvar.shape or not len(codes):
        raise ValueError("holes_map needs N×d codes and log-variances of the same shape (N ≥ 1).")
    if not np.isfinite(logvar).all():
        raise ValueError("This model's encoder gives no posterior widths: there is no aggregate posterior.")
    if len(codes) > max_components:
        keep = np.sort(np.random.default_rng(seed).choice(len(codes), int(max_components), replace=False))
        codes, logvar = codes[keep], logvar[keep]
    points, shape = _grid(extent, resolution)
    var = np.exp(logvar)
    log_n = math.log(len(codes))
    linear = projection.linear_map()
    log_prior = np.empty(len(points))
    log_agg = np.empty(len(points))
    if linear is not None:
        w, b = linear
        means = codes @ w.T + b
        covs = np.einsum("id,kd,jd->kij", w, var, w)
        prior_cov = w @ w.T
        # log N(p; b, C) = −log 2π − ½ log det C − ½ r²: the radius follows from the density.
        radius2 = lambda lp: -2.0 * (lp + _LOG_2PI + 0.5 * np.log(np.linalg.det(prior_cov)))
        dof = 2
        for start in range(0, len(points), chunk):
            p = points[start:start + chunk]
            log_prior[start:start + chunk] = _gauss2_log_density(p, b[None, :], prior_cov[None])[:, 0]
            log_agg[start:start + chunk] = _logsumexp(_gauss2_log_density(p, means, covs), axis=1) - log_n
    else:
        d = codes.shape[1]
        inv_var = 1.0 / var
        # log N(z; μ_k, diag σ_k²) = −½ Σ_j (z_j² − 2 z_j μ_kj + μ_kj²)/σ_kj² − ½ Σ_j log σ_kj² − d/2 log 2π
        const = -0.5 * (np.sum(codes * codes * inv_var, axis=1) + np.sum(logvar, axis=1) + d * _LOG_2PI)
        mu_over_var = codes * inv_var
        radius2 = lambda lp: -2.0 * lp - d * _LOG_2PI
        dof = d
        for start in range(0, len(points), chunk):
            z = np.asarray(projection.inverse(points[start:start + chunk]), dtype=np.float64)
            log_prior[start:start + chunk] = -0.5 * (np.sum(z * z, axis=1) + d * _LOG_2PI)
            comp = -0.5 * ((z * z) @ inv_var.T) + z @ mu_over_var.T + const[None, :]
            log_agg[start:start + chunk] = _logsumexp(comp, axis=1) - log_n
    from scipy.stats import chi2

    log_prior, log_agg = log_prior.reshape(shape), log_agg.reshape(shape)
    ratio = np.clip(log_prior - log_agg, -clip, clip).astype(np.float32)
    quantile = chi2.cdf(np.clip(radius2(log_prior), 0.0, None), dof).astype(np.float32)
    return HolesMap(ratio, log_prior, log_agg, quantile, tuple(float(v) for v in extent), linear is not None,
                    len(codes), float(clip))


# ---------------------------------------------------------------------------------------
# Pixel samples from p(x|z)
# ---------------------------------------------------------------------------------------
def likelihood_samples(model, means, n: int = 4, *, seed: int = 0) -> np.ndarray:
    """``n`` pixel samples from p(x|z) around decoded means, ``n×C×H×W`` float32.

    ``means`` (``C×H×W``, what ``decode`` returns) are the likelihood's means. A Bernoulli
    model draws each pixel on or off with its mean as the probability; a Gaussian one adds
    ``N(0, gaussian_std²)`` noise per pixel (values may leave [0, 1]; displays clip them).

    Raises
    ------
    ValueError
        When the model does not say which likelihood it uses (a model written elsewhere
        without ``LIKELIHOOD``).
    """
    config = getattr(model, "config", None)
    likelihood = getattr(config, "likelihood", None)
    if likelihood not in ("bernoulli", "gaussian"):
        raise ValueError("This model does not say which likelihood p(x|z) it uses, so there is nothing to sample.")
    means = np.clip(np.asarray(means, dtype=np.float32), 0.0, 1.0)
    rng = np.random.default_rng(seed)
    shape = (int(n), *means.shape)
    if likelihood == "bernoulli":
        return (rng.random(shape, dtype=np.float32) < means).astype(np.float32)
    std = np.float32(config.gaussian_std)
    return (means + std * rng.standard_normal(shape, dtype=np.float32)).astype(np.float32)
