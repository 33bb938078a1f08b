"""Background work for the window: training and slow loading, on superqt workers.

Training hands :func:`vae_core.training.iter_training` to a superqt
``GeneratorWorker``; :class:`TrainingRunner` turns what it yields into state updates
on the GUI thread:

* every report → :meth:`ExplorerState.record_progress` (loss curves, progress bar);
* every epoch report → :meth:`ExplorerState.apply_weights` with a CPU copy of the
  weights, the history so far and the optimizer state, so the map and the image
  grids refresh from a snapshot while the worker goes on training its own module.

Only floats, lists and CPU tensor copies cross threads. ``pause()``/``resume()`` and
``stop()`` are honoured at the next report (``TrainConfig.yield_interval``, 0.1 s by
default). Training uses ``cpu_count - 1`` torch threads and, like every worker
(:func:`explorer.jobs.workers.start_worker`), runs at a lower OS priority, so the window
keeps a core and wins when the machine is busy. Failures never escape as exceptions: they
end the run with a short message for people and the traceback as details.
"""

from __future__ import annotations

import errno
import os
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable

from PySide6.QtCore import QCoreApplication, QObject, QThreadPool, QTimer, Signal
from superqt.utils import FunctionWorker, GeneratorWorker

from explorer.jobs.workers import start_worker


def training_threads() -> int:
    """torch threads for training: all cores but one, which stays with the window."""
    return max(1, (os.cpu_count() or 1) - 1)


@dataclass(frozen=True)
class EpochUpdate:
    """What an epoch sends to the GUI thread besides its :class:`TrainProgress`."""

    history: list[dict]
    optimizer_state: dict | None


@dataclass(frozen=True)
class Report:
    """One item yielded by the training worker."""

    progress: Any                      # vae_core.training.TrainProgress
    epoch: EpochUpdate | None = None


@dataclass
class TrainingOutcome:
    """How a run ended: ``completed``, ``stopped`` or ``failed`` (with ``text`` and ``details``)."""

    status: str
    history: list[dict] = field(default_factory=list)
    text: str = ""
    details: str = ""
    error: BaseException | None = field(default=None, repr=False)


#: The command line's words in library messages, and what the window calls the same thing.
_APP_WORDS = (
    ("or pass --data-root", "or choose the folder that holds it as the data root in the Training panel"),
    ("use --device cpu or auto", "choose Auto or CPU as the device in the Training panel"),
    ("pass the dataset explicitly", "choose the dataset in the Training panel"),
)

_OUTPUT_ADVICE = {
    errno.ENOSPC: "Free some disk space or choose another folder, then try again.",
    errno.EDQUOT: "Free some disk space or choose another folder, then try again.",
    errno.EROFS: "Choose a folder you can write to.",
    errno.EACCES: "Choose a folder you can write to.",
    errno.EPERM: "Choose a folder you can write to.",
}


def expected_error(exc: BaseException | None) -> bool:
    """Whether ``exc`` is something that can go wrong with good code: bad input, a damaged
    file, a full disk, too little memory. Anything else is a bug (shown with its traceback)."""
    from vae_core import errors

    if exc is None:
        return False
    known = (errors.CheckpointError, errors.DatasetError, errors.ConfigError, errors.ResourceError,
             errors.OutputError, errors.ShapeMismatchError, errors.NonFiniteLossError, errors.ExpressionError,
             OSError, MemoryError) + _optional_error_classes()
    return isinstance(exc, known) or _is_out_of_memory(exc)


def _optional_error_classes() -> tuple[type, ...]:
    # Imported lazily: model_export and adapter pull in more of torch than the window needs at start.
    from vae_core.adapter import AdapterError
    from vae_core.model_export import ModelExportError

    return AdapterError, ModelExportError


