"""Fixtures shared by the state and the window tests; nothing here imports Qt.

Qt fixtures (settings isolation, ``make_main_window``) live in ``ui/conftest.py`` so that
``tests/explorer/state`` runs where Qt is not installed.
"""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread_for_the_gui():
    import torch

    # The GUI thread decodes small batches; training sets its own thread count.
    torch.set_num_threads(1)


# -- documents ------------------------------------------------------------------------------------
def document_with(data, model, *, history=None, encode: bool = False):
    """An ExplorerState on ``data`` with ``model`` (and ``history``); with ``encode``, its codes too."""
    from explorer.state import ExplorerState

    state = ExplorerState()
    state.set_dataset(data)
    state.set_model(model, history=history)
    if encode:
        state.encode()
    return state


def trained_document(data, model_name: str = "mlp", latent_dim: int = 4, **config):
    """An ExplorerState on ``data`` with a model trained for 3 epochs, and its codes."""
    import torch

    from vae_core import TrainConfig, build_model, fit

    torch.manual_seed(0)
    torch.set_num_threads(1)
    model = build_model(model_name, image_shape=data.image_shape, latent_dim=latent_dim, hidden=(64,), **config)
    history = fit(model, data, TrainConfig(epochs=3, batch_size=64, lr=3e-3, seed=0))
    return document_with(data, model, history=history, encode=True)


@pytest.fixture(scope="module")
def digits():
    from vae_core import load_dataset

    return load_dataset("digits")


@pytest.fixture(scope="module")
def make_document(digits):
    """``make_document(model, history=None, encode=False)``: :func:`document_with` on digits."""
    return lambda model, **kwargs: document_with(digits, model, **kwargs)


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


# -- damaged checkpoints (the bundled example, broken in the ways files break) --------------------
def _break_config(folder, change):
    import json

    document = json.loads((folder / "config.json").read_text())
    change(document)
    (folder / "config.json").write_text(json.dumps(document))


def _truncate(file, keep):
    data = file.read_bytes()
    file.write_bytes(data[:keep(len(data))])


EXAMPLE_CHECKPOINT = Path(__file__).resolve().parents[2] / "assets" / "digits-mlp-2d"

#: Checkpoints that cannot be opened: name → how the bundled example's folder is broken.
UNLOADABLE = {
    "truncated_weights": lambda d: _truncate(d / "model.safetensors", lambda n: n // 2),
    "config_of_wrong_types": lambda d: _break_config(d, lambda doc: doc["config"].update(latent_dim="two",
                                                                                          hidden={"a": 1})),
    "config_not_an_object": lambda d: _break_config(d, lambda doc: doc.update(config=[1, 2])),
    "absurd_latent_dim": lambda d: _break_config(d, lambda doc: doc["config"].update(latent_dim=10**12)),
    "config_not_json": lambda d: (d / "config.json").write_bytes(b"\x00\x01{not json"),
}
#: Checkpoints whose weights are fine but a side file is damaged: they open with a warning.
SIDE_FILE_DAMAGED = {
    "bad_history": lambda d: (d / "history.json").write_text('{"epoch": "x"'),
    "history_of_wrong_rows": lambda d: (d / "history.json").write_text('[{"epoch": 7, "train_loss": "low"}]'),
    "truncated_optimizer": lambda d: _truncate(d / "optimizer.safetensors", lambda n: 1000),
}


@pytest.fixture(scope="session")
def damaged_checkpoints(tmp_path_factory):
    """``{name: path}`` for every case of :data:`UNLOADABLE` and :data:`SIDE_FILE_DAMAGED`,
    plus ``truncated_single_file`` (a one-file checkpoint cut short)."""
    import shutil

    from vae_core import load_checkpoint, save_checkpoint

    root = tmp_path_factory.mktemp("damaged")
    paths = {}
    for name, damage in {**UNLOADABLE, **SIDE_FILE_DAMAGED}.items():
        paths[name] = shutil.copytree(EXAMPLE_CHECKPOINT, root / name)
        damage(paths[name])
    good = load_checkpoint(EXAMPLE_CHECKPOINT)
    single = save_checkpoint(root / "truncated_single_file.safetensors", good.model, dataset=good.dataset,
                             history=good.history)
    _truncate(single, lambda n: n - 100)
    paths["truncated_single_file"] = single
    return paths


# -- a sweep folder of tiny models (the Runs panel) ------------------------------------------------
SWEEP_BETAS = (0.25, 1.0, 4.0)
SWEEP_SEEDS = (0, 1)


def write_sweep_folder(folder, data, betas=SWEEP_BETAS, seeds=SWEEP_SEEDS, epochs: int = 3):
    """A folder in the layout of ``python -m vae_core sweep``: sweep.json, runs/<name>/, summary.json.

    Each run trains a 2-D mlp on ``data`` for ``epochs`` epochs; its summary row holds its
    settings and the last history entry's test metrics. Returns the summary rows.
    """
    import json

    import torch

    from vae_core import TrainConfig, build_model, fit, save_checkpoint

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sweep.json").write_text(json.dumps({"grid": {"beta": list(betas), "seed": list(seeds)},
                                                   "dataset": data.spec, "epochs": epochs}))
    rows = []
    for beta in betas:
        for seed in seeds:
            name = f"mlp-beta{beta:g}-seed{seed}"
            torch.manual_seed(seed)
            model = build_model("mlp", image_shape=data.image_shape, latent_dim=2, hidden=(32,))
            config = TrainConfig(epochs=epochs, batch_size=64, lr=3e-3, beta=beta, seed=seed, num_threads=1)
            history = fit(model, data, config)
            save_checkpoint(folder / "runs" / name, model, dataset=data, history=history,
                            train_config=config.to_dict())
            last = history[-1]
            rows.append({"name": name, "status": "finished", "model": "mlp", "beta": beta, "latent_dim": 2,
                         "seed": seed, "neg_elbo": last["test_neg_elbo"], "recon": last["test_recon"],
                         "kl": last["test_kl"], "active_units": last["test_active_units"],
                         "train_seconds": sum(e["seconds"] for e in history)})
    (folder / "summary.json").write_text(json.dumps(rows, indent=1))
    return rows


@pytest.fixture(scope="module")
def sweep_folder(tmp_path_factory, digits):
    """A 3 β × 2 seed sweep folder of 2-D mlps on digits (see :func:`write_sweep_folder`)."""
    folder = tmp_path_factory.mktemp("sweep") / "beta"
    write_sweep_folder(folder, digits)
    return folder
