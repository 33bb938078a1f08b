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
swapped in.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from vae_core.errors import CheckpointError
from vae_core.models.base import BaseVAE
from vae_core.registry import build_model, config_from_dict, list_models

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
        metadata = {"latent_explorer": json.dumps(document), "history": json.dumps(history_doc)}
        # The file hash cannot cover itself, so the single file stores the hash of the weights alone.
        _atomic_write(path, st_save(tensors, metadata=metadata))
        return path

    if path.exists() and not path.is_dir():
        raise CheckpointError(f"{path} exists and is not a checkpoint folder.")
    files = {WEIGHTS_FILE: weights_bytes,
             HISTORY_FILE: json.dumps(history_doc, indent=1).encode(),
             CONFIG_FILE: json.dumps(document, indent=2).encode()}
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
    folder waits under a ``.NAME.old-*`` name, which :func:`load_checkpoint` restores.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".new", dir=path.parent))
    try:
        for name, data in files.items():
            with open(tmp / name, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
        if path.exists():
            old = path.parent / f".{path.name}.old-{os.getpid()}-{time.time_ns()}"
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _recover_interrupted_save(path: Path) -> None:
    if path.exists():
        return
    leftovers = sorted(path.parent.glob(f".{path.name}.old-*"), key=lambda p: p.stat().st_mtime)
    if leftovers:
        os.replace(leftovers[-1], path)


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# -- loading -----------------------------------------------------------------------------
_PICKLE_HINT = ("it looks like a PyTorch pickle (torch.save) file; Latent Explorer only opens "
                "safetensors checkpoints because pickles can run arbitrary code")


def load_checkpoint(path, map_location="cpu") -> Checkpoint:
    """Load a checkpoint written by :func:`save_checkpoint`.

    Raises
    ------
    CheckpointError
        For a missing path, a pickle, a tampered or truncated file, an unknown model or
        weights that do not match the model's config.
    """
    path = Path(path)
    _recover_interrupted_save(path)
    if not path.exists():
        raise CheckpointError(f"No checkpoint at {path}.")
    if path.is_dir():
        document = _read_json(path / CONFIG_FILE, path)
        weights_bytes = _read_bytes(path / WEIGHTS_FILE, path)
        expected = document.get("weights_sha256")
        if expected and hashlib.sha256(weights_bytes).hexdigest() != expected:
            raise CheckpointError(f"{path}: the weights do not match config.json (the files were modified or mixed).")
        weights = _parse_safetensors(weights_bytes, path / WEIGHTS_FILE)
        history = _read_json(path / HISTORY_FILE, path) if (path / HISTORY_FILE).exists() else []
        opt_tensors = (_parse_safetensors(_read_bytes(path / OPTIMIZER_FILE, path), path / OPTIMIZER_FILE)
                       if (path / OPTIMIZER_FILE).exists() else {})
    else:
        raw = _read_bytes(path, path)
        tensors = _parse_safetensors(raw, path)
        metadata = _safetensors_metadata(path)
        if "latent_explorer" not in metadata:
            raise CheckpointError(f"{path} is a safetensors file but not a Latent Explorer checkpoint (no config inside).")
        try:
            document = json.loads(metadata["latent_explorer"])
            history = json.loads(metadata.get("history", "[]"))
        except json.JSONDecodeError:
            raise CheckpointError(f"{path}: the checkpoint's embedded config is not valid JSON.") from None
        weights = {k: v for k, v in tensors.items() if not k.startswith("__optimizer__.")}
        opt_tensors = {k.split(".", 1)[1]: v for k, v in tensors.items() if k.startswith("__optimizer__.")}
        expected = document.get("weights_sha256")
        if expected and hashlib.sha256(st_save(weights)).hexdigest() != expected:
            raise CheckpointError(f"{path}: the weights were modified after saving.")

    model = _build(document, path)
    _check_weights(model, weights, path)
    model.load_state_dict(weights, strict=True)
    model.to(map_location).eval()
    optimizer_state = _unflatten_optimizer(opt_tensors, document.get("optimizer")) if opt_tensors else None
    return Checkpoint(model=model, model_name=document["model"], config=model.config,
                      dataset=document.get("dataset"), history=list(history or []),
                      train_config=document.get("train_config"), optimizer_state=optimizer_state, path=path)


def read_checkpoint_info(path) -> dict:
    """The JSON document of a checkpoint without loading weights (for file pickers)."""
    path = Path(path)
    if path.is_dir():
        return _read_json(path / CONFIG_FILE, path)
    metadata = _safetensors_metadata(path)
    if "latent_explorer" not in metadata:
        raise CheckpointError(f"{path} is not a Latent Explorer checkpoint.")
    return json.loads(metadata["latent_explorer"])


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
    except (json.JSONDecodeError, UnicodeDecodeError):
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
        _refuse_pickle(path.read_bytes(), path)
        raise CheckpointError(f"{path} is not a valid safetensors checkpoint ({exc}).") from None


def _build(document: dict, path: Path) -> BaseVAE:
    if not isinstance(document, dict) or "model" not in document or "config" not in document:
        raise CheckpointError(f"{path}: the config does not describe a model.")
    version = document.get("format_version")
    if version != FORMAT_VERSION:
        raise CheckpointError(f"{path} uses checkpoint format {version!r}; this version reads format {FORMAT_VERSION}.")
    name = document["model"]
    if name not in list_models():
        raise CheckpointError(f"{path} holds an unknown model {name!r} (known: {', '.join(list_models())}).")
    try:
        config = config_from_dict(name, document["config"])
        return build_model(name, **config.to_dict())
    except (ValueError, TypeError) as exc:
        raise CheckpointError(f"{path}: {exc}") from None


def _check_weights(model: BaseVAE, weights: dict, path: Path) -> None:
    expected = model.state_dict()
    missing = sorted(set(expected) - set(weights))
    extra = sorted(set(weights) - set(expected))
    if missing or extra:
        raise CheckpointError(f"{path}: the weights do not fit a {model.name!r} model with this config "
                              f"({len(missing)} missing, {len(extra)} unexpected tensors).")
    for key, tensor in expected.items():
        if tuple(weights[key].shape) != tuple(tensor.shape):
            raise CheckpointError(f"{path}: tensor {key} has shape {tuple(weights[key].shape)}, "
                                  f"the model expects {tuple(tensor.shape)}.")


# -- helpers -----------------------------------------------------------------------------
def _dataset_dict(dataset) -> dict | None:
    if dataset is None:
        return None
    if isinstance(dataset, dict):
        return _jsonable(dataset)
    return _jsonable({"spec": dataset.spec, "options": dict(dataset.options),
                      "class_names": list(dataset.class_names), "image_shape": list(dataset.image_shape)})


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, torch.Tensor):
        return value.tolist()
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return value.item()
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
    for pid, entry in (meta.get("scalars") or {}).items():
        state.setdefault(int(pid), {}).update(entry)
    return {"state": state, "param_groups": meta.get("param_groups", [])}
