"""One contract for every registered model × objective, plus the model family's specifics."""

import dataclasses
import itertools

import numpy as np
import pytest
import torch

from conftest import SHARED_DATA
from vae_core import TrainConfig, build_model, iter_training, list_models, load_checkpoint, save_checkpoint
from vae_core.objectives import list_objectives, supports

# Terms each objective (and vaegan's adversarial step) must report in progress and history.
OWN_TERMS = {"elbo": set(), "iwae": {"neg_elbo"}, "tcvae": {"mi", "tc", "dim_kl"}}


def _config_for(name, data, latent_dim=3):
    config = {"image_shape": data.image_shape, "latent_dim": latent_dim}
    if name == "cvae":
        config["num_classes"] = data.num_classes
    if name == "hvae":
        config.update(lower_dims=(4,), hidden=(32, 16))
    return config


def _small(data, n=256):
    return dataclasses.replace(data, train=dataclasses.replace(data.train, images=data.train.images[:n],
                                                               labels=data.train.labels[:n]))


# tcvae needs a factorised Gaussian posterior: hvae (layers depend on each other), iaf
# (a flow) and vqvae (a point mass on codes) do not have one; iwae needs a posterior to
# sample from, which vqvae's point mass is not. Those pairs are skipped, and
# check_objective says why in one sentence.
PAIRS = [(m, o) for m in list_models() for o in list_objectives()]


@pytest.mark.parametrize("model_name,objective", PAIRS)
def test_every_model_trains_with_every_objective(model_name, objective, digits, tmp_path):
    torch.manual_seed(0)
    model = build_model(model_name, **_config_for(model_name, digits))
    if not supports(model, objective):
        assert not model.gaussian_posterior
        with pytest.raises(ValueError, match="posterior") as refused:
            next(iter_training(model, digits, TrainConfig(objective=objective)))
        assert str(refused.value).count(". ") == 0  # one sentence
        pytest.skip(str(refused.value))
    assert isinstance(model.description, str) and model.description
    x = torch.from_numpy(digits.test.images[:8])
    y = torch.from_numpy(digits.test.labels[:8])
    # Shapes of the contract the app relies on.
    mu, logvar = model.encode(x, y)
    assert mu.shape == logvar.shape == (8, model.latent_dim)
    assert torch.equal(model.map_code(x, y), mu)
    images = model.decode(mu, y).detach()
    assert images.shape == x.shape and 0 <= images.min() and images.max() <= 1
    assert model.sample_posterior(x, 5, y).shape == (5, 8, model.latent_dim)
    assert model.importance_weights(x, 7, y).shape == (7, 8)

    data = _small(digits)
    config = TrainConfig(epochs=2, batch_size=32, lr=3e-3, objective=objective, samples=5, seed=3)
    before = model.eval().importance_weights(x, 50, y, torch.Generator().manual_seed(0)).mean().item()
    reports = list(iter_training(model, data, config))
    epochs = [r for r in reports if r.kind == "epoch"]
    own = OWN_TERMS[objective] | ({"gan", "disc", "feature"} if model_name == "vaegan" else set())
    for report in epochs:
        assert {"loss", "recon", "kl", "beta"} | own <= set(report.losses)
        assert all(np.isfinite(v) for v in report.losses.values())
        assert len(report.kl_per_dim) == model.latent_dim
    entry = epochs[-1].history_entry
    assert {f"train_{t}" for t in own} <= set(entry)
    after = model.eval().importance_weights(x, 50, y, torch.Generator().manual_seed(0)).mean().item()
    assert after > before  # a few steps raise the ELBO on held-out images

    # Exact checkpoint round-trip: same weights, same codes, same images, same weights
    # of the importance samples under the same seed.
    path = save_checkpoint(tmp_path / "ckpt", model, dataset=digits, train_config=config,
                           optimizer_state=epochs[-1].optimizer_state)
    loaded = load_checkpoint(path)
    assert loaded.train_config["objective"] == objective
    with torch.inference_mode():
        assert torch.equal(loaded.model.encode(x, y)[0], model.encode(x, y)[0])
        assert torch.equal(loaded.model.decode(mu.detach(), y), model.decode(mu.detach(), y))
        a = model.importance_weights(x, 4, y, torch.Generator().manual_seed(1))
        b = loaded.model.importance_weights(x, 4, y, torch.Generator().manual_seed(1))
        assert torch.equal(a, b)


