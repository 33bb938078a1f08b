from pathlib import Path

import pytest
import torch

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    # Small CPU tensors: one thread is fastest and keeps parallel test runs from stalling.
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def digits():
    from vae_core.data import load_dataset

    return load_dataset("digits")


@pytest.fixture(scope="session")
def trained_digits_checkpoint(tmp_path_factory, digits):
    """A small mlp trained for a few epochs on digits, saved as a folder checkpoint."""
    from vae_core import TrainConfig, build_model, fit, save_checkpoint

    model = build_model("mlp", image_shape=digits.image_shape, latent_dim=4, hidden=(64,))
    config = TrainConfig(epochs=5, batch_size=64, lr=3e-3, seed=0)
    history = fit(model, digits, config)
    path = tmp_path_factory.mktemp("ckpt") / "digits-mlp"
    save_checkpoint(path, model, dataset=digits, history=history, train_config=config)
    return path
