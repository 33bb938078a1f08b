"""Reconstruction (MSE, PSNR, SSIM) and sample-quality (Fréchet distance, precision/recall) metrics."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from vae_core.data import load_dataset
from vae_core.errors import DatasetError
from vae_core.metrics import (feature_net, frechet_distance, mse, precision_recall, psnr, reconstruction_quality,
                              sample_quality, ssim)
from vae_core.registry import build_model


# -- reconstruction -------------------------------------------------------------------------

def test_mse_and_psnr_by_hand():
    a = np.zeros((2, 1, 4, 4))
    b = a.copy()
    b[0] += 0.1              # MSE 0.01 → 20 dB
    b[1, 0, 0, 0] = 1.0      # one pixel of 16 off by 1 → MSE 1/16 → 10·log10(16) dB
    np.testing.assert_allclose(mse(a, b), [0.01, 1 / 16])
    np.testing.assert_allclose(psnr(a, b), [20.0, 10 * math.log10(16)])
    assert psnr(a, a).tolist() == [100.0, 100.0]


def test_ssim_by_hand():
    # Uniform images: no variance, so SSIM is its luminance term (2μxμy + C1)/(μx² + μy² + C1).
    a = np.full((1, 1, 16, 16), 0.2)
    b = np.full((1, 1, 16, 16), 0.6)
    c1 = 0.01 ** 2
    assert ssim(a, b)[0] == pytest.approx((2 * 0.2 * 0.6 + c1) / (0.2 ** 2 + 0.6 ** 2 + c1))
    rng = np.random.default_rng(0)
    x = rng.random((3, 3, 28, 28))
    np.testing.assert_allclose(ssim(x, x), 1.0)
    noisy = np.clip(x + 0.2 * rng.standard_normal(x.shape), 0, 1)
    assert (ssim(x, noisy) < 0.95).all()
    # An 8×8 image gets the largest odd window that fits (7).
    assert ssim(np.full((1, 1, 8, 8), 0.5), np.full((1, 1, 8, 8), 0.5))[0] == pytest.approx(1.0)


def test_reconstruction_quality_of_a_model():
    data = load_dataset("digits")
    torch.manual_seed(0)
    model = build_model("mlp", image_shape=data.image_shape, latent_dim=2, hidden=(16,))
    result = reconstruction_quality(model, data.test, max_images=50)
    assert result["num_images"] == 50
    with torch.inference_mode():
        x = torch.from_numpy(data.test.images[:50])
        recon = model.decode(model.map_code(x)).numpy()
    assert result["mse"] == pytest.approx(float(mse(data.test.images[:50], recon).mean()))
    assert result["ssim"] == pytest.approx(float(ssim(data.test.images[:50], recon).mean()))


def test_uint8_images_are_read_as_value_over_255():
    from vae_core.data import ImageDataset

    data = load_dataset("digits")
    torch.manual_seed(0)
    model = build_model("mlp", image_shape=data.image_shape, latent_dim=2, hidden=(16,))
    as_bytes = np.round(data.test.images[:40] * 255).astype(np.uint8)
    as_floats = as_bytes.astype(np.float32) / np.float32(255)
    assert reconstruction_quality(model, ImageDataset(as_bytes, None)) == pytest.approx(
        reconstruction_quality(model, ImageDataset(as_floats, None)))
    np.testing.assert_allclose(mse(as_bytes, as_bytes[::-1]), mse(as_floats, as_floats[::-1]), rtol=1e-6)


# -- Fréchet distance ------------------------------------------------------------------------

def test_frechet_distance_of_identical_sets_is_zero():
    x = np.random.default_rng(0).standard_normal((500, 8))
    assert frechet_distance(x, x) == pytest.approx(0.0, abs=1e-8)


def test_frechet_distance_of_shifted_gaussians_is_the_squared_shift():
    x = np.random.default_rng(1).standard_normal((2000, 6))
    shift = np.array([1.0, -2.0, 0.5, 0.0, 3.0, 0.25])
    # Same samples shifted: identical covariances, so the trace term vanishes exactly.
    assert frechet_distance(x, x + shift) == pytest.approx(shift @ shift, rel=1e-8)


def test_frechet_distance_of_scaled_gaussians_by_hand():
    # Σ_a = I, Σ_b = s²I in F dimensions: Tr(I + s²I − 2sI) = F (1 − s)².
    x = np.random.default_rng(2).standard_normal((4000, 4))
    x = (x - x.mean(0)) @ np.linalg.inv(np.linalg.cholesky(np.cov(x, rowvar=False))).T  # exactly white
    assert frechet_distance(x, 3.0 * x) == pytest.approx(4 * (1 - 3.0) ** 2, rel=1e-6)


# -- precision / recall ----------------------------------------------------------------------

def test_precision_recall_of_identical_sets_is_one():
    x = np.random.default_rng(3).standard_normal((300, 5))
    assert precision_recall(x, x) == {"precision": 1.0, "recall": 1.0, "k": 3}


def test_precision_recall_by_hand():
    # Real points 0,1,2,3,4 on a line: with k = 1 each ball has radius 1, covering [−1, 5].
    real = np.arange(5.0)[:, None]
    # Fake: 0.5 inside, 5 on the boundary (inside: balls are closed), 10 and 11 outside →
    # precision 1/2. Fake radii (k = 1): 4.5, 4.5, 1, 1 → balls [−4, 5], [0.5, 9.5], ... cover
    # every real point.
    fake = np.array([[0.5], [5.0], [10.0], [11.0]])
    assert precision_recall(real, fake, k=1) == {"precision": 0.5, "recall": 1.0, "k": 1}
    # Fake points clustered at 100 cover no real point and lie in no real ball.
    far = np.array([[100.0], [100.5], [101.0]])
    assert precision_recall(real, far, k=1) == {"precision": 0.0, "recall": 0.0, "k": 1}


# -- sample quality of a model --------------------------------------------------------------

def test_sample_quality_trains_once_and_caches(tmp_path):
    data = load_dataset("digits")
    torch.manual_seed(0)
    model = build_model("mlp", image_shape=data.image_shape, latent_dim=2, hidden=(16,))
    state = torch.get_rng_state()
    first = sample_quality(model, data, num_samples=200, cache_dir=tmp_path, seed=1)
    assert torch.equal(state, torch.get_rng_state())
    assert first["feature_net"]["cached"] is False and first["feature_net"]["accuracy"] > 0.6
    assert "not comparable" in first["feature_space"]
    second = sample_quality(model, data, num_samples=200, cache_dir=tmp_path, seed=1)
    assert second["feature_net"]["cached"] is True
    for name in ("frechet_distance", "precision", "recall"):
        assert second[name] == first[name]
    # The real images against themselves, in the same network's features: FD 0, P = R = 1.
    net, _ = feature_net(data, seed=1, cache_dir=tmp_path)
    assert len(list(tmp_path.glob("*.safetensors"))) == 1
    with torch.inference_mode():
        feats = net.features(torch.from_numpy(data.test.images[:200])).double().numpy()
    assert frechet_distance(feats, feats) == pytest.approx(0.0, abs=1e-6)


def test_sample_quality_needs_labels(tmp_path):
    from dataclasses import replace

    data = load_dataset("digits")
    unlabeled = replace(data, train=replace(data.train, labels=None), test=replace(data.test, labels=None),
                        class_names=())
    model = build_model("mlp", image_shape=data.image_shape, latent_dim=2, hidden=(16,))
    with pytest.raises(DatasetError, match="labeled dataset"):
        sample_quality(model, unlabeled, num_samples=50, cache_dir=tmp_path)
