"""First-time imports of the training path, done in the background before they are needed.

A first import holds Python's global lock for tens of milliseconds at a time (unmarshalling
and executing a large module), and the window's event loop waits for that lock. Measured on
a 2-core machine: the first ``torch.optim.Adam(...)`` of a process imports ``torch._dynamo``
(``add_param_group`` goes through ``torch._disable_dynamo``): about 900 modules in 1.2 s;
``torchvision.datasets`` imports about 1,100 (dynamo included) in 3.6 s. On the training
thread those imports stalled the window for up to 80 ms right after Train was clicked, when
the user watches the first updates. :class:`Prefetcher` runs them in one pool thread while
nothing is timing-critical: once the first model is on screen, and as soon as one of
torchvision's datasets is chosen.
"""

from __future__ import annotations

import gc
import importlib
import sys

from PySide6.QtCore import QObject

from explorer.jobs.workers import start_worker


class Prefetcher(QObject):
    """Import modules one after the other in a worker thread.

    Requests made while a worker runs join its queue; a module that is already imported,
    or already queued, is skipped.
    """

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._queue: list[str] = []
        self._worker = None

    @property
    def busy(self) -> bool:
        """True while a worker is importing (or about to import) something."""
        return self._worker is not None

    def request(self, modules) -> None:
        """Import ``modules`` (dotted names) in the background, in this order."""
        self._queue += [m for m in modules if m not in sys.modules and m not in self._queue]
        if self._queue and self._worker is None:
            self._start()

    def _start(self) -> None:
        from superqt.utils import FunctionWorker

        queue = self._queue

        def load() -> None:
            while queue:
                name = queue.pop(0)
                try:
                    importlib.import_module(name)
                except ImportError:  # the code that needs it reports it, with its context
                    pass

        self._worker = FunctionWorker(load)
        self._worker.finished.connect(self._on_worker_finished)
        start_worker(self._worker)

    def _on_worker_finished(self) -> None:
        self._worker = None
        if self._queue:  # requested after the worker's last look at the queue
            self._start()
            return
        # What was imported lives as long as the app, like what the engine's import brought
        # (explorer.app freezes that): keep it out of the collector's passes. Left in, it sat
        # in the middle generation until the first pass over it, mid-training: 12-18 ms of
        # the GUI thread for ~26,000 young objects, most of them the imports' functions.
        gc.freeze()
