"""Models written elsewhere, opened through an adapter file, behave like ours."""

from __future__ import annotations

import hashlib
import importlib.util
import math
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from vae_core.adapter import (CAPABILITIES, AdaptedVAE, AdapterError, check_dataset, file_sha256,
                              load_adapted_model, load_weights)
from vae_core.latent import decode, encode_dataset, interpolate
from vae_core.metrics import evaluate

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture(scope="module")
def digits28():
    from vae_core.data import load_dataset

    return load_dataset("digits", image_size=28)


def _example(name: str):
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _train(model, loss_function, images, steps: int, *, lr=1e-3, batch=64, seed=0):
    """The plain loop of pytorch/examples: forward, the example's loss, Adam."""
    torch.manual_seed(seed)
    data = torch.from_numpy(images)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for step in range(steps):
        idx = torch.randint(0, len(data), (batch,))
        x = data[idx]
        out, mu, logvar = model(x)
        loss = loss_function(out, x, mu, logvar)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


def _one_sentence(message: str) -> None:
    assert "\n" not in message and "Traceback" not in message
    assert message.endswith("."), message


# -- the PyTorch examples VAE, trained by its own loop and explored through the adapter -------
@pytest.fixture(scope="module")
def trained_mlp_example(tmp_path_factory, digits28):
    example = _example("pytorch_mnist_vae")
    model = _train(example.VAE(), example.loss_function, digits28.train.images, steps=300)
    path = tmp_path_factory.mktemp("weights") / "model.pt"
    torch.save(model.state_dict(), path)
    return example, model, path


def test_pytorch_example_has_the_exact_reference_architecture():
    model = _example("pytorch_mnist_vae").VAE()
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert shapes == {"fc1.weight": (400, 784), "fc1.bias": (400,), "fc21.weight": (20, 400), "fc21.bias": (20,),
                      "fc22.weight": (20, 400), "fc22.bias": (20,), "fc3.weight": (400, 20), "fc3.bias": (400,),
                      "fc4.weight": (784, 400), "fc4.bias": (784,)}


def test_pytorch_example_explored_through_its_adapter(trained_mlp_example, digits28):
    example, own, weights = trained_mlp_example
    model = load_adapted_model(EXAMPLES / "pytorch_mnist_vae.py", weights, dataset_shape=digits28.image_shape)
    assert isinstance(model, AdaptedVAE)
    assert (model.latent_dim, model.image_shape, model.conditional) == (20, (1, 28, 28), False)
    assert model.capabilities == {name: name not in ("train", "checkpoint") for name in CAPABILITIES}
    assert set(model.limitations) == {"train", "checkpoint"}
    assert model.config.weights == str(weights.resolve())

    images = digits28.test.images
    x = torch.from_numpy(images)
    with torch.no_grad():
        own_mu, own_logvar = own.encode(x.view(-1, 784))
    mu, logvar = encode_dataset(model, images, batch_size=97)
    np.testing.assert_allclose(mu, own_mu.numpy(), atol=1e-5)
    np.testing.assert_allclose(logvar, own_logvar.numpy(), atol=1e-5)

    path = interpolate(mu[:2], steps=5)
    frames = decode(model, path)
    assert frames.shape == (5, 1, 28, 28)
    with torch.no_grad():
        own_frames = own.decode(torch.from_numpy(path)).view(5, 1, 28, 28).numpy()
    np.testing.assert_allclose(frames, own_frames, atol=1e-6)

    # evaluate() must give the example's own loss: replay its noise and compare term by term.
    result = evaluate(model, digits28.test, batch_size=len(images), seed=3)
    generator = torch.Generator().manual_seed(3)
    eps = torch.randn(own_mu.shape, generator=generator)
    with torch.no_grad():
        recon_x = own.decode(own_mu + eps * torch.exp(0.5 * own_logvar))
        bce = F.binary_cross_entropy(recon_x, x.view(-1, 784), reduction="sum") / len(x)
        kld = -0.5 * torch.sum(1 + own_logvar - own_mu.pow(2) - own_logvar.exp()) / len(x)
    assert result["kl"] == pytest.approx(float(kld), rel=1e-5)
    assert result["recon"] == pytest.approx(float(bce), rel=1e-4)
    assert result["neg_elbo"] == pytest.approx(float(bce + kld), rel=1e-4)
    # Training happened: the trained weights beat the freshly built model by far.
    untrained = evaluate(load_adapted_model(EXAMPLES / "pytorch_mnist_vae.py"), digits28.test, seed=3)
    assert result["neg_elbo"] < 0.7 * untrained["neg_elbo"]
    iwae = evaluate(model, digits28.test, iwae_k=8, seed=3)
    assert iwae["iwae_nll"] <= iwae["neg_elbo"] + 1.0


