"""Tests for ``python -m vae_core interpolate`` and ``arithmetic`` on a 1-epoch digits model."""

import os
import subprocess
import sys
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    from vae_core.checkpoint import save_checkpoint
    from vae_core.data import load_dataset
    from vae_core.registry import build_model
    from vae_core.training import TrainConfig, fit

    data = load_dataset("digits")
    model = build_model("mlp", image_shape=data.image_shape, latent_dim=4, likelihood=data.likelihood)
    config = TrainConfig(epochs=1, batch_size=128, seed=0, device="cpu", num_threads=1)
    history = fit(model, data, config)
    path = tmp_path_factory.mktemp("ckpt") / "digits.safetensors"
    save_checkpoint(path, model, dataset=data, history=history, train_config=config)
    return path, data


def run_cli(*argv):
    from vae_core.cli import main

    return main([str(a) for a in argv])


def test_interpolate_gif_frames_and_size(checkpoint, tmp_path, capsys):
    path, data = checkpoint
    out = tmp_path / "morph.gif"
    assert run_cli("interpolate", path, "--from", 0, "--to", 5, "--via", 9, "--steps", 9,
                   "--pingpong", "--upscale", 4, "--out", out) == 0
    props = iio.improps(out, index=None)
    assert props.n_images == 16 and props.shape[1:3] == (32, 32)  # 2·9 − 2 frames of 8·4 pixels
    assert "wrote" in capsys.readouterr().err


def test_interpolate_frames_are_the_decoded_path(checkpoint, tmp_path):
    from vae_core.checkpoint import load_checkpoint
    from vae_core.export import prepare_frames
    from vae_core.latent import decode, encode_dataset, interpolate

    path, data = checkpoint
    out = tmp_path / "strip.png"
    assert run_cli("interpolate", path, "--split", "test", "--from", 3, "--to", 4, "--steps", 5,
                   "--method", "slerp", "--upscale", 1, "--out", out) == 0
    model = load_checkpoint(path).model
    keys, _ = encode_dataset(model, data.test.images[[3, 4]])
    expected = prepare_frames(decode(model, interpolate(keys, 5, method="slerp")))
    np.testing.assert_array_equal(iio.imread(out), np.concatenate(list(expected), axis=1))


def test_arithmetic_writes_operands_and_result(checkpoint, tmp_path):
    path, data = checkpoint
    out = tmp_path / "sum.png"
    assert run_cli("arithmetic", path, "#12 - mean(7) + mean(3)", "--strength", 0.5, "--upscale", 8,
                   "--out", out) == 0
    img = iio.imread(out)
    assert img.shape[1] == 4 * 64 + 3 * 2  # three operands + result, 2-pixel gaps
    assert img.shape[0] > 64  # caption strip below the images


@pytest.mark.parametrize("argv,message", [
    (["arithmetic", "{ckpt}", "#1 + * 2", "--out", "{tmp}/a.png"], "column 6"),
    (["arithmetic", "{ckpt}", "#99999", "--out", "{tmp}/a.png"],
     "Index 99999 is out of range: the dataset has 1797 points."),
    (["arithmetic", "{ckpt}", "mean(12)", "--out", "{tmp}/a.png"], "Label 12 does not exist"),
    (["interpolate", "{ckpt}", "--from", "0", "--to", "5000", "--out", "{tmp}/a.gif"], "out of range"),
    (["interpolate", "{ckpt}", "--from", "0", "--to", "1", "--out", "{tmp}/a.avi"], ".gif, .mp4"),
    (["interpolate", "{ckpt}", "--from", "0", "--to", "1", "--via", "2", "3", "--steps", "3",
      "--out", "{tmp}/a.gif"], "at least 4"),
])
def test_errors_are_one_line(checkpoint, tmp_path, capsys, argv, message):
    path, _ = checkpoint
    argv = [a.format(ckpt=path, tmp=tmp_path) for a in argv]
    assert run_cli(*argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not list(tmp_path.iterdir())


def test_help_documents_expression_syntax():
    result = subprocess.run([sys.executable, "-m", "vae_core", "arithmetic", "--help"], cwd=ROOT,
                            capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert result.returncode == 0
    for snippet in ("expression syntax", "mean(7) or @7", "pin:NAME", "A + s*(C - B)"):
        assert snippet in result.stdout


def test_subprocess_interpolate_mp4(checkpoint, tmp_path):
    path, _ = checkpoint
    out = tmp_path / "m.mp4"
    result = subprocess.run(
        [sys.executable, "-m", "vae_core", "interpolate", str(path), "--from", "1", "--to", "2", "--steps", "6",
         "--easing", "ease-in-out", "--fps", "24", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=300)
    assert result.returncode == 0, result.stderr
    frames = iio.imread(out, index=None)
    assert frames.shape[:3] == (6, 128, 128)  # default enlargement: 8 px × 16
