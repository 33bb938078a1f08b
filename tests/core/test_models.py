"""One contract for every registered model."""

import itertools

import pytest
import torch

from vae_core import (TrainConfig, build_model, iter_training, list_models, load_checkpoint,
                      save_checkpoint)


def _config_for(name, data, latent_dim=3):
    config = {"image_shape": data.image_shape, "latent_dim": latent_dim}
    if name == "cvae":
        config["num_classes"] = data.num_classes
    return config


def _batch(data, n=16):
    x = torch.from_numpy(data.train.images[:n])
    y = torch.from_numpy(data.train.labels[:n])
    return x, y


@pytest.fixture(params=list_models())
def model_name(request):
    return request.param


def test_registry_lists_the_builtin_models():
    assert {"mlp", "conv", "cvae", "hvae", "iaf", "vaegan", "vqvae"} <= set(list_models())


def test_shapes_and_finite_loss(model_name, digits):
    torch.manual_seed(0)
    model = build_model(model_name, **_config_for(model_name, digits))
    x, y = _batch(digits)
    mu, logvar = model.encode(x, y)
    # model.latent_dim is the map code's length (config.latent_dim except for grids: vqvae).
    assert mu.shape == logvar.shape == (16, model.latent_dim)
    images = model.decode(mu, y).detach()
    assert images.shape == x.shape
    assert float(images.min()) >= 0 and float(images.max()) <= 1
    terms = model.loss(x, y)
    assert set(terms) >= {"loss", "recon", "kl", "kl_per_dim"}
    assert all(torch.isfinite(v).all() for v in terms.values())
    assert terms["kl_per_dim"].shape == (model.latent_dim,)
    # vqvae adds its (already weighted) commitment term to the β-ELBO.
    assert torch.allclose(terms["loss"], terms["recon"] + terms["kl"] + terms.get("commitment", 0.0))


def test_gradients_reach_every_parameter(model_name, digits):
    model = build_model(model_name, **_config_for(model_name, digits)).train()
    x, y = _batch(digits)
    if hasattr(model, "train_step"):
        # Adversarial models train part of themselves on their own loss: one full step
        # must still move every parameter.
        before = {k: v.clone() for k, v in model.named_parameters()}
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        model.train_step(x, y, optimizer, lambda: model.loss(x, y), lambda loss: None)
        for name, p in model.named_parameters():
            assert not torch.equal(p, before[name]), name
        return
    model.loss(x, y)["loss"].backward()
    for name, p in model.named_parameters():
        if not p.requires_grad:  # trained by its own routine (vqvae's prior: vae_core.prior)
            assert name.startswith("prior."), name
            continue
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


@pytest.mark.parametrize("layout", ["folder", "file.safetensors"])
def test_checkpoint_round_trip_reproduces_outputs_exactly(model_name, digits, tmp_path, layout):
    torch.manual_seed(1)
    model = build_model(model_name, **_config_for(model_name, digits))
    # A few steps so batch-norm statistics and weights differ from a fresh init.
    gen = iter_training(model, digits, TrainConfig(epochs=1, batch_size=256, seed=1))
    for _ in gen:
        pass
    model.eval()
    x, y = _batch(digits)
    path = save_checkpoint(tmp_path / layout, model, dataset=digits, history=[{"epoch": 1}])
    loaded = load_checkpoint(path)
    assert loaded.model_name == model_name
    assert loaded.config == model.config
    assert loaded.dataset["spec"] == "digits"
    with torch.inference_mode():
        mu_a, lv_a = model.encode(x, y)
        mu_b, lv_b = loaded.model.encode(x, y)
        assert torch.equal(mu_a, mu_b)
        torch.testing.assert_close(lv_a, lv_b, rtol=0, atol=0, equal_nan=True)  # vqvae: all NaN
        assert torch.equal(model.decode(mu_a, y), loaded.model.decode(mu_b, y))


def test_cancel_stops_training_and_leaves_a_usable_model(model_name, digits):
    model = build_model(model_name, **_config_for(model_name, digits))
    config = TrainConfig(epochs=50, batch_size=8, yield_interval=0.0)
    gen = iter_training(model, digits, config)
    reports = list(itertools.islice(gen, 3))
    gen.close()  # what the GUI's Stop and worker.quit() do
    assert [r.kind for r in reports] == ["step"] * 3
    assert reports[-1].step < reports[-1].total_steps
    assert not model.training
    x, y = _batch(digits)
    assert torch.isfinite(model.loss(x, y)["loss"])


def test_unknown_config_keys_are_rejected():
    with pytest.raises(ValueError, match="Unknown setting"):
        build_model("mlp", image_shape=(1, 8, 8), latent_dimension=2)
    with pytest.raises(ValueError, match="Unknown model"):
        build_model("transformer")


@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28), (3, 32, 32), (1, 64, 64), (3, 64, 64)])
def test_conv_handles_every_dataset_size(shape):
    model = build_model("conv", image_shape=shape, latent_dim=4)
    x = torch.rand(2, *shape)
    logits, mu, logvar, z = model(x)
    assert logits.shape == x.shape and mu.shape == (2, 4)


def test_cvae_decodes_one_style_as_each_label(digits):
    model = build_model("cvae", **_config_for("cvae", digits))
    z = torch.zeros(10, 3)
    images = model.decode(z, torch.arange(10))
    assert images.shape == (10, 1, 8, 8)
    assert not torch.equal(images[0], images[1])  # the label changes the output
    with pytest.raises(ValueError, match="labels"):
        model.decode(z)
