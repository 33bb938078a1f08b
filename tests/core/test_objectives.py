"""The mathematics of the objectives and bounds, against exact answers."""

import math

import pytest
import torch

from vae_core import TrainConfig, build_model, fit
from vae_core.data import ImageDataset
from vae_core.metrics import iwae_nll
from vae_core.models.base import BaseVAE, normal_log_density
from vae_core.objectives import elbo, iwae, tc_decomposition, tcvae


@pytest.fixture(scope="module")
def trained_2d(digits):
    """Small models with a 2-D code, trained briefly so the posterior is informative."""
    models = {}
    for name, extra in (("mlp", {"hidden": (64,)}), ("iaf", {"hidden": (64,), "flow_steps": 2,
                                                             "flow_hidden": (16,), "context_dim": 8}),
                        ("hvae", {"latent_dim": 1, "lower_dims": (1,), "hidden": (32, 16), "depth": 1})):
        torch.manual_seed(0)
        model = build_model(name, image_shape=digits.image_shape, latent_dim=extra.pop("latent_dim", 2), **extra)
        fit(model, digits, TrainConfig(epochs=4, batch_size=64, lr=3e-3, seed=0))
        models[name] = model.double().eval()
    return models


def _images(digits, n=6):
    return torch.from_numpy(digits.test.images[:n]).double()


def _grid(lo=-6.0, hi=6.0, n=241):
    axis = torch.linspace(lo, hi, n, dtype=torch.float64)
    return axis, (axis[1] - axis[0]).item()


def _log_px_given_z(model, z, x):
    """log p(x_b | z_g) for every grid point g and image b: G×B."""
    with torch.no_grad():
        # hvae: the image depends on the bottom layer only (decode_logits takes the top).
        logits = model._logits_from_bottom(z) if model.name == "hvae" else model.decode_logits(z)
        out = []
        for b in range(x.shape[0]):
            out.append(-model.recon_nll(logits, x[b].expand_as(logits)))
        return torch.stack(out, 1)


def exact_log_px(model, x):
    """log p(x) = log ∫ p(x|z) p(z) dz by quadrature on a 241×241 grid over [-6, 6]²."""
    axis, step = _grid()
    if model.name == "hvae":  # z2 (top) and z1 (bottom), one dimension each
        z1 = axis[:, None]
        log_px = _log_px_given_z(model, z1, x)  # G1×B
        with torch.no_grad():
            prior_mu, prior_logvar = model._prior_params(0, axis[:, None])  # rows: z2
        log_p1_given_2 = normal_log_density(axis[None, :], prior_mu, prior_logvar)  # G2×G1
        log_joint = (log_px[None, :, :] + log_p1_given_2[:, :, None]
                     + normal_log_density(axis)[:, None, None])  # G2×G1×B
        return torch.logsumexp(log_joint.flatten(0, 1), 0) + 2 * math.log(step)
    zz = torch.cartesian_prod(axis, axis)
    log_joint = _log_px_given_z(model, zz, x) + normal_log_density(zz).sum(1, keepdim=True)
    return torch.logsumexp(log_joint, 0) + 2 * math.log(step)


def _iwae_bound(model, x, k, seed):
    with torch.no_grad():
        g = torch.Generator().manual_seed(seed)
        log_w = model.importance_weights(x, k, generator=g)
        return torch.logsumexp(log_w, 0) - math.log(k), log_w


@pytest.mark.parametrize("name", ["mlp", "iaf", "hvae"])
def test_iwae_bound_climbs_to_the_exact_log_likelihood(trained_2d, digits, name):
    model = trained_2d[name]
    x = _images(digits)
    log_px = exact_log_px(model, x)
    assert torch.isfinite(log_px).all()
    bounds = {k: _iwae_bound(model, x, k, seed=0)[0] for k in (1, 10, 1000)}
    # The ELBO is a lower bound: its many-sample mean stays below log p(x).
    elbo_mean = _iwae_bound(model, x, 4000, seed=1)[1].mean(0)
    assert (elbo_mean < log_px).all()
    assert (log_px - elbo_mean).mean() > 0.01  # the bound is not trivially tight here
    # Monotone in K (averaged over images, up to Monte Carlo noise with a fixed seed) ...
    means = [bounds[k].mean().item() for k in (1, 10, 1000)]
    assert means[0] < means[1] + 0.05 and means[1] < means[2] + 0.02
    # ... and at K=1000 within a small tolerance of the quadrature, per image.
    assert torch.allclose(bounds[1000], log_px, atol=0.05), (bounds[1000] - log_px)
    # The training objective is the same bound.
    with torch.no_grad():
        loss = iwae(model, x, samples=1000, generator=torch.Generator().manual_seed(0))["loss"]
    assert loss.item() == pytest.approx(-bounds[1000].mean().item(), abs=1e-9)
    # The metric gives the same estimate of the negative log-likelihood.
    calls = []
    result = iwae_nll(model, ImageDataset(x.float().numpy(), None), k=1000, seed=3, batch_size=4, max_rows=700,
                      progress=lambda done, total: calls.append((done, total)))
    assert result["nll"] == pytest.approx(-log_px.mean().item(), abs=0.05)
    assert calls[-1] == (6, 6)


