import json
import os
import pickle

import pytest
import torch

from vae_core import CheckpointError, build_model, load_checkpoint, save_checkpoint
from vae_core.checkpoint import CONFIG_FILE, WEIGHTS_FILE


def _model(seed=0):
    torch.manual_seed(seed)
    return build_model("mlp", image_shape=(1, 8, 8), latent_dim=2, hidden=(16,))


class _Exploit:
    """Unpickling this object would create a file: proof that code ran."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("name", ["evil.safetensors", "evil.pt"])
def test_a_malicious_pickle_is_refused_without_running_it(tmp_path, name):
    marker = tmp_path / "pwned"
    path = tmp_path / name
    torch.save({"state_dict": _Exploit(str(marker))}, path)
    with pytest.raises(CheckpointError, match="pickle"):
        load_checkpoint(path)
    assert not marker.exists()


def test_a_pickle_hidden_in_a_checkpoint_folder_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = save_checkpoint(tmp_path / "c", _model())
    (path / WEIGHTS_FILE).write_bytes(pickle.dumps(_Exploit(str(marker))))
    with pytest.raises(CheckpointError):
        load_checkpoint(path)
    assert not marker.exists()


def test_tampered_weights_are_refused(tmp_path):
    path = save_checkpoint(tmp_path / "c", _model())
    weights = path / WEIGHTS_FILE
    data = bytearray(weights.read_bytes())
    data[-5] ^= 0xFF  # flip bits inside a tensor
    weights.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="do not match"):
        load_checkpoint(path)


def test_tampered_single_file_is_refused(tmp_path):
    path = save_checkpoint(tmp_path / "c.safetensors", _model())
    data = bytearray(path.read_bytes())
    data[-5] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="modified"):
        load_checkpoint(path)


def test_truncated_and_missing_files_give_clear_errors(tmp_path):
    path = save_checkpoint(tmp_path / "c", _model())
    (path / WEIGHTS_FILE).write_bytes((path / WEIGHTS_FILE).read_bytes()[:50])
    with pytest.raises(CheckpointError):
        load_checkpoint(path)
    (path / WEIGHTS_FILE).unlink()
    with pytest.raises(CheckpointError, match="missing"):
        load_checkpoint(path)
    with pytest.raises(CheckpointError, match="No checkpoint"):
        load_checkpoint(tmp_path / "nowhere")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError):
        load_checkpoint(junk)


def test_unknown_model_and_format_are_refused(tmp_path):
    path = save_checkpoint(tmp_path / "c", _model())
    doc = json.loads((path / CONFIG_FILE).read_text())
    (path / CONFIG_FILE).write_text(json.dumps({**doc, "model": "gan"}))
    with pytest.raises(CheckpointError, match="unknown model"):
        load_checkpoint(path)
    (path / CONFIG_FILE).write_text(json.dumps({**doc, "format_version": 99}))
    with pytest.raises(CheckpointError, match="format"):
        load_checkpoint(path)
    (path / CONFIG_FILE).write_text(json.dumps({**doc, "config": {**doc["config"], "latent_dim": 7}}))
    with pytest.raises(CheckpointError, match="shape"):
        load_checkpoint(path)


@pytest.mark.parametrize("crash_at", [1, 2])
def test_a_crash_mid_save_leaves_the_previous_checkpoint_intact(tmp_path, monkeypatch, crash_at):
    # crash_at=1: before the old folder moves aside; 2: between the two renames of the swap.
    path = save_checkpoint(tmp_path / "c", _model(0), history=[{"epoch": 1}])
    calls = {"n": 0}
    real_replace = os.replace

    def crashing_replace(src, dst):
        calls["n"] += 1
        if calls["n"] == crash_at:
            raise OSError("power cut")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", crashing_replace)
    with pytest.raises(OSError):
        save_checkpoint(path, _model(1), history=[{"epoch": 1}, {"epoch": 2}])
    monkeypatch.setattr(os, "replace", real_replace)
    loaded = load_checkpoint(path)
    expected = _model(0).state_dict()
    assert all(torch.equal(loaded.model.state_dict()[k], v) for k, v in expected.items())
    assert loaded.history == [{"epoch": 1}]
    # Overwriting works normally afterwards and leaves no temporary folders behind.
    save_checkpoint(path, _model(1), history=[{"epoch": 1}, {"epoch": 2}])
    assert load_checkpoint(path).history == [{"epoch": 1}, {"epoch": 2}]
    assert [p.name for p in tmp_path.iterdir()] == ["c"]


def test_extra_files_travel_with_the_folder(tmp_path):
    path = save_checkpoint(tmp_path / "c", _model(), extra_files={"projection.json": b"{}"})
    assert (path / "projection.json").read_bytes() == b"{}"
