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

from explorer.jobs.background import BackgroundJob
from explorer.state.document import code_stats

SYNC_ENCODE_ELEMENTS = 4_000_000     # N × pixels below which encoding runs in the GUI thread


class EncodingJob(BackgroundJob):
    """Encodes ``document``'s dataset with its model whenever either changes.

    Signals as :class:`~explorer.jobs.background.BackgroundJob` (``busy_changed``,
    ``progressed``, ``message_posted``).
    """

    LABEL = "Encoding the dataset"

    def __init__(self, document, parent=None) -> None:
        super().__init__(parent)
        self.document = document
        self.auto_encode = True
        self._generation = 0
        self._pending = False           # encode again once the running job has stopped
        self._encoded_revision = None   # the document's encoder_revision behind its codes
        self._connections.connect_all([(document.model_changed, self._on_document_model_changed),
                                       (document.dataset_changed, self._on_document_dataset_changed),
                                       (document.weights_changed, self._on_document_weights_changed)])
        if document.model is not None and document.dataset is not None and document.codes is None:
            self._schedule()

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
        # The snapshot may get new weights meanwhile. Its weights are copied here (about a
        # millisecond); the module itself is copied in the worker (a deep copy of an MLP took
        # 13 ms of the GUI thread), and any weight it read mid-update is then overwritten.
        source = doc.model
        weights = {k: v.detach().clone() for k, v in source.state_dict().items()}
        gen, revision = self._generation, doc.encoder_revision

        def run(progress=None, should_stop=None):
            from vae_core.latent import encode_dataset

            model = copy.deepcopy(source)
            model.load_state_dict(weights)
            mu, logvar = encode_dataset(model, images, labels, progress=progress, should_stop=should_stop)
            return mu, logvar, code_stats(mu, logvar)

        if int(images.size) <= SYNC_ENCODE_ELEMENTS:
            self._apply(gen, run(), revision)
            return
        self._launch(run, lambda result: self._apply(gen, result, revision))

    def cancel(self) -> None:
        """Stop the running encode (between batches); the codes stay as they were."""
        self._pending = False
        super().cancel()

    def shutdown(self) -> None:
        """Stop listening to the document and cancel the running encode."""
        self._pending = False
        super().shutdown()

    # -- the document ------------------------------------------------------------------------------
    def _queued(self) -> bool:
        return self._pending or super()._queued()

    def _start_due(self) -> None:
        if self.document.codes is None:
            self.encode()

    def _drop_running(self) -> None:
        self._generation += 1
        self._pending = False
        self._stop_running()

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

    def _worker_stopped(self) -> None:
        if self._pending:
            self._pending = False
            self.encode()
        if self._worker is None:   # else encode() started the next one: still busy
            super()._worker_stopped()
