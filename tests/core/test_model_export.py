"""ONNX and TorchScript exports compute what the PyTorch model computes, for any batch size."""

from __future__ import annotations

import dataclasses
import json
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from vae_core import build_model, list_models, model_config_class
from vae_core.model_export import (MANIFEST_FILE, ModelExportError, export_onnx, export_torchscript,
                                   read_manifest)

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning")
ort = pytest.importorskip("onnxruntime")
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _small_model(name: str):
    fields = {f.name for f in dataclasses.fields(model_config_class(name))}
    extra = {"num_classes": 3} if "num_classes" in fields else {}
    torch.manual_seed(0)
    model = build_model(name, image_shape=(1, 16, 16), latent_dim=4, **extra)
    # Move BatchNorm running statistics away from (0, 1): an export that kept train-mode
    # normalization, or dropped the statistics, would then disagree with eval mode.
    model.train()
    with torch.no_grad():
        for _ in range(3):
            y = torch.randint(0, 3, (16,)) if model.conditional else None
            model(torch.rand(16, 1, 16, 16) * 0.5, y)
    return model.eval()


def _inputs(model, batch: int, seed: int):
    generator = torch.Generator().manual_seed(seed)
    x = torch.rand(batch, *model.image_shape, generator=generator)
    z = torch.randn(batch, model.latent_dim, generator=generator)
    y = torch.randint(0, max(1, model.num_classes), (batch,), generator=generator) if model.conditional else None
    return x, z, y


def _reference(model, x, z, y):
    with torch.no_grad():
        mu, logvar = model.encode(x, y)
        return mu.numpy(), logvar.numpy(), model.decode(z, y).numpy()


@pytest.fixture(scope="module", params=list_models())
def exported(request, tmp_path_factory):
    model = _small_model(request.param)
    out = tmp_path_factory.mktemp(f"export-{request.param}")
    export_onnx(model, out)
    export_torchscript(model, out)
    return model, out


@pytest.mark.parametrize("batch", [1, 5])
def test_onnx_matches_pytorch(exported, batch):
    model, out = exported
    x, z, y = _inputs(model, batch, seed=batch)
    mu, logvar, images = _reference(model, x, z, y)
    encoder = ort.InferenceSession(str(out / "encoder.onnx"), providers=["CPUExecutionProvider"])
    decoder = ort.InferenceSession(str(out / "decoder.onnx"), providers=["CPUExecutionProvider"])
    labels = {"label": y.numpy()} if model.conditional else {}
    got_mu, got_logvar = encoder.run(["mu", "logvar"], {"image": x.numpy(), **labels})
    (got_images,) = decoder.run(["image"], {"z": z.numpy(), **labels})
    np.testing.assert_allclose(got_mu, mu, atol=1e-5, rtol=1e-4)
    np.testing.assert_allclose(got_logvar, logvar, atol=1e-5, rtol=1e-4)
    np.testing.assert_allclose(got_images, images, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("batch", [1, 5])
def test_torchscript_matches_pytorch(exported, batch):
    model, out = exported
    x, z, y = _inputs(model, batch, seed=10 + batch)
    mu, logvar, images = _reference(model, x, z, y)
    encoder = torch.jit.load(str(out / "encoder.pt"))
    decoder = torch.jit.load(str(out / "decoder.pt"))
    labels = (y,) if model.conditional else ()
    with torch.no_grad():
        got_mu, got_logvar = encoder(x, *labels)
        got_images = decoder(z, *labels)
    np.testing.assert_allclose(got_mu.numpy(), mu, atol=1e-5, rtol=1e-4)
    np.testing.assert_allclose(got_logvar.numpy(), logvar, atol=1e-5, rtol=1e-4)
    np.testing.assert_allclose(got_images.numpy(), images, atol=1e-5, rtol=1e-4)


def test_manifest_names_what_the_graphs_take(exported):
    model, out = exported
    manifest = read_manifest(out)
    assert manifest["model"] == model.name and manifest["latent_dim"] == model.latent_dim  # vqvae: the grid's length
    assert manifest["onnx"]["encoder"] == "encoder.onnx" and manifest["torchscript"]["decoder"] == "decoder.pt"
    assert manifest["config"] == json.loads(json.dumps(model.config.to_dict()))
    for part in ("encoder", "decoder"):
        session = ort.InferenceSession(str(out / manifest["onnx"][part]), providers=["CPUExecutionProvider"])
        assert [i.name for i in session.get_inputs()] == [i["name"] for i in manifest[part]["inputs"]]
        assert [o.name for o in session.get_outputs()] == [o["name"] for o in manifest[part]["outputs"]]
        for declared, actual in zip(manifest[part]["inputs"], session.get_inputs()):
            assert actual.shape[1:] == declared["shape"][1:]
            assert actual.type == f"tensor({'float' if declared['dtype'] == 'float32' else declared['dtype']})"
    names = [i["name"] for i in manifest["encoder"]["inputs"]]
    assert names == (["image", "label"] if model.conditional else ["image"])


def test_export_leaves_the_model_alone(tmp_path):
    model = _small_model("conv").train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    export_torchscript(model, tmp_path)
    assert model.training
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key])


