"""The posterior on the map, the prior's holes, pixel samples, own images and inpainting."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import multivariate_normal

from vae_core import build_model, load_checkpoint
from vae_core.data import DatasetError, dataset_background, image_to_input
from vae_core.latent import (
    ellipse_outline,
    encode_dataset,
    holes_map,
    inpaint,
    iter_inpaint,
    likelihood_samples,
    posterior_cloud,
    posterior_ellipse,
)
from vae_core.projection import PCAProjection, make_projection


def _pca_with_affine(codes):
    proj = make_projection("pca").fit(codes)
    proj.affine = np.array([[0.8, -0.5, 0.3], [0.4, 1.3, -2.0]])   # not a similarity: a real test of W
    return proj


class _CurvedPCA(PCAProjection):
    """A projection that says it is not linear (as UMAP), so holes_map takes its latent-space path."""

    kind = "pca"

    def _linear_raw(self):
        return None


@pytest.fixture(scope="module")
def codes():
    rng = np.random.default_rng(1)
    mu = rng.normal(size=(300, 5)).astype(np.float32) * np.array([2.0, 1.0, 0.5, 0.3, 0.1], np.float32)
    logvar = rng.uniform(-3.0, 0.5, size=(300, 5)).astype(np.float32)
    return mu, logvar


def test_linear_map_reproduces_transform_for_dims_and_pca(codes):
    mu, _ = codes
    for proj in (make_projection("dims", i=3, j=1).fit(mu), _pca_with_affine(mu)):
        w, b = proj.linear_map()
        np.testing.assert_allclose(mu @ w.T + b, proj.transform(mu), rtol=1e-5, atol=1e-5)


def test_ellipse_is_the_encoders_sigma_through_the_projection(codes):
    mu, logvar = codes
    sigma = np.exp(0.5 * logvar[7].astype(np.float64))
    # dims: the ellipse's axes are the two dimensions' σ, read straight off the encoder
    dims = make_projection("dims", i=0, j=2).fit(mu)
    centre, cov = posterior_ellipse(dims, mu[7], logvar[7])
    np.testing.assert_allclose(centre, mu[7, [0, 2]], rtol=1e-6)
    np.testing.assert_allclose(cov, np.diag([sigma[0] ** 2, sigma[2] ** 2]), rtol=1e-6, atol=1e-12)
    # PCA with an affine: compared with samples of q(z|x) pushed through transform
    pca = _pca_with_affine(mu)
    centre, cov = posterior_ellipse(pca, mu[7], logvar[7])
    rng = np.random.default_rng(0)
    z = mu[7] + rng.standard_normal((200_000, 5)) * sigma
    xy = pca.transform(z.astype(np.float32))
    np.testing.assert_allclose(centre, xy.mean(0), atol=0.01 * np.sqrt(np.diag(cov)).max())
    np.testing.assert_allclose(cov, np.cov(xy.T), rtol=0.02, atol=0.02 * np.abs(cov).max())
    # the 1σ and 2σ outlines lie at Mahalanobis distance 1 and 2 of the sampled cloud
    inv = np.linalg.inv(np.cov(xy.T))
    for k in (1.0, 2.0):
        d = ellipse_outline(centre, cov, k) - xy.mean(0)
        np.testing.assert_allclose(np.sqrt(np.einsum("ni,ij,nj->n", d, inv, d)), k, rtol=0.02)


def test_ellipse_refuses_a_non_linear_projection_and_the_cloud_follows_transform(codes):
    mu, logvar = codes
    curved = _CurvedPCA().fit(mu)
    with pytest.raises(ValueError, match="not linear"):
        posterior_ellipse(curved, mu[0], logvar[0])
    cloud = posterior_cloud(curved, mu[0], logvar[0], 50, seed=3)
    eps = np.random.default_rng(3).standard_normal((50, 5)).astype(np.float32)
    z = mu[0] + eps * np.exp(0.5 * logvar[0])
    np.testing.assert_allclose(cloud, curved.transform(z), rtol=1e-6)
    np.testing.assert_array_equal(cloud, posterior_cloud(curved, mu[0], logvar[0], 50, seed=3))


def test_holes_on_a_linear_map_are_the_exact_2d_marginals(codes):
    mu, logvar = codes
    pca = _pca_with_affine(mu)
    few = slice(0, 3)
    holes = holes_map(pca, mu[few], logvar[few], (-6, -7, 6, 5), resolution=(7, 5), clip=1e6)
    assert holes.exact and holes.log_ratio.shape == (5, 7)
    xs = -6 + (np.arange(7) + 0.5) * 12 / 7
    ys = -7 + (np.arange(5) + 0.5) * 12 / 5
    grid = np.stack(np.meshgrid(xs, ys), -1)
    w, b = pca.linear_map()   # checked against transform above
    prior = multivariate_normal(b, w @ w.T).logpdf(grid)
    mixture = np.mean([multivariate_normal(w @ m + b, (w * np.exp(lv)) @ w.T).pdf(grid)
                       for m, lv in zip(mu[few].astype(np.float64), logvar[few].astype(np.float64))], axis=0)
    np.testing.assert_allclose(holes.log_prior, prior, rtol=1e-9)
    np.testing.assert_allclose(holes.log_aggregate, np.log(mixture), rtol=1e-7)
    np.testing.assert_allclose(holes.log_ratio, prior - np.log(mixture), rtol=1e-5)
    d = grid - b
    r2 = np.einsum("...i,ij,...j->...", d, np.linalg.inv(w @ w.T), d)
    np.testing.assert_allclose(holes.prior_quantile, 1.0 - np.exp(-r2 / 2), rtol=1e-5, atol=1e-6)  # χ² with 2 dof


def test_holes_off_a_linear_map_compare_latent_densities_at_the_inverse(codes):
    mu, logvar = codes
    curved = _CurvedPCA().fit(mu)
    holes = holes_map(curved, mu[:4], logvar[:4], (-3, -2, 3, 2), resolution=4, clip=1e6)
    assert not holes.exact
    xs = -3 + (np.arange(4) + 0.5) * 1.5
    ys = -2 + (np.arange(4) + 0.5) * 1.0
    pts = np.stack(np.meshgrid(xs, ys), -1).reshape(-1, 2)
    z = curved.inverse(pts).astype(np.float64)
    prior = multivariate_normal(np.zeros(5), np.eye(5)).logpdf(z)
    mixture = np.mean([multivariate_normal(m, np.diag(np.exp(lv))).pdf(z)
                       for m, lv in zip(mu[:4].astype(np.float64), logvar[:4].astype(np.float64))], axis=0)
    np.testing.assert_allclose(holes.log_prior.ravel(), prior, rtol=1e-9)
    np.testing.assert_allclose(holes.log_aggregate.ravel(), np.log(mixture), rtol=1e-6)
    from scipy.stats import chi2

    np.testing.assert_allclose(holes.prior_quantile.ravel(), chi2.cdf((z * z).sum(1), 5), rtol=1e-5, atol=1e-6)


def test_holes_are_high_far_from_the_data_and_low_on_it():
    rng = np.random.default_rng(0)
    mu = (rng.normal(size=(500, 2)) * 0.3 + np.array([2.5, 2.5])).astype(np.float32)
    logvar = np.full_like(mu, np.log(0.05))
    dims = make_projection("dims", i=0, j=1).fit(mu)
    holes = holes_map(dims, mu, logvar, (-4, -4, 4, 4), resolution=16, max_components=200)
    assert holes.components == 200
    cell = lambda x, y: holes.log_ratio[int((y + 4) / 0.5), int((x + 4) / 0.5)]
    assert cell(-1.0, -1.0) > 5.0          # prior mass, no data
    assert cell(2.5, 2.5) < -1.0           # the data
    assert np.abs(holes.log_ratio).max() <= holes.clip


def test_likelihood_samples_follow_the_models_likelihood():
    means = np.linspace(0, 1, 64, dtype=np.float32).reshape(1, 8, 8)
    bern = build_model("mlp", image_shape=(1, 8, 8), latent_dim=2, hidden=(8,))
    samples = likelihood_samples(bern, means, 4000, seed=0)
    assert set(np.unique(samples)) <= {0.0, 1.0}
    np.testing.assert_allclose(samples.mean(0), means, atol=0.04)
    gauss = build_model("mlp", image_shape=(1, 8, 8), latent_dim=2, hidden=(8,), likelihood="gaussian",
                        gaussian_std=0.2)
    samples = likelihood_samples(gauss, means, 4000, seed=0)
    np.testing.assert_allclose(samples.mean(0), means, atol=0.02)
    np.testing.assert_allclose(samples.std(0), 0.2, rtol=0.08)


def test_image_to_input_reads_files_and_arrays_like_a_folder(tmp_path, digits):
    from PIL import Image

    original = digits.test.images[3]                    # 1×8×8 in [0, 1]
    big = np.kron(original[0], np.ones((8, 8), np.float32))
    path = tmp_path / "digit.png"
    Image.fromarray((big * 255 + 0.5).astype(np.uint8)).convert("RGB").save(path)
    image = image_to_input(path, (1, 8, 8))
    assert image.shape == (1, 8, 8) and image.dtype == np.float32
    # Lanczos resampling rings a little at the blocks' edges
    assert np.abs(image - original).mean() < 0.05 and np.abs(image - original).max() < 0.2
    np.testing.assert_allclose(image_to_input(big, (1, 8, 8)), image, atol=1 / 255)
    # black ink on white paper reads as the dataset's light ink on dark
    assert dataset_background(digits.all().images) == "dark"
    # Stored as bytes (MNIST and folders are), the same images are still dark.
    assert dataset_background(np.round(digits.all().images * 255).astype(np.uint8)) == "dark"
    inverted = image_to_input(1.0 - big, (1, 8, 8), background="dark")
    np.testing.assert_allclose(inverted, image, atol=1.5 / 255)
    np.testing.assert_allclose(image_to_input(1.0 - big, (1, 8, 8)), 1.0 - image, atol=1.5 / 255)
    assert image_to_input(path, (3, 4, 4)).shape == (3, 4, 4)
    bad = tmp_path / "notes.png"
    bad.write_text("not an image")
    with pytest.raises(DatasetError, match="notes.png could not be read as an image"):
        image_to_input(bad, (1, 8, 8))
    with pytest.raises(DatasetError, match="is not an image"):
        image_to_input(np.zeros((4, 4, 7)), (1, 8, 8))


@pytest.fixture(scope="module")
def trained(trained_digits_checkpoint):
    return load_checkpoint(trained_digits_checkpoint).model.eval()


@pytest.mark.parametrize("method", ["iterate", "optimize"])
def test_inpainting_keeps_observed_pixels_and_fills_the_rest_better_than_the_masked_input(trained, digits, method):
    torch.manual_seed(0)
    images = digits.test.images[:60]
    observed = np.ones((8, 8), bool)
    observed[4:, :] = False                                   # the bottom half is erased
    filled_err, masked_err = [], []
    for image in images:
        steps = inpaint(trained, image, observed, steps=12, method=method)
        assert steps.shape == (13, 1, 8, 8)
        for step in steps:   # bit for bit, in every step
            np.testing.assert_array_equal(step[:, observed], image[:, observed])
        masked = np.where(observed, image, 0.0)
        filled_err.append(np.mean((steps[-1][:, ~observed] - image[:, ~observed]) ** 2))
        masked_err.append(np.mean((masked[:, ~observed] - image[:, ~observed]) ** 2))
    assert np.mean(filled_err) < 0.6 * np.mean(masked_err)


def test_optimising_the_code_raises_the_observed_pixels_likelihood(trained, digits):
    image = digits.test.images[5]
    observed = np.zeros((1, 8, 8), bool)
    observed[:, :, :5] = True
    steps = list(iter_inpaint(trained, image, observed, steps=30, method="optimize", lr=0.1))

    def objective(z):
        logits = trained.decode_logits(torch.from_numpy(z[None]))
        x = torch.from_numpy(image[None])
        nll = torch.nn.functional.binary_cross_entropy_with_logits(logits, x, reduction="none")[0][observed]
        return float(-nll.sum() - 0.5 * (z ** 2).sum())

    with torch.no_grad():
        values = [objective(s.code) for s in steps]
    assert values[-1] > values[0] + 1e-3
    assert values[-1] > max(values) - 0.05     # it climbed, and stays near the top


def test_inpainting_refuses_bad_input(trained):
    image = np.zeros((1, 8, 8), np.float32)
    with pytest.raises(ValueError, match="Unknown inpainting method"):
        inpaint(trained, image, np.ones((8, 8), bool), method="magic")
    with pytest.raises(ValueError, match="mask has shape"):
        inpaint(trained, image, np.ones((4, 4), bool))
    with pytest.raises(ValueError, match="this model reads"):
        inpaint(trained, np.zeros((1, 7, 7), np.float32), np.ones((7, 7), bool))


def test_encoded_codes_land_on_the_map_where_transform_puts_them(trained, digits):
    mu, _ = encode_dataset(trained, digits.all().images)
    proj = make_projection("pca").fit(mu)
    one, _ = encode_dataset(trained, digits.all().images[10:11])
    np.testing.assert_allclose(proj.transform(one)[0], proj.transform(mu)[10], rtol=1e-5)
