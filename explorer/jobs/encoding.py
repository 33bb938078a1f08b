"""Encoding the dataset in the background: the codes every view uses.

:class:`EncodingJob` belongs to the application (the main window creates it), not to a
panel, so the codes exist whichever panels are open. It keeps ``document.codes`` in step
with the model:

* a new model or dataset → encode everything with a copy of the snapshot;
* ``weights_changed`` after a training epoch → encode again.

Encoding and the per-dimension statistics of the codes
(:func:`explorer.state.document.code_stats`) run in a superqt function worker; the result
is handed over explicitly with ``document.set_codes(mu, logvar, stats)`` on the GUI
thread, so nothing reduces all N codes on the GUI thread afterwards. Small datasets are
encoded in the GUI thread directly (a few milliseconds). A newer request cancels the
running one, which stops between batches.
"""

from __future__ import annotations

import copy
import threading
import time

from PySide6 import QtCore
from superqt.utils import create_worker

from explorer.jobs.workers import start_worker
from explorer.state.connections import Connections
from explorer.state.document import code_stats
from vae_core.latent import Cancelled

SYNC_ENCODE_ELEMENTS = 4_000_000     # N × pixels below which encoding runs in the GUI thread


class _Relay(QtCore.QObject):
    """Carries progress from the worker thread to the GUI thread."""

    progressed = QtCore.Signal(object, int, int)   # cancel event of the job, done, total


