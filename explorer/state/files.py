"""Writing the app's own files (a checkpoint's map sidecars, pins, groups) like the library writes checkpoints.

A file is written under a hidden temporary name beside its target, flushed to disk and
renamed into place, so a crash or a full disk leaves the previous file as it was. New
files get the user's umask (``tempfile.mkstemp`` would force mode 0600, unlike the
checkpoint next to them), and an ``OSError`` becomes a
:class:`~vae_core.errors.OutputError` whose message says what happened in words.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["write_atomic"]


def write_atomic(path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; return the path.

    Raises
    ------
    vae_core.errors.OutputError
        When the folder cannot be created or written (read-only, disk full); a previous
        file at ``path`` is then unchanged and no temporary file is left behind.
    """
    # Imported here: importing vae_core imports torch, which the window loads only after it shows.
    from vae_core.resources import output_error, remove_stale_temporaries, temporary_name

    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise output_error(path, exc) from None
    remove_stale_temporaries(path.parent, path.name, (".tmp",))
    tmp = path.parent / temporary_name(path.name, ".tmp")
    try:
        # "x" creates the file with mode 0o666 minus the umask, like vae_core's checkpoints.
        with open(tmp, "xb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise output_error(path, exc) from None
        raise
    return path
