"""What an operation needs from the machine, checked before the work starts.

A size that cannot fit in memory (``--image-size 1024`` on MNIST asks for 273 GiB) is
refused with :class:`~vae_core.errors.ResourceError` before anything is allocated, and a
folder that cannot be written is found before the first epoch rather than after it
(:func:`check_writable`). Writers turn an ``OSError`` into an
:class:`~vae_core.errors.OutputError` that says what happened in words
(:func:`output_error`), and a save removes what a killed earlier save left beside its
target (:func:`remove_stale_temporaries`).

This module imports nothing from vae_core but :mod:`vae_core.errors`, so every other
module (the registry included) may use it.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import uuid
from pathlib import Path

from vae_core.errors import OutputError, ResourceError

__all__ = ["MEMORY_FRACTION", "available_memory", "format_bytes", "check_memory", "check_writable",
           "output_error", "process_alive", "temporary_name", "remove_stale_temporaries"]

#: Share of the available memory one allocation may plan to use: the rest is for the
#: interpreter, torch's workspace and whatever else runs.
MEMORY_FRACTION = 0.8


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation, or None when unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def format_bytes(n: float) -> str:
    """``1536`` → ``"1.5 KiB"``; ``2.9e11`` → ``"273 GiB"``."""
    n = float(n)
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            if unit == "bytes":
                return f"{n:.0f} bytes"
            return f"{n:.1f} {unit}" if n < 10 else f"{n:.0f} {unit}"
        n /= 1024
    return f"{n:.0f} PiB"  # pragma: no cover


def check_memory(nbytes: float, what: str, advice: str) -> None:
    """Raise :class:`ResourceError` if ``nbytes`` will not fit in the available memory.

    Parameters
    ----------
    nbytes
        The estimate of what the operation allocates.
    what
        The operation, as the subject of a sentence ("Loading mnist at 1024×1024 pixels").
    advice
        What the user can do instead ("use a smaller --image-size").
    """
    available = available_memory()
    if available is None:
        return
    if nbytes > MEMORY_FRACTION * available:
        raise ResourceError(f"{what} would need {format_bytes(nbytes)} of memory, but only "
                            f"{format_bytes(available)} is available: {advice}.")


_ERRNO_TEXT = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is exhausted",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.ENOENT: "a folder on the way does not exist",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.EISDIR: "it is a folder",
    errno.ENAMETOOLONG: "the name is too long",
    errno.EFBIG: "the file would be too large for this file system",
}


def output_error(path, exc: OSError) -> OutputError:
    """An :class:`OutputError` saying in words why ``path`` could not be written."""
    reason = _ERRNO_TEXT.get(exc.errno) or (exc.strerror or str(exc) or type(exc).__name__).rstrip(".")
    error = OutputError(f"Could not write {path}: {reason}; nothing there was changed.")
    error.errno = exc.errno
    return error


def check_writable(path) -> None:
    """Make sure a file or folder can be created at ``path`` (and its missing parents).

    The check writes and removes a small probe file in the folder that will hold
    ``path``, so a read-only folder or a full disk is found before hours of work.

    Raises
    ------
    OutputError
        When the folder cannot be created or written to.
    """
    path = Path(path)
    try:
        if path.is_dir():
            # A checkpoint folder is replaced by a sibling folder: its parent must be writable.
            pass
        elif path.exists() and not os.access(path, os.W_OK):
            raise PermissionError(errno.EACCES, "permission denied")
        path.parent.mkdir(parents=True, exist_ok=True)
        probe = path.parent / temporary_name(path.name, ".probe")
        with open(probe, "xb") as fh:
            fh.write(b"\0" * 4096)
            fh.flush()
            os.fsync(fh.fileno())
        probe.unlink()
    except OSError as exc:
        raise output_error(path, exc) from None


def temporary_name(name: str, suffix: str) -> str:
    """A hidden sibling name for ``name`` that records this process's id.

    :func:`remove_stale_temporaries` uses the id to tell a leftover of a killed process
    from a save in progress.
    """
    return f".{name}.{os.getpid()}-{uuid.uuid4().hex[:8]}{suffix}"


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` still runs (this process always does)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError, OverflowError):
        return True
    return True


def remove_stale_temporaries(folder: Path, name: str, suffixes: tuple[str, ...]) -> int:
    """Remove what killed saves of ``name`` left in ``folder``; return how many.

    A temporary ``.NAME.<pid>-<hex><suffix>`` (file or folder) is stale when process
    ``pid`` no longer runs. Names without a pid (``.NAME.<8 chars><suffix>``, written by
    ``tempfile`` in earlier versions) are always stale.
    """
    alternatives = "|".join(re.escape(s) for s in suffixes)
    pattern = re.compile(rf"^\.{re.escape(name)}\.(?:(?P<pid>\d+)-[0-9a-f]+|[A-Za-z0-9_]{{8}})(?:{alternatives})$")
    removed = 0
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return 0
    for entry in entries:
        match = pattern.match(entry.name)
        if not match:
            continue
        pid = match.group("pid")
        if pid is not None and process_alive(int(pid)):
            continue
        try:
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)
            removed += 1
        except OSError:
            pass
    return removed
