"""Checkpoints: JSON config + safetensors weights. Nothing is ever unpickled.

Two layouts hold the same content:

* a folder with ``config.json``, ``model.safetensors``, ``history.json`` and, when
  training can resume, ``optimizer.safetensors``;
* a single ``.safetensors`` file whose metadata holds the JSON documents (handy to
  share one file).

``config.json`` records the SHA-256 of the weights file, so a checkpoint whose parts
do not belong together (a tampered or half-copied folder) is refused instead of
silently loading wrong weights. Every file is written to a temporary name, flushed
and then renamed into place, so a crash mid-save leaves the previous
checkpoint loadable: a folder is written complete under a temporary name and then
swapped in. The next save to the same path removes what a killed save left behind.
Files and folders are created with the user's umask, like exports.

Loading checks the JSON documents against one schema (:func:`validate_document`) and
the weights' shapes against the model that the config describes (built on the ``meta``
device first, so a config asking for 300,000 latent dimensions allocates nothing)
before building anything. Only the weights are essential: a damaged side file
(``history.json``, ``optimizer.safetensors``, the dataset or training settings) is
dropped with a note in :attr:`Checkpoint.warnings`, and the model still loads.
Whatever is wrong with the files, :func:`load_checkpoint` raises
:class:`~vae_core.errors.CheckpointError` with one sentence.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from vae_core.errors import CheckpointError, ConfigError
from vae_core.models.base import BaseVAE
from vae_core.registry import build_model, list_models, parameter_shapes
from vae_core.resources import output_error, process_alive, remove_stale_temporaries, temporary_name

FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
HISTORY_FILE = "history.json"
OPTIMIZER_FILE = "optimizer.safetensors"


@dataclass
class Checkpoint:
    """A loaded checkpoint. ``model`` is in eval mode on the requested device."""

    model: BaseVAE
    model_name: str
    config: Any
    dataset: dict | None = None
    history: list[dict] = field(default_factory=list)
    train_config: dict | None = None
    optimizer_state: dict | None = None
    path: Path | None = None
    #: One sentence per damaged side file that was dropped (history, optimizer state,
    #: dataset or training settings); empty for an intact checkpoint.
    warnings: list[str] = field(default_factory=list)


# -- saving ------------------------------------------------------------------------------
def save_checkpoint(path, model: BaseVAE, *, dataset=None, history=None, train_config=None,
                    optimizer_state: dict | None = None, extra_files: dict[str, bytes] | None = None) -> Path:
    """Write ``model`` and its context to ``path`` atomically.

    A path ending in ``.safetensors`` gives the single-file layout; anything else a folder.

    Parameters
    ----------
    dataset : DatasetSplits or dict, optional
        What the model was trained on: stored as ``{"spec": ..., "options": ...}`` so the
        app can reopen the same data.
    history : list of dict, optional
        Per-epoch metrics from training.
    train_config : TrainConfig or dict, optional
    optimizer_state : dict, optional
        ``torch.optim.Optimizer.state_dict()``, saved so training can resume exactly.
    extra_files : dict of str to bytes, optional
        More files for the folder layout (e.g. a saved projection). A folder is
        rewritten whole: files of an older save that are not given again are dropped.

    Raises
    ------
    OutputError
        When the file or folder cannot be written (read-only folder, disk full); the
        previous checkpoint at ``path`` is then left as it was.
    """
    path = Path(path)
    module = getattr(model, "module", model)
    weights = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
    weights_bytes = st_save(weights)
    document = {
        "format_version": FORMAT_VERSION,
        "model": module.name,
        "config": _jsonable(module.config.to_dict()),
        "dataset": _dataset_dict(dataset),
        "train_config": _jsonable(train_config.to_dict() if hasattr(train_config, "to_dict") else train_config),
        "weights_sha256": hashlib.sha256(weights_bytes).hexdigest(),
    }
    history_doc = _jsonable(list(history or []))
    opt_tensors, opt_meta = _flatten_optimizer(optimizer_state) if optimizer_state else ({}, None)
    if opt_meta is not None:
        document["optimizer"] = opt_meta

    if path.suffix == ".safetensors":
        tensors = dict(weights)
        tensors.update({f"__optimizer__.{k}": v for k, v in opt_tensors.items()})
        metadata = {"latent_explorer": json.dumps(document, allow_nan=False),
                    "history": json.dumps(history_doc, allow_nan=False)}
        # The file hash cannot cover itself, so the single file stores the hash of the weights alone.
        _atomic_write(path, st_save(tensors, metadata=metadata))
        return path

    if path.exists() and not path.is_dir():
        raise CheckpointError(f"{path} exists and is not a checkpoint folder.")
    files = {WEIGHTS_FILE: weights_bytes,
             HISTORY_FILE: json.dumps(history_doc, indent=1, allow_nan=False).encode(),
             CONFIG_FILE: json.dumps(document, indent=2, allow_nan=False).encode()}
    if opt_tensors:
        files[OPTIMIZER_FILE] = st_save(opt_tensors)
    for name, data in (extra_files or {}).items():
        if "/" in name or name in files or name.startswith("."):
            raise ValueError(f"Invalid extra checkpoint file name {name!r}.")
        files[name] = data
    _atomic_write_folder(path, files)
    return path


def _atomic_write_folder(path: Path, files: dict[str, bytes]) -> None:
    """Write a complete folder beside ``path``, then swap it in with two renames.

    If the process dies between the renames, ``path`` is missing and the previous
    folder waits under a ``.NAME.old-*`` name, which :func:`load_checkpoint` (and the
    next save) restores.
    """
    _prepare_target(path)
    tmp = path.parent / temporary_name(path.name, ".new")
    try:
        os.mkdir(tmp)  # mode 0o777 minus the umask, as for any folder the user makes
        for name, data in files.items():
            _write_file(tmp / name, data)
        if path.exists():
            old = path.parent / f".{path.name}.old-{os.getpid()}-{time.time_ns()}"
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, OSError):
            raise output_error(path, exc) from None
        raise


def _prepare_target(path: Path) -> None:
    """Create the parent folder and clear what killed saves to ``path`` left behind."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise output_error(path, exc) from None
    _recover_interrupted_save(path)
    remove_stale_temporaries(path.parent, path.name, (".new", ".tmp"))
    if path.exists():
        # A save killed after its second rename leaves the old folder to be deleted.
        pattern = re.compile(rf"^\.{re.escape(path.name)}\.old-(\d+)-\d+$")
        for leftover in path.parent.glob(f".{path.name}.old-*"):
            match = pattern.match(leftover.name)
            if match and not process_alive(int(match.group(1))):
                shutil.rmtree(leftover, ignore_errors=True)