def test_iwae_nll_is_reproducible_and_independent_of_chunking(trained_2d, digits):
    model = trained_2d["mlp"]
    data = ImageDataset(digits.test.images[:10], None)
    a = iwae_nll(model, data, k=200, seed=5, batch_size=10, max_rows=100)   # 10 samples per chunk
    b = iwae_nll(model, data, k=200, seed=5, batch_size=10, max_rows=100)
    c = iwae_nll(model, data, k=200, seed=6, batch_size=10, max_rows=100)
    assert (a["nll_per_image"] == b["nll_per_image"]).all()
    assert not (a["nll_per_image"] == c["nll_per_image"]).all()
    # Other chunk sizes draw other samples (torch's generator fills big tensors in another
    # order) but estimate the same thing.
    d = iwae_nll(model, data, k=200, seed=5, batch_size=10, max_rows=2000)
    assert d["nll"] == pytest.approx(a["nll"], abs=0.1)


def test_gaussian_kl_closed_form_matches_monte_carlo():
    torch.manual_seed(0)
    mu = torch.randn(4, 3, dtype=torch.float64) * 2
    logvar = torch.randn(4, 3, dtype=torch.float64)
    closed = BaseVAE.kl_per_dim(mu, logvar)
    n = 200_000
    eps = torch.randn(n, 4, 3, dtype=torch.float64)
    z = mu + eps * torch.exp(0.5 * logvar)
    samples = normal_log_density(z, mu, logvar) - normal_log_density(z)
    mc, err = samples.mean(0), samples.std(0) / math.sqrt(n)
    assert ((closed - mc).abs() < 4 * err + 1e-9).all(), (closed, mc)


def test_iaf_log_determinant_matches_the_autograd_jacobian(digits):
    torch.manual_seed(0)
    model = build_model("iaf", image_shape=digits.image_shape, latent_dim=4, flow_steps=3,
                        flow_hidden=(16,), context_dim=5).double()
    context = torch.randn(1, 5, dtype=torch.float64)
    for trial in range(3):
        z0 = torch.randn(1, 4, dtype=torch.float64) * 2
        z, log_det = model.flow(z0, context)
        jac = torch.autograd.functional.jacobian(lambda v: model.flow(v[None], context)[0][0], z0[0])
        sign, logabs = torch.linalg.slogdet(jac)
        assert sign > 0
        assert log_det.sum().item() == pytest.approx(logabs.item(), abs=1e-9)
        assert not torch.allclose(jac, torch.diag(jac.diagonal()))  # the flow mixes dimensions
    # One step has a triangular Jacobian, whose log-diagonal is the per-dimension term.
    one = build_model("iaf", image_shape=digits.image_shape, latent_dim=4, flow_steps=1,
                      flow_hidden=(16,), context_dim=5).double()
    z0 = torch.randn(1, 4, dtype=torch.float64)
    jac = torch.autograd.functional.jacobian(lambda v: one.flow(v[None], context)[0][0], z0[0])
    assert torch.allclose(jac, jac.tril()) and not torch.allclose(jac, torch.diag(jac.diagonal()))
    assert torch.allclose(one.flow(z0, context)[1][0], jac.diagonal().abs().log(), atol=1e-9)


def test_iaf_density_is_the_change_of_variables(digits):
    """log q(z_T|x) from importance_terms equals the base density minus the log-det."""
    torch.manual_seed(1)
    model = build_model("iaf", image_shape=digits.image_shape, latent_dim=2, flow_steps=2,
                        flow_hidden=(8,), context_dim=3).double()
    x = _images(digits, 3)
    g = torch.Generator().manual_seed(0)
    terms = model.importance_terms(x, k=4, generator=g)
    mu, logvar, context = model._base(x)
    g = torch.Generator().manual_seed(0)
    eps = torch.randn((4, 3, 2), dtype=torch.float64, generator=g)
    for k in range(4):
        for b in range(3):
            z0 = mu[b] + eps[k, b] * torch.exp(0.5 * logvar[b])
            jac = torch.autograd.functional.jacobian(lambda v: model.flow(v[None], context[b:b + 1])[0][0], z0)
            base = normal_log_density(z0, mu[b], logvar[b]).sum()
            expected = base - torch.linalg.slogdet(jac)[1]
            assert terms.log_posterior[k, b].item() == pytest.approx(expected.item(), abs=1e-9)


