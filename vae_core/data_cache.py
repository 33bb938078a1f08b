"""The decode cache of ``folder:`` datasets: decode once, memory-map afterwards.

Decoding a folder of JPEGs costs about a millisecond per image, so 200,000 photos took
minutes on every open. The first open now writes the finished pixel array (``uint8``,
train-then-test order, exactly what :class:`~vae_core.data.DatasetSplits` holds) to an
``.npy`` file beside a small JSON description; later opens memory-map it (copy-on-write,
so nothing a caller does can change the file) and take no time and no memory up front.

The cache lives in ``$LATENT_EXPLORER_CACHE`` (``off`` disables it), else
``$XDG_CACHE_HOME/latent-explorer/folders``, else ``~/.cache/latent-explorer/folders``.
An entry is named by the folder and the loading options (image size, channels, seed,
test fraction), and is valid while the folder's *fingerprint* is unchanged: a hash of
every file's relative path, size and modification time, so adding, removing, replacing
or touching a file decodes the folder again (and replaces the entry). A damaged entry
is decoded again too; a cache that cannot be written costs only the speed-up.

This module imports nothing from :mod:`vae_core.data` (which imports it).
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vae_core.resources import temporary_name

__all__ = ["CACHE_ENV", "CachedFolder", "cache_dir", "folder_fingerprint", "read_cached", "write_cached"]

CACHE_ENV = "LATENT_EXPLORER_CACHE"
FORMAT_VERSION = 1
_DISABLED = ("off", "none", "no", "0", "false")


@dataclass(frozen=True)
class CachedFolder:
    """A cache entry: the arrays and what :func:`vae_core.data.load_dataset` needs besides."""

    images: np.ndarray            # N×C×H×W uint8, train then test (a copy-on-write memmap)
    labels: np.ndarray | None     # int64 N, same order
    n_train: int
    class_names: tuple[str, ...]
    skipped: int
    channels: int
    likelihood: str


def cache_dir() -> Path | None:
    """The folder that holds decoded folders, or ``None`` when caching is turned off."""
    env = os.environ.get(CACHE_ENV)
    if env is not None:
        if env.strip().lower() in _DISABLED or not env.strip():
            return None
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "latent-explorer" / "folders"


def folder_fingerprint(root: Path, files: list[Path]) -> str:
    """SHA-256 of the relative path, size and modification time (ns) of every file."""
    digest = hashlib.sha256()
    for path in sorted(files, key=lambda p: p.relative_to(root).as_posix()):
        try:
            st = path.stat()
            size, mtime = st.st_size, st.st_mtime_ns
        except OSError:
            size, mtime = -1, -1
        digest.update(f"{path.relative_to(root).as_posix()}\0{size}\0{mtime}\n".encode("utf-8", "surrogateescape"))
    return digest.hexdigest()


def _stem(root: Path, options: dict) -> str:
    folder = hashlib.sha256(str(root).encode("utf-8", "surrogateescape")).hexdigest()[:16]
    described = json.dumps({"version": FORMAT_VERSION, **options}, sort_keys=True)
    return f"{root.name[:40] or 'root'}-{folder}-{hashlib.sha256(described.encode()).hexdigest()[:12]}"


def _paths(directory: Path, stem: str) -> tuple[Path, Path, Path]:
    return directory / f"{stem}.images.npy", directory / f"{stem}.labels.npy", directory / f"{stem}.json"


def read_cached(root: Path, fingerprint: str, options: dict) -> CachedFolder | None:
    """The valid cache entry of ``root`` decoded with ``options``, memory-mapped, or ``None``.

    An entry whose fingerprint differs (the folder changed) or that does not read back
    whole is removed.
    """
    directory = cache_dir()
    if directory is None:
        return None
    images_path, labels_path, meta_path = _paths(directory, _stem(root, options))
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    try:
        if (meta.get("version") != FORMAT_VERSION or meta.get("folder") != str(root)
                or meta.get("fingerprint") != fingerprint):
            raise ValueError("stale")
        images = np.load(images_path, mmap_mode="c", allow_pickle=False)
        shape = tuple(meta["shape"])
        if images.dtype != np.uint8 or images.shape != shape or images.ndim != 4:
            raise ValueError("damaged")
        labels = None
        if meta["labeled"]:
            labels = np.load(labels_path, allow_pickle=False)
            if labels.dtype != np.int64 or labels.shape != (shape[0],):
                raise ValueError("damaged")
        return CachedFolder(images=images, labels=labels, n_train=int(meta["n_train"]),
                            class_names=tuple(str(c) for c in meta["class_names"]),
                            skipped=int(meta["skipped"]), channels=int(shape[1]),
                            likelihood=str(meta["likelihood"]))
    except (OSError, ValueError, KeyError, TypeError):
        for path in (meta_path, images_path, labels_path):
            try:
                path.unlink()
            except OSError:
                pass
        return None


def write_cached(root: Path, fingerprint: str, options: dict, images: np.ndarray, labels: np.ndarray | None,
                 *, n_train: int, class_names, skipped: int, likelihood: str) -> bool:
    """Store a decoded folder; ``True`` when the entry was written.

    The arrays are written beside their final names and renamed, the description last,
    so a reader never takes a half-written entry for a whole one. Any ``OSError`` (a
    read-only or full disk) leaves no files behind and returns ``False``.
    """
    directory = cache_dir()
    if directory is None:
        return False
    images_path, labels_path, meta_path = _paths(directory, _stem(root, options))
    temporaries: list[Path] = []
    try:
        directory.mkdir(parents=True, exist_ok=True)
        try:
            meta_path.unlink()  # the old description goes first: its arrays are about to change
        except FileNotFoundError:
            pass
        pairs = [(images, images_path)] + ([(labels, labels_path)] if labels is not None else [])
        for array, final in pairs:
            temp = directory / temporary_name(final.name, ".tmp")
            temporaries.append(temp)
            with open(temp, "wb") as fh:
                np.lib.format.write_array(fh, np.ascontiguousarray(array), allow_pickle=False)
            os.replace(temp, final)
        meta = {"version": FORMAT_VERSION, "folder": str(root), "fingerprint": fingerprint, "options": options,
                "shape": list(images.shape), "labeled": labels is not None, "n_train": int(n_train),
                "class_names": list(class_names), "skipped": int(skipped), "likelihood": likelihood}
        temp = directory / temporary_name(meta_path.name, ".tmp")
        temporaries.append(temp)
        temp.write_text(json.dumps(meta), encoding="utf-8")
        os.replace(temp, meta_path)
        return True
    except OSError:
        for path in temporaries + [images_path, labels_path, meta_path]:
            try:
                path.unlink()
            except OSError:
                pass
        return False
