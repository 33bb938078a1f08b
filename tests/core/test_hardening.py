"""Faults and bad inputs that once ended in a traceback or a silently wrong result.

Disk-full and read-only tests use a real 1 MiB tmpfs where the machine allows mounting
one (root on Linux) and an injected ``OSError(ENOSPC)`` everywhere.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from vae_core import CheckpointError, build_model, load_checkpoint, save_checkpoint
from vae_core.checkpoint import CONFIG_FILE, HISTORY_FILE, OPTIMIZER_FILE
from vae_core.cli import main
from vae_core.errors import ConfigError, DatasetError, OutputError, ResourceError
from vae_core.export import export_animation


SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
TRAIN_BASE = ["train", "--dataset", "digits", "--epochs", "1", "--latent-dim", "2", "--hidden", "8",
              "--batch-size", "512", "--threads", "1", "--quiet"]


def _model(seed=0):
    torch.manual_seed(seed)
    return build_model("mlp", image_shape=(1, 8, 8), latent_dim=2, hidden=(8,))


def _with_optimizer(model):
    optimizer = torch.optim.Adam(model.parameters())
    model.loss(torch.rand(4, 1, 8, 8))["loss"].backward()
    optimizer.step()
    return optimizer.state_dict()


def run_main(argv):
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            status = main([str(a) for a in argv])
        except SystemExit as exc:
            status = exc.code
    lines = [line for line in err.getvalue().splitlines() if line.strip()]
    return status, lines


# -- disk full and read-only -------------------------------------------------------------
@pytest.fixture
def tiny_tmpfs(tmp_path):
    """A 1 MiB tmpfs, or skip where mounting is not allowed."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True)
    if result.returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def _fill(folder: Path) -> None:
    fd = os.open(folder / "filler", os.O_WRONLY | os.O_CREAT)
    try:
        with contextlib.suppress(OSError):
            while True:
                os.write(fd, b"\0" * 4096)
    finally:
        os.close(fd)


@pytest.mark.parametrize("name", ["c", "c.safetensors"])
def test_a_full_disk_keeps_the_previous_checkpoint(tiny_tmpfs, name):
    path = save_checkpoint(tiny_tmpfs / name, _model(0), history=[{"epoch": 1}])
    _fill(tiny_tmpfs)
    with pytest.raises(OutputError, match="disk is full") as info:
        save_checkpoint(path, build_model("mlp", image_shape=(1, 28, 28), latent_dim=20), history=[{"epoch": 1}])
    assert "\n" not in str(info.value)
    assert torch.equal(load_checkpoint(path).model.decoder[0].weight, _model(0).decoder[0].weight)
    assert sorted(p.name for p in tiny_tmpfs.iterdir()) == sorted([name, "filler"])


def test_a_full_disk_keeps_the_previous_export(tiny_tmpfs):
    frames = np.random.default_rng(0).random((3, 8, 8))
    path = export_animation(frames, tiny_tmpfs / "a.gif")
    before = path.read_bytes()
    _fill(tiny_tmpfs)
    with pytest.raises(OutputError, match="disk is full"):
        export_animation(np.random.default_rng(1).random((200, 64, 64)), path)
    assert path.read_bytes() == before


def test_a_read_only_folder_is_refused_before_training(tiny_tmpfs):
    subprocess.run(["mount", "-o", "remount,ro", str(tiny_tmpfs)], check=True)
    status, lines = run_main(["train", "--dataset", "digits", "--epochs", "1", "--out", tiny_tmpfs / "model"])
    assert status == 2 and len(lines) == 1
    assert "read-only" in lines[0]


