"""The command line, run as users run it: in a subprocess."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def run_cli(*args, timeout=300, env=None):
    full_env = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", "vae_core", *map(str, args)], cwd=REPO, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def cli_checkpoint(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "model"
    result = run_cli("train", "--dataset", "digits", "--latent-dim", "3", "--hidden", "64", "--epochs", "2",
                     "--batch-size", "64", "--threads", "1", "--out", out)
    assert result.returncode == 0, result.stderr
    return out


def test_train_writes_a_loadable_checkpoint_with_history(cli_checkpoint):
    from vae_core import load_checkpoint

    ckpt = load_checkpoint(cli_checkpoint)
    assert ckpt.model_name == "mlp" and ckpt.model.latent_dim == 3
    assert [e["epoch"] for e in ckpt.history] == [1, 2]
    assert ckpt.dataset["spec"] == "digits"
    assert ckpt.train_config["epochs"] == 2


def test_training_is_reproducible_with_a_seed(cli_checkpoint, tmp_path):
    import torch

    from vae_core import load_checkpoint

    again = tmp_path / "again"
    result = run_cli("train", "--dataset", "digits", "--latent-dim", "3", "--hidden", "64", "--epochs", "2",
                     "--batch-size", "64", "--threads", "1", "--quiet", "--out", again)
    assert result.returncode == 0, result.stderr
    a, b = load_checkpoint(cli_checkpoint).model.state_dict(), load_checkpoint(again).model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_evaluate_prints_one_json_object(cli_checkpoint):
    result = run_cli("evaluate", cli_checkpoint, "--dataset", "digits", "--iwae-k", "20", "--json")
    assert result.returncode == 0, result.stderr
    metrics = json.loads(result.stdout)
    for key in ("neg_elbo", "recon", "kl", "active_units", "iwae_nll"):
        assert key in metrics
    assert metrics["neg_elbo"] == pytest.approx(metrics["recon"] + metrics["kl"])
    # The importance-weighted bound is tighter than the ELBO.
    assert metrics["iwae_nll"] < metrics["neg_elbo"]
    assert 0 <= metrics["active_units"] <= 3


def test_evaluate_defaults_to_the_checkpoints_dataset(cli_checkpoint):
    result = run_cli("evaluate", cli_checkpoint)
    assert result.returncode == 0, result.stderr
    assert "negative ELBO" in result.stdout


def _one_line_error(result):
    assert result.returncode != 0
    lines = [line for line in result.stderr.strip().splitlines() if line]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def test_wrong_arguments_give_one_line(tmp_path):
    assert "--epochs" in _one_line_error(run_cli("train", "--dataset", "digits", "--epochs", "many", "--out", tmp_path / "x"))
    assert "required" in _one_line_error(run_cli("train", "--dataset", "digits"))
    assert "imagenet" in _one_line_error(run_cli("train", "--dataset", "imagenet", "--out", tmp_path / "x"))


def test_missing_data_gives_one_line(tmp_path):
    line = _one_line_error(run_cli("train", "--dataset", "mnist", "--data-root", tmp_path / "empty",
                                   "--epochs", "1", "--out", tmp_path / "x"))
    assert "MNIST" in line or "mnist" in line


def test_checkpoint_that_does_not_fit_the_dataset_gives_one_line(cli_checkpoint):
    line = _one_line_error(run_cli("evaluate", cli_checkpoint, "--dataset", "shapes:32"))
    assert "8×8" in line and "32×32" in line


def test_bad_checkpoint_gives_one_line(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00" * 10)
    assert "bad.safetensors" in _one_line_error(run_cli("evaluate", bad, "--dataset", "digits"))


def test_torchrun_trains_with_two_cpu_processes(tmp_path):
    out = tmp_path / "ddp"
    torchrun = Path(sys.executable).with_name("torchrun")
    cmd = [str(torchrun), "--standalone", "--nproc_per_node=2", "-m", "vae_core", "train", "--dataset", "digits",
           "--latent-dim", "2", "--hidden", "32", "--epochs", "2", "--device", "cpu", "--threads", "1",
           "--quiet", "--out", str(out)]
    result = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    # On failure, say what each rank said, not only torchrun's summary at the end.
    said = [line for line in result.stderr.splitlines()
            if any(w in line for w in ("Error", "error", "terminate", "what()", "Exception", "Traceback"))]
    assert result.returncode == 0, "\n".join(said[:40]) + "\n...\n" + result.stderr[-2000:]
    from vae_core import load_checkpoint

    ckpt = load_checkpoint(out)
    assert [e["epoch"] for e in ckpt.history] == [1, 2]
    # Each rank saw half of the training set per epoch.
    assert ckpt.history[-1]["step"] == 2 * -(-(1527 // 2) // 128)
    assert ckpt.history[-1]["test_neg_elbo"] < ckpt.history[0]["test_neg_elbo"]
