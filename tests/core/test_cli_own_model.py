"""The command line with models written elsewhere (``--model-file``), ``export`` and ``train --tensorboard``."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import torch

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
ADAPTER = EXAMPLES / "pytorch_mnist_vae.py"


def run_cli(*argv):
    from vae_core.cli import main

    return main([str(a) for a in argv])


@pytest.fixture(scope="module")
def digits28():
    from vae_core.data import load_dataset

    return load_dataset("digits", image_size=28)


@pytest.fixture(scope="module")
def weights(tmp_path_factory, digits28):
    """The PyTorch examples VAE trained by its own loop for a few steps (as tests/core/test_adapter.py does)."""
    spec = importlib.util.spec_from_file_location("example_vae_cli", ADAPTER)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    torch.manual_seed(0)
    model = example.VAE()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    images = torch.from_numpy(digits28.train.images)
    for _ in range(150):
        x = images[torch.randint(0, len(images), (64,))]
        out, mu, logvar = model(x)
        loss = example.loss_function(out, x, mu, logvar)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    path = tmp_path_factory.mktemp("own") / "model.pt"
    torch.save(model.eval().state_dict(), path)
    return path


@pytest.fixture(scope="module")
def adapted(weights, digits28):
    from vae_core.adapter import load_adapted_model

    return load_adapted_model(ADAPTER, weights, dataset_shape=digits28.image_shape)


OWN = ["--model-file", ADAPTER, "--dataset", "digits", "--image-size", 28]


def test_evaluate_with_model_file(weights, adapted, digits28, capsys):
    from vae_core.metrics import evaluate, iwae_nll

    assert run_cli("evaluate", *OWN, "--weights", weights, "--json", "--seed", 3, "--iwae-k", 4) == 0
    result = json.loads(capsys.readouterr().out)
    expected = evaluate(adapted, digits28.test, batch_size=500, seed=3)
    # The CLI's IWAE estimate is the batched iwae_nll (progress bar, any k), seeded alike.
    expected["iwae_nll"] = iwae_nll(adapted, digits28.test, 4, seed=3)["nll"]
    assert result["model"] == "pytorch-examples-vae" and result["dataset"] == "digits"
    for key in ("neg_elbo", "recon", "kl", "iwae_nll", "active_units"):
        assert result[key] == pytest.approx(expected[key], rel=1e-6), key
    # Trained weights, not the adapter's initial ones: far better than a fresh model.
    assert run_cli("evaluate", *OWN, "--json", "--seed", 3) == 0
    assert json.loads(capsys.readouterr().out)["neg_elbo"] > 1.3 * result["neg_elbo"]


def test_interpolate_with_model_file_decodes_the_path(weights, adapted, digits28, tmp_path):
    from vae_core.export import prepare_frames
    from vae_core.latent import decode, encode_dataset, interpolate

    out = tmp_path / "strip.png"
    assert run_cli("interpolate", *OWN, "--weights", weights, "--split", "test", "--from", 2, "--to", 7,
                   "--steps", 5, "--upscale", 1, "--out", out) == 0
    keys, _ = encode_dataset(adapted, digits28.test.images[[2, 7]])
    expected = prepare_frames(decode(adapted, interpolate(keys, 5)))
    np.testing.assert_array_equal(iio.imread(out), np.concatenate(list(expected), axis=1))


def test_arithmetic_with_model_file(weights, adapted, digits28, tmp_path, capsys):
    from vae_core.latent import LatentResolver, decode, encode_dataset, parse_expression

    out = tmp_path / "sum.png"
    assert run_cli("arithmetic", *OWN, "--weights", weights, "#12 - @7 + @3", "--upscale", 1, "--out", out) == 0
    assert "wrote" in capsys.readouterr().err
    all_data = digits28.all()
    mu, _ = encode_dataset(adapted, all_data.images)
    result = LatentResolver(mu, all_data.labels, digits28.class_names).evaluate(parse_expression("#12 - @7 + @3"), 1.0)
    image = iio.imread(out)
    assert image.shape[1] >= 4 * 28   # three operands and the result, side by side
    expected = np.round(decode(adapted, result[None])[0, 0] * 255)
    # The result is the last 28-pixel tile of the strip (above its caption).
    tile = image[: 28, -28:] if image.ndim == 2 else image[:28, -28:, 0]
    np.testing.assert_allclose(tile, expected, atol=1)


def test_arithmetic_keeps_checkpoint_then_options_then_expression(trained_digits_checkpoint, tmp_path):
    # [CHECKPOINT] EXPRESSION with options in between: the checkpoint is not taken for the expression.
    path = trained_digits_checkpoint
    out = tmp_path / "a.png"
    assert run_cli("arithmetic", path, "--out", out, "--strength", 0.5, "--", "#1 - #2") == 0
    assert out.is_file()


def test_export_onnx_and_torchscript_match_the_model(trained_digits_checkpoint, tmp_path, capsys):
    onnxruntime = pytest.importorskip("onnxruntime")
    from vae_core.checkpoint import load_checkpoint
    from vae_core.model_export import read_manifest

    path = trained_digits_checkpoint
    assert run_cli("export", path, "--onnx", tmp_path / "onnx", "--torchscript", tmp_path / "ts") == 0
    err = capsys.readouterr().err
    assert str(tmp_path / "onnx") in err and str(tmp_path / "ts") in err
    model = load_checkpoint(path).model
    images = np.random.default_rng(0).random((7, *model.image_shape), dtype=np.float32)
    with torch.no_grad():
        mu, logvar = model.encode(torch.from_numpy(images))
        z = torch.randn(5, model.latent_dim, generator=torch.Generator().manual_seed(1))
        decoded = model.decode(z)
    session = onnxruntime.InferenceSession(str(tmp_path / "onnx" / "encoder.onnx"))
    got_mu, got_logvar = session.run(None, {"image": images})   # a batch of 7: the axis is dynamic
    np.testing.assert_allclose(got_mu, mu.numpy(), atol=1e-5)
    np.testing.assert_allclose(got_logvar, logvar.numpy(), atol=1e-5)
    decoder = torch.jit.load(str(tmp_path / "ts" / "decoder.pt"))
    np.testing.assert_allclose(decoder(z).numpy(), decoded.numpy(), atol=1e-6)
    assert read_manifest(tmp_path / "onnx")["encoder"]["outputs"][1]["name"] == "logvar"
    assert "torchscript" in read_manifest(tmp_path / "ts")


def test_export_an_adapted_model(weights, adapted, tmp_path):
    assert run_cli("export", "--model-file", ADAPTER, "--weights", weights, "--torchscript", tmp_path) == 0
    z = torch.randn(3, 20, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = adapted.decode(z)
    np.testing.assert_allclose(torch.jit.load(str(tmp_path / "decoder.pt"))(z).numpy(), expected.numpy(), atol=1e-6)


def test_train_tensorboard_logs_what_the_checkpoint_records(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from vae_core.checkpoint import load_checkpoint

    out, logs = tmp_path / "run", tmp_path / "tb"
    assert run_cli("train", "--dataset", "digits", "--latent-dim", 2, "--hidden", 32, "--epochs", 2,
                   "--batch-size", 128, "--out", out, "--tensorboard", logs, "--quiet") == 0
    history = load_checkpoint(out).history
    events = EventAccumulator(str(logs), size_guidance={"scalars": 0, "images": 0})
    events.Reload()
    test = events.Scalars("test/neg_elbo")
    assert [e.value for e in test] == pytest.approx([h["test_neg_elbo"] for h in history], rel=1e-6)
    kl0 = [e.value for e in events.Scalars("test_kl_per_dim/z00")]
    assert kl0 == pytest.approx([h["test_kl_per_dim"][0] for h in history], rel=1e-5)
    assert {"train/loss", "train/recon", "train/kl", "speed/images_per_sec"} <= set(events.Tags()["scalars"])
    assert len(events.Images("reconstructions")) == 2 and len(events.Images("samples")) == 2


def _edited_adapter(tmp_path, extra: str) -> Path:
    target = tmp_path / "my_vae.py"
    shutil.copy(ADAPTER, target)
    target.write_text(target.read_text() + "\n" + extra)
    return target


@pytest.mark.parametrize("make_argv, expected", [
    (lambda t, w: ["evaluate", "--model-file", t / "missing.py", "--dataset", "digits"], "No adapter file at"),
    (lambda t, w: ["evaluate", "--model-file", _edited_adapter(t, "def broken(:\n"), "--weights", w,
                   "--dataset", "digits", "--image-size", 28], "my_vae.py line"),
    (lambda t, w: ["evaluate", "--model-file", _edited_adapter(t, "import not_a_module_anywhere\n"), "--weights", w,
                   "--dataset", "digits", "--image-size", 28], "Importing my_vae.py failed (line"),
    (lambda t, w: ["interpolate", "--model-file", _edited_adapter(t, "def decode(model, z):\n    return z\n"),
                   "--weights", w, "--dataset", "digits", "--image-size", 28, "--from", 0, "--to", 1,
                   "--out", t / "a.gif"], "decode in my_vae.py returned 2×20 for 2 codes; expected 2×1×28×28"),
    (lambda t, w: ["evaluate", *OWN[:2], "--weights", t / "w.pt", "--dataset", "digits", "--image-size", 28],
     "do not fit the adapter's model"),
    (lambda t, w: ["evaluate", "--model-file", ADAPTER, "--weights", w, "--dataset", "digits"],
     "The model reads 1×28×28 images but the dataset has 1×8×8 images"),
    (lambda t, w: ["evaluate", "--model-file", ADAPTER, "--weights", w], "--model-file needs --dataset"),
    (lambda t, w: ["evaluate", t, "--model-file", ADAPTER, "--dataset", "digits"], "not both"),
    (lambda t, w: ["evaluate", t, "--weights", w], "--weights goes with --model-file"),
    (lambda t, w: ["evaluate", "--dataset", "digits"], "Give a checkpoint, or --model-file"),
    (lambda t, w: ["export", "--model-file", ADAPTER], "--onnx DIR, --torchscript DIR or both"),
    (lambda t, w: ["export", "--model-file", _edited_adapter(t, "LATENT_DIM = 0\n"), "--onnx", t],
     "LATENT_DIM must be a positive integer"),
])
def test_bad_adapters_give_one_line_and_exit_2(weights, tmp_path, capsys, make_argv, expected):
    from vae_core import build_model

    torch.save(build_model("mlp", image_shape=(1, 28, 28), latent_dim=2, hidden=(8,)).state_dict(), tmp_path / "w.pt")
    status = run_cli(*make_argv(tmp_path, weights))
    err = capsys.readouterr().err
    assert status == 2
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert expected in err, err