@pytest.mark.parametrize("model_name,objective", [p for p in PAIRS if p[1] != "elbo"])
def test_cancel_mid_epoch(model_name, objective, digits):
    model = build_model(model_name, **_config_for(model_name, digits))
    if not supports(model, objective):
        pytest.skip("unsupported pair (see test_every_model_trains_with_every_objective)")
    gen = iter_training(model, digits, TrainConfig(epochs=50, batch_size=8, yield_interval=0.0,
                                                   objective=objective, samples=3))
    reports = list(itertools.islice(gen, 3))
    gen.close()
    assert [r.kind for r in reports] == ["step"] * 3 and not model.training
    x = torch.from_numpy(digits.test.images[:4])
    y = torch.from_numpy(digits.test.labels[:4])
    assert torch.isfinite(model.loss(x, y)["loss"])


def test_old_train_configs_still_load():
    old = {"epochs": 3, "batch_size": 64, "lr": 0.001, "beta": 1.0, "kl_anneal": "none", "warmup_epochs": 0.0,
           "anneal_cycles": 4, "seed": 0, "device": "auto", "num_threads": None, "yield_interval": 0.1,
           "eval_batch_size": 1000}
    config = TrainConfig.from_dict(old)
    assert (config.objective, config.samples, config.alpha, config.gamma) == ("elbo", 1, 1.0, 1.0)
    with pytest.raises(ValueError, match="objective"):
        TrainConfig(objective="elbow")
    with pytest.raises(ValueError, match="samples"):
        TrainConfig(samples=0)


def test_hvae_default_is_burda_two_layer_model_and_map_layers():
    model = build_model("hvae", image_shape=(1, 28, 28))
    assert model.sizes == [100, 50] and model.latent_dim == 50
    linear = [m for m in model.up.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linear] == [(784, 200), (200, 200), (100, 100), (100, 100)]
    assert isinstance(model.up[0][1], torch.nn.Tanh)
    x = torch.rand(5, 1, 28, 28).bernoulli()
    with torch.no_grad():
        top = model.encode(x)[0]
        # Decoding the top code runs the generative path with the lower layer at its mean.
        z1 = model._prior_params(0, top)[0]
        assert torch.equal(model.decode_logits(top), model._logits_from_bottom(z1))
    every = build_model("hvae", image_shape=(1, 28, 28), map_layer="all")
    every.load_state_dict(model.state_dict())
    assert every.latent_dim == 150
    with torch.no_grad():
        codes = every.encode(x)[0]
        assert torch.equal(codes[:, :50], top)
        bottom = build_model("hvae", image_shape=(1, 28, 28), map_layer="1")
        bottom.load_state_dict(model.state_dict())
        assert torch.equal(bottom.encode(x)[0], codes[:, 50:])
        assert torch.equal(every.decode(codes), bottom.decode(codes[:, 50:]))
    with pytest.raises(ValueError, match="map_layer"):
        build_model("hvae", image_shape=(1, 28, 28), map_layer="3")


def test_hvae_decodes_with_the_lower_layers_sampled_from_fixed_noise():
    torch.manual_seed(0)
    model = build_model("hvae", image_shape=(1, 28, 28), lower_dims=(20, 10), hidden=(64, 32, 16), latent_dim=4)
    model.eval()
    z = torch.randn(6, 4)
    with torch.no_grad():
        at_means = model.decode_logits(z)
        assert model.lower_layers == 2 and model.lower_noise_seed is None
        model.set_lower_noise(7)
        sampled = model.decode_logits(z)
        # The same draw as p(z2|z3) then p(z1|z2), written out: one noise row per layer, from the seed.
        g = torch.Generator().manual_seed(7)
        eps = [torch.randn(1, 20, generator=g), torch.randn(1, 10, generator=g)]
        h = z
        for i in (1, 0):
            mu, logvar = model._prior_params(i, h)
            h = mu + eps[i] * torch.exp(0.5 * logvar)
        assert torch.allclose(sampled, model._logits_from_bottom(h), atol=1e-6)
        assert not torch.allclose(sampled, at_means, atol=1e-3)
        # One fixed draw: decoding is a deterministic function of the code, row by row.
        assert torch.allclose(model.decode_logits(z[2:3]), sampled[2:3], atol=1e-5)
        model.set_lower_noise(8)
        assert not torch.allclose(model.decode_logits(z), sampled, atol=1e-3)
        model.set_lower_noise(None)
        assert torch.equal(model.decode_logits(z), at_means)
        model.set_lower_noise(7)
        model.set_map_code("2")
        assert model.lower_layers == 1 and model.lower_noise_seed == 7
        model.set_map_code("all")
        assert model.lower_layers == 0 and model.lower_noise_seed is None
        with pytest.raises(ValueError, match="no layers below"):
            model.set_lower_noise(1)
    with pytest.raises(ValueError, match="no layers below"):
        build_model("mlp", image_shape=(1, 28, 28)).set_lower_noise(1)


