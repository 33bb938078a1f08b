"""Take a model out: its encoder and decoder as ONNX or TorchScript, with a manifest.

Each export writes two graphs into a folder, one for ``encode`` and one for ``decode``,
both with a dynamic batch axis, and a ``manifest.json`` naming their inputs and outputs:

============  ==============================================  ===============================
graph         inputs                                          outputs
============  ==============================================  ===============================
encoder       ``image`` float32 B×C×H×W in [0, 1]             ``mu`` B×d, ``logvar`` B×d
              (+ ``label`` int64 B for conditional models)    (``mu`` only when the model has
                                                              no logvar)
decoder       ``z`` float32 B×d (+ ``label`` int64 B)         ``image`` float32 B×C×H×W,
                                                              means in [0, 1]
============  ==============================================  ===============================

ONNX goes through PyTorch's TorchScript-based ``torch.onnx.export(dynamo=False)`` and needs
``onnx``. The newer ``dynamo=True`` exporter is PyTorch's default, but ``torch.export``
installs dynamo's frame hook for the whole interpreter while it traces, which deadlocked the
window when an export ran beside its GUI thread. TorchScript goes through ``torch.jit.trace``: PyTorch deprecates
TorchScript in favour of ``torch.export``, but it is still what libtorch (C++) and older
mobile runtimes load, which is why people ask for it.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import uuid
import warnings
from pathlib import Path

import torch
from torch import Tensor, nn

from vae_core.adapter import limitation
from vae_core.errors import ModelExportError
from vae_core.models.base import BaseVAE

MANIFEST_FILE = "manifest.json"
MANIFEST_VERSION = 1
# torch.export specializes a dimension of size 0 or 1 into a constant; an example batch of 2
# keeps the batch axis symbolic.
_EXAMPLE_BATCH = 2
# Warnings the exporters emit on every call that say nothing about this export.
_NOISE = (
    r".*torch\.jit\..* is deprecated.*",
    r".*The axis name: .* will not be used.*",
    r".*legacy TorchScript-based ONNX export.*",
)


#: ONNX opset when none is asked for (supported by onnxruntime 1.18 and newer).
DEFAULT_OPSET = 17

def export_onnx(model_or_checkpoint, out_dir, *, opset: int | None = None) -> Path:
    """Write ``encoder.onnx`` and ``decoder.onnx`` (dynamic batch) and the manifest.

    Parameters
    ----------
    model_or_checkpoint : BaseVAE, Checkpoint, str or path-like
        A model (ours or adapted), a loaded checkpoint, or the path of one.
    out_dir : str or path-like
        Created if missing; files already there with the same names are replaced.
    opset : int, optional
        ONNX opset; ``None`` lets PyTorch choose its default.

    Returns
    -------
    pathlib.Path
        The manifest file.

    Raises
    ------
    ModelExportError
        When ``onnx`` is missing or the model cannot be traced.
    CheckpointError
        When a checkpoint path cannot be loaded.
    """
    try:
        import onnx
    except ImportError as exc:
        raise ModelExportError(f"ONNX export needs the onnx package ({exc.name} is missing): "
                               "pip install 'latent-explorer[export]'.") from None
    model = _export_copy(model_or_checkpoint)
    out = _prepare_dir(out_dir)
    files = {}
    opset_used = None
    for part in ("encoder", "decoder"):
        module, args, spec = _part(model, part)
        names = [i["name"] for i in spec["inputs"]] + [o["name"] for o in spec["outputs"]]
        target = out / f"{part}.onnx"
        with _atomic_path(target) as tmp, _quiet():
            try:
                # The TorchScript-based exporter, not dynamo=True: torch.export installs
                # dynamo's frame hook for the whole interpreter (Python 3.11), so an export on a
                # worker thread deadlocked the window's own Python code running on the GUI thread.
                torch.onnx.export(module, args, str(tmp), dynamo=False, verbose=False,
                                  opset_version=opset if opset is not None else DEFAULT_OPSET,
                                  input_names=[i["name"] for i in spec["inputs"]],
                                  output_names=[o["name"] for o in spec["outputs"]],
                                  dynamic_axes={name: {0: "batch"} for name in names})
            except Exception as exc:  # noqa: BLE001 - tracing arbitrary (adapted) code
                raise ModelExportError(f"Exporting the {part} to ONNX failed: {_first_line(exc)}.") from None
            opset_used = max((o.version for o in onnx.load(str(tmp)).opset_import if o.domain in ("", "ai.onnx")),
                             default=opset)
        files[part] = target.name
    _write_manifest(out, model, "onnx", {**files, "opset": opset_used})
    return out / MANIFEST_FILE


def export_torchscript(model_or_checkpoint, out_dir) -> Path:
    """Write ``encoder.pt`` and ``decoder.pt`` as traced TorchScript and the manifest.

    Load them with ``torch.jit.load``; they take and return the tensors listed in the
    module docstring, for any batch size. Parameters and errors as :func:`export_onnx`.

    Returns
    -------
    pathlib.Path
        The manifest file.
    """
    model = _export_copy(model_or_checkpoint)
    out = _prepare_dir(out_dir)
    files = {}
    for part in ("encoder", "decoder"):
        module, args, _ = _part(model, part)
        target = out / f"{part}.pt"
        with _atomic_path(target) as tmp, _quiet():
            try:
                # Freezing inlines the weights the graph uses and drops the rest: the encoder file
                # does not carry the decoder's weights (half the size for our models).
                traced = torch.jit.freeze(torch.jit.trace(module, args, check_trace=False))
                # A different batch size must give the same result: proves the batch axis was not
                # frozen into the trace (a Python int taken from x.shape[0] would be). NaN equals
                # NaN: vqvae's logvar is NaN by design.
                check = tuple(torch.cat([a, a[:1]]) for a in args)
                if not all(torch.allclose(t, r, atol=1e-5, rtol=1e-4, equal_nan=True) for t, r in
                           zip(_as_tuple(traced(*check)), _as_tuple(module(*check)))):
                    raise RuntimeError("the traced graph depends on the batch size")
                traced.save(str(tmp))
            except Exception as exc:  # noqa: BLE001 - tracing arbitrary (adapted) code
                raise ModelExportError(f"Exporting the {part} to TorchScript failed: {_first_line(exc)}.") from None
        files[part] = target.name
    _write_manifest(out, model, "torchscript", files)
    return out / MANIFEST_FILE


def read_manifest(out_dir) -> dict:
    """The manifest of an export folder (``{}`` when there is none)."""
    path = Path(out_dir) / MANIFEST_FILE
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


# -- the two graphs ----------------------------------------------------------------------------
class _Encoder(nn.Module):
    def __init__(self, model: BaseVAE, with_logvar: bool) -> None:
        super().__init__()
        self.model, self.with_logvar = model, with_logvar

    def forward(self, image: Tensor):
        mu, logvar = self.model.encode(image)
        return (mu, logvar) if self.with_logvar else mu


class _ConditionalEncoder(_Encoder):
    def forward(self, image: Tensor, label: Tensor):
        mu, logvar = self.model.encode(image, label)
        return (mu, logvar) if self.with_logvar else mu


class _Decoder(nn.Module):
    def __init__(self, model: BaseVAE) -> None:
        super().__init__()
        self.model = model

    def forward(self, z: Tensor) -> Tensor:
        return self.model.decode(z)


class _ConditionalDecoder(_Decoder):
    def forward(self, z: Tensor, label: Tensor) -> Tensor:
        return self.model.decode(z, label)


def _part(model: BaseVAE, part: str) -> tuple[nn.Module, tuple[Tensor, ...], dict]:
    """The module to trace, example inputs and the manifest entry for ``part``."""
    b, d, shape = _EXAMPLE_BATCH, model.latent_dim, list(model.image_shape)
    generator = torch.Generator().manual_seed(0)
    label = [{"name": "label", "shape": ["batch"], "dtype": "int64"}] if model.conditional else []
    labels = (torch.arange(b) % max(1, model.num_classes),) if model.conditional else ()
    if part == "encoder":
        with_logvar = _has_logvar(model)
        module = (_ConditionalEncoder if model.conditional else _Encoder)(model, with_logvar)
        args = (torch.rand(b, *shape, generator=generator), *labels)
        inputs = [{"name": "image", "shape": ["batch", *shape], "dtype": "float32"}, *label]
        outputs = [{"name": "mu", "shape": ["batch", d], "dtype": "float32"}]
        if with_logvar:
            outputs.append({"name": "logvar", "shape": ["batch", d], "dtype": "float32"})
    else:
        module = (_ConditionalDecoder if model.conditional else _Decoder)(model)
        args = (torch.randn(b, d, generator=generator), *labels)
        inputs = [{"name": "z", "shape": ["batch", d], "dtype": "float32"}, *label]
        outputs = [{"name": "image", "shape": ["batch", *shape], "dtype": "float32", "range": [0, 1]}]
    return module.eval(), args, {"inputs": inputs, "outputs": outputs}


def _has_logvar(model: BaseVAE) -> bool:
    return limitation(model, "logvar") is None


def _as_tuple(value) -> tuple:
    return tuple(value) if isinstance(value, (tuple, list)) else (value,)


def _export_copy(model_or_checkpoint) -> BaseVAE:
    """A CPU float32 eval-mode copy, so exporting never moves or retrains the caller's model."""
    from vae_core.checkpoint import Checkpoint, load_checkpoint

    source = model_or_checkpoint
    if isinstance(source, (str, os.PathLike)):
        source = load_checkpoint(source)
    if isinstance(source, Checkpoint):
        source = source.model
    if not isinstance(source, BaseVAE):
        raise ModelExportError(f"Cannot export a {type(source).__name__}: pass a model, a checkpoint or its path.")
    model = copy.deepcopy(source).to("cpu").float().eval()
    return model


