"""TensorBoard event files hold exactly what training reported, read back with TensorBoard itself."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

pytest.importorskip("tensorboard")
from PIL import Image  # noqa: E402
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402

from vae_core import TrainConfig, build_model, fit, iter_training  # noqa: E402
from vae_core.tensorboard_log import TensorBoardLogger  # noqa: E402


def _read(log_dir) -> EventAccumulator:
    events = EventAccumulator(str(log_dir), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    events.Reload()
    return events


def _png(event) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(event.encoded_image_string)).convert("RGB"))


def _as_uint8(grid: torch.Tensor) -> np.ndarray:
    return (grid.permute(1, 2, 0).numpy() * 255).astype(np.uint8)


@pytest.fixture(scope="module")
def logged_run(tmp_path_factory, digits):
    model = build_model("mlp", image_shape=digits.image_shape, latent_dim=3, hidden=(32,))
    config = TrainConfig(epochs=2, batch_size=256, lr=1e-2, seed=0, yield_interval=0.0)
    log_dir = tmp_path_factory.mktemp("tb")
    logger = TensorBoardLogger(log_dir, model, digits.test, num_examples=6, num_samples=9)
    reports = []
    for report in iter_training(model, digits, config):
        logger.log_progress(report)
        reports.append(report)
    logger.close()
    return logger, reports, _read(log_dir)


def test_loss_terms_are_logged_at_every_report(logged_run):
    _, reports, events = logged_run
    assert any(r.kind == "step" for r in reports)
    for key in ("loss", "recon", "kl", "beta"):
        logged = [(e.step, e.value) for e in events.Scalars(f"train/{key}")]
        expected = [(r.step, r.losses[key]) for r in reports]
        assert [s for s, _ in logged] == [s for s, _ in expected]
        np.testing.assert_allclose([v for _, v in logged], [v for _, v in expected], rtol=1e-6)
    assert len(events.Scalars("speed/images_per_sec")) == len(reports)


def test_test_metrics_and_per_dimension_kl_are_logged_per_epoch(logged_run):
    _, reports, events = logged_run
    epochs = [r for r in reports if r.kind == "epoch"]
    for key in ("neg_elbo", "recon", "kl", "active_units"):
        logged = events.Scalars(f"test/{key}")
        assert [e.step for e in logged] == [r.step for r in epochs]
        np.testing.assert_allclose([e.value for e in logged], [r.test[key] for r in epochs], rtol=1e-6)
    for group, source in (("test_kl_per_dim", lambda r: r.test["kl_per_dim"]), ("train_kl_per_dim", lambda r: r.kl_per_dim)):
        tags = sorted(t for t in events.Tags()["scalars"] if t.startswith(group + "/"))
        assert tags == [f"{group}/z{i:02d}" for i in range(3)]
        for i, tag in enumerate(tags):
            np.testing.assert_allclose([e.value for e in events.Scalars(tag)], [source(r)[i] for r in epochs],
                                       rtol=1e-6)
    assert "model" in {t.split("/")[0] for t in events.Tags()["tensors"]}


def test_images_come_from_each_epochs_weight_snapshot(logged_run, digits):
    logger, reports, events = logged_run
    epochs = [r for r in reports if r.kind == "epoch"]
    for tag in ("reconstructions", "samples"):
        assert [e.step for e in events.Images(tag)] == [r.step for r in epochs]
    recon_events = events.Images("reconstructions")
    # 6 originals over 6 reconstructions of 8×8 images, 2-pixel padding: 2 rows, 6 columns.
    assert (recon_events[0].height, recon_events[0].width) == (2 * 10 + 2, 6 * 10 + 2)
    first = _png(recon_events[0])
    recon, samples = logger.epoch_images(epochs[0].weights)
    np.testing.assert_allclose(first, _as_uint8(recon), atol=1)
    np.testing.assert_allclose(_png(events.Images("samples")[0]), _as_uint8(samples), atol=1)
    # The top row shows the examples themselves.
    original = (digits.test.images[0, 0] * 255).astype(np.uint8)
    np.testing.assert_allclose(first[2:10, 2:10, 0], original, atol=1)
    # The second epoch's weights decode differently: an image from the live module at the end
    # of training would not match the first epoch.
    later, _ = logger.epoch_images(epochs[1].weights)
    assert np.abs(first.astype(int) - _as_uint8(later).astype(int)).max() > 10


def test_fit_callback_and_conditional_model(tmp_path, digits):
    model = build_model("cvae", image_shape=digits.image_shape, latent_dim=2, num_classes=10, hidden=(16,))
    with TensorBoardLogger(tmp_path, model, digits.test, num_examples=4, num_samples=10) as logger:
        fit(model, digits, TrainConfig(epochs=1, batch_size=512, seed=0), callbacks=[logger])
    events = _read(tmp_path)
    (samples,) = events.Images("samples")
    assert (samples.height, samples.width) == (3 * 10 + 2, 4 * 10 + 2)  # 10 samples on 3 rows of 4
    assert len(events.Images("reconstructions")) == 1
    assert len(events.Scalars("test/neg_elbo")) == 1


def test_without_a_model_only_scalars(tmp_path, digits):
    model = build_model("mlp", image_shape=digits.image_shape, latent_dim=2, hidden=(8,))
    with TensorBoardLogger(tmp_path) as logger:
        fit(model, digits, TrainConfig(epochs=1, batch_size=512), callbacks=[logger])
    events = _read(tmp_path)
    assert events.Tags()["images"] == [] and "test/neg_elbo" in events.Tags()["scalars"]