def test_conv_example_with_logits_and_safetensors(digits28, tmp_path):
    example = _example("conv_vae")
    own = _train(example.ConvVAE(), example.loss_function, digits28.train.images, steps=120, lr=2e-3)
    weights = tmp_path / "conv_vae.safetensors"
    save_file(own.state_dict(), str(weights))
    model = load_adapted_model(EXAMPLES / "conv_vae.py", weights, dataset_shape=(1, 28, 28))
    assert model.config.decoder_output == "logits"

    x = torch.from_numpy(digits28.test.images[:64])
    with torch.no_grad():
        own_mu, own_logvar = own.encoder(x).chunk(2, dim=1)
        own_logits = own.decoder(own_mu)
    mu, _ = encode_dataset(model, x.numpy())
    np.testing.assert_allclose(mu, own_mu.numpy(), atol=1e-5)
    np.testing.assert_allclose(decode(model, mu), torch.sigmoid(own_logits).numpy(), atol=1e-5)
    with torch.no_grad():
        np.testing.assert_allclose(model.decode_logits(own_mu).numpy(), own_logits.numpy(), atol=1e-5)

    result = evaluate(model, digits28.test, batch_size=10_000, seed=1)
    x = torch.from_numpy(digits28.test.images)
    with torch.no_grad():
        mu, logvar = own.encoder(x).chunk(2, dim=1)
        eps = torch.randn(mu.shape, generator=torch.Generator().manual_seed(1))
        expected = example.loss_function(own.decoder(mu + eps * (0.5 * logvar).exp()), x, mu, logvar) / len(x)
    assert result["neg_elbo"] == pytest.approx(float(expected), rel=1e-4)


# -- adapters written in a test ------------------------------------------------------------------
TINY = """
import torch
from torch import nn

IMAGE_SHAPE = (1, 4, 4)
LATENT_DIM = 3
{extra}

class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.enc = nn.Linear(16, 6)
        self.dec = nn.Linear(3, 16)

def build_model():
    return Tiny()

{functions}
"""

TINY_FUNCTIONS = """
def encode(model, x):
    mu, logvar = model.enc(x.flatten(1)).chunk(2, dim=1)
    return mu, logvar

def decode(model, z):
    return torch.sigmoid(model.dec(z))
"""


def _write(tmp_path, text: str, name: str = "adapter.py") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def _tiny(tmp_path, extra: str = "", functions: str = TINY_FUNCTIONS, name: str = "adapter.py") -> Path:
    return _write(tmp_path, TINY.format(extra=extra, functions=functions), name)


def test_mu_only_adapter_reports_missing_logvar_and_refuses_evaluation(tmp_path, digits28):
    functions = TINY_FUNCTIONS.replace("return mu, logvar", "return mu")
    model = load_adapted_model(_tiny(tmp_path, 'LIKELIHOOD = "bernoulli"', functions))
    assert not model.capabilities["logvar"] and not model.capabilities["evaluate"]
    assert model.capabilities["likelihood"] and model.capabilities["decode"]
    images = np.random.default_rng(0).random((5, 1, 4, 4), dtype=np.float32)
    mu, logvar = encode_dataset(model, images)
    with torch.no_grad():
        expected = model.network.enc(torch.from_numpy(images).flatten(1))[:, :3]
    np.testing.assert_allclose(mu, expected.numpy(), atol=1e-6)
    assert np.isnan(logvar).all()  # unknown, never invented
    from vae_core.data import ImageDataset

    with pytest.raises(AdapterError) as info:
        evaluate(model, ImageDataset(images, None))
    _one_sentence(str(info.value))
    assert "logvar" in str(info.value) and model.limitations["evaluate"] == str(info.value)


