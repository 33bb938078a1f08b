"""Open a VAE written elsewhere: an adapter file builds the model and says how to call it.

An adapter is a Python file (or an importable module) that defines

=====================  ========  ===========================================================
name                   required  meaning
=====================  ========  ===========================================================
``build_model()``      yes       returns the ``torch.nn.Module`` (weights are loaded after)
``IMAGE_SHAPE``        yes       ``(channels, height, width)`` of the images it reads
``LATENT_DIM``         yes       size of the code
``encode(model, x)``   no        ``mu`` or ``(mu, logvar)``, each ``B×LATENT_DIM``;
                                 default ``model.encode(x)``
``decode(model, z)``   no        ``B×C×H×W`` (or ``B×C·H·W``) images; default ``model.decode(z)``
``DECODER_OUTPUT``     no        ``"probabilities"`` (in [0, 1], default) or ``"logits"``
``LIKELIHOOD``         no        ``"bernoulli"`` or ``"gaussian"``: p(x|z) as trained;
                                 enables evaluation (with a logvar)
``GAUSSIAN_STD``       no        standard deviation of the Gaussian likelihood (0.1)
``NUM_CLASSES``        no        > 0 for a label-conditional model: ``encode(model, x, y)``
                                 and ``decode(model, z, y)`` then receive int64 labels
``NAME``               no        shown in the window; defaults to the file name
``convert_state_dict`` no        ``f(state_dict) -> state_dict`` for weights saved with
                                 other key names
=====================  ========  ===========================================================

``x`` is always ``float32`` ``B×C×H×W`` in [0, 1]; an adapter reshapes or normalizes it
itself. Weights come from a ``.safetensors`` file or a plain state dict
(``torch.save(model.state_dict(), path)``) read with ``torch.load(weights_only=True)``:
nothing is unpickled.

:func:`load_adapted_model` returns an :class:`AdaptedVAE`, a :class:`BaseVAE` that the map,
the decoder, the studio, export and (when it has a logvar and a likelihood) evaluation use
like our own models. What it cannot do is listed in :attr:`AdaptedVAE.capabilities` with a
one-sentence reason in :attr:`AdaptedVAE.limitations`.

Opening an adapter runs its code: the caller asks the user first and remembers the
answer per :func:`file_sha256`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import importlib
import importlib.util
import math
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from torch import Tensor, nn

from vae_core.errors import AdapterError
from vae_core.models.base import LIKELIHOODS, BaseVAE, ModelConfig

DECODER_OUTPUTS = ("probabilities", "logits")
#: Capabilities every adapted model reports, in a stable order for menus and tooltips.
CAPABILITIES = ("encode", "decode", "logvar", "likelihood", "evaluate", "export", "train", "checkpoint")
# Probabilities are turned into logits for the shared Bernoulli/Gaussian terms; clamping at
# 1e-6 caps a pixel's cross-entropy at -log(1e-6) = 13.8 nats instead of infinity.
_PROBABILITY_EPS = 1e-6
_DRY_RUN_BATCH = 2  # two rows, so that an adapter that drops or mixes the batch axis is caught
_DOC_HINT = "see docs/OWN_MODEL.md"


def file_sha256(path) -> str:
    """Hex SHA-256 of a file's bytes: the key under which "run this file's code" is remembered."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    except OSError as exc:
        raise AdapterError(f"Could not read {path}: {exc.strerror or exc}.") from None
    return digest.hexdigest()


