"""The model families in the document, without a window: saving and reopening, the map code
choice, posterior samples."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from explorer.state import ExplorerState, build_model_for

FAMILIES = [("hvae", dict(lower_dims=(6,), map_layer="all"), (16, 16)),
            ("iaf", dict(flow_steps=2), (16,)),
            ("vaegan", dict(gan_weight=0.5, feature_weight=2.0), (16,))]


@pytest.mark.parametrize("name, settings, hidden", FAMILIES)
@pytest.mark.parametrize("single_file", [False, True])
def test_every_family_saves_and_reopens_identically(name, settings, hidden, single_file, digits, tmp_path):
    document = ExplorerState()
    document.set_dataset(digits)
    document.set_model(build_model_for(digits, name, latent_dim=3, hidden=hidden, seed=2, settings=settings),
                       history=[{"epoch": 1, "train_loss": 1.0}])
    document.encode()
    document.marks.add_pin(document.codes[3], index=3)
    path = document.save_checkpoint(tmp_path / ("m.safetensors" if single_file else "m"))
    assert not any(p.suffix in (".pt", ".pkl", ".pickle") for p in tmp_path.rglob("*"))
    again = ExplorerState()
    again.open_checkpoint(path, dataset=digits)
    assert again.model.name == name and again.model.config == document.model.config
    a, b = document.model.state_dict(), again.model.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    again.encode()
    np.testing.assert_array_equal(again.codes, document.codes)
    np.testing.assert_array_equal(again.marks.pins[0].z, document.codes[3])
    assert again.history == document.history


def test_map_code_choice_keeps_the_weights_and_history_and_saves(digits, tmp_path):
    document = ExplorerState()
    document.set_dataset(digits)
    document.set_model(build_model_for(digits, "hvae", latent_dim=2, hidden=(16,), seed=0,
                                       settings={"lower_dims": (5,)}),
                       history=[{"epoch": 1, "test_kl_per_dim": [0.5, 0.0]}])
    events = []
    document.model_changed.connect(lambda m: events.append(m))
    weights = {k: v.clone() for k, v in document.model.state_dict().items()}
    document.encode()
    document.set_map_code("1")
    assert events == [document.model] and document.codes is None and len(document.history) == 1
    assert document.model.latent_dim == 5
    # The history's KL per dimension is the top layer's: not offered as this layer's.
    assert document.kl_per_dim is None and document.kl_of_another_code
    assert all(torch.equal(weights[k], v) for k, v in document.model.state_dict().items())
    codes = document.encode()
    assert codes.shape == (document.num_points, 5)
    # Decoding layer 1's code runs the path down from z1: the reconstruction of its mean.
    with torch.inference_mode():
        x = torch.from_numpy(document.images[:4])
        expected = document.model.decode(document.model.map_code(x)).numpy()
    np.testing.assert_allclose(document.decode(codes[:4]), expected, atol=1e-6)
    document.set_map_code("1")   # the same choice again: nothing happens
    assert len(events) == 1
    with pytest.raises(ValueError, match="top, 1, all"):
        document.set_map_code("3")
    path = document.save_checkpoint(tmp_path / "m")
    reopened = ExplorerState()
    reopened.open_checkpoint(path, dataset=digits)
    assert reopened.model.map_code_choice == "1"
    document.set_map_code("top")
    np.testing.assert_array_equal(document.kl_per_dim, [0.5, 0.0])
    assert not document.kl_of_another_code


def test_posterior_samples_are_seeded_draws_of_the_models_posterior(digits):
    document = ExplorerState()
    document.set_dataset(digits)
    document.set_model(build_model_for(digits, "iaf", latent_dim=2, hidden=(16,), seed=0))
    first = document.posterior_samples(5, 3, seed=4)
    assert first.shape == (3, *digits.image_shape)
    np.testing.assert_array_equal(first, document.posterior_samples(5, 3, seed=4))
    assert not np.array_equal(first, document.posterior_samples(5, 3, seed=5))
    with torch.inference_mode():
        z = document.model.sample_posterior(torch.from_numpy(document.images[5:6]), 3,
                                            generator=torch.Generator().manual_seed(4))[:, 0]
        np.testing.assert_allclose(first, document.model.decode(z).numpy(), atol=1e-6)
