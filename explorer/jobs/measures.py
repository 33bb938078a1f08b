"""Per-point measures in the background: what the map colours, filters and ranks by.

:class:`MeasuresJob` computes :func:`vae_core.measures.compute_measures` for the document's
codes in a superqt function worker, with a copy of the model snapshot, whenever
``document.measures`` wants them (someone picked a measure or opened the outliers) and
has none: after a request, and again after new codes arrive. While a model trains it waits
for the run to end, so the measures do not compete with training for the cores. The
result is handed over with ``measures.set_measures`` on the GUI thread; a result for codes
that are no longer current is dropped. Cancel stops between batches.
"""

from __future__ import annotations

import copy
import threading
import time

from PySide6 import QtCore
from superqt.utils import create_worker

from explorer.jobs.workers import start_worker
from explorer.state.connections import Connections
from explorer.state.measures import compute_for


class _Relay(QtCore.QObject):
    progressed = QtCore.Signal(object, int, int)   # cancel event of the job, done, total


class MeasuresJob(QtCore.QObject):
    """Keeps ``document.measures`` computed while it is wanted.

    Signals
    -------
    busy_changed(bool)
    progressed(text, fraction)
    message_posted(level, text)
    """

    busy_changed = QtCore.Signal(bool)
    progressed = QtCore.Signal(str, float)
    message_posted = QtCore.Signal(str, str)

    LABEL = "Computing per-point measures"

    def __init__(self, document, parent=None) -> None:
        super().__init__(parent)
        self.document = document
        self.state = document.measures
        self._cancel: threading.Event | None = None
        self._worker = None
        self._scheduled = False
        self._closed = False
        self._relay = _Relay(self)
        self._relay.progressed.connect(self._on_relay_progressed)
        self._connections = Connections()
        self._connections.connect_all([(self.state.wanted_changed, self._schedule),
                                       (self.state.measures_changed, self._schedule),
                                       (document.codes_changed, self._on_document_codes_changed),
                                       (document.training_finished, self._schedule)])
        app = QtCore.QCoreApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.shutdown)

    @property
    def busy(self) -> bool:
        return self._worker is not None

    def start(self) -> None:
        """Compute the measures now if they are wanted and missing (no-op while one runs)."""
        doc = self.document
        if self._closed or self._worker is not None or not self.state.needs_compute or doc.is_training:
            return
        model = copy.deepcopy(doc.model)
        images, labels, codes, logvar = doc.images, doc.labels, doc.codes, doc.logvar
        k, seed = self.state.k, self.state.seed
        cancel = threading.Event()
        relay, last = self._relay, [0.0]

        def progress(done, total):
            now = time.monotonic()
            if now - last[0] >= 0.1 or done >= total:
                last[0] = now
                relay.progressed.emit(cancel, int(done), int(total))

        def run():
            return compute_for(model, images, labels, codes, logvar, k=k, seed=seed, progress=progress,
                               should_stop=cancel.is_set)

        worker = create_worker(run, _start_thread=False, _ignore_errors=True)
        worker.returned.connect(lambda result: self._apply(cancel, codes, result))
        worker.errored.connect(lambda exc: self._on_worker_errored(cancel, exc))
        worker.finished.connect(lambda: self._on_worker_finished(cancel))
        self._cancel, self._worker = cancel, worker
        self.busy_changed.emit(True)
        self.progressed.emit(self.LABEL + "…", 0.0)
        start_worker(worker)

    def cancel(self) -> None:
        """Stop the running computation; the measures stay missing until asked for again."""
        self.state.withdraw()
        if self._cancel is not None:
            self._cancel.set()
            self.progressed.emit("Cancelling…", -1.0)

    def wait(self, timeout_s: float = 120.0) -> bool:
        """Process events until nothing runs or is queued (scripts and tests)."""
        deadline = time.monotonic() + timeout_s
        while (self._worker is not None or self._scheduled) and time.monotonic() < deadline:
            QtCore.QCoreApplication.processEvents(QtCore.QEventLoop.ProcessEventsFlag.AllEvents, 50)
            time.sleep(0.005)
        QtCore.QCoreApplication.processEvents()
        return self._worker is None

    def shutdown(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._cancel is not None:
            self._cancel.set()
        self._connections.disconnect_all()

    # -- the document -----------------------------------------------------------------------------
    def _schedule(self, *args) -> None:
        if not self._scheduled and not self._closed:
            self._scheduled = True
            QtCore.QTimer.singleShot(0, self._start_scheduled)

    def _start_scheduled(self) -> None:
        self._scheduled = False
        self.start()

    def _on_document_codes_changed(self) -> None:
        if self._cancel is not None:
            self._cancel.set()     # its codes are stale; the finished handler starts again
        self._schedule()

    # -- the worker -------------------------------------------------------------------------------
    def _apply(self, cancel, codes, result) -> None:
        if cancel.is_set() or self._closed or codes is not self.document.codes:
            return
        self.state.set_measures(result)
        missing = [k for k in result.unavailable]
        if missing:
            self.message_posted.emit("info", f"Measures computed ({len(result):,} points); "
                                             f"not defined for this model: {', '.join(missing)}.")

    def _on_relay_progressed(self, cancel, done: int, total: int) -> None:
        if cancel is self._cancel and not cancel.is_set() and not self._closed:
            self.progressed.emit(self.LABEL + "…", done / total if total else -1.0)

    def _on_worker_errored(self, cancel, exc) -> None:
        from vae_core.errors import Cancelled

        if isinstance(exc, Cancelled) or cancel.is_set() or self._closed:
            return
        from explorer.jobs.training import friendly_error

        self.message_posted.emit("error", friendly_error(exc, self.LABEL))

    def _on_worker_finished(self, cancel) -> None:
        if cancel is not self._cancel:
            return
        self._cancel = self._worker = None
        if self._closed:
            return
        self.busy_changed.emit(False)
        self.progressed.emit("", 1.0)
        self._schedule()
