"""The lifecycle that the background jobs share: one current superqt worker at a time.

:class:`BackgroundJob` is the common base of :class:`explorer.jobs.encoding.EncodingJob`,
:class:`explorer.jobs.measures.MeasuresJob` and :class:`explorer.jobs.compare.CompareJob`.
It holds the current worker and its cancel event, relays the worker's progress to the GUI
thread (at most every 0.1 s), queues a start on the event loop, reports errors as
messages, and cancels on ``aboutToQuit``. A subclass decides *what* runs and *when*: it
calls :meth:`BackgroundJob._launch` with a function and the GUI-thread handler of its
result, and implements :meth:`BackgroundJob._start_due`.

A result arrives only while its worker's cancel event is clear and the job is open; a
cancelled worker's errors are silent. The cancel event doubles as the worker's identity:
progress and the finished signal of a worker that is no longer the current one are ignored.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from PySide6 import QtCore

from explorer.jobs.workers import launch_worker, throttled_progress
from explorer.state.connections import Connections


class _Relay(QtCore.QObject):
    """Carries progress from the worker thread to the GUI thread."""

    progressed = QtCore.Signal(object, int, int)   # cancel event of the job, done, total


class BackgroundJob(QtCore.QObject):
    """One current background computation, with progress, cancel and messages.

    Subclasses set :attr:`LABEL`, connect their triggers with ``self._connections`` and
    implement :meth:`_start_due`.

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

    LABEL = ""   # what the job does, as the progress text says it ("Encoding the dataset")

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._cancel: threading.Event | None = None   # the current worker's
        self._worker = None
        self._scheduled = False         # a start is queued on the event loop
        # A timer, not QTimer.singleShot(0, ...): Qt delivers the latter as a posted event, in
        # the same pass as the repaints the document change just posted, so the window would
        # run both back to back without serving its timers in between.
        self._schedule_timer = QtCore.QTimer(self)
        self._schedule_timer.setSingleShot(True)
        self._schedule_timer.setInterval(0)
        self._schedule_timer.timeout.connect(self._run_scheduled)
        self._closed = False
        self._relay = _Relay(self)
        self._relay.progressed.connect(self._on_relay_progressed)
        self._connections = Connections()
        app = QtCore.QCoreApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.shutdown)

    @property
    def busy(self) -> bool:
        return self._worker is not None

    def cancel(self) -> None:
        """Stop the running worker (it stops between batches)."""
        if self._cancel is not None:
            self._cancel.set()
            self.progressed.emit("Cancelling…", -1.0)

    def wait(self, timeout_s: float = 60.0) -> bool:
        """Process events until nothing runs or is queued (scripts and tests).

        Returns
        -------
        bool
            True when no worker runs any more, False when ``timeout_s`` ran out first.
        """
        deadline = time.monotonic() + timeout_s
        while (self._worker is not None or self._queued()) and time.monotonic() < deadline:
            QtCore.QCoreApplication.processEvents(QtCore.QEventLoop.ProcessEventsFlag.AllEvents, 50)
            time.sleep(0.005)
        QtCore.QCoreApplication.processEvents()
        return self._worker is None

    def shutdown(self) -> None:
        """Stop listening and cancel the running worker; the job does nothing afterwards."""
        if self._closed:
            return
        self._closed = True
        self._stop_running()
        self._connections.disconnect_all()

    # -- for subclasses ----------------------------------------------------------------------------
    def _start_due(self) -> None:
        """Start what is due now; called by the event loop after :meth:`_schedule`."""
        raise NotImplementedError

    def _queued(self) -> bool:
        """Whether a start is still to come (:meth:`wait` waits for it)."""
        return self._scheduled

    def _schedule(self, *_args) -> None:
        # After the current event: the document may still be changing (a dataset, then a model).
        if not self._scheduled and not self._closed:
            self._scheduled = True
            self._schedule_timer.start()

    def _run_scheduled(self) -> None:
        self._scheduled = False
        if not self._closed:
            self._start_due()

    def _stop_running(self) -> None:
        if self._cancel is not None:
            self._cancel.set()

    def _launch(self, run: Callable, on_returned: Callable) -> None:
        """Run ``run(progress=..., should_stop=...)`` in a worker; ``on_returned(result)`` on the GUI thread.

        ``progress(done, total)`` may be called from the worker thread; ``should_stop()``
        turns true on cancel. ``on_returned`` is skipped when the worker was cancelled or the
        job shut down meanwhile.
        """
        cancel = threading.Event()
        relay = self._relay
        self._cancel = cancel
        # launch_worker lowers the worker's priority: encoding or measuring 70,000 images must
        # not take a core from the window (a switch of model repaints every panel meanwhile).
        self._worker = launch_worker(
            run, progress=throttled_progress(lambda done, total: relay.progressed.emit(cancel, done, total)),
            should_stop=cancel.is_set, returned=lambda result: self._on_worker_returned(cancel, on_returned, result),
            errored=lambda exc: self._on_worker_errored(cancel, exc),
            finished=lambda: self._on_worker_finished(cancel))
        self.busy_changed.emit(True)
        self.progressed.emit(self.LABEL + "…", 0.0)

    def _error_text(self, exc: BaseException) -> str:
        """The message for a worker's error."""
        return f"{self.LABEL} failed: {exc}"

    def _worker_stopped(self) -> None:
        """The running worker has finished (returned, failed or cancelled) and the job is open."""
        self.busy_changed.emit(False)
        self.progressed.emit("", 1.0)

    # -- the worker --------------------------------------------------------------------------------
    def _on_worker_returned(self, cancel, on_returned, result) -> None:
        if not cancel.is_set() and not self._closed:
            on_returned(result)

    def _on_relay_progressed(self, cancel, done: int, total: int) -> None:
        if cancel is self._cancel and not cancel.is_set() and not self._closed:
            self.progressed.emit(self.LABEL + "…", done / total if total else -1.0)

    def _on_worker_errored(self, cancel, exc) -> None:
        from vae_core.errors import Cancelled  # here: importing vae_core imports torch

        if isinstance(exc, Cancelled) or cancel.is_set() or self._closed:
            return
        self.message_posted.emit("error", self._error_text(exc))

    def _on_worker_finished(self, cancel) -> None:
        if cancel is not self._cancel:
            return
        self._cancel = self._worker = None
        if not self._closed:
            self._worker_stopped()
