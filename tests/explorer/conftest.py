"""Fixtures shared by the state and the window tests; nothing here imports Qt.

Qt fixtures (settings isolation, ``make_main_window``) live in ``ui/conftest.py`` so that
``tests/explorer/state`` runs where Qt is not installed.
"""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread_for_the_gui():
    import torch

    # The GUI thread decodes small batches; training sets its own thread count.
    torch.set_num_threads(1)


# -- documents with a briefly trained model (shared by the studio tests) -------------------------
def trained_document(data, model_name: str = "mlp", latent_dim: int = 4, **config):
    """An ExplorerState on ``data`` with a model trained for 3 epochs, and its codes."""
    import torch

    from explorer.state import ExplorerState
    from vae_core import TrainConfig, build_model, fit

    torch.manual_seed(0)
    torch.set_num_threads(1)
    model = build_model(model_name, image_shape=data.image_shape, latent_dim=latent_dim, hidden=(64,), **config)
    history = fit(model, data, TrainConfig(epochs=3, batch_size=64, lr=3e-3, seed=0))
    state = ExplorerState()
    state.set_dataset(data)
    state.set_model(model, history=history)
    state.encode()
    return state


@pytest.fixture(scope="module")
def digits():
    from vae_core import load_dataset

    return load_dataset("digits")


@pytest.fixture(scope="module")
def make_trained_document(digits):
    """``make_trained_document(model_name="mlp", latent_dim=4, **config)`` on digits."""
    return lambda *args, **kwargs: trained_document(digits, *args, **kwargs)


@pytest.fixture(scope="module")
def trained(make_trained_document):
    return make_trained_document()


@pytest.fixture
def state(trained):
    """A fresh document sharing the trained model and codes (cheap to build per test)."""
    from explorer.state import ExplorerState

    s = ExplorerState()
    s.set_dataset(trained.dataset)
    s.set_model(trained.model, history=trained.history)
    s.set_codes(trained.codes, trained.logvar)
    return s