@pytest.mark.parametrize("name", ["mlp", "conv", "cvae", "hvae", "iaf", "vaegan"])
def test_iwae_with_one_sample_is_the_elbo(digits, name):
    torch.manual_seed(0)
    config = {"image_shape": digits.image_shape, "latent_dim": 3}
    if name == "cvae":
        config["num_classes"] = 10
    model = build_model(name, **config).double().eval()
    x = _images(digits, 8)
    y = torch.from_numpy(digits.test.labels[:8])
    for beta in (1.0, 0.3):
        a = iwae(model, x, y, samples=1, beta=beta, generator=torch.Generator().manual_seed(4))
        b = elbo(model, x, y, beta=beta, kl="sampled", generator=torch.Generator().manual_seed(4))
        assert a["loss"].item() == pytest.approx(b["loss"].item(), rel=1e-12, abs=1e-10)
        assert a["recon"].item() == b["recon"].item()
    # With K samples, the IWAE loss is at most the ELBO estimated from the same samples.
    c = iwae(model, x, y, samples=50, generator=torch.Generator().manual_seed(5))
    assert c["loss"] < c["neg_elbo"]
    # The closed-form ELBO and the sampled one agree in expectation.
    many = iwae(model, x, y, samples=4000, generator=torch.Generator().manual_seed(6))
    closed = elbo(model, x, y)
    if model.gaussian_posterior:
        assert many["neg_elbo"].item() == pytest.approx((many["recon"] + closed["kl"]).item(), abs=0.05)


def _factorised_batch(n=2000, d=2, std=0.3, seed=0):
    g = torch.Generator().manual_seed(seed)
    mu = torch.randn(n, d, generator=g, dtype=torch.float64)
    logvar = torch.full((n, d), math.log(std**2), dtype=torch.float64)
    z = mu + torch.randn(n, d, generator=g, dtype=torch.float64) * std
    return z, mu, logvar


def test_tc_decomposition_sums_to_the_kl():
    z, mu, logvar = _factorised_batch()
    for estimator in ("mss", "mws"):
        parts = tc_decomposition(z, mu, logvar, dataset_size=60_000, estimator=estimator)
        sampled_kl = (normal_log_density(z, mu, logvar) - normal_log_density(z)).sum(1)
        total = parts["mi"] + parts["tc"] + parts["dim_kl"]
        assert total.item() == pytest.approx(sampled_kl.mean().item(), abs=1e-9)
        closed = BaseVAE.kl_per_dim(mu, logvar).sum(1)
        err = sampled_kl.std() / math.sqrt(len(z))
        assert abs(total - closed.mean()) < 4 * err


def test_total_correlation_is_zero_for_factorised_codes_and_positive_for_correlated_ones():
    z, mu, logvar = _factorised_batch()
    tc_independent = tc_decomposition(z, mu, logvar, dataset_size=len(z))["tc"].item()
    assert abs(tc_independent) < 0.05
    # Make the second dimension copy the first: the aggregate posterior is a thin ridge.
    mu_c = mu.clone()
    mu_c[:, 1] = mu[:, 0] + 0.05 * mu[:, 1]
    z_c = mu_c + (z - mu)
    tc_correlated = tc_decomposition(z_c, mu_c, logvar, dataset_size=len(z))["tc"].item()
    assert tc_correlated > 0.5
    # The dimension-wise KL of N(0, 1 + σ²) marginals against N(0, 1) is small and positive.
    dim_kl = tc_decomposition(z, mu, logvar, dataset_size=len(z))["dim_kl"].item()
    expected = 2 * 0.5 * (0.09 - math.log(1.09))
    assert dim_kl == pytest.approx(expected, abs=0.05)


def test_importance_weights_of_the_batch_follow_chen_et_al():
    from vae_core.objectives import _log_importance_weights

    n, m = 10.0, 2.0  # data set size N, batch of M + 1 = 3
    strat = (n - m) / (n * m)
    expected = torch.tensor([[1 / n, strat, 1 / m],
                             [1 / m, 1 / n, strat],
                             [strat, 1 / m, 1 / n]], dtype=torch.float64)
    like = torch.zeros(1, dtype=torch.float64)
    assert torch.allclose(_log_importance_weights(3, 10, "mss", like).exp(), expected)
    # Each row weighs the data set as a whole: its weights sum to one.
    assert torch.allclose(expected.sum(1), torch.ones(3, dtype=torch.float64))
    assert torch.allclose(_log_importance_weights(3, 10, "mws", like).exp(), torch.full((3, 3), 1 / 30.0, dtype=torch.float64))


def test_tcvae_weights_each_term(digits):
    torch.manual_seed(0)
    model = build_model("mlp", image_shape=digits.image_shape, latent_dim=3).double()
    x = _images(digits, 64)
    terms = tcvae(model, x, alpha=2.0, beta=5.0, gamma=0.5, dataset_size=1000,
                  generator=torch.Generator().manual_seed(0))
    expected = terms["recon"] + 2.0 * terms["mi"] + 5.0 * terms["tc"] + 0.5 * terms["dim_kl"]
    assert terms["loss"].item() == pytest.approx(expected.item(), rel=1e-12)
    assert terms["kl"].item() == pytest.approx((terms["mi"] + terms["tc"] + terms["dim_kl"]).item(), rel=1e-12)
