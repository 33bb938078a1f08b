"""Per-point measures (vae_core.measures) against direct vae_core computations."""

import numpy as np
import pytest
import torch

from vae_core import build_model, list_models
from vae_core.data import ImageDataset
from vae_core.errors import Cancelled, ConfigError
from vae_core.latent import encode_dataset
from vae_core.measures import MEASURES, cluster_codes, compute_measures, nearest_distances
from vae_core.metrics import iwae_nll

N = 40


def _model(name, data, latent_dim=3):
    config = {"image_shape": data.image_shape, "latent_dim": latent_dim}
    if name == "cvae":
        config["num_classes"] = data.num_classes
    if name == "hvae":
        config.update(lower_dims=(4,), hidden=(32, 16))
    if name == "vqvae":
        config.update(latent_dim=2, codebook_size=16)
    torch.manual_seed(0)
    return build_model(name, **config)


def _batch(digits):
    return digits.test.images[:N], digits.test.labels[:N]


@pytest.mark.parametrize("name", [m for m in list_models() if m != "vqvae"])
def test_iwae_log_likelihood_is_minus_the_metrics_iwae_nll(name, digits):
    images, labels = _batch(digits)
    model = _model(name, digits)
    measures = compute_measures(model, images, labels, k=16, seed=3, batch_size=N, clusters=False)
    direct = iwae_nll(model, ImageDataset(images, labels), 16, seed=3, batch_size=N)
    np.testing.assert_allclose(measures["iwae_ll"], -direct["nll_per_image"], rtol=1e-10)
    assert set(measures.values) == set(MEASURES) - {"cluster"}
    assert not measures.unavailable


@pytest.mark.parametrize("name", [m for m in list_models() if m != "vqvae"])
def test_elbo_terms_are_the_models_importance_terms(name, digits):
    """recon, kl and −ELBO per image from the model's own terms over the same k samples."""
    images, labels = _batch(digits)
    model = _model(name, digits)
    measures = compute_measures(model, images, labels, k=16, seed=5, batch_size=N, clusters=False)
    model.eval()
    with torch.no_grad():
        terms = model.importance_terms(torch.from_numpy(images), torch.from_numpy(labels), 16,
                                       torch.Generator().manual_seed(5))
    np.testing.assert_allclose(measures["recon_nll"], -terms.log_likelihood.double().mean(0).numpy(), rtol=1e-6)
    np.testing.assert_allclose(measures["kl"], terms.kl.double().numpy(), rtol=1e-6)
    np.testing.assert_allclose(measures["neg_elbo"], measures["recon_nll"] + measures["kl"])
    # Per image, the k-sample IWAE bound is at least the mean log-weight of its samples.
    assert (measures["iwae_ll"] >= terms.log_weights.double().mean(0).numpy() - 1e-9).all()


def test_gaussian_measures_match_the_loss_of_single_images(digits):
    """With σ → 0 every sample is μ: recon and −ELBO are model.loss of each image alone."""
    images, labels = _batch(digits)
    model = _model("mlp", digits)
    with torch.no_grad():
        model.to_logvar.weight.zero_()
        model.to_logvar.bias.fill_(-30.0)
    measures = compute_measures(model, images, k=8, seed=0, batch_size=7, clusters=False)
    model.eval()
    for i in range(N):
        with torch.no_grad():
            loss = model.loss(torch.from_numpy(images[i:i + 1]))
        assert measures["recon_nll"][i] == pytest.approx(float(loss["recon"]), rel=1e-5)
        assert measures["kl"][i] == pytest.approx(float(loss["kl"]), rel=1e-6)
        assert measures["neg_elbo"][i] == pytest.approx(float(loss["loss"]), rel=1e-5)
    np.testing.assert_allclose(measures["posterior_std"], np.exp(-15.0), rtol=1e-5)