# -- the adapter description -------------------------------------------------------------------
@dataclass(frozen=True)
class AdapterConfig(ModelConfig):
    """What an adapter declares, in the shape of a model config.

    ``likelihood`` is ``None`` when the adapter does not say; then nothing that needs
    log p(x|z) (the ELBO, IWAE) is offered.

    Attributes
    ----------
    num_classes : int
        Labels of a conditional model; 0 when it is unconditional.
    decoder_output : {"probabilities", "logits"}
        What the adapter's ``decode`` returns.
    source : str
        The adapter file (absolute path) or module name.
    source_sha256 : str
        SHA-256 of the adapter file ("" for a module without a file).
    weights : str
        The weights file, or "" when ``build_model`` loads its own.
    """

    likelihood: str | None = None
    num_classes: int = 0
    decoder_output: str = "probabilities"
    source: str = ""
    source_sha256: str = ""
    weights: str = ""

    def __post_init__(self) -> None:
        if self.likelihood is None:
            # ModelConfig insists on a known likelihood; an adapter may honestly have none.
            object.__setattr__(self, "likelihood", "bernoulli")
            try:
                super().__post_init__()
            finally:
                object.__setattr__(self, "likelihood", None)
        else:
            super().__post_init__()


@dataclass(frozen=True)
class Adapter:
    """An imported adapter: its declarations and the functions it provides."""

    config: AdapterConfig
    name: str
    build_model: Callable[[], nn.Module]
    encode: Callable[..., Any]
    decode: Callable[..., Any]
    convert_state_dict: Callable[[dict], dict] | None = None
    module: Any = field(default=None, repr=False)


def load_adapter(model_file) -> Adapter:
    """Import an adapter and check its declarations (without building the model).

    Parameters
    ----------
    model_file : str or path-like
        A ``.py`` file, or the dotted name of an importable module (``mypkg.vae_adapter``).

    Raises
    ------
    AdapterError
        When the file is missing, fails to import, or declares something invalid.
    """
    module, source, sha = _import_adapter(model_file)
    label = Path(source).name if sha else source

    def required(name: str):
        if not hasattr(module, name):
            raise AdapterError(f"{label} does not define {name}; an adapter defines build_model(), IMAGE_SHAPE "
                               f"and LATENT_DIM ({_DOC_HINT}).")
        return getattr(module, name)

    build = required("build_model")
    if not callable(build):
        raise AdapterError(f"{label}: build_model must be a function that returns the model.")
    image_shape = _shape(required("IMAGE_SHAPE"), label)
    latent_dim = _positive_int(required("LATENT_DIM"), "LATENT_DIM", label)
    num_classes = getattr(module, "NUM_CLASSES", 0)
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 0 or num_classes == 1:
        raise AdapterError(f"{label}: NUM_CLASSES must be 0 (unconditional) or the number of labels (2 or more), "
                           f"not {num_classes!r}.")
    decoder_output = getattr(module, "DECODER_OUTPUT", "probabilities")
    if decoder_output not in DECODER_OUTPUTS:
        raise AdapterError(f"{label}: DECODER_OUTPUT must be 'probabilities' or 'logits', not {decoder_output!r}.")
    likelihood = getattr(module, "LIKELIHOOD", None)
    if likelihood is not None and likelihood not in LIKELIHOODS:
        raise AdapterError(f"{label}: LIKELIHOOD must be 'bernoulli', 'gaussian' or None, not {likelihood!r}.")
    gaussian_std = getattr(module, "GAUSSIAN_STD", 0.1)
    if isinstance(gaussian_std, bool) or not isinstance(gaussian_std, (int, float)) or not gaussian_std > 0:
        raise AdapterError(f"{label}: GAUSSIAN_STD must be a positive number, not {gaussian_std!r}.")
    encode = getattr(module, "encode", None) or _default_method("encode", num_classes)
    decode = getattr(module, "decode", None) or _default_method("decode", num_classes)
    convert = getattr(module, "convert_state_dict", None)
    for fn_name, fn in (("encode", encode), ("decode", decode), ("convert_state_dict", convert)):
        if fn is not None and not callable(fn):
            raise AdapterError(f"{label}: {fn_name} must be a function.")
    name = getattr(module, "NAME", None) or (Path(source).stem if sha else source.rsplit(".", 1)[-1])
    config = AdapterConfig(image_shape=image_shape, latent_dim=latent_dim, likelihood=likelihood,
                           gaussian_std=float(gaussian_std), num_classes=num_classes,
                           decoder_output=decoder_output, source=source, source_sha256=sha)
    return Adapter(config=config, name=str(name), build_model=build, encode=encode, decode=decode,
                   convert_state_dict=convert, module=module)