def friendly_error(exc: BaseException, doing: str = "Training") -> str:
    """What happened and what to do, in a sentence or two for people; the traceback goes in the details.

    Every error class of the library gets its own advice; only an error no class
    describes (a bug) says "failed unexpectedly" and names the exception.
    """
    from vae_core import errors

    AdapterError, ModelExportError = _optional_error_classes()
    text = app_words(str(exc).strip() or type(exc).__name__)
    if text[-1] not in ".!?":
        text += "."
    if isinstance(exc, errors.NonFiniteLossError):
        return f"{doing} stopped because the loss stopped being a number. {text}"
    if isinstance(exc, errors.OutputError):
        return f"{text} {_OUTPUT_ADVICE.get(getattr(exc, 'errno', None), 'Choose another folder and try again.')}"
    if isinstance(exc, errors.CheckpointError):
        if doing.startswith("Saving"):
            return f"{text} Choose another name or folder."
        return f"{text} Open another checkpoint, or save the model again where it was trained; nothing else was changed."
    if isinstance(exc, errors.ShapeMismatchError):
        return f"{text} Choose a dataset with images of that size, or train a new model on this one."
    if isinstance(exc, errors.DatasetError):
        # Messages about a missing download already say where to put it.
        return text if "data root" in text else f"{text} Choose another dataset in the Training panel."
    if isinstance(exc, errors.ConfigError):
        return f"{text} Change that setting and try again."
    if isinstance(exc, errors.ExpressionError):
        return f"{text} Correct the expression and try again."
    if isinstance(exc, (errors.ResourceError, AdapterError)):
        return text  # these messages already end with what to do
    if isinstance(exc, ModelExportError):
        return f"{text} Fix that and export again."
    if _is_out_of_memory(exc):
        return (f"{doing} ran out of memory. Try a smaller batch size or a smaller model, "
                "or train on another device.")
    if isinstance(exc, FileNotFoundError):
        return f"A file was not found: {exc.filename or exc}."
    if isinstance(exc, PermissionError):
        return f"Permission denied: {exc.filename or exc}. Choose a file or folder you can use."
    if isinstance(exc, OSError):
        where = f" {exc.filename}" if exc.filename else ""
        return f"{doing} could not use{where}: {(exc.strerror or str(exc)).rstrip('.')}."
    if isinstance(exc, ValueError) and not isinstance(exc, UnicodeError):
        return text  # the window's own checks raise ValueError with a sentence
    return f"{doing} failed unexpectedly ({type(exc).__name__}: {exc})."


def app_words(text: str) -> str:
    """A library message with the command line's advice ("pass --data-root") in the window's words."""
    for cli, app in _APP_WORDS:
        text = text.replace(cli, app)
    return text


def _is_out_of_memory(exc: BaseException) -> bool:
    if isinstance(exc, MemoryError):
        return True
    try:
        import torch

        if isinstance(exc, torch.OutOfMemoryError):
            return True
    except (ImportError, AttributeError):
        pass
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def error_details(exc: BaseException) -> str:
    """The full traceback, for the error dialog's details pane."""
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)).rstrip()


def _train(model, data, config, history, optimizer_state, tensorboard_dir=None):
    """Generator run in the worker thread: yields :class:`Report`, returns a :class:`TrainingOutcome`.

    With ``tensorboard_dir`` every report also goes to a :class:`TensorBoardLogger`, made
    and fed here so that its file writes and epoch images never run on the GUI thread.

    Exceptions are caught here because superqt's ``GeneratorWorker`` treats any
    ``RuntimeError`` (which includes ``NonFiniteLossError`` and CUDA out-of-memory) as
    "the worker was deleted" and swallows it.
    """
    from vae_core.training import iter_training

    history = list(history or [])
    gen = iter_training(model, data, config, history=history, optimizer_state=optimizer_state)
    logger = None
    try:
        if tensorboard_dir is not None:
            from vae_core.tensorboard_log import TensorBoardLogger

            logger = TensorBoardLogger(tensorboard_dir, model, data.test)
        for progress in gen:
            if logger is not None:
                logger.log_progress(progress)
            if progress.kind != "epoch":
                yield Report(progress)
                continue
            history.append(progress.history_entry)
            # optimizer_state is already a CPU copy: Adam's live tensors never cross threads.
            yield Report(progress, EpochUpdate(list(history), progress.optimizer_state))
    except Exception as exc:  # noqa: BLE001 - reported to the user, never raised in the pool
        return TrainingOutcome("failed", history, friendly_error(exc), error_details(exc), exc)
    finally:
        gen.close()
        if logger is not None:
            logger.close()
    return TrainingOutcome("completed", history)