class EncodingJob(QtCore.QObject):
    """Encodes ``document``'s dataset with its model whenever either changes.

    Signals
    -------
    busy_changed(bool)
    progressed(text, fraction)
        ``fraction`` in [0, 1], or -1 when unknown.
    message_posted(level, text)
    """

    busy_changed = QtCore.Signal(bool)
    progressed = QtCore.Signal(str, float)
    message_posted = QtCore.Signal(str, str)

    LABEL = "Encoding the dataset"

    def __init__(self, document, parent=None) -> None:
        super().__init__(parent)
        self.document = document
        self.auto_encode = True
        self._generation = 0
        self._cancel: threading.Event | None = None   # the running job's
        self._worker = None
        self._pending = False           # encode again once the running job has stopped
        self._scheduled = False         # an encode is queued on the event loop
        self._closed = False
        self._encoded_revision = None   # the document's encoder_revision behind its codes
        self._relay = _Relay(self)
        self._relay.progressed.connect(self._on_relay_progressed)
        self._connections = Connections()
        self._connections.connect_all([(document.model_changed, self._on_document_model_changed),
                                       (document.dataset_changed, self._on_document_dataset_changed),
                                       (document.weights_changed, self._on_document_weights_changed)])
        app = QtCore.QCoreApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.shutdown)
        if document.model is not None and document.dataset is not None and document.codes is None:
            self._schedule()

    @property
    def busy(self) -> bool:
        return self._worker is not None

    def encode(self) -> None:
        """Encode the dataset with a copy of the current model snapshot (worker for large data)."""
        doc = self.document
        if self._closed or doc.model is None or doc.dataset is None or doc.compatible() is not None:
            return
        if self._worker is not None:
            # The running job is stale now: stop it, encode again when it is gone.
            self._cancel.set()
            self._pending = True
            return
        images = doc.images
        labels = doc.labels if getattr(doc.model, "conditional", False) else None
        model = copy.deepcopy(doc.model)   # the snapshot may get new weights meanwhile
        gen, revision = self._generation, doc.encoder_revision

        def run(progress=None, should_stop=None):
            from vae_core.latent import encode_dataset

            mu, logvar = encode_dataset(model, images, labels, progress=progress, should_stop=should_stop)
            return mu, logvar, code_stats(mu, logvar)

        if int(images.size) <= SYNC_ENCODE_ELEMENTS:
            self._apply(gen, run(), revision)
            return
        cancel = threading.Event()
        relay, last = self._relay, [0.0]

        def progress(done, total):
            now = time.monotonic()
            if now - last[0] >= 0.1 or done >= total:
                last[0] = now
                relay.progressed.emit(cancel, int(done), int(total))

        worker = create_worker(run, progress=progress, should_stop=cancel.is_set, _start_thread=False,
                               _ignore_errors=True)
        worker.returned.connect(lambda result: None if cancel.is_set() else self._apply(gen, result, revision))
        worker.errored.connect(lambda exc: self._on_worker_errored(cancel, exc))
        worker.finished.connect(lambda: self._on_worker_finished(cancel))
        self._cancel, self._worker = cancel, worker
        self.busy_changed.emit(True)
        self.progressed.emit(self.LABEL + "…", 0.0)
        start_worker(worker)

    def cancel(self) -> None:
        """Stop the running encode (between batches); the codes stay as they were."""
        self._pending = False
        if self._cancel is not None:
            self._cancel.set()
            self.progressed.emit("Cancelling…", -1.0)

    def wait(self, timeout_s: float = 60.0) -> bool:
        """Process events until no encode is running or queued (scripts and tests)."""
        deadline = time.monotonic() + timeout_s
        while (self._worker is not None or self._pending or self._scheduled) and time.monotonic() < deadline:
            QtCore.QCoreApplication.processEvents(QtCore.QEventLoop.ProcessEventsFlag.AllEvents, 50)
            time.sleep(0.005)
        QtCore.QCoreApplication.processEvents()
        return self._worker is None

    def shutdown(self) -> None:
        """Stop listening to the document and cancel the running encode."""
        if self._closed:
            return
        self._closed = True
        self._pending = False
        if self._cancel is not None:
            self._cancel.set()
        self._connections.disconnect_all()

    # -- the document ------------------------------------------------------------------------------
    def _schedule(self) -> None:
        # After the current event: the document may still be changing (a dataset, then a model).
        if not self._scheduled:
            self._scheduled = True
            QtCore.QTimer.singleShot(0, self._encode_if_needed)

    def _encode_if_needed(self) -> None:
        self._scheduled = False
        if not self._closed and self.document.codes is None:
            self.encode()

    def _drop_running(self) -> None:
        self._generation += 1
        self._pending = False
        if self._cancel is not None:
            self._cancel.set()

    def _on_document_model_changed(self, model) -> None:
        self._drop_running()
        if model is not None and self.auto_encode:
            self._schedule()

    def _on_document_dataset_changed(self, _data) -> None:
        self._drop_running()
        if self.auto_encode:
            self._schedule()

    def _on_document_weights_changed(self) -> None:
        doc = self.document
        if doc.codes is not None and self._worker is None and self._encoded_revision == doc.encoder_revision:
            return   # only decoding changed
        if self.auto_encode:
            self.encode()

    # -- the worker --------------------------------------------------------------------------------
    def _apply(self, generation: int, result, revision: int) -> None:
        if generation != self._generation or self._closed:
            return
        mu, logvar, stats = result
        self._encoded_revision = revision
        self.document.set_codes(mu, logvar, stats)

    def _on_relay_progressed(self, cancel, done: int, total: int) -> None:
        if cancel is self._cancel and not cancel.is_set() and not self._closed:
            self.progressed.emit(self.LABEL + "…", done / total if total else -1.0)

    def _on_worker_errored(self, cancel, exc) -> None:
        if isinstance(exc, Cancelled) or cancel.is_set() or self._closed:
            return
        self.message_posted.emit("error", f"{self.LABEL} failed: {exc}")

    def _on_worker_finished(self, cancel) -> None:
        if cancel is not self._cancel:
            return
        self._cancel = self._worker = None
        if self._closed:
            return
        if self._pending:
            self._pending = False
            self.encode()
        if self._worker is None:
            self.busy_changed.emit(False)
            self.progressed.emit("", 1.0)