def _default_method(method: str, num_classes: int):
    def call(model, tensor, labels=None):
        fn = getattr(model, method, None)
        if fn is None:
            raise AdapterError(f"The model has no {method}() method; define {method}(model, "
                               f"{'x' if method == 'encode' else 'z'}) in the adapter ({_DOC_HINT}).")
        return fn(tensor, labels) if num_classes else fn(tensor)

    return call


def _import_adapter(model_file) -> tuple[Any, str, str]:
    """Run the adapter's code; returns ``(module, source, sha256 or "")``."""
    text = str(model_file)
    path = Path(text).expanduser()
    is_file = text.endswith(".py") or path.exists() or "/" in text or "\\" in text
    if not is_file:
        try:
            module = importlib.import_module(text)
        except ModuleNotFoundError as exc:
            if exc.name and text.startswith(exc.name):
                raise AdapterError(f"No adapter file or importable module named {text!r}.") from None
            raise AdapterError(_import_failure(text, exc, None)) from None
        except Exception as exc:  # noqa: BLE001 - any error in user code becomes one sentence
            raise AdapterError(_import_failure(text, exc, None)) from None
        file = getattr(module, "__file__", None)
        return module, text, file_sha256(file) if file else ""
    if not path.is_file():
        raise AdapterError(f"No adapter file at {path}.")
    path = path.resolve()
    sha = file_sha256(path)
    # One module name per content: reopening an edited file runs the new code.
    module_name = f"_latent_explorer_adapter_{path.stem}_{sha[:12]}"
    if module_name in sys.modules:
        return sys.modules[module_name], str(path), sha
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses and pickling look the module up here
    try:
        with _importable_siblings(path):
            spec.loader.exec_module(module)
    except BaseException as exc:
        del sys.modules[module_name]
        if not isinstance(exc, Exception):
            raise
        raise AdapterError(_import_failure(path.name, exc, path)) from None
    return module, str(path), sha


@contextlib.contextmanager
def _importable_siblings(path: Path):
    """Let an adapter import the project it sits in (``from model import VAE``)."""
    folder = str(path.parent)
    added = folder not in sys.path
    if added:
        sys.path.insert(0, folder)
    try:
        yield
    finally:
        if added:
            with contextlib.suppress(ValueError):
                sys.path.remove(folder)


def _import_failure(label: str, exc: BaseException, path: Path | None) -> str:
    if isinstance(exc, SyntaxError):
        return f"{label} line {exc.lineno}: {exc.msg}; fix the file and open it again."
    line = ""
    if path is not None:
        frames = [f for f in traceback.extract_tb(exc.__traceback__) if Path(f.filename) == path]
        if frames:
            line = f" (line {frames[-1].lineno})"
    return f"Importing {label} failed{line}: {_exception_text(exc)}."


def _exception_text(exc: BaseException) -> str:
    """``Type: first line of the message`` without a trailing period."""
    message = str(exc).strip().splitlines()[0].rstrip(".") if str(exc).strip() else ""
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def _shape(value, label: str) -> tuple[int, int, int]:
    try:
        shape = tuple(int(v) for v in value)
        ok = len(shape) == 3 and min(shape) >= 1 and all(int(v) == v for v in value)
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise AdapterError(f"{label}: IMAGE_SHAPE must be (channels, height, width), for example (1, 28, 28), "
                           f"not {value!r}.")
    return shape