def test_adapter_without_likelihood_cannot_evaluate(tmp_path):
    model = load_adapted_model(_tiny(tmp_path))
    assert model.config.likelihood is None
    assert model.capabilities["logvar"] and not model.capabilities["likelihood"]
    for capability in ("likelihood", "evaluate"):
        _one_sentence(model.limitations[capability])
        assert "LIKELIHOOD" in model.limitations[capability]
    with pytest.raises(AdapterError, match="LIKELIHOOD"):
        model.recon_nll(torch.zeros(2, 1, 4, 4), torch.zeros(2, 1, 4, 4))
    with pytest.raises(AdapterError, match="LIKELIHOOD"):
        model.loss(torch.zeros(2, 1, 4, 4))


def test_gaussian_likelihood_matches_closed_form(tmp_path):
    model = load_adapted_model(_tiny(tmp_path, 'LIKELIHOOD = "gaussian"\nGAUSSIAN_STD = 0.2'))
    x = torch.rand(3, 1, 4, 4)
    z = torch.randn(3, 3)
    with torch.no_grad():
        nll = model.recon_nll(model.decode_logits(z), x)
        mean = model.decode(z)
    expected = (0.5 * ((mean - x) / 0.2) ** 2 + math.log(0.2) + 0.5 * math.log(2 * math.pi)).flatten(1).sum(1)
    torch.testing.assert_close(nll, expected, atol=1e-3, rtol=1e-4)


def test_conditional_adapter_passes_labels(tmp_path):
    functions = """
def encode(model, x, y):
    h = torch.cat([x.flatten(1), nn.functional.one_hot(y, 3).float()], 1)
    return model.enc(h).chunk(2, dim=1)

def decode(model, z, y):
    return torch.sigmoid(model.dec(torch.cat([z, nn.functional.one_hot(y, 3).float()], 1)))
"""
    text = TINY.format(extra='NUM_CLASSES = 3\nLIKELIHOOD = "bernoulli"', functions=functions)
    text = text.replace("nn.Linear(16, 6)", "nn.Linear(19, 6)").replace("nn.Linear(3, 16)", "nn.Linear(6, 16)")
    model = load_adapted_model(_write(tmp_path, text))
    assert model.conditional and model.num_classes == 3
    z = np.zeros((3, 3), dtype=np.float32)
    images = decode(model, z, labels=np.array([0, 1, 2]))
    assert not np.allclose(images[0], images[1])  # the label reaches the decoder
    np.testing.assert_allclose(decode(model, z[:1], labels=1)[0], images[1], atol=1e-7)
    with pytest.raises(ValueError, match="labels"):
        model.encode(torch.zeros(2, 1, 4, 4))

    from vae_core.data import load_dataset

    digits = load_dataset("digits", image_size=4)
    with pytest.raises(AdapterError, match="3 classes but the dataset has 10"):
        check_dataset(model, digits)


def test_dataset_of_another_size_is_refused_before_building(tmp_path):
    path = _tiny(tmp_path, functions=TINY_FUNCTIONS + "\ndef build_model():\n    raise SystemExit('never built')\n")
    with pytest.raises(AdapterError) as info:
        load_adapted_model(path, dataset_shape=(3, 8, 8))
    _one_sentence(str(info.value))
    assert "1×4×4" in str(info.value) and "3×8×8" in str(info.value) and "image size 4" in str(info.value)