class ClosingGeneratorWorker(GeneratorWorker):
    """A GeneratorWorker that closes its generator in the worker thread when it ends.

    superqt leaves an aborted generator suspended; closing it here runs the training
    loop's ``finally`` (restoring torch's thread count) in the thread that owns it.
    """

    def work(self):
        try:
            return super().work()
        finally:
            self._gen.close()


class TrainingRunner(QObject):
    """Owns the training worker of one window and keeps :class:`ExplorerState` in step.

    Signals
    -------
    failed(text, details)
        The run ended with an error: a sentence for people and the technical details.
    finished(outcome)
        Emitted once per run with its :class:`TrainingOutcome`.
    """

    failed = Signal(str, str)
    finished = Signal(object)

    def __init__(self, state, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self._worker: ClosingGeneratorWorker | None = None
        self._outcome: TrainingOutcome | None = None
        self._stop_requested_at: float | None = None
        self._pause_requested_at: float | None = None
        self.last_pause_latency: float | None = None   # seconds from request to pause
        self.last_stop_latency: float | None = None    # seconds from request to the worker's end

    # -- control ------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._worker is not None

    @property
    def paused(self) -> bool:
        return self._worker is not None and self._worker.is_paused

    def start(self, model, data, config, *, history=None, optimizer_state=None, tensorboard_dir=None) -> None:
        """Train ``model`` (a module of its own, never ``state.model``) on ``data``.

        ``tensorboard_dir``: also log the run there for TensorBoard (from the worker).

        ``state.model`` must be a snapshot of the same architecture: epoch reports
        load their weights into it.
        """
        if self._worker is not None:
            raise RuntimeError("A training run is already in progress.")
        if model is self.state.model:
            raise ValueError("Train a copy (state.trainable_copy()), never the GUI's snapshot.")
        if config.num_threads is None:
            config.num_threads = training_threads()
        self._outcome = None
        self._stop_requested_at = self._pause_requested_at = None
        worker = ClosingGeneratorWorker(_train, model, data, config, history, optimizer_state, tensorboard_dir)
        worker.yielded.connect(self._on_worker_yielded)
        worker.returned.connect(self._on_worker_returned)
        worker.errored.connect(self._on_worker_errored)
        worker.paused.connect(self._on_worker_paused)
        worker.resumed.connect(self._on_worker_resumed)
        worker.finished.connect(self._on_worker_finished)
        self._worker = worker
        self.state.begin_training(config)
        start_worker(worker)

    def pause(self) -> None:
        if self._worker is not None and not self._worker.is_paused and self.state.training_status == "running":
            self._pause_requested_at = time.perf_counter()
            self._worker.pause()

    def resume(self) -> None:
        if self._worker is not None:
            self._worker.resume()

    def toggle_pause(self) -> None:
        if self.paused:
            self.resume()
        else:
            self.pause()

    def stop(self) -> None:
        """Ask the run to end at its next report; the model keeps its last finished epoch."""
        if self._worker is None or self._stop_requested_at is not None:
            return
        self._stop_requested_at = time.perf_counter()
        self.state.set_training_status("stopping")
        self._worker.quit()

    def wait(self, timeout_ms: int = 10_000) -> bool:
        """Stop the run and block until its thread ends (for quitting); True if it did."""
        worker = self._worker
        if worker is None:
            return True
        self.stop()
        deadline = time.perf_counter() + timeout_ms / 1000
        while worker.is_running and time.perf_counter() < deadline:
            QThreadPool.globalInstance().waitForDone(50)
            QCoreApplication.processEvents()
        QCoreApplication.processEvents()
        return not worker.is_running

    # -- worker signals (GUI thread) --------------------------------------------------------------
    def _on_worker_yielded(self, report: Report) -> None:
        if self._stop_requested_at is not None and report.epoch is None:
            return  # stopping: step reports that raced the request are stale; a finished epoch is kept
        self.state.record_progress(report.progress)
        if report.epoch is not None:
            self.state.apply_weights(report.progress.weights, history=report.epoch.history,
                                     optimizer_state=report.epoch.optimizer_state)

    def _on_worker_returned(self, outcome: TrainingOutcome) -> None:
        self._outcome = outcome

    def _on_worker_errored(self, exc: Exception) -> None:
        self._outcome = TrainingOutcome("failed", list(self.state.history), friendly_error(exc), error_details(exc), exc)

    def _on_worker_paused(self) -> None:
        if self._pause_requested_at is not None:
            self.last_pause_latency = time.perf_counter() - self._pause_requested_at
        if self.state.training_status == "running":
            self.state.set_training_status("paused")

    def _on_worker_resumed(self) -> None:
        if self.state.training_status == "paused":
            self.state.set_training_status("running")

    def _on_worker_finished(self) -> None:
        outcome = self._outcome
        if outcome is None:  # aborted: superqt emits no "returned"
            outcome = TrainingOutcome("stopped", list(self.state.history))
        if self._stop_requested_at is not None:
            self.last_stop_latency = time.perf_counter() - self._stop_requested_at
        self._worker = None
        self._stop_requested_at = None
        if outcome.status == "failed":
            self.state.post_message("error", outcome.text)
        self.state.end_training(outcome.status)
        if outcome.status == "failed":
            self.failed.emit(outcome.text, outcome.details)
        self.finished.emit(outcome)


class Task(QObject):
    """Run ``func(*args)`` in a pool thread; deliver the result or a friendly error on the GUI thread.

    With ``progress=True`` the call also gets a ``progress(done, total)`` keyword (as
    ``load_dataset`` takes). The worker only stores the newest pair; a timer on the GUI
    thread emits ``progressed`` with it every 0.1 s when it changed, and once more at the
    end: decoding a big folder reports once per file, far more often than the window can
    show, and a worker that stalls after a report still has it shown.

    Signals
    -------
    succeeded(result)
    failed(text, details)
    progressed(done, total)
    """

    succeeded = Signal(object)
    failed = Signal(str, str)
    progressed = Signal(int, int)

    #: Milliseconds between two looks at the newest progress report.
    PROGRESS_INTERVAL_MS = 100

    #: The exception behind the last ``failed`` (None before), for callers that decide by its kind.
    error: BaseException | None = None

    def __init__(self, func: Callable, *args, doing: str = "Loading", parent: QObject | None = None,
                 progress: bool = False, **kwargs):
        super().__init__(parent)
        self._doing = doing
        self._latest: tuple[int, int] | None = None
        self._shown: tuple[int, int] | None = None
        self._timer: QTimer | None = None
        if progress:
            kwargs["progress"] = self._store_progress
            self._timer = QTimer(self)
            self._timer.setInterval(self.PROGRESS_INTERVAL_MS)
            self._timer.timeout.connect(self._flush_progress)
            self.succeeded.connect(self._stop_progress)
            self.failed.connect(self._stop_progress)
        self.worker = FunctionWorker(func, *args, **kwargs)
        self.worker.returned.connect(self.succeeded)
        self.worker.errored.connect(self._on_worker_errored)

    def start(self) -> "Task":
        if self._timer is not None:
            self._timer.start()
        start_worker(self.worker)
        return self

    @property
    def is_running(self) -> bool:
        return self.worker.is_running

    def _store_progress(self, done: int, total: int) -> None:
        # Worker thread: one attribute assignment, atomic under the GIL; no signal per call.
        self._latest = (int(done), int(total))

    def _flush_progress(self) -> None:
        latest = self._latest
        if latest is not None and latest != self._shown:
            self._shown = latest
            self.progressed.emit(*latest)

    def _stop_progress(self, *args) -> None:
        if self._timer is not None:
            self._timer.stop()
        self._flush_progress()

    def _on_worker_errored(self, exc: Exception) -> None:
        self.error = exc
        self.failed.emit(friendly_error(exc, self._doing), error_details(exc))
