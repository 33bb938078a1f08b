"""Encoding and laying out two models for the comparison view, off the GUI thread.

:class:`CompareJob` runs :func:`explorer.state.compare.compute_layouts` (both encodes, both
projections, the Procrustes alignment) in a superqt function worker and hands the result
to ``CompareState.apply`` on the GUI thread. A UMAP fit goes to the application's fitting
process (:mod:`explorer.jobs.umap_fit`), as the map's own fits do, because umap's numba
epochs hold the interpreter lock. A newer request cancels the running one, which stops
between batches and epochs; its result is dropped.
"""

from __future__ import annotations

import copy
import threading
import time

from PySide6 import QtCore
from superqt.utils import create_worker

from explorer.jobs.workers import start_worker
from explorer.state.compare import CompareState, compute_layouts
from vae_core.latent import Cancelled


class CompareJob(QtCore.QObject):
    """Computes the comparison's codes and aligned layouts in a worker.

    Signals
    -------
    busy_changed(bool)
    message_posted(level, text)
    applied()
        New layouts are on both maps.
    """

    busy_changed = QtCore.Signal(bool)
    message_posted = QtCore.Signal(str, str)
    applied = QtCore.Signal()

    def __init__(self, compare: CompareState, parent=None) -> None:
        super().__init__(parent)
        self.compare = compare
        self.fit_in_process = True
        self._generation = 0
        self._cancel: threading.Event | None = None
        self._worker = None

    @property
    def busy(self) -> bool:
        return self._worker is not None

    def request(self) -> None:
        """Compute the layouts of the current models with the current projection kind."""
        c = self.compare
        if not c.ready:
            return
        self.cancel()
        self._generation += 1
        generation = self._generation
        left, right = copy.deepcopy(c.left.model), copy.deepcopy(c.right.model)
        images, labels, kind = c.left.images, c.left.labels, c.kind
        fitter = None
        if kind == "umap" and self.fit_in_process:
            from explorer.jobs.umap_fit import shared_fit_process

            fitter = shared_fit_process().fit
        cancel = threading.Event()

        def run():
            return compute_layouts(left, right, images, labels, kind=kind, should_stop=cancel.is_set, fitter=fitter)

        worker = create_worker(run, _start_thread=False, _ignore_errors=True)
        worker.returned.connect(lambda result: self._on_worker_returned(generation, cancel, result))
        worker.errored.connect(lambda exc: self._on_worker_errored(cancel, exc))
        worker.finished.connect(lambda: self._on_worker_finished(cancel))
        self._cancel, self._worker = cancel, worker
        self.busy_changed.emit(True)
        start_worker(worker)

    def cancel(self) -> None:
        if self._cancel is not None:
            self._cancel.set()

    def wait(self, timeout_s: float = 60.0) -> bool:
        """Process events until no computation runs (scripts and tests)."""
        deadline = time.monotonic() + timeout_s
        while self._worker is not None and time.monotonic() < deadline:
            QtCore.QCoreApplication.processEvents(QtCore.QEventLoop.ProcessEventsFlag.AllEvents, 50)
            time.sleep(0.005)
        QtCore.QCoreApplication.processEvents()
        return self._worker is None

    def _on_worker_returned(self, generation: int, cancel, result) -> None:
        if generation == self._generation and not cancel.is_set():
            self.compare.apply(result)
            self.applied.emit()

    def _on_worker_errored(self, cancel, exc) -> None:
        if isinstance(exc, Cancelled) or cancel.is_set():
            return
        self.message_posted.emit("error", f"The comparison could not be computed: {exc}")

    def _on_worker_finished(self, cancel) -> None:
        if cancel is self._cancel:
            self._cancel = self._worker = None
            self.busy_changed.emit(False)
