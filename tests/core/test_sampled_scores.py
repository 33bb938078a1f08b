"""FactorVAE and β-VAE scores on a synthetic generative process with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from vae_core.data import load_dataset
from vae_core.errors import DatasetError
from vae_core.metrics import DatasetFactorSampler, beta_vae_score, factor_vae_score, model_representation

SIZES = (3, 4, 5)


def _grid_sampler():
    # The full grid of three factors; each "image" is its factor values (1×1×3).
    grid = np.stack(np.meshgrid(*[np.arange(s) for s in SIZES], indexing="ij"), -1).reshape(-1, len(SIZES))
    images = grid[:, None, None, :].astype(np.float32)
    return DatasetFactorSampler(images, grid, ("a", "b", "c")), grid


def _encoder(columns=(0, 1, 2), noise=0.01, seed=0):
    rng = np.random.default_rng(seed)

    def encode(images):
        x = images.reshape(len(images), -1)[:, list(columns)].astype(np.float64)
        return x + noise * rng.standard_normal(x.shape)
    return encode


COUNTS = dict(batch_size=16, num_train=200, num_eval=100, num_variance_estimate=500)


def test_sampler_looks_up_the_requested_factors():
    sampler, grid = _grid_sampler()
    rng = np.random.default_rng(0)
    factors = sampler.sample_factors(50, rng)
    assert factors.shape == (50, 3)
    np.testing.assert_array_equal(sampler.images(factors, rng).reshape(50, 3), factors)
    as_bytes = DatasetFactorSampler(np.full((len(grid), 1, 2, 2), 51, np.uint8), grid)
    np.testing.assert_allclose(as_bytes.images(factors, rng), 0.2)
    again = sampler.resample_except(factors, 1, rng)
    np.testing.assert_array_equal(again[:, 1], factors[:, 1])
    assert (again[:, [0, 2]] != factors[:, [0, 2]]).any()


def test_factor_vae_score_known_representations():
    sampler, _ = _grid_sampler()
    perfect = factor_vae_score(sampler, _encoder(), **COUNTS)
    assert perfect == {"train_accuracy": 1.0, "eval_accuracy": 1.0, "num_active_dims": 3}
    permuted = factor_vae_score(sampler, _encoder((2, 0, 1)), **COUNTS)
    assert permuted["eval_accuracy"] == 1.0
    constant = factor_vae_score(sampler, lambda images: np.zeros((len(images), 3)), **COUNTS)
    assert constant == {"train_accuracy": 0.0, "eval_accuracy": 0.0, "num_active_dims": 0}
    # Only factor a is encoded (twice): every vote lands on a dimension for a, the classifier
    # says "a" for both, and it is right on the third of the votes that fixed a.
    only_a = factor_vae_score(sampler, _encoder((0, 0)), **COUNTS)
    assert only_a["eval_accuracy"] == pytest.approx(1 / 3, abs=0.1)


def test_factor_vae_score_prunes_collapsed_dimensions():
    sampler, _ = _grid_sampler()

    def with_collapsed(images):
        codes = _encoder()(images)
        return np.concatenate([codes, 1e-3 * np.ones((len(codes), 2))], axis=1)
    assert factor_vae_score(sampler, with_collapsed, **COUNTS)["num_active_dims"] == 3


def test_beta_vae_score_known_representations():
    sampler, _ = _grid_sampler()
    counts = dict(batch_size=16, num_train=300, num_eval=150)
    assert beta_vae_score(sampler, _encoder(), **counts)["eval_accuracy"] == pytest.approx(1.0)
    assert beta_vae_score(sampler, _encoder((1, 2, 0)), **counts)["eval_accuracy"] == pytest.approx(1.0)
    # Codes that know nothing: the classifier can only guess among three factors.
    blind = beta_vae_score(sampler, lambda images: np.zeros((len(images), 3)), **counts)
    assert blind["eval_accuracy"] < 0.5


def test_scores_are_reproducible_by_seed():
    sampler, _ = _grid_sampler()
    noisy = dict(batch_size=4, num_train=50, num_eval=50, num_variance_estimate=100)
    first = factor_vae_score(sampler, _encoder(noise=1.0, seed=1), seed=3, **noisy)
    assert first == factor_vae_score(sampler, _encoder(noise=1.0, seed=1), seed=3, **noisy)


def test_dataset_sampler_from_shapes_and_a_model(tmp_path):
    import torch

    from vae_core.registry import build_model

    data = load_dataset("shapes:32", seed=0)
    sampler = DatasetFactorSampler.from_splits(data, n_bins=4)
    assert sampler.factor_names == ("shape", "scale", "rotation", "x", "y")
    torch.manual_seed(0)
    model = build_model("mlp", image_shape=data.image_shape, latent_dim=4, hidden=(32,))
    score = factor_vae_score(sampler, model, batch_size=8, num_train=20, num_eval=10, num_variance_estimate=200)
    assert 0.0 <= score["eval_accuracy"] <= 1.0
    codes = model_representation(model)(data.test.images[:5])
    assert codes.shape == (5, 4)
    digits = load_dataset("digits")
    with pytest.raises(DatasetError, match="no ground-truth factors"):
        DatasetFactorSampler.from_splits(digits)