# -- files -------------------------------------------------------------------------------------
def _prepare_dir(out_dir) -> Path:
    out = Path(out_dir).expanduser()
    if out.exists() and not out.is_dir():
        raise ModelExportError(f"{out} is a file; export into a folder.")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ModelExportError(f"Could not create {out}: {exc.strerror or exc}.") from None
    return out


@contextlib.contextmanager
def _atomic_path(target: Path):
    """A temporary name next to ``target`` that replaces it only if the block succeeds."""
    # Not mkstemp: its 0600 mode would stick to the exported file.
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def _quiet():
    with warnings.catch_warnings():
        for pattern in _NOISE:
            warnings.filterwarnings("ignore", message=pattern)
        yield


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0].rstrip('.')}" if text else type(exc).__name__


def _write_manifest(out: Path, model: BaseVAE, fmt: str, files: dict) -> None:
    describe = {
        "format_version": MANIFEST_VERSION,
        "model": model.name,
        "config": model.config.to_dict(),
        "latent_dim": int(model.latent_dim),
        "image_shape": list(model.image_shape),
        "conditional": bool(model.conditional),
        "num_classes": int(model.num_classes),
        "encoder": _part(model, "encoder")[2],
        "decoder": _part(model, "decoder")[2],
    }
    describe = json.loads(json.dumps(describe, default=str))  # tuples become lists, as when read back
    manifest = read_manifest(out)
    # Keep the other format's entry only if it describes this very model.
    same = all(manifest.get(k) == v for k, v in describe.items())
    manifest = {**(manifest if same else {}), **describe, fmt: {**files, "torch": torch.__version__}}
    with _atomic_path(out / MANIFEST_FILE) as tmp:
        tmp.write_text(json.dumps(manifest, indent=2) + "\n")


__all__ = ["export_onnx", "export_torchscript", "read_manifest", "ModelExportError", "MANIFEST_FILE"]
