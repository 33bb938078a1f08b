"""The document with a model written elsewhere: no logvar, no likelihood, no training here."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest

MU_ONLY = textwrap.dedent('''
    import torch
    from torch import nn

    IMAGE_SHAPE = (1, 12, 12)
    LATENT_DIM = 3
    NAME = "mu-only"

    def build_model():
        torch.manual_seed(0)
        return nn.ModuleDict({"enc": nn.Linear(144, 3), "dec": nn.Linear(3, 144)})

    def encode(model, x):
        return model["enc"](x.flatten(1))

    def decode(model, z):
        return torch.sigmoid(model["dec"](z))
''')


@pytest.fixture
def mu_only(tmp_path):
    path = tmp_path / "mu_only.py"
    path.write_text(MU_ONLY)
    return path


def test_a_model_without_logvar_or_likelihood(mu_only, digits):
    from explorer.state import ExplorerState, describe_model, read_adapted_model
    from explorer.state.training import TrainingOptions, TrainingProblem, training_config

    model, data = read_adapted_model(mu_only, spec="digits", current=digits)
    # digits (8×8) is reloaded at the model's 12×12.
    assert data.spec == "digits" and data.image_shape == (1, 12, 12) and len(data.all()) == len(digits.all())
    state = ExplorerState()
    state.set_dataset(digits)
    state.adopt_adapted_model(model, data)
    assert state.dataset is data and state.display_name == "mu-only" and not state.dirty
    assert describe_model(state.model) == "mu-only · 3-D latent · likelihood not given · from mu_only.py"

    mu = state.encode()
    assert mu.shape == (len(data.all()), 3) and np.isfinite(mu).all()
    assert state.logvar is None             # the encoder's NaN widths are not kept as numbers
    assert state.code_stat("kl") is None
    np.testing.assert_allclose(state.code_stat("mean"), mu.mean(axis=0), rtol=1e-6)
    # Codes set by a job with NaN log-variances and a KL computed from them: both dropped.
    state.set_codes(mu, np.full_like(mu, np.nan), {"kl": np.full(3, np.nan), "mean": mu.mean(axis=0)})
    assert state.logvar is None and state.code_stat("kl") is None

    for capability in ("logvar", "likelihood", "evaluate", "train", "checkpoint"):
        assert state.limitation(capability) == model.limitations[capability]
    assert state.limitation("decode") is None and state.limitation("export") is None
    with pytest.raises(TrainingProblem) as problem:
        training_config(state, TrainingOptions())
    assert str(problem.value) == model.limitations["train"]


def test_our_models_can_do_everything(digits):
    from explorer.state import ExplorerState
    from vae_core import build_model
    from vae_core.adapter import CAPABILITIES

    state = ExplorerState()
    assert state.limitation("train") is None   # no model: nothing to refuse
    state.set_dataset(digits)
    state.set_model(build_model("mlp", image_shape=digits.image_shape, latent_dim=2, hidden=(8,)))
    assert all(state.limitation(name) is None for name in CAPABILITIES)
    state.encode()
    assert state.logvar is not None and state.code_stat("kl") is not None


def test_a_dataset_the_model_cannot_read_is_one_sentence(mu_only, tmp_path):
    from explorer.state import read_adapted_model
    from vae_core.errors import AdapterError

    rgb = tmp_path / "rgb.npz"
    np.savez(rgb, x=np.random.default_rng(0).random((20, 12, 12, 3)).astype(np.float32))
    with pytest.raises(AdapterError, match=r"reads 1×12×12 images but the dataset has 3×12×12 images"):
        read_adapted_model(mu_only, spec=f"npz:{rgb}")