@pytest.mark.parametrize("extra, functions, expected", [
    ("", TINY_FUNCTIONS.replace("chunk(2, dim=1)", "chunk(2, dim=1)\n    mu = mu[:, :2]"),
     "mu of shape 2×2 for 2 images; expected 2×3"),
    ("", TINY_FUNCTIONS.replace("return torch.sigmoid(model.dec(z))", "return model.dec(z)[:, :9]"),
     "returned 2×9 for 2 codes; expected 2×1×4×4"),
    ("", TINY_FUNCTIONS.replace("return torch.sigmoid(model.dec(z))", "return model.dec(z) + 5"),
     "outside [0, 1]; if it returns logits set DECODER_OUTPUT"),
    ("", TINY_FUNCTIONS.replace("return mu, logvar", "return mu, logvar, mu"), "encode returned 3 values"),
    ("", TINY_FUNCTIONS.replace("x.flatten(1)", "x"), "encode in adapter.py failed on a batch of zeros of shape 2×1×4×4"),
    ("LATENT_DIM = 5", TINY_FUNCTIONS, "mu of shape 2×3 for 2 images; expected 2×5 (batch × LATENT_DIM)"),
    ("", TINY_FUNCTIONS.replace("model.dec(z)", "model.dec(z[:, :2])"), "decode in adapter.py failed on 2 zero codes of size 3"),
    ("IMAGE_SHAPE = (28, 28)", TINY_FUNCTIONS, "IMAGE_SHAPE must be (channels, height, width)"),
    ("LIKELIHOOD = 'poisson'", TINY_FUNCTIONS, "LIKELIHOOD must be"),
    ("DECODER_OUTPUT = 'pixels'", TINY_FUNCTIONS, "DECODER_OUTPUT must be"),
    ("NUM_CLASSES = 1", TINY_FUNCTIONS, "NUM_CLASSES must be"),
])
def test_bad_adapters_get_one_sentence(tmp_path, extra, functions, expected):
    with pytest.raises(AdapterError) as info:
        load_adapted_model(_tiny(tmp_path, extra, functions))
    _one_sentence(str(info.value))
    assert expected in str(info.value)


def test_default_encode_and_decode_call_the_model_methods(tmp_path):
    functions = TINY_FUNCTIONS.replace("def encode(model, x):", "def _enc(model, x):")
    functions = functions.replace("def decode(model, z):", "def _dec(model, z):")
    methods = """
class WithMethods(Tiny):
    def encode(self, x):
        return self.enc(x.flatten(1)).chunk(2, dim=1)
    def decode(self, z):
        return torch.sigmoid(self.dec(z))

def build_model():
    return WithMethods()
"""
    model = load_adapted_model(_tiny(tmp_path, functions=functions + methods))
    x = torch.rand(2, 1, 4, 4)
    torch.testing.assert_close(model.encode(x)[0], model.network.encode(x)[0])
    path = _tiny(tmp_path, name="no_methods.py", functions="")
    with pytest.raises(AdapterError, match=r"The model has no encode\(\) method; define encode\(model, x\)"):
        load_adapted_model(path)


@pytest.mark.parametrize("source, expected", [
    ("IMAGE_SHAPE = (1, 4, 4)\nLATENT_DIM = 3\ndef build_model(:\n    pass\n", "adapter.py line 3: "),
    ("import torch\n\nvalue = undefined_name\n", "Importing adapter.py failed (line 3): NameError: name 'undefined_name'"),
    ("import package_that_does_not_exist_anywhere\n", "ModuleNotFoundError"),
    ("IMAGE_SHAPE = (1, 4, 4)\nLATENT_DIM = 3\n", "adapter.py does not define build_model"),
    ("IMAGE_SHAPE = (1, 4, 4)\nLATENT_DIM = 0\ndef build_model():\n    return None\n", "LATENT_DIM must be a positive"),
    ("IMAGE_SHAPE = (1, 4, 4)\nLATENT_DIM = 3\ndef build_model():\n    return 3\n", "returned int, not a torch.nn.Module"),
    ("IMAGE_SHAPE = (1, 4, 4)\nLATENT_DIM = 3\ndef build_model():\n    raise RuntimeError('no GPU here.')\n",
     "build_model() in adapter.py failed: RuntimeError: no GPU here."),
])
def test_adapters_that_fail_to_import_or_build(tmp_path, source, expected):
    with pytest.raises(AdapterError) as info:
        load_adapted_model(_write(tmp_path, source))
    _one_sentence(str(info.value))
    assert expected in str(info.value)


def test_missing_adapter_and_module_name(tmp_path, monkeypatch):
    with pytest.raises(AdapterError, match="No adapter file at"):
        load_adapted_model(tmp_path / "nope.py")
    with pytest.raises(AdapterError, match="No adapter file or importable module named 'no_such_adapter_module'"):
        load_adapted_model("no_such_adapter_module")
    # An importable module works as well as a file.
    _tiny(tmp_path, name="tiny_vae_adapter_module.py")
    monkeypatch.syspath_prepend(str(tmp_path))
    model = load_adapted_model("tiny_vae_adapter_module")
    assert model.name == "tiny_vae_adapter_module" and model.config.source == "tiny_vae_adapter_module"