def test_export_from_a_checkpoint_path(trained_digits_checkpoint, tmp_path, digits):
    from vae_core import load_checkpoint

    manifest = export_onnx(trained_digits_checkpoint, tmp_path / "onnx")
    assert manifest == tmp_path / "onnx" / MANIFEST_FILE
    model = load_checkpoint(trained_digits_checkpoint).model
    x = torch.from_numpy(digits.test.images[:7])
    session = ort.InferenceSession(str(tmp_path / "onnx" / "encoder.onnx"), providers=["CPUExecutionProvider"])
    with torch.no_grad():
        np.testing.assert_allclose(session.run(["mu"], {"image": x.numpy()})[0], model.encode(x)[0].numpy(),
                                   atol=1e-5)


def test_manifest_of_another_model_is_replaced(tmp_path):
    export_torchscript(_small_model("mlp"), tmp_path)
    export_torchscript(build_model("mlp", image_shape=(1, 8, 8), latent_dim=2), tmp_path)
    manifest = read_manifest(tmp_path)
    assert manifest["image_shape"] == [1, 8, 8] and "onnx" not in manifest


def test_adapted_models_export_too(tmp_path):
    from vae_core.adapter import load_adapted_model

    model = load_adapted_model(EXAMPLES / "pytorch_mnist_vae.py")
    export_onnx(model, tmp_path)
    x = torch.rand(3, 1, 28, 28)
    session = ort.InferenceSession(str(tmp_path / "encoder.onnx"), providers=["CPUExecutionProvider"])
    with torch.no_grad():
        np.testing.assert_allclose(session.run(["mu"], {"image": x.numpy()})[0], model.encode(x)[0].numpy(),
                                   atol=1e-5)

    # An adapter that gives only mu exports an encoder with one output.
    (tmp_path / "mu_only.py").write_text(textwrap.dedent("""
        import torch
        IMAGE_SHAPE = (1, 4, 4)
        LATENT_DIM = 2
        def build_model():
            return torch.nn.ModuleDict({"enc": torch.nn.Linear(16, 2), "dec": torch.nn.Linear(2, 16)})
        def encode(model, x):
            return model["enc"](x.flatten(1))
        def decode(model, z):
            return torch.sigmoid(model["dec"](z))
    """))
    export_torchscript(load_adapted_model(tmp_path / "mu_only.py"), tmp_path / "ts")
    assert [o["name"] for o in read_manifest(tmp_path / "ts")["encoder"]["outputs"]] == ["mu"]
    assert torch.jit.load(str(tmp_path / "ts" / "encoder.pt"))(torch.rand(3, 1, 4, 4)).shape == (3, 2)


def test_export_errors_are_one_sentence(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ModelExportError, match="is a file; export into a folder"):
        export_onnx(_small_model("mlp"), tmp_path / "file")
    with pytest.raises(ModelExportError, match="Cannot export a Linear"):
        export_torchscript(torch.nn.Linear(2, 2), tmp_path / "out")
