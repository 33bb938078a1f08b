"""ExplorerState without a window: documents, snapshots, training bookkeeping, checkpoints."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from explorer.state import (ExplorerState, build_model_for, describe_model, read_checkpoint, same_dataset)
from vae_core import CheckpointError, TrainConfig, fit, load_dataset
from vae_core.training import ShapeMismatchError

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def state(digits):
    s = ExplorerState()
    s.set_dataset(digits)
    s.set_model(build_model_for(digits, "mlp", latent_dim=2, hidden=(32,), seed=0))
    return s


def _record(signal):
    seen = []
    signal.connect(lambda *args: seen.append(args))
    return seen


def test_importing_the_state_does_not_load_torch():
    code = "import sys, explorer.state; s = explorer.state.ExplorerState(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_engine_names_stay_importable_from_the_state_module():
    from explorer.state import ShapeMismatchError as fromstate
    from explorer.state import load_checkpoint  # noqa: F401

    assert fromstate is ShapeMismatchError


def test_build_model_for_is_seeded_and_shaped_for_the_data(digits):
    a = build_model_for(digits, "mlp", latent_dim=3, hidden=(16, 8), seed=5)
    b = build_model_for(digits, "mlp", latent_dim=3, hidden=(16, 8), seed=5)
    c = build_model_for(digits, "mlp", latent_dim=3, hidden=(16, 8), seed=6)
    assert a.image_shape == digits.image_shape and a.latent_dim == 3
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))
    assert not all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), c.state_dict().values()))
    cvae = build_model_for(digits, "cvae", latent_dim=2, seed=0)
    assert cvae.conditional and cvae.num_classes == 10
    conv = build_model_for(digits, "conv", latent_dim=2, hidden=(64,), seed=0)
    assert conv.config.hidden == 64
    assert describe_model(a) == "mlp · 3-D latent · hidden 16-8 · Bernoulli"
    assert describe_model(None) == "No model"


def test_build_model_for_refuses_a_cvae_on_unlabelled_data(tmp_path):
    path = tmp_path / "x.npz"
    np.savez(path, x=np.random.default_rng(0).random((40, 8, 8)).astype(np.float32))
    data = load_dataset(f"npz:{path}")
    with pytest.raises(ShapeMismatchError, match="labelled"):
        build_model_for(data, "cvae", latent_dim=2)


def test_trainable_copy_is_independent_of_the_snapshot(state):
    copy = state.trainable_copy()
    assert copy is not state.model
    assert copy.training and all(p.requires_grad for p in copy.parameters())
    assert not any(p.requires_grad for p in state.model.parameters())
    with torch.no_grad():
        next(copy.parameters()).add_(1.0)
    assert not torch.equal(next(copy.parameters()), next(state.model.parameters()))


def test_training_bookkeeping_signals(state, digits):
    statuses = _record(state.training_status_changed)
    started = _record(state.training_started)
    finished = _record(state.training_finished)
    progress = _record(state.training_progressed)
    weights = _record(state.weights_changed)
    dirty = _record(state.dirty_changed)
    config = TrainConfig(epochs=2, batch_size=256, seed=0)
    state.begin_training(config)
    assert state.is_training and state.train_config["epochs"] == 2
    model = state.trainable_copy()
    from vae_core import iter_training

    history = []
    for report in iter_training(model, digits, config):
        state.record_progress(report)
        if report.kind == "epoch":
            history.append(report.history_entry)
            state.apply_weights(report.weights, history=history)
    state.end_training("completed")
    assert [s[0] for s in statuses] == ["running", "idle"]
    assert len(started) == 1 and finished == [("completed",)]
    assert len(progress) >= 2 and state.last_progress is progress[-1][0]
    assert len(weights) == 2 and dirty == [(True,)]
    assert state.epochs_trained == 2
    # The snapshot holds the trained weights; the trained module and the snapshot are different objects.
    for key, value in model.state_dict().items():
        assert torch.equal(value, state.model.state_dict()[key])
    assert state.kl_per_dim is not None and len(state.kl_per_dim) == 2
    with pytest.raises(ValueError):
        state.end_training("exploded")


def test_reconstruct_and_sample_decode_with_the_snapshot(state, digits):
    images = digits.test.images[:5]
    recon = state.reconstruct(images, digits.test.labels[:5])
    assert recon.shape == images.shape and np.all((recon >= 0) & (recon <= 1))
    a, b = state.sample(6, seed=3), state.sample(6, seed=3)
    assert a.shape == (6, 1, 8, 8) and np.array_equal(a, b)


def test_sample_from_a_conditional_model_cycles_labels(digits):
    s = ExplorerState()
    s.set_dataset(digits)
    s.set_model(build_model_for(digits, "cvae", latent_dim=2, hidden=(16,), seed=0))
    assert s.sample(12, seed=0).shape == (12, 1, 8, 8)


def test_save_and_read_checkpoint_round_trip(state, digits, tmp_path):
    fit(model := state.trainable_copy(), digits, TrainConfig(epochs=1, batch_size=256))
    state.apply_weights({k: v.clone() for k, v in model.state_dict().items()}, history=[{"epoch": 1}])
    assert state.dirty and state.display_name == "Untitled"
    with pytest.raises(ValueError, match="where to save"):
        state.save_checkpoint()
    saved = state.save_checkpoint(tmp_path / "m.safetensors")
    assert not state.dirty and state.display_name == "m" and state.checkpoint_path == saved

    # The dataset in memory is reused when it is the checkpoint's.
    ckpt, data = read_checkpoint(saved, current=state.dataset)
    assert data is state.dataset
    other = ExplorerState()
    other.adopt_checkpoint(ckpt, data)
    assert other.history == [{"epoch": 1}] and not other.dirty
    for key, value in state.model.state_dict().items():
        assert torch.equal(value, other.model.state_dict()[key])

    fresh, loaded = read_checkpoint(saved)
    assert loaded is not state.dataset and same_dataset(loaded, "digits")


@pytest.mark.parametrize("layout", ["folder", "model.safetensors"])
def test_groups_and_pins_are_saved_with_the_checkpoint_and_reopened_identically(state, digits, tmp_path, layout):
    state.encode()
    marks = state.marks
    marks.add_group([40, 3, 17, 3], name="loops")
    marks.add_group(np.arange(100, 160), name="sevens, tall")
    marks.add_group([5], name="G1", select=False)
    marks.add_pin(state.codes[5], name="five", index=5, label=int(state.labels[5]))
    saved = state.save_checkpoint(tmp_path / layout)
    sidecar = saved / "groups.json" if layout == "folder" else saved.with_name("model.groups.json")
    assert sidecar.is_file()

    reopened = ExplorerState()
    reopened.open_checkpoint(saved, dataset=digits)
    assert list(reopened.marks.groups) == ["loops", "sevens, tall", "G1"]
    for name, idx in marks.groups.items():
        np.testing.assert_array_equal(reopened.marks.groups[name], idx)
        assert reopened.marks.groups[name].dtype == np.int64
    assert [(p.name, p.index, p.label) for p in reopened.marks.pins] == [("five", 5, int(state.labels[5]))]

    # Without groups the side file goes, so an old one never comes back with the model.
    for name in list(marks.groups):
        marks.remove_group(name)
    state.save_checkpoint()
    assert not sidecar.exists()
    again = ExplorerState()
    again.open_checkpoint(saved, dataset=digits)
    assert again.marks.groups == {}


def test_damaged_or_foreign_groups_cost_the_groups_not_the_model(state, digits, tmp_path):
    state.marks.add_group([1, 2], name="a")
    saved = state.save_checkpoint(tmp_path / "m.safetensors")
    groups_file = saved.with_name("m.groups.json")
    data = json.loads(groups_file.read_text())
    data["groups"][0]["indices"] = [1, len(state.images) + 5]
    groups_file.write_text(json.dumps(data))
    reopened = ExplorerState()
    messages = _record(reopened.message_posted)
    reopened.open_checkpoint(saved, dataset=digits)
    assert reopened.model is not None and reopened.marks.groups == {}
    assert messages and messages[-1][0] == "warning" and "outside the dataset" in messages[-1][1]
    groups_file.write_text("{broken")
    with pytest.raises(ValueError, match="not a readable groups file"):
        reopened.marks.load_groups(groups_file)


def test_codes_handed_over_with_statistics_are_used_and_equal_fresh_ones(state):
    from explorer.state import code_stats

    mu = np.random.default_rng(0).normal(size=(50, 2)).astype(np.float32)
    logvar = np.full((50, 2), -1.0, dtype=np.float32)
    given = {name: value + 1.0 for name, value in code_stats(mu, logvar).items()}   # recognisably not recomputed
    state.set_codes(mu, logvar, given)
    np.testing.assert_array_equal(state.code_stat("kl"), given["kl"])
    state.set_codes(mu, logvar)   # same arrays, no statistics: computed from the codes
    expected_kl = (0.5 * (mu.astype(np.float64) ** 2 + np.exp(-1.0) + 1.0 - 1.0)).mean(0)
    np.testing.assert_allclose(state.code_stat("kl"), expected_kl)
    np.testing.assert_allclose(state.code_stat("std"), mu.std(0), rtol=1e-6)
    np.testing.assert_allclose(state.code_stat("var"), mu.var(0), rtol=1e-6)
    state.code_stat("mean")[:] = 99                                  # a copy: the cache is safe
    np.testing.assert_allclose(state.code_stat("mean"), mu.mean(0), rtol=1e-6)
    state.set_codes(mu, None)
    assert state.code_stat("kl") is None


def test_data_root_has_one_place(state, tmp_path):
    seen = _record(state.data_root_changed)
    state.set_data_root(str(tmp_path))
    state.set_data_root(tmp_path)        # the same folder: no signal
    state.set_data_root("")
    assert state.data_root is None and seen == [(tmp_path,), (None,)]


def test_open_checkpoint_errors_are_clear(tmp_path):
    s = ExplorerState()
    with pytest.raises(CheckpointError, match="No checkpoint"):
        s.open_checkpoint(tmp_path / "missing")
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError):
        s.open_checkpoint(bad)
    assert s.model is None


def test_read_checkpoint_refuses_a_dataset_that_does_not_fit(state, tmp_path):
    saved = state.save_checkpoint(tmp_path / "digits")
    path = tmp_path / "big.npz"
    np.savez(path, x=np.random.default_rng(0).random((30, 16, 16)).astype(np.float32))
    with pytest.raises(ShapeMismatchError, match="8×8"):
        read_checkpoint(saved, dataset=load_dataset(f"npz:{path}"))


def test_same_dataset_compares_spec_and_options(digits):
    assert same_dataset(digits, "digits")
    assert same_dataset(digits, "digits", {"seed": 0, "image_size": 8})
    assert not same_dataset(digits, "digits", {"seed": 1})
    assert not same_dataset(digits, "mnist")
    assert not same_dataset(digits, "not a dataset!")


def test_lazy_names_import_on_first_use_only(tmp_path, monkeypatch):
    from explorer.state.lazy import LazyModule, lazy_names

    (tmp_path / "le_lazy_probe.py").write_text("VALUE = 41\ndef answer():\n    return VALUE + 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "le_lazy_probe", raising=False)
    module = LazyModule("le_lazy_probe")
    getter = lazy_names("pkg", {"VALUE": "le_lazy_probe", "reply": "le_lazy_probe:answer"})
    assert "le_lazy_probe" not in sys.modules
    assert getter("reply")() == 42 and getter("VALUE") == 41 and module.VALUE == 41
    assert "le_lazy_probe" in sys.modules
    with pytest.raises(AttributeError, match="'pkg' has no attribute 'other'"):
        getter("other")
