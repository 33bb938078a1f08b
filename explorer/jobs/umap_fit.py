"""Fit projections in a separate process, so a long UMAP never holds the GUI's interpreter.

umap-learn's epoch loop is numba code that keeps Python's global interpreter lock while it
runs (~0.1 s per epoch on MNIST): fitted in a thread of the application, it freezes the
window that long, again and again, for half a minute. :class:`FitProcess` runs fits in one
long-lived child (``python -m explorer.jobs.umap_fit``, started on first use so numba compiles
once per session), relays its progress and its intermediate layouts (the map shows the layout
while it is being optimised) and stops it between epochs when asked. No Qt here.

The two processes talk over the child's stdin/stdout with length-prefixed pickles; both
ends are this module, nothing else is ever unpickled. Usage (from a worker thread)::

    projection = shared_fit_process().fit(make_projection("umap"), codes,
                                          progress=callback, should_stop=event.is_set)
"""

from __future__ import annotations

import os
import pickle
import queue
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

from vae_core.latent import Cancelled

STOP_GRACE_S = 10.0   # how long a cancelled fit may take to reach its next epoch before the child is killed
_HEADER = struct.Struct("<Q")


def _write(stream, obj) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HEADER.pack(len(data)))
    stream.write(data)
    stream.flush()


def _read(stream):
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        raise EOFError
    (size,) = _HEADER.unpack(header)
    data = stream.read(size)
    if len(data) < size:
        raise EOFError
    return pickle.loads(data)


# ---------------------------------------------------------------------------------------
# The child
# ---------------------------------------------------------------------------------------
def _serve() -> None:  # pragma: no cover - runs in the child process
    from explorer.jobs.priority import lower_process_priority

    lower_process_priority()   # a fit must not take a core from the window either
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)   # stray prints (umap, numba) go to stderr, never into the protocol
    src = sys.stdin.buffer
    stopped: set = set()     # ids of the fits asked to stop (a stop may arrive before its fit starts)
    jobs: queue.Queue = queue.Queue()

    def reader():
        while True:
            try:
                message = _read(src)
            except (EOFError, OSError):
                jobs.put(None)
                return
            if isinstance(message, tuple) and message[0] == "stop":
                stopped.add(message[1])
            else:
                jobs.put(message)
                if message is None:
                    return

    threading.Thread(target=reader, daemon=True).start()
    import torch

    # The exact k-NN's top-k selection runs in torch: one thread, the other core is the GUI's.
    torch.set_num_threads(1)
    from vae_core.projection import Projection

    while True:
        message = jobs.get()
        if message is None:
            return
        job, meta, codes, stream = message

        def progress(done, total):
            _write(out, ("progress", int(done), int(total)))

        def intermediate(xy):
            _write(out, ("layout", np.ascontiguousarray(xy, dtype=np.float32)))

        try:
            proj = Projection.from_state(meta, {})
            proj.fit(codes, progress=progress, should_stop=lambda job=job: job in stopped,
                     intermediate=intermediate if stream else None)
            _write(out, ("done",) + proj.state())
        except Cancelled:
            _write(out, ("cancelled",))
        except Exception as exc:  # reported to the parent, which raises it there
            _write(out, ("error", f"{type(exc).__name__}: {exc}"))


# ---------------------------------------------------------------------------------------
# The parent
# ---------------------------------------------------------------------------------------
class FitProcess:
    """One child process that fits projections on request (one fit at a time)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._proc: subprocess.Popen | None = None
        self._replies: queue.Queue | None = None
        self._jobs = 0

    @property
    def pid(self) -> int | None:
        """The child's process id while it runs."""
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    def _ensure(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            return
        env = dict(os.environ)
        repo = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = repo + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        self._proc = subprocess.Popen([sys.executable, "-m", "explorer.jobs.umap_fit"], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, env=env, cwd=repo)
        replies: queue.Queue = queue.Queue()
        stdout = self._proc.stdout

        def reader():
            while True:
                try:
                    replies.put(_read(stdout))
                except (EOFError, OSError, pickle.UnpicklingError):
                    replies.put(("exited",))
                    return

        threading.Thread(target=reader, name="map-fit-replies", daemon=True).start()
        self._replies = replies

    def fit(self, projection, codes, progress=None, should_stop=None, intermediate=None):
        """Fit ``projection`` (unfitted, any kind) on ``codes`` in the child; returns the fitted copy.

        ``intermediate(xy)`` receives the child's intermediate layouts (``N×2`` float32, see
        :meth:`vae_core.projection.Projection.fit`) in this thread, until a stop is asked.
        Raises :class:`~vae_core.latent.Cancelled` when ``should_stop()`` turns True, and
        ``RuntimeError`` if the fit fails or the child dies.
        """
        from vae_core.projection import Projection

        meta, _ = projection.state()
        codes = np.ascontiguousarray(codes, dtype=np.float32)
        with self._lock:
            self._ensure()
            proc, replies = self._proc, self._replies
            self._jobs += 1
            job = self._jobs
            try:
                _write(proc.stdin, (job, meta, codes, intermediate is not None))
            except OSError:
                self._kill()
                raise RuntimeError("The fitting process could not be reached.") from None
            cancelled_at = None
            while True:
                if cancelled_at is None and should_stop is not None and should_stop():
                    cancelled_at = time.monotonic()
                    try:
                        _write(proc.stdin, ("stop", job))
                    except OSError:
                        pass
                if cancelled_at is not None and time.monotonic() - cancelled_at > STOP_GRACE_S:
                    self._kill()
                    raise Cancelled("Projection fitting was cancelled.")
                try:
                    reply = replies.get(timeout=0.05)
                except queue.Empty:
                    continue
                kind = reply[0]
                if kind == "progress":
                    if progress is not None and cancelled_at is None:
                        progress(reply[1], reply[2])
                elif kind == "layout":
                    if intermediate is not None and cancelled_at is None:
                        intermediate(reply[1])
                elif kind == "done":
                    if cancelled_at is not None:
                        raise Cancelled("Projection fitting was cancelled.")
                    return Projection.from_state(reply[1], reply[2])
                elif kind == "cancelled":
                    raise Cancelled("Projection fitting was cancelled.")
                elif kind == "error":
                    raise RuntimeError(reply[1])
                else:
                    self._kill()
                    if cancelled_at is not None:
                        raise Cancelled("Projection fitting was cancelled.")
                    raise RuntimeError("The fitting process ended unexpectedly.")

    def _kill(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(2.0)

    def close(self) -> None:
        """Stop the child (a running fit is stopped too)."""
        proc = self._proc
        if proc is None:
            return
        try:
            _write(proc.stdin, ("stop", self._jobs))
            _write(proc.stdin, None)
            proc.stdin.close()
            proc.wait(1.0)
        except (OSError, subprocess.TimeoutExpired, ValueError):
            pass
        self._kill()


_shared: FitProcess | None = None


def shared_fit_process() -> FitProcess:
    """The application's fitting process (one per session, started on the first fit)."""
    global _shared
    if _shared is None:
        _shared = FitProcess()
        import atexit

        atexit.register(_shared.close)
    return _shared


if __name__ == "__main__":  # pragma: no cover
    _serve()