def test_adapter_imports_its_sibling_modules(tmp_path):
    (tmp_path / "my_project_model.py").write_text(
        "from torch import nn\nclass Net(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
        "        self.enc = nn.Linear(16, 6)\n        self.dec = nn.Linear(3, 16)\n")
    functions = TINY_FUNCTIONS + "\nfrom my_project_model import Net\ndef build_model():\n    return Net()\n"
    model = load_adapted_model(_tiny(tmp_path, functions=functions))
    assert type(model.network).__name__ == "Net"


# -- weights --------------------------------------------------------------------------------------
def _tiny_state(seed: int = 0) -> dict:
    torch.manual_seed(seed)
    return {"enc.weight": torch.randn(6, 16), "enc.bias": torch.randn(6),
            "dec.weight": torch.randn(16, 3), "dec.bias": torch.randn(16)}


def test_weights_from_pt_safetensors_and_wrapped_checkpoints(tmp_path):
    adapter = _tiny(tmp_path)
    state = _tiny_state()
    torch.save(state, tmp_path / "w.pt")
    save_file(state, str(tmp_path / "w.safetensors"))
    torch.save({"epoch": 7, "state_dict": state, "lr": 1e-3}, tmp_path / "lightning.ckpt")
    for name in ("w.pt", "w.safetensors", "lightning.ckpt"):
        model = load_adapted_model(adapter, tmp_path / name)
        for key, tensor in state.items():
            torch.testing.assert_close(model.network.state_dict()[key], tensor, rtol=0, atol=0)


def test_convert_state_dict_hook(tmp_path):
    prefixed = {f"module.{k}": v for k, v in _tiny_state().items()}
    torch.save(prefixed, tmp_path / "ddp.pt")
    with pytest.raises(AdapterError, match="4 missing .* and 4 unexpected"):
        load_adapted_model(_tiny(tmp_path), tmp_path / "ddp.pt")
    hook = "\ndef convert_state_dict(state):\n    return {k.removeprefix('module.'): v for k, v in state.items()}\n"
    model = load_adapted_model(_tiny(tmp_path, name="ddp_adapter.py", functions=TINY_FUNCTIONS + hook),
                               tmp_path / "ddp.pt")
    torch.testing.assert_close(model.network.enc.bias, prefixed["module.enc.bias"])


@pytest.mark.parametrize("make, expected", [
    (lambda p: torch.save({k: v for k, v in _tiny_state().items() if k != "dec.bias"}, p),
     "do not fit the adapter's model: 1 missing (dec.bias) tensors"),
    (lambda p: torch.save({**_tiny_state(), "dec.weight": torch.zeros(16, 4)}, p),
     "dec.weight is 16×4 in the file but 16×3 in the model"),
    (lambda p: torch.save(torch.nn.Linear(2, 2), p), "full pickles are never opened"),
    (lambda p: p.write_bytes(b"not weights at all"), "neither a safetensors file nor a PyTorch state dict"),
    (lambda p: torch.save({"epoch": 3}, p), "holds no tensors"),
])
def test_bad_weights_get_one_sentence(tmp_path, make, expected):
    path = tmp_path / "weights.pt"
    make(path)
    with pytest.raises(AdapterError) as info:
        load_adapted_model(_tiny(tmp_path), path)
    _one_sentence(str(info.value))
    assert expected in str(info.value)


def test_full_pickle_never_runs(tmp_path):
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (Path.touch, (marker,))

    import pickle

    (tmp_path / "evil.pt").write_bytes(pickle.dumps({"w": Payload()}, protocol=2))
    with pytest.raises(AdapterError):
        load_weights(tmp_path / "evil.pt")
    assert not marker.exists()


def test_file_sha256(tmp_path):
    path = _tiny(tmp_path)
    assert file_sha256(path) == hashlib.sha256(path.read_bytes()).hexdigest()
    assert load_adapted_model(path).config.source_sha256 == file_sha256(path)
    with pytest.raises(AdapterError, match="Could not read"):
        file_sha256(tmp_path / "missing.py")