def _positive_int(value, name: str, label: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise AdapterError(f"{label}: {name} must be a positive integer, not {value!r}.")
    return value


# -- the adapted model -------------------------------------------------------------------------
class AdaptedVAE(BaseVAE):
    """A user's model behind the :class:`BaseVAE` interface the app uses for ours.

    ``encode`` returns ``(mu, logvar)``; when the adapter gives only ``mu`` the logvar is
    all NaN (an unknown width, never an invented one) and ``capabilities["logvar"]`` is
    False. ``decode`` returns means in [0, 1] and ``decode_logits`` their logits.

    Attributes
    ----------
    network : torch.nn.Module
        The user's model, as ``build_model()`` returned it, with the weights loaded.
    capabilities : dict of str to bool
        One entry per name in :data:`CAPABILITIES`.
    limitations : dict of str to str
        For every capability that is False, one sentence saying why (for tooltips and
        error messages).
    """

    name = "adapter"

    def __init__(self, adapter: Adapter, network: nn.Module, *, has_logvar: bool) -> None:
        super().__init__(adapter.config)
        self.network = network
        self.name = adapter.name
        self.conditional = adapter.config.num_classes > 0
        self._encode_fn = adapter.encode
        self._decode_fn = adapter.decode
        self.capabilities, self.limitations = _capabilities(adapter.config, has_logvar)

    @property
    def device(self) -> torch.device:
        first = next(self.parameters(), None)
        if first is None:
            first = next(self.buffers(), None)
        return first.device if first is not None else torch.device("cpu")

    def require(self, capability: str) -> None:
        """Raise :class:`AdapterError` with the reason when ``capability`` is missing."""
        if not self.capabilities.get(capability, False):
            raise AdapterError(self.limitations.get(capability, f"This adapted model cannot {capability}."))

    # -- the model ----------------------------------------------------------------------------
    def _labels(self, y: Tensor | None) -> tuple:
        if not self.conditional:
            return ()
        if y is None:
            raise ValueError("This model is conditional on the label: pass labels y.")
        return (y.long(),)

    def encode(self, x: Tensor, y: Tensor | None = None) -> tuple[Tensor, Tensor]:
        out = self._encode_fn(self.network, x, *self._labels(y))
        mu, logvar = _split_encoding(out)
        if logvar is None:
            logvar = torch.full_like(mu, float("nan"))
        return mu, logvar

    def _decode_raw(self, z: Tensor, y: Tensor | None) -> Tensor:
        out = self._decode_fn(self.network, z, *self._labels(y))
        return out.reshape(z.shape[0], *self.image_shape)

    def decode(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        out = self._decode_raw(z, y)
        return torch.sigmoid(out) if self.config.decoder_output == "logits" else out

    def decode_logits(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        out = self._decode_raw(z, y)
        if self.config.decoder_output == "logits":
            return out
        return torch.logit(out, eps=_PROBABILITY_EPS)

    def recon_nll(self, logits: Tensor, x: Tensor) -> Tensor:
        self.require("likelihood")
        return super().recon_nll(logits, x)

    def loss_terms(self, x, logits, mu, logvar, beta: float = 1.0):
        self.require("evaluate")
        return super().loss_terms(x, logits, mu, logvar, beta)


def _split_encoding(out) -> tuple[Tensor, Tensor | None]:
    if isinstance(out, Tensor):
        return out, None
    if isinstance(out, (tuple, list)) and len(out) == 2 and all(isinstance(t, Tensor) for t in out):
        return out[0], out[1]
    if isinstance(out, (tuple, list)) and len(out) >= 1 and isinstance(out[0], Tensor) and len(out) != 2:
        raise AdapterError(f"encode returned {len(out)} values; it must return mu or (mu, logvar) ({_DOC_HINT}).")
    raise AdapterError(f"encode returned {type(out).__name__}; it must return a tensor mu or a pair (mu, logvar) "
                       f"({_DOC_HINT}).")


def _capabilities(config: AdapterConfig, has_logvar: bool) -> tuple[dict[str, bool], dict[str, str]]:
    reasons = {
        "train": "Adapted models are trained by their own code: train it there and reopen the new weights.",
        "checkpoint": "An adapted model is reopened from its adapter file and weights, not saved as a "
                      "Latent Explorer checkpoint.",
    }
    if not has_logvar:
        reasons["logvar"] = ("The adapter's encode returns only mu, so posterior widths, per-dimension KL and "
                             "evaluation are unavailable; return (mu, logvar) to enable them.")
    if config.likelihood is None:
        reasons["likelihood"] = ("The adapter does not say which likelihood the model was trained with, so "
                                 "reconstruction log-likelihoods are unavailable; set LIKELIHOOD = 'bernoulli' "
                                 "or 'gaussian' to enable them.")
    if not has_logvar or config.likelihood is None:
        missing = " and ".join(part for part, gone in (("a logvar from encode", not has_logvar),
                                                       ("LIKELIHOOD", config.likelihood is None)) if gone)
        reasons["evaluate"] = (f"Evaluating the ELBO or IWAE needs {missing}, which this adapter does not "
                               f"provide ({_DOC_HINT}).")
    capabilities = {name: name not in reasons for name in CAPABILITIES}
    return capabilities, reasons


def limitation(model, capability: str) -> str | None:
    """Why ``model`` cannot do ``capability`` (one sentence), or None when it can.

    The one place that tells adapted models from ours: the CLI, the app and export ask
    here (or :func:`require_capability`) instead of checking the class. Our own models
    can do everything in :data:`CAPABILITIES`.
    """
    if isinstance(model, AdaptedVAE) and not model.capabilities.get(capability, False):
        return model.limitations.get(capability, f"This adapted model cannot {capability}.")
    return None


def require_capability(model, capability: str) -> None:
    """Raise :class:`AdapterError` if ``model`` is an adapted model lacking ``capability``.

    Our own models can do everything, so this is a no-op for them.
    """
    reason = limitation(model, capability)
    if reason is not None:
        raise AdapterError(reason)


# -- loading -----------------------------------------------------------------------------------
def load_weights(path) -> dict[str, Tensor]:
    """Read a state dict from ``.safetensors`` or a ``torch.save``'d ``.pt``/``.pth`` file.

    PyTorch files go through ``torch.load(weights_only=True)``, which refuses anything but
    tensors and plain containers. A dict that wraps the state dict under ``state_dict``,
    ``model_state_dict`` or ``model`` (common training checkpoints) is unwrapped.

    Raises
    ------
    AdapterError
        For a missing or unreadable file, a full pickle, or no tensors inside.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise AdapterError(f"No weights file at {path}.")
    with open(path, "rb") as fh:
        head = fh.read(4)
    # torch.save writes a zip archive (old versions: a raw pickle, protocol opcode 0x80).
    torch_file = head[:4] == b"PK\x03\x04" or head[:1] == b"\x80"
    if not torch_file:
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
            raise AdapterError(f"{path.name} is neither a safetensors file nor a PyTorch state dict "
                               f"({_exception_text(exc)}).") from None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - UnpicklingError, RuntimeError, EOFError, ...
        if "weights_only" in str(exc) or "Unsupported global" in str(exc):
            raise AdapterError(f"{path.name} holds more than tensors, and full pickles are never opened; save the "
                               "weights with torch.save(model.state_dict(), path) or as safetensors.") from None
        raise AdapterError(f"{path.name} is not a readable PyTorch state dict ({_exception_text(exc)}).") from None
    state = _unwrap_state_dict(state)
    if not state:
        raise AdapterError(f"{path.name} holds no tensors; save the weights with torch.save(model.state_dict(), path).")
    return state


def _unwrap_state_dict(state) -> dict[str, Tensor]:
    if not isinstance(state, dict):
        return {}
    tensors = {k: v for k, v in state.items() if isinstance(k, str) and isinstance(v, Tensor)}
    if tensors:
        return tensors
    for key in ("state_dict", "model_state_dict", "model"):
        if isinstance(state.get(key), dict):
            return _unwrap_state_dict(state[key])
    return {}


def _fit_weights(network: nn.Module, weights: dict[str, Tensor], label: str) -> None:
    expected = network.state_dict()
    missing = [k for k in expected if k not in weights]
    extra = [k for k in weights if k not in expected]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing ({_names(missing)})")
        if extra:
            parts.append(f"{len(extra)} unexpected ({_names(extra)})")
        raise AdapterError(f"The weights in {label} do not fit the adapter's model: {' and '.join(parts)} "
                           "tensors; check that build_model() builds the architecture that was saved.")
    for key, tensor in expected.items():
        if tuple(weights[key].shape) != tuple(tensor.shape):
            raise AdapterError(f"The weights in {label} do not fit the adapter's model: {key} is "
                               f"{_dims(weights[key].shape)} in the file but {_dims(tensor.shape)} in the model.")
    network.load_state_dict(weights, strict=True)


def _names(keys: list[str], limit: int = 3) -> str:
    return ", ".join(keys[:limit]) + (", ..." if len(keys) > limit else "")


def _dims(shape) -> str:
    return "×".join(str(int(s)) for s in shape) or "a scalar"


def _check_shape(image_shape, dataset_shape) -> None:
    theirs = tuple(int(s) for s in dataset_shape)
    if theirs != tuple(image_shape):
        c, h, _ = image_shape
        channels = "" if theirs[0] == c else f" and {c} channel{'s' if c > 1 else ''}"
        raise AdapterError(f"The model reads {_dims(image_shape)} images but the dataset has {_dims(theirs)} "
                           f"images; open the dataset with image size {h}{channels}.")


def check_dataset(model: BaseVAE, data) -> None:
    """Raise :class:`AdapterError` when ``data`` (a ``DatasetSplits``) does not fit ``model``.

    Checks the image shape and, for a conditional model, that the dataset has labels and
    as many classes as the model.
    """
    _check_shape(model.image_shape, data.image_shape)
    if model.conditional:
        if data.train.labels is None:
            raise AdapterError("This model is conditional on labels, so it needs a labelled dataset.")
        if data.num_classes != model.num_classes:
            raise AdapterError(f"The model is conditioned on {model.num_classes} classes but the dataset has "
                               f"{data.num_classes}; open a dataset with {model.num_classes} classes.")


def load_adapted_model(model_file, weights=None, *, dataset_shape=None, device="cpu") -> AdaptedVAE:
    """Import an adapter, build its model, load the weights and check it with a dry run.

    Parameters
    ----------
    model_file : str or path-like
        The adapter: a ``.py`` file or an importable module name. Its code runs.
    weights : str or path-like, optional
        ``.safetensors`` or a ``torch.save``'d state dict (``.pt``/``.pth``). ``None`` keeps
        the weights ``build_model()`` gave the model.
    dataset_shape : tuple of int, optional
        ``(C, H, W)`` of the dataset it will be used with; a different size is refused.
    device : str or torch.device
        Where the model is put once checked.

    Returns
    -------
    AdaptedVAE
        In eval mode, with ``config.source``/``config.weights`` recording where it came from.

    Raises
    ------
    AdapterError
        With one sentence, for an adapter that fails to import or declares something
        invalid, a ``build_model()`` that fails, weights that cannot be read or do not fit,
        ``encode``/``decode`` that fail or return the wrong shapes on a batch of zeros, or a
        dataset of another image size.
    """
    adapter = load_adapter(model_file)
    label = Path(adapter.config.source).name if adapter.config.source_sha256 else adapter.config.source
    if dataset_shape is not None:  # before building: the cheapest mistake to report
        _check_shape(adapter.config.image_shape, dataset_shape)
    source_path = Path(adapter.config.source)
    context = _importable_siblings(source_path) if adapter.config.source_sha256 else contextlib.nullcontext()
    with context:
        try:
            network = adapter.build_model()
        except Exception as exc:  # noqa: BLE001 - user code
            raise AdapterError(f"build_model() in {label} failed: {_exception_text(exc)}.") from None
    if not isinstance(network, nn.Module):
        raise AdapterError(f"build_model() in {label} returned {type(network).__name__}, not a torch.nn.Module.")
    weights_label = ""
    if weights is not None:
        state = load_weights(weights)
        weights_label = str(Path(weights).expanduser().resolve())
        if adapter.convert_state_dict is not None:
            try:
                state = adapter.convert_state_dict(dict(state))
            except Exception as exc:  # noqa: BLE001 - user code
                raise AdapterError(f"convert_state_dict in {label} failed: {_exception_text(exc)}.") from None
            if not isinstance(state, dict):
                raise AdapterError(f"convert_state_dict in {label} must return a dict of tensors.")
        _fit_weights(network, state, Path(weights).name)
    network = network.float().eval()
    has_logvar = _dry_run(adapter, network, label)
    adapter = dataclasses.replace(adapter, config=dataclasses.replace(adapter.config, weights=weights_label))
    model = AdaptedVAE(adapter, network, has_logvar=has_logvar)
    return model.to(device).eval()


def _dry_run(adapter: Adapter, network: nn.Module, label: str) -> bool:
    """Call encode and decode on zeros; returns whether encode gives a logvar."""
    config = adapter.config
    b, d = _DRY_RUN_BATCH, config.latent_dim
    x = torch.zeros(b, *config.image_shape)
    z = torch.zeros(b, d)
    labels = (torch.zeros(b, dtype=torch.long),) if config.num_classes else ()
    shape_text = _dims(x.shape)
    with torch.inference_mode():
        try:
            out = adapter.encode(network, x, *labels)
        except AdapterError:
            raise
        except Exception as exc:  # noqa: BLE001 - user code
            raise AdapterError(f"encode in {label} failed on a batch of zeros of shape {shape_text}: "
                               f"{_exception_text(exc)}; check that it reshapes the images as the model "
                               "expects.") from None
        mu, logvar = _split_encoding(out)
        for name, tensor in (("mu", mu), ("logvar", logvar)):
            if tensor is None:
                continue
            if tuple(tensor.shape) != (b, d):
                raise AdapterError(f"encode in {label} returned {name} of shape {_dims(tensor.shape)} for "
                                   f"{b} images; expected {b}×{d} (batch × LATENT_DIM).")
            if not torch.isfinite(tensor).all():
                raise AdapterError(f"encode in {label} returned non-finite {name} for a batch of zeros; check "
                                   "the weights.")
        try:
            image = adapter.decode(network, z, *labels)
        except AdapterError:
            raise
        except Exception as exc:  # noqa: BLE001 - user code
            raise AdapterError(f"decode in {label} failed on {b} zero codes of size {d}: "
                               f"{_exception_text(exc)}; check LATENT_DIM.") from None
        if not isinstance(image, Tensor):
            raise AdapterError(f"decode in {label} returned {type(image).__name__}; it must return a tensor of "
                               "images.")
        if image.ndim < 1 or image.shape[0] != b or image[0].numel() != math.prod(config.image_shape):
            raise AdapterError(f"decode in {label} returned {_dims(image.shape)} for {b} codes; expected "
                               f"{b}×{_dims(config.image_shape)} (IMAGE_SHAPE).")
        if not torch.isfinite(image).all():
            raise AdapterError(f"decode in {label} returned non-finite values for zero codes; check the weights.")
        if config.decoder_output == "probabilities" and (image.min() < 0 or image.max() > 1):
            raise AdapterError(f"decode in {label} returned values in [{float(image.min()):.3g}, "
                               f"{float(image.max()):.3g}], outside [0, 1]; if it returns logits set "
                               "DECODER_OUTPUT = 'logits'.")
    return logvar is not None


__all__ = [
    "AdapterError", "Adapter", "AdapterConfig", "AdaptedVAE", "CAPABILITIES", "DECODER_OUTPUTS",
    "file_sha256", "load_adapter", "load_weights", "load_adapted_model", "check_dataset",
    "require_capability", "limitation",
]