@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28), (3, 32, 32)])
def test_conv_hvae_uses_ladder_inference(shape):
    model = build_model("hvae", image_shape=shape, backbone="conv", latent_dim=4, lower_dims=(8,), hidden=(32, 16))
    assert model.top_down
    x = torch.rand(2, *shape)
    terms = model.importance_terms(x, k=3)
    assert terms.log_weights.shape == (3, 2) and torch.isfinite(terms.log_weights).all()
    assert model.sample(2).shape == (2, *shape)


def test_vaegan_discriminator_and_its_optimizer_state_resume(digits, tmp_path):
    torch.manual_seed(0)
    model = build_model("vaegan", **_config_for("vaegan", digits))
    assert any(k.startswith("discriminator.") for k in model.state_dict())
    data = _small(digits)
    config = TrainConfig(epochs=1, batch_size=64)
    epochs = [r for r in iter_training(model, data, config) if r.kind == "epoch"]
    history = [r.history_entry for r in epochs]
    state = epochs[-1].optimizer_state
    disc_ids = [i for i, (name, _) in enumerate(model.named_parameters()) if name.startswith("discriminator.")]
    assert disc_ids and all(i in state["state"] for i in disc_ids)  # Adam moments of D are kept
    path = save_checkpoint(tmp_path / "gan", model, dataset=data, history=history, optimizer_state=state)
    ckpt = load_checkpoint(path)
    for name, tensor in model.state_dict().items():
        assert torch.equal(ckpt.model.state_dict()[name], tensor), name
    for i in disc_ids:
        assert torch.equal(ckpt.optimizer_state["state"][i]["exp_avg"], state["state"][i]["exp_avg"])
    more = list(iter_training(ckpt.model, data, config, history=ckpt.history, optimizer_state=ckpt.optimizer_state))
    assert more[-1].epoch == 1 and "disc" in more[-1].losses


def _mnist_root():
    return SHARED_DATA if (SHARED_DATA / "MNIST" / "raw").is_dir() else None


@pytest.mark.skipif(_mnist_root() is None, reason="MNIST is not in ../shared/data")
def test_mnist_binarized_protocol():
    from vae_core.data import load_dataset

    a = load_dataset("mnist-binarized", data_root=_mnist_root())
    b = load_dataset("mnist-binarized", data_root=_mnist_root())
    assert a.spec == "mnist-binarized" and a.train.binarize and not a.test.binarize
    assert set(np.unique(a.test.floats())) == {0.0, 1.0}
    assert np.array_equal(a.test.images, b.test.images)  # binarized once, with a fixed seed
    assert np.array_equal(a.all().images[len(a.train):], a.test.images)
    # The training loop sees binary images, different in every epoch.
    # 64 copies of one image: the shuffle cannot change what the model sees, only the draws can.
    copies = np.repeat(a.train.images[:1], 64, axis=0)
    small = dataclasses.replace(a, train=dataclasses.replace(a.train, images=copies, labels=a.train.labels[:64]),
                                test=dataclasses.replace(a.test, images=a.test.images[:16], labels=a.test.labels[:16]))
    model = build_model("mlp", image_shape=a.image_shape, latent_dim=2, hidden=(16,))
    seen = []
    model.register_forward_pre_hook(lambda module, args: seen.append(args[0].detach().clone()) if module.training else None)
    list(iter_training(model, small, TrainConfig(epochs=2, batch_size=64)))
    assert len(seen) == 2
    for batch in seen:
        assert set(torch.unique(batch).tolist()) <= {0.0, 1.0}
    assert not torch.equal(seen[0], seen[1])
    assert abs(seen[0].mean().item() - small.train.floats().mean()) < 0.01


@pytest.mark.parametrize("model_name", ["iaf", "mlp"])
def test_sizing_on_the_meta_device_does_not_change_the_weights_drawn(model_name):
    # build_model sizes the model on the meta device first; that must not consume the RNG,
    # or the same seed would give other weights through build_model than through the class.
    from vae_core.registry import config_from_dict

    settings = {"image_shape": (1, 8, 8), "latent_dim": 3}
    torch.manual_seed(7)
    built = build_model(model_name, **settings).state_dict()
    torch.manual_seed(7)
    cls = type(build_model(model_name, **settings))
    torch.manual_seed(7)
    direct = cls(config_from_dict(model_name, settings)).state_dict()
    assert built.keys() == direct.keys()
    assert all(torch.equal(built[k], direct[k]) for k in built)
