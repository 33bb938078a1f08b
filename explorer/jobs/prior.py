"""Fitting a code-grid model's prior in the background (:func:`vae_core.prior.train_prior`).

:class:`PriorRunner` drives the generator on a superqt ``GeneratorWorker`` like
:class:`~explorer.jobs.training.TrainingRunner` does training: ``stop()`` is Cancel,
honoured at the next report (0.1 s); every report's fraction is passed on for the
progress bar, and each epoch's CPU weight copy (the whole model, prior included) is
loaded into the document's snapshot with ``apply_weights``, so prior samples follow the
fit and Save writes the prior into the checkpoint. The worker trains its own copy of the
model; the window keeps decoding with the snapshot.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal

from explorer.jobs.training import ClosingGeneratorWorker, error_details, friendly_error, training_threads
from explorer.jobs.workers import start_worker

__all__ = ["PriorRunner"]


def _fit(model, data, config):
    """Generator run in the worker: yields (fraction, text, weights | None); returns (status, text, details).

    ``model`` is the document's; the copy that trains is made here, off the GUI thread.
    """
    from explorer.state.document import trainable_copy
    from vae_core.prior import train_prior

    gen = train_prior(trainable_copy(model), data, config)
    try:
        for report in gen:
            nll = report.losses.get("code_nll", report.losses.get("loss", float("nan")))
            text = f"Epoch {report.epoch + 1}/{report.epochs} · code NLL {nll:.1f} nats"
            if report.kind == "epoch" and report.test:
                text += f" · test {report.test['code_nll']:.1f} (uniform {report.test['uniform_code_nll']:.1f})"
            yield report.fraction, text, report.weights if report.kind == "epoch" else None
    except Exception as exc:  # noqa: BLE001 - reported to the user (GeneratorWorker swallows RuntimeError)
        return "failed", friendly_error(exc, "Training the prior"), error_details(exc)
    finally:
        gen.close()
    return "completed", "", ""


class PriorRunner(QObject):
    """Owns the prior-fitting worker of one window.

    Signals
    -------
    progressed(fraction, text)
        After every report.
    finished(status, text, details)
        ``completed``, ``stopped`` or ``failed`` (with a sentence and the traceback).
    """

    progressed = Signal(float, str)
    finished = Signal(str, str, str)

    def __init__(self, state, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self._worker = None
        self._model = None
        self._result: tuple[str, str, str] | None = None
        self.epochs_applied = 0

    @property
    def running(self) -> bool:
        return self._worker is not None

    def start(self, config) -> None:
        """Fit the prior of the document's model on the document's dataset (``config``: a PriorConfig)."""
        state = self.state
        if self._worker is not None:
            raise RuntimeError("The prior is already being trained.")
        if state.model is None or state.dataset is None:
            raise ValueError("Load a dataset and a code-grid model first.")
        if state.is_training:
            raise ValueError("Wait for training to finish: the prior is fitted to the trained model's codes.")
        if config.num_threads is None:
            config.num_threads = training_threads()
        self._model, self._result, self.epochs_applied = state.model, None, 0
        worker = ClosingGeneratorWorker(_fit, state.model, state.dataset, config)
        worker.yielded.connect(self._on_worker_yielded)
        worker.returned.connect(self._on_worker_returned)
        worker.errored.connect(self._on_worker_errored)
        worker.finished.connect(self._on_worker_finished)
        self._worker = worker
        start_worker(worker)

    def stop(self) -> None:
        """Cancel at the next report; epochs already applied stay."""
        if self._worker is not None:
            self._worker.quit()

    def _on_worker_yielded(self, item) -> None:
        fraction, text, weights = item
        self.progressed.emit(float(fraction), text)
        # Another model opened (or training began) meanwhile: these weights belong to the old one.
        if weights is not None and self.state.model is self._model and not self.state.is_training:
            self.state.apply_weights(weights)
            self.epochs_applied += 1

    def _on_worker_returned(self, result) -> None:
        self._result = result

    def _on_worker_errored(self, exc: Exception) -> None:
        self._result = ("failed", friendly_error(exc, "Training the prior"), error_details(exc))

    def _on_worker_finished(self) -> None:
        self._worker = None
        status, text, details = self._result or ("stopped", "", "")
        if status == "failed":
            self.state.post_message("error", text)
        self.finished.emit(status, text, details)
