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

from PySide6 import QtCore

from explorer.jobs.background import BackgroundJob
from explorer.state.compare import CompareState, compute_layouts


class CompareJob(BackgroundJob):
    """Computes the comparison's codes and aligned layouts in a worker.

    Signals
    -------
    applied()
        New layouts are on both maps.
    busy_changed, progressed, message_posted
        As :class:`~explorer.jobs.background.BackgroundJob`.
    """

    applied = QtCore.Signal()

    LABEL = "Comparing the models"

    def __init__(self, compare: CompareState, parent=None) -> None:
        super().__init__(parent)
        self.compare = compare
        self.fit_in_process = True
        self._generation = 0

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

        def run(progress, should_stop):
            return compute_layouts(left, right, images, labels, kind=kind, should_stop=should_stop, fitter=fitter)

        self._launch(run, lambda result: self._apply(generation, result))

    def _start_due(self) -> None:
        self.request()

    def _apply(self, generation: int, result) -> None:
        if generation == self._generation:
            self.compare.apply(result)
            self.applied.emit()

    def _error_text(self, exc: BaseException) -> str:
        return f"The comparison could not be computed: {exc}"
