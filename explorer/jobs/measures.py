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

from explorer.jobs.background import BackgroundJob
from explorer.state.measures import compute_for


class MeasuresJob(BackgroundJob):
    """Keeps ``document.measures`` computed while it is wanted.

    Signals as :class:`~explorer.jobs.background.BackgroundJob` (``busy_changed``,
    ``progressed``, ``message_posted``).
    """

    LABEL = "Computing per-point measures"

    def __init__(self, document, parent=None) -> None:
        super().__init__(parent)
        self.document = document
        self.state = document.measures
        self._connections.connect_all([(self.state.wanted_changed, self._schedule),
                                       (self.state.measures_changed, self._schedule),
                                       (document.codes_changed, self._on_document_codes_changed),
                                       (document.training_finished, self._schedule)])

    def start(self) -> None:
        """Compute the measures now if they are wanted and missing (no-op while one runs)."""
        doc = self.document
        if self._closed or self._worker is not None or not self.state.needs_compute or doc.is_training:
            return
        model = copy.deepcopy(doc.model)
        images, labels, codes, logvar = doc.images, doc.labels, doc.codes, doc.logvar
        k, seed = self.state.k, self.state.seed

        def run(progress, should_stop):
            return compute_for(model, images, labels, codes, logvar, k=k, seed=seed, progress=progress,
                               should_stop=should_stop)

        self._launch(run, lambda result: self._apply(codes, result))

    def cancel(self) -> None:
        """Stop the running computation; the measures stay missing until asked for again."""
        self.state.withdraw()
        super().cancel()

    def wait(self, timeout_s: float = 120.0) -> bool:
        """Process events until nothing runs or is queued (scripts and tests)."""
        return super().wait(timeout_s)

    # -- the document -----------------------------------------------------------------------------
    def _start_due(self) -> None:
        self.start()

    def _on_document_codes_changed(self) -> None:
        self._stop_running()     # its codes are stale; _worker_stopped starts again
        self._schedule()

    # -- the worker -------------------------------------------------------------------------------
    def _apply(self, codes, result) -> None:
        if codes is not self.document.codes:
            return
        self.state.set_measures(result)
        missing = [k for k in result.unavailable]
        if missing:
            self.message_posted.emit("info", f"Measures computed ({len(result):,} points); "
                                             f"not defined for this model: {', '.join(missing)}.")

    def _error_text(self, exc: BaseException) -> str:
        from explorer.jobs.training import friendly_error

        return friendly_error(exc, self.LABEL)

    def _worker_stopped(self) -> None:
        super()._worker_stopped()
        self._schedule()