@pytest.mark.parametrize("name", ["mlp", "hvae", "iaf", "cvae"])
def test_posterior_sigma_is_the_mean_of_the_encoders_sigma(name, digits):
    images, labels = _batch(digits)
    model = _model(name, digits)
    measures = compute_measures(model, images, labels, k=1, clusters=False)
    _, logvar = encode_dataset(model, images, labels)
    np.testing.assert_allclose(measures["posterior_std"], np.exp(0.5 * logvar.astype(np.float64)).mean(1),
                               rtol=1e-6)


def test_vqvae_gives_only_what_is_defined_and_says_why(digits):
    images, _ = _batch(digits)
    model = _model("vqvae", digits)
    measures = compute_measures(model, images, k=4, clusters=False)
    assert "iwae_ll" not in measures and "posterior_std" not in measures
    assert "point mass" in measures.unavailable["iwae_ll"]
    assert "point mass" in measures.unavailable["posterior_std"]
    model.eval()
    for i in range(0, N, 9):
        x = torch.from_numpy(images[i:i + 1])
        with torch.no_grad():
            loss = model.loss(x)
        assert measures["recon_nll"][i] == pytest.approx(float(loss["recon"]), rel=1e-5)
        assert measures["kl"][i] == pytest.approx(float(loss["kl"]), rel=1e-5)


@pytest.mark.parametrize("dims", [5, 16])   # a k-d tree, then brute force
def test_nearest_distance_is_the_brute_force_one(dims):
    rng = np.random.default_rng(0)
    codes = rng.normal(size=(300, dims)).astype(np.float32)
    codes[17] = codes[200]   # twins are at distance 0, whichever sorts first
    got = nearest_distances(codes)
    diff = codes[:, None, :].astype(np.float64) - codes[None, :, :]
    d = np.sqrt((diff ** 2).sum(-1))
    np.fill_diagonal(d, np.inf)
    np.testing.assert_allclose(got, d.min(1), rtol=1e-5, atol=1e-6)
    assert got[17] == 0 and got[200] == 0
    assert np.isnan(nearest_distances(codes[:1])).all()


def _blobs(n_per, seed=0):
    rng = np.random.default_rng(seed)
    centres = np.array([[0, 0, 0], [20, 0, 0], [0, 20, 0]], dtype=np.float32)
    truth = np.repeat(np.arange(3), n_per)
    return (centres[truth] + rng.normal(size=(len(truth), 3))).astype(np.float32), truth


def _same_partition(a, b):
    pairs = set(zip(a.tolist(), b.tolist()))
    return len(pairs) == len(set(a.tolist())) == len(set(b.tolist()))


@pytest.mark.parametrize("max_fit", [10_000, 150])
def test_clusters_find_separated_blobs(max_fit):
    codes, truth = _blobs(200)
    ids = cluster_codes(codes, max_fit=max_fit, min_cluster_size=20)
    assert ids.dtype == np.int64 and len(ids) == len(codes)
    core = ids >= 0
    assert core.mean() > 0.9
    assert _same_partition(ids[core], truth[core])
    assert len(set(ids[core].tolist())) == 3


def test_progress_cancel_and_training_mode(digits):
    images, labels = _batch(digits)
    model = _model("mlp", digits)
    model.train()
    seen = []
    measures = compute_measures(model, images, k=2, batch_size=16, progress=lambda d, t: seen.append((d, t)))
    assert seen[0] == (16, N) and seen[-1] == (N, N)
    assert model.training
    assert len(measures) == N and measures["cluster"].shape == (N,)
    calls = []
    with pytest.raises(Cancelled):
        compute_measures(model, images, k=2, batch_size=16, should_stop=lambda: calls.append(1) or len(calls) > 2)
    assert model.training


def test_bad_settings_are_one_sentence(digits):
    images, labels = _batch(digits)
    model = _model("mlp", digits)
    with pytest.raises(ConfigError, match="k"):
        compute_measures(model, images, k=0)
    with pytest.raises(ConfigError, match="codes"):
        compute_measures(model, images, codes=np.zeros((3, 3), np.float32), logvar=np.zeros((3, 3), np.float32))
    with pytest.raises(ConfigError, match="conditional"):
        compute_measures(_model("cvae", digits), images)