@pytest.mark.parametrize("name", ["c", "c.safetensors"])
def test_an_injected_disk_full_keeps_the_previous_checkpoint(tmp_path, monkeypatch, name):
    path = save_checkpoint(tmp_path / name, _model(0))
    import vae_core.checkpoint as checkpoint

    real_write = checkpoint._write_file

    def half_then_full(file, data):
        real_write(file, data[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoint, "_write_file", half_then_full)
    with pytest.raises(OutputError, match="disk is full"):
        save_checkpoint(path, _model(1))
    monkeypatch.undo()
    assert torch.equal(load_checkpoint(path).model.decoder[0].weight, _model(0).decoder[0].weight)
    assert [p.name for p in tmp_path.iterdir()] == [name]


def test_an_injected_disk_full_during_an_export_gives_one_line(tmp_path, monkeypatch):
    model_path = tmp_path / "m"
    assert run_main([*TRAIN_BASE, "--out", model_path])[0] == 0
    out = tmp_path / "a.png"
    assert run_main(["interpolate", model_path, "--from", "0", "--to", "1", "--steps", "3", "--out", out])[0] == 0
    before = out.read_bytes()

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("vae_core.export._write_png", full)
    status, lines = run_main(["interpolate", model_path, "--from", "2", "--to", "3", "--steps", "3", "--out", out])
    assert status == 2 and len(lines) == 1 and "disk is full" in lines[0]
    assert out.read_bytes() == before


# -- leftovers and permissions -----------------------------------------------------------
def test_leftovers_of_a_killed_save_are_removed_by_the_next_save(tmp_path):
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale_dir = tmp_path / f".c.{dead.pid}-0badc0de.new"
    stale_dir.mkdir()
    (stale_dir / "model.safetensors").write_bytes(b"x" * 1000)
    legacy = tmp_path / ".c.safetensors.ab_cd123.tmp"
    legacy.write_bytes(b"x")
    live = tmp_path / f".c.{os.getpid()}-00000000.new"  # a save in progress in this process
    live.mkdir()
    save_checkpoint(tmp_path / "c", _model())
    save_checkpoint(tmp_path / "c.safetensors", _model())
    assert not stale_dir.exists() and not legacy.exists() and live.exists()


def test_checkpoints_follow_the_umask_like_exports(tmp_path):
    previous = os.umask(0o022)
    try:
        path = save_checkpoint(tmp_path / "c", _model())
        single = save_checkpoint(tmp_path / "c.safetensors", _model())
        gif = export_animation(np.zeros((2, 4, 4)), tmp_path / "a.gif")
    finally:
        os.umask(previous)
    assert path.stat().st_mode & 0o777 == 0o755
    assert (path / CONFIG_FILE).stat().st_mode & 0o777 == 0o644
    assert single.stat().st_mode & 0o777 == gif.stat().st_mode & 0o777 == 0o644


# -- damaged side files ------------------------------------------------------------------
def test_a_truncated_optimizer_file_costs_only_the_optimizer_state(tmp_path):
    model = _model()
    path = save_checkpoint(tmp_path / "c", model, optimizer_state=_with_optimizer(model), history=[{"epoch": 1}])
    raw = (path / OPTIMIZER_FILE).read_bytes()
    (path / OPTIMIZER_FILE).write_bytes(raw[: len(raw) // 2])
    ckpt = load_checkpoint(path)
    assert ckpt.optimizer_state is None and ckpt.history == [{"epoch": 1}]
    assert len(ckpt.warnings) == 1 and "optimizer" in ckpt.warnings[0]
    assert torch.equal(ckpt.model.decoder[0].weight, model.decoder[0].weight)


def test_an_optimizer_state_of_the_wrong_shape_is_dropped(tmp_path):
    other = build_model("mlp", image_shape=(1, 8, 8), latent_dim=3, hidden=(8,))
    path = save_checkpoint(tmp_path / "c", _model(), optimizer_state=_with_optimizer(other))
    ckpt = load_checkpoint(path)
    assert ckpt.optimizer_state is None and "optimizer" in ckpt.warnings[0]


@pytest.mark.parametrize("history", [
    [{"epoch": 1}, {"epoch": 7}],
    [{"epoch": "1"}],
    {"epoch": 1},
    [{"epoch": 1, "train_loss": {"x": 1}}],
])
def test_a_malformed_history_is_dropped_not_copied(tmp_path, history):
    path = save_checkpoint(tmp_path / "c", _model())
    (path / HISTORY_FILE).write_text(json.dumps(history))
    ckpt = load_checkpoint(path)
    assert ckpt.history == [] and "history" in ckpt.warnings[0]


@pytest.mark.parametrize("change", [
    {"config": {"image_shape": [1, 8, 8], "latent_dim": "2"}},
    {"config": {"image_shape": 8, "latent_dim": 2}},
    {"config": {"image_shape": [1, 8, 8], "latent_dim": 2, "hidden": [[8]]}},
    {"config": [1, 2]},
    {"model": ["mlp"]},
    {"format_version": "1"},
    {"weights_sha256": 5},
])
def test_malformed_config_values_are_one_checkpoint_error(tmp_path, change):
    path = save_checkpoint(tmp_path / "c", _model())
    document = json.loads((path / CONFIG_FILE).read_text())
    (path / CONFIG_FILE).write_text(json.dumps({**document, **change}))
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    assert "\n" not in str(info.value)


def test_an_absurd_config_is_refused_before_anything_is_built(tmp_path, monkeypatch):
    path = save_checkpoint(tmp_path / "c", _model())
    document = json.loads((path / CONFIG_FILE).read_text())
    for latent_dim in (300_000, 10**12):
        document["config"]["latent_dim"] = latent_dim
        (path / CONFIG_FILE).write_text(json.dumps(document))

        def no_build(*args, **kwargs):
            raise AssertionError("the model was built before its shapes were checked")

        monkeypatch.setattr("vae_core.checkpoint.build_model", no_build)
        with pytest.raises(CheckpointError, match="shape"):
            load_checkpoint(path)


# -- wrong results that used to exit 0 -----------------------------------------------------
def test_library_settings_outside_their_range_are_refused():
    from vae_core import TrainConfig
    from vae_core.metrics import evaluate

    for bad in ({"warmup_epochs": float("nan")}, {"beta": float("nan")}, {"seed": 2**70}, {"epochs": 1.5},
                {"lr": float("inf")}, {"batch_size": True}):
        with pytest.raises(ConfigError, match=next(iter(bad))):
            TrainConfig(**bad)
    from vae_core.data import ImageDataset

    data = ImageDataset(np.zeros((2, 1, 8, 8), np.float32), None)
    with pytest.raises(ConfigError, match="iwae_k"):
        evaluate(_model(), data, iwae_k=0)
    with pytest.raises(DatasetError, match="no images"):
        evaluate(_model(), ImageDataset(np.zeros((0, 1, 8, 8), np.float32), None))


def test_resume_refuses_a_different_architecture(tmp_path):
    out = tmp_path / "m"
    assert run_main([*TRAIN_BASE, "--out", out])[0] == 0
    status, lines = run_main([*TRAIN_BASE[:5], "--model", "conv", "--resume", out, "--out", out])
    assert status == 2 and len(lines) == 1 and "--model conv" in lines[0]
    status, lines = run_main(["train", "--dataset", "digits", "--latent-dim", "5", "--resume", out, "--out", out])
    assert status == 2 and "--latent-dim 5" in lines[0]


def test_an_npz_with_one_image_is_refused_and_pixels_are_not_clipped(tmp_path):
    from vae_core.data import load_dataset

    np.savez(tmp_path / "one.npz", x=np.zeros((1, 8, 8), np.uint8))
    with pytest.raises(DatasetError, match="only 1 image"):
        load_dataset(f"npz:{tmp_path / 'one.npz'}")
    np.savez(tmp_path / "wide.npz", x=np.full((4, 8, 8), 200.0, np.float32))
    with pytest.raises(DatasetError, match=r"divide by 255"):
        load_dataset(f"npz:{tmp_path / 'wide.npz'}")
    np.savez(tmp_path / "big.npz", x=np.full((4, 8, 8), 1000, np.int64))
    with pytest.raises(DatasetError, match="0–255"):
        load_dataset(f"npz:{tmp_path / 'big.npz'}")


def test_sizes_that_cannot_fit_are_refused_before_allocating(monkeypatch):
    from vae_core.data import load_dataset
    from vae_core.export import prepare_frames

    monkeypatch.setattr("vae_core.resources.available_memory", lambda: 2 * 1024**3)
    with pytest.raises(ResourceError, match="GiB"):
        load_dataset("digits", image_size=1024)
    with pytest.raises(ResourceError, match="GiB"):
        prepare_frames(np.zeros((100, 28, 28)), upscale=256)
    with pytest.raises(ResourceError, match="parameters"):
        build_model("mlp", image_shape=(1, 1024, 1024), latent_dim=2, hidden=(4096,))


def test_a_truncated_mnist_is_called_damaged_not_missing(tmp_path):
    from vae_core.data import load_dataset

    source = SHARED_DATA / "MNIST" / "raw"
    if not source.is_dir():
        pytest.skip("no MNIST under /work/shared/data")
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for file in source.iterdir():
        if not file.name.endswith(".gz"):
            (raw / file.name).write_bytes(file.read_bytes()[:1000])
    with pytest.raises(DatasetError, match="damaged"):
        load_dataset("mnist", tmp_path)


def test_deeply_nested_expressions_and_huge_coefficients_are_one_sentence():
    from vae_core.errors import ExpressionError
    from vae_core.latent import parse_expression
    from vae_core.latent.expressions import LatentResolver

    with pytest.raises(ExpressionError, match="nested"):
        parse_expression("mean(" * 1500 + "1" + ")" * 1500)
    with pytest.raises(ExpressionError, match="finite"):
        parse_expression("1e999*#1")
    resolver = LatentResolver(np.ones((3, 2), np.float32), None, ())
    with pytest.raises(ConfigError, match="strength"):
        resolver.evaluate(parse_expression("#0 + #1"), float("nan"))