def _write_file(file: Path, data: bytes) -> None:
    # "x" creates the file with mode 0o666 minus the umask (mkstemp would force 0600).
    with open(file, "xb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def _recover_interrupted_save(path: Path) -> None:
    if path.exists():
        return
    try:
        leftovers = sorted(path.parent.glob(f".{path.name}.old-*"), key=lambda p: p.stat().st_mtime)
        if leftovers:
            os.replace(leftovers[-1], path)
    except OSError:
        pass  # nothing to recover from an unreadable folder; loading will say what is missing


def _atomic_write(path: Path, data: bytes) -> None:
    _prepare_target(path)
    tmp = path.parent / temporary_name(path.name, ".tmp")
    try:
        _write_file(tmp, data)
        os.replace(tmp, path)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise output_error(path, exc) from None
        raise


# -- loading -----------------------------------------------------------------------------
_PICKLE_HINT = ("it looks like a PyTorch pickle (torch.save) file; Latent Explorer only opens "
                "safetensors checkpoints because pickles can run arbitrary code")


def load_checkpoint(path, map_location="cpu") -> Checkpoint:
    """Load a checkpoint written by :func:`save_checkpoint`.

    Damaged side files (history, optimizer state, dataset or training settings) are
    dropped, each with a sentence in :attr:`Checkpoint.warnings`; the weights load.

    Raises
    ------
    CheckpointError
        For a missing path, a pickle, a tampered or truncated weights file, a
        malformed config, an unknown model or weights that do not match the model's
        config. Never another exception for bad files.
    ResourceError
        When a valid model would not fit in the available memory.
    """
    path = Path(path)
    _recover_interrupted_save(path)
    if not path.exists():
        raise CheckpointError(f"No checkpoint at {path}.")
    notes: list[str] = []
    if path.is_dir():
        document = validate_document(_read_json(path / CONFIG_FILE, path), path, notes)
        weights_bytes = _read_bytes(path / WEIGHTS_FILE, path)
        expected = document["weights_sha256"]
        if expected and hashlib.sha256(weights_bytes).hexdigest() != expected:
            raise CheckpointError(f"{path}: the weights do not match config.json (the files were modified or mixed).")
        weights = _parse_safetensors(weights_bytes, path / WEIGHTS_FILE)
        history = []
        if (path / HISTORY_FILE).exists():
            try:
                history = validate_history(_read_json(path / HISTORY_FILE, path), path / HISTORY_FILE, notes)
            except CheckpointError as exc:
                notes.append(f"{exc} The training history was dropped.")
        opt_tensors = {}
        if (path / OPTIMIZER_FILE).exists():
            try:
                opt_tensors = _parse_safetensors(_read_bytes(path / OPTIMIZER_FILE, path), path / OPTIMIZER_FILE)
            except CheckpointError as exc:
                notes.append(f"{exc} Training will resume without the optimizer state.")
                document["optimizer"] = None
    else:
        raw = _read_bytes(path, path)
        tensors = _parse_safetensors(raw, path)
        metadata = _safetensors_metadata(path)
        if "latent_explorer" not in metadata:
            raise CheckpointError(f"{path} is a safetensors file but not a Latent Explorer checkpoint (no config inside).")
        document = validate_document(_loads(metadata["latent_explorer"], path, "embedded config"), path, notes)
        try:
            history = validate_history(_loads(metadata.get("history", "[]"), path, "embedded history"), path, notes)
        except CheckpointError as exc:
            notes.append(f"{exc} The training history was dropped.")
            history = []
        weights = {k: v for k, v in tensors.items() if not k.startswith("__optimizer__.")}
        opt_tensors = {k.split(".", 1)[1]: v for k, v in tensors.items() if k.startswith("__optimizer__.")}
        expected = document["weights_sha256"]
        if expected and hashlib.sha256(st_save(weights)).hexdigest() != expected:
            raise CheckpointError(f"{path}: the weights were modified after saving.")

    model = _build(document, weights, path)
    try:
        model.load_state_dict(weights, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: the weights cannot be loaded into the model ({str(exc).splitlines()[0]}).") from None
    model.to(map_location).eval()
    optimizer_state = _optimizer_state(model, opt_tensors, document.get("optimizer"), path, notes)
    return Checkpoint(model=model, model_name=document["model"], config=model.config,
                      dataset=document["dataset"], history=history,
                      train_config=document["train_config"], optimizer_state=optimizer_state, path=path,
                      warnings=notes)


def read_checkpoint_info(path) -> dict:
    """The JSON document of a checkpoint without loading weights (for file pickers).

    The document is checked like :func:`load_checkpoint` checks it (damaged optional
    parts are set to None).

    Raises
    ------
    CheckpointError
        For a missing path or a document that does not describe a model.
    """
    path = Path(path)
    if path.is_dir():
        return validate_document(_read_json(path / CONFIG_FILE, path), path, [])
    if not path.exists():
        raise CheckpointError(f"No checkpoint at {path}.")
    metadata = _safetensors_metadata(path)
    if "latent_explorer" not in metadata:
        raise CheckpointError(f"{path} is not a Latent Explorer checkpoint.")
    return validate_document(_loads(metadata["latent_explorer"], path, "embedded config"), path, [])


def read_checkpoint_history(path) -> list[dict]:
    """A checkpoint's training history without loading its weights (for tables of runs).

    Returns ``[]`` when the checkpoint has none or its history is damaged (as
    :func:`load_checkpoint` drops it).

    Raises
    ------
    CheckpointError
        For a missing path or a file that is not a Latent Explorer checkpoint.
    """
    path = Path(path)
    notes: list[str] = []
    if path.is_dir():
        if not (path / CONFIG_FILE).is_file():
            raise CheckpointError(f"{path} is not a checkpoint folder (it has no {CONFIG_FILE}).")
        if not (path / HISTORY_FILE).exists():
            return []
        try:
            return validate_history(_read_json(path / HISTORY_FILE, path), path / HISTORY_FILE, notes)
        except CheckpointError:
            return []
    if not path.exists():
        raise CheckpointError(f"No checkpoint at {path}.")
    metadata = _safetensors_metadata(path)
    if "latent_explorer" not in metadata:
        raise CheckpointError(f"{path} is not a Latent Explorer checkpoint.")
    try:
        return validate_history(_loads(metadata.get("history", "[]"), path, "embedded history"), path, notes)
    except CheckpointError:
        return []


def _loads(text, path: Path, what: str):
    try:
        return json.loads(text)
    except (json.JSONDecodeError, TypeError, RecursionError):
        raise CheckpointError(f"{path}: the checkpoint's {what} is not valid JSON.") from None


# -- the schema --------------------------------------------------------------------------
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def validate_document(document, path, notes: list[str]) -> dict:
    """Check a checkpoint's JSON document; return it with damaged optional parts set to None.

    This is the one place that knows the schema of ``config.json`` (and of the
    single-file metadata). The model, its config and the weights hash are essential;
    the dataset, training settings and optimizer description are not, and a malformed
    one is replaced by None with a sentence appended to ``notes``.

    Raises
    ------
    CheckpointError
        When an essential part is missing or of the wrong type.
    """
    if not isinstance(document, dict) or "model" not in document or "config" not in document:
        raise CheckpointError(f"{path}: the config does not describe a model.")
    version = document.get("format_version")
    if not _is_int(version) or version != FORMAT_VERSION:
        raise CheckpointError(f"{path} uses checkpoint format {version!r}; this version reads format {FORMAT_VERSION}.")
    name = document["model"]
    if not isinstance(name, str) or name not in list_models():
        shown = repr(name) if len(repr(name)) <= 40 else repr(name)[:37] + "..."
        raise CheckpointError(f"{path} holds an unknown model {shown} (known: {', '.join(list_models())}).")
    if not isinstance(document["config"], dict):
        raise CheckpointError(f"{path}: the model settings (\"config\") must be a JSON object.")
    digest = document.get("weights_sha256")
    if digest is not None and not (isinstance(digest, str) and _SHA256.match(digest)):
        raise CheckpointError(f"{path}: the recorded weights hash is malformed; the checkpoint is damaged.")
    clean = dict(document, weights_sha256=digest)

    dataset = document.get("dataset")
    if dataset is not None and not _valid_dataset(dataset):
        notes.append(f"{path}: the dataset description is malformed and was ignored; pass the dataset explicitly.")
        dataset = None
    clean["dataset"] = dataset

    train_config = document.get("train_config")
    if train_config is not None:
        from vae_core.training import TrainConfig

        try:
            TrainConfig.from_dict(train_config)
        except (ConfigError, TypeError) as exc:
            notes.append(f"{path}: the training settings are malformed and were ignored ({exc}).")
            train_config = None
    clean["train_config"] = train_config

    optimizer = document.get("optimizer")
    if optimizer is not None and not isinstance(optimizer, dict):
        notes.append(f"{path}: the optimizer description is malformed; training will resume without it.")
        optimizer = None
    clean["optimizer"] = optimizer
    return clean


def _valid_dataset(dataset) -> bool:
    if not isinstance(dataset, dict) or not isinstance(dataset.get("spec"), str) or not dataset["spec"].strip():
        return False
    options = dataset.get("options")
    if options is not None and not isinstance(options, dict):
        return False
    names = dataset.get("class_names")
    if names is not None and not (isinstance(names, list) and all(isinstance(n, str) for n in names)):
        return False
    shape = dataset.get("image_shape")
    return shape is None or (isinstance(shape, list) and all(_is_int(v) for v in shape))


def _history_value_ok(value) -> bool:
    if value is None or isinstance(value, (str, bool)) or _is_number(value):
        return True
    return isinstance(value, list) and all(v is None or _is_number(v) for v in value)


def validate_history(history, where, notes: list[str]) -> list[dict]:
    """The training history if every row is well formed, else ``[]`` with a note.

    Rows must be JSON objects numbered ``epoch`` 1, 2, 3, ... with numeric metrics:
    a resumed run numbers its epochs after them, so a wrong row would be copied into
    every later checkpoint.
    """
    problem = None
    if not isinstance(history, list):
        problem = "it is not a list of epochs"
    else:
        for i, row in enumerate(history):
            if not isinstance(row, dict):
                problem = f"entry {i + 1} is not a JSON object"
            elif not _is_int(row.get("epoch")) or row["epoch"] != i + 1:
                problem = f"entry {i + 1} has epoch {row.get('epoch')!r}, expected {i + 1}"
            elif "step" in row and not (_is_int(row["step"]) and row["step"] >= 0):
                problem = f"entry {i + 1} has step {row['step']!r}"
            elif not all(isinstance(k, str) and _history_value_ok(v) for k, v in row.items()):
                problem = f"entry {i + 1} holds values that are not numbers"
            if problem:
                break
    if problem:
        notes.append(f"{where}: the training history is malformed ({problem}) and was dropped.")
        return []
    return history


def _read_bytes(file: Path, ckpt: Path) -> bytes:
    try:
        data = file.read_bytes()
    except FileNotFoundError:
        raise CheckpointError(f"{ckpt} is not a complete checkpoint: {file.name} is missing.") from None
    except OSError as exc:
        raise CheckpointError(f"Could not read {file}: {exc.strerror or exc}.") from None
    return data


def _looks_like_pickle(data: bytes) -> bool:
    # torch.save writes a zip archive (or, in old versions, a raw pickle: protocol opcode 0x80).
    return data[:4] == b"PK\x03\x04" or (data[:1] == b"\x80" and data[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"))


def _refuse_pickle(data: bytes, file: Path) -> None:
    if _looks_like_pickle(data):
        raise CheckpointError(f"Refusing to open {file}: {_PICKLE_HINT}.")


def _read_json(file: Path, ckpt: Path):
    data = _read_bytes(file, ckpt)
    try:
        return json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
        _refuse_pickle(data, file)
        raise CheckpointError(f"{file} is not valid JSON; the checkpoint is damaged.") from None


def _parse_safetensors(data: bytes, file: Path) -> dict[str, torch.Tensor]:
    try:
        return st_load(data)
    except (SafetensorError, ValueError, RuntimeError, OverflowError) as exc:
        _refuse_pickle(data, file)
        raise CheckpointError(f"{file} is not a valid safetensors file ({exc}); it may be truncated or damaged.") from None


def _safetensors_metadata(path: Path) -> dict:
    try:
        with safe_open(str(path), framework="pt") as fh:
            return fh.metadata() or {}
    except (SafetensorError, OSError, ValueError) as exc:
        _refuse_pickle(_read_bytes(path, path)[:8], path)
        raise CheckpointError(f"{path} is not a valid safetensors checkpoint ({exc}).") from None


def _build(document: dict, weights: dict, path: Path) -> BaseVAE:
    """Build the model after checking the weights' shapes against its config.

    The expected shapes come from a model built on the ``meta`` device, so a config
    that asks for an absurd size is refused without allocating it.
    """
    name, config = document["model"], document["config"]
    try:
        expected = parameter_shapes(name, **config)
    except ConfigError as exc:
        raise CheckpointError(f"{path}: {exc}") from None
    missing = sorted(set(expected) - set(weights))
    extra = sorted(set(weights) - set(expected))
    if missing or extra:
        raise CheckpointError(f"{path}: the weights do not fit a {name!r} model with this config "
                              f"({len(missing)} missing, {len(extra)} unexpected tensors).")
    for key, shape in expected.items():
        if tuple(weights[key].shape) != shape:
            raise CheckpointError(f"{path}: tensor {key} has shape {tuple(weights[key].shape)}, "
                                  f"the model expects {shape}.")
    try:
        return build_model(name, **config)
    except ConfigError as exc:
        raise CheckpointError(f"{path}: {exc}") from None


def _optimizer_state(model: BaseVAE, tensors: dict, meta, path: Path, notes: list[str]) -> dict | None:
    """The Adam state if it is intact and fits ``model``; else None with a note."""
    if not tensors and not meta:
        return None
    try:
        if not meta:
            raise ValueError("its description in the config is missing")
        state = _unflatten_optimizer(tensors, meta)
        _check_optimizer(model, state)
    except (ValueError, TypeError, KeyError, AttributeError, IndexError, RuntimeError) as exc:
        notes.append(f"{path}: the optimizer state is damaged ({exc}); training will resume without it.")
        return None
    return state


def _check_optimizer(model: BaseVAE, state: dict) -> None:
    params = list(model.parameters())
    groups = state["param_groups"]
    if not isinstance(groups, list) or not all(isinstance(g, dict) for g in groups):
        raise ValueError("param_groups is not a list of objects")
    ids = [i for g in groups for i in g.get("params", [])]
    if ids != list(range(len(params))):
        raise ValueError(f"it lists {len(ids)} parameters, the model has {len(params)}")
    for group in groups:
        if not all(_is_number(group.get(key, 0.0)) for key in ("lr", "eps", "weight_decay")):
            raise ValueError("a learning rate or epsilon is not a number")
        betas = group.get("betas", [0.9, 0.999])
        if not (isinstance(betas, (list, tuple)) and len(betas) == 2 and all(_is_number(b) for b in betas)):
            raise ValueError("betas are not two numbers")
    for pid, entry in state["state"].items():
        if not 0 <= pid < len(params):
            raise ValueError(f"it has state for parameter {pid}, the model has {len(params)}")
        for key in ("exp_avg", "exp_avg_sq"):
            value = entry.get(key)
            if not isinstance(value, torch.Tensor) or value.shape != params[pid].shape:
                raise ValueError(f"{key} of parameter {pid} does not match its shape {tuple(params[pid].shape)}")
        step = entry.get("step")
        if not (isinstance(step, torch.Tensor) and step.numel() == 1 or _is_number(step)):
            raise ValueError(f"the step count of parameter {pid} is not a number")


# -- helpers -----------------------------------------------------------------------------
def _dataset_dict(dataset) -> dict | None:
    if dataset is None:
        return None
    if isinstance(dataset, dict):
        return _jsonable(dataset)
    return _jsonable({"spec": dataset.spec, "options": dict(dataset.options),
                      "class_names": list(dataset.class_names), "image_shape": list(dataset.image_shape)})


def _jsonable(value):
    # NaN and infinities are not JSON (json.dumps would write NaN, which no strict
    # reader accepts): they are stored as null.
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, torch.Tensor):
        return _jsonable(value.tolist())
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return _jsonable(value.item())
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value


def _flatten_optimizer(state: dict) -> tuple[dict[str, torch.Tensor], dict]:
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict] = {}
    for pid, entry in state.get("state", {}).items():
        for key, value in entry.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{pid}.{key}"] = value.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(pid), {})[key] = value
    return tensors, {"param_groups": _jsonable(state.get("param_groups", [])), "scalars": scalars}


def _unflatten_optimizer(tensors: dict[str, torch.Tensor], meta: dict | None) -> dict | None:
    if not meta:
        return None
    state: dict[int, dict] = {}
    for name, value in tensors.items():
        pid, key = name.split(".", 1)
        state.setdefault(int(pid), {})[key] = value
    scalars = meta.get("scalars") or {}
    if not isinstance(scalars, dict) or not all(isinstance(e, dict) for e in scalars.values()):
        raise ValueError("its scalars are not objects")
    for pid, entry in scalars.items():
        state.setdefault(int(pid), {}).update(entry)
    return {"state": state, "param_groups": meta.get("param_groups", [])}
