"""Background work for the latent map: projection fits (layouts) and nearest-data queries.

:class:`MapJobs` keeps ``state.map`` in step with the document's codes (which the
application's :class:`explorer.jobs.encoding.EncodingJob` computes):

* new codes of a new model or dataset → fit the current projection;
* new codes after a training epoch → refit dims/PCA (cheap, PCA aligned to the previous
  layout with Procrustes) or, for UMAP, keep the 2D layout and re-attach the new codes
  (instant; *Refit* recomputes);
* the projection switcher → fit in a worker with progress; *Cancel* stops it between
  UMAP epochs. A newer request cancels the running one and waits for it to stop.
* while UMAP optimises, its intermediate layouts (about one a second, the first one as
  soon as umap has initialised) are shown as provisional projections, so the points glide
  into place; Cancel (or a failure) brings back what was shown before the fit.

Jobs run as superqt ``create_worker`` function workers; progress crosses threads through a
Qt signal (queued to the GUI thread). A UMAP fit goes one step further: the worker hands it
to a child process (:mod:`explorer.jobs.umap_fit`), because umap's numba epochs hold the
interpreter lock and would freeze the window; there it runs under ``threadpool_limits(1)``
(inside :mod:`vae_core.projection`), leaving the other core to the GUI.

:class:`NearestQuery` answers "which data codes are nearest to the cursor" in a plain
Python thread, latest request wins: a million-code query takes ~15 ms, too long to run on
every mouse move in the GUI thread.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import numpy as np
from PySide6 import QtCore

from explorer.jobs.priority import lower_thread_priority
from explorer.jobs.workers import keep_until, launch_worker, throttled_progress
from explorer.state.connections import Connections
from vae_core.latent import Cancelled

SYNC_LAYOUT_ELEMENTS = 400_000       # N × d below which dims/PCA fits run in the GUI thread (MNIST×20: worker)
SYNC_UMAP_REATTACH = 200_000         # codes up to which a kept UMAP layout is re-attached in the GUI thread


@dataclass
class _Job:
    kind: str                 # "layout"
    generation: int
    cancel: threading.Event = field(default_factory=threading.Event)
    worker: object = None
    label: str = ""
    switch: bool = False      # a projection switch (revert the switcher when cancelled)
    before: tuple | None = None   # (projection, xy) shown before its first intermediate layout


class _Relay(QtCore.QObject):
    """Carries progress from worker threads to the GUI thread."""

    progressed = QtCore.Signal(object, int, int)   # job, done, total
    layout_streamed = QtCore.Signal(object, object, object)   # job, provisional projection, xy


class MapJobs(QtCore.QObject):
    """Projects the codes in the background so the map follows them."""

    busy_changed = QtCore.Signal(bool)
    progressed = QtCore.Signal(str, float)    # what, fraction in [0, 1] (or -1: unknown)
    message_posted = QtCore.Signal(str, str)  # level, text
    layout_applied = QtCore.Signal()
    intermediate_layout_applied = QtCore.Signal()   # a UMAP layout shown while it is optimised

    def __init__(self, state, parent=None):
        super().__init__(parent)
        self.state = state
        self.map = state.map
        # UMAP fits in a child process: its numba epochs would hold the GUI's interpreter.
        self.fit_in_process = True
        self._job: _Job | None = None
        self._pending = None            # callable starting the next job
        self._generation = 0
        self._relay = _Relay(self)
        self._relay.progressed.connect(self._on_relay_progressed)
        self._relay.layout_streamed.connect(self._on_relay_layout_streamed)
        self._last_progress = 0.0
        self._scheduled = False         # the first layout is queued on the event loop
        self._closed = False
        self._model_is_new = False      # the next codes come from another model, not another epoch
        self.nearest = NearestQuery(self.map)   # no parent: it is closed explicitly, see shutdown()
        self.nearest.answered.connect(self._on_nearest_answered)
        self._connections = Connections()
        self._connections.connect_all([(state.model_changed, self._on_state_model_changed),
                                       (state.dataset_changed, self._on_state_dataset_changed),
                                       (state.codes_changed, self._on_state_codes_changed)])
        app = QtCore.QCoreApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.shutdown)
        pool = QtCore.QThreadPool.globalInstance()
        # Training holds one pool thread for its whole run: keep room for map jobs.
        pool.setMaxThreadCount(max(pool.maxThreadCount(), 4))
        if state.codes is not None:
            self._scheduled = True
            QtCore.QTimer.singleShot(0, self._initial)

    # -- public --------------------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        return self._job is not None

    def switch_projection(self, kind: str | None = None, *, refit: bool = False) -> None:
        """Show projection ``kind`` (default: the map's setting) with the current settings.

        A switch animates from the old layout. UMAP layouts are aligned (Procrustes) to the
        layout they replace; dims and PCA keep their own axes.
        """
        if kind is not None:
            self.map.set_kind(kind)
        kind = self.map.kind
        if self.state.codes is None:
            return   # the map is fitted with this kind when the codes arrive
        self._request_layout(kind, align=(kind == "umap"), keep_umap_layout=False, switch=True,
                             label=("Refitting " if refit else "Fitting ") + _kind_label(kind))

    def refresh(self) -> None:
        """Re-project after the codes changed (training epoch), keeping the picture stable."""
        codes = self.state.codes
        if codes is None:
            return
        restored = self.map.take_restored(codes)
        if restored is not None:  # a checkpoint reopened with its map: show exactly that map
            self._model_is_new = False
            try:
                xy = restored.transform(codes)
            except ValueError as exc:
                self.message_posted.emit("warning", f"The saved map does not fit these codes ({exc}); computing a new one.")
            else:
                self._apply_layout(self._generation, (restored, xy))
                return
        proj = self.map.projection
        kind = self.map.kind
        same_points = self.map.xy is not None and len(self.map.xy) == len(codes)
        new_model, self._model_is_new = self._model_is_new, False
        if kind == "dims" and codes.shape[1] < 2:
            kind = "pca"
            self.map.set_kind(kind)
        if kind == "dims" and max(self.map.dims) >= codes.shape[1]:
            self.map.set_dims(0, 1)
        if proj is None or not same_points:
            kind = kind if proj is not None else self.map.default_kind()
            self.map.set_kind(kind)
            self._request_layout(kind, align=same_points and kind != "pca", keep_umap_layout=False, switch=False,
                                 label="Fitting " + _kind_label(kind))
            return
        # A UMAP layout is kept across the epochs of one model; another model gets a new fit.
        self._request_layout(kind, align=True, keep_umap_layout=not new_model, switch=False,
                             label=("Fitting " if new_model and kind == "umap" else "Updating ") + _kind_label(kind))

    def cancel(self) -> None:
        """Stop the running job (between batches / UMAP epochs) and drop queued ones."""
        self._pending = None
        job = self._job
        if job is not None:
            job.cancel.set()
            self.progressed.emit("Cancelling…", -1.0)
            self._restore_before(job)
            if job.switch:
                self._revert_switcher()

    def query_nearest(self, z, k: int = 1) -> None:
        """Ask for the ``k`` data codes nearest ``z``; the answer lands in ``map.set_nearest``."""
        self.nearest.submit(z, k)

    def shutdown(self, wait_ms: int = 5000) -> None:
        """Cancel everything, stop the query thread and stop listening to the state.

        Called on application quit and when the panel owning these jobs is destroyed
        (``wait_ms=0``: a running fit stops at its next epoch and its result is dropped).
        """
        if self._closed:
            return
        self._closed = True
        self._pending = None
        if self._job is not None:
            self._job.cancel.set()
        self.nearest.close()
        self._connections.disconnect_all()
        job = self._job
        if job is not None and job.worker is not None and wait_ms > 0:
            deadline = time.monotonic() + wait_ms / 1000
            while self._job is not None and time.monotonic() < deadline:
                QtCore.QCoreApplication.processEvents(QtCore.QEventLoop.ProcessEventsFlag.AllEvents, 50)
                time.sleep(0.01)

    def wait(self, timeout_s: float = 60.0) -> bool:
        """Process events until no job is running (scripts and tests)."""
        deadline = time.monotonic() + timeout_s
        while (self._job is not None or self._pending is not None or self._scheduled) and time.monotonic() < deadline:
            QtCore.QCoreApplication.processEvents(QtCore.QEventLoop.ProcessEventsFlag.AllEvents, 50)
            time.sleep(0.005)
        QtCore.QCoreApplication.processEvents()
        return self._job is None

    # -- state events --------------------------------------------------------------------------------
    def _initial(self) -> None:
        self._scheduled = False
        if self._closed or self.state.codes is None:
            return
        if self.map.projection is None:
            self.refresh()
        self.nearest.warm_up()

    def _on_state_model_changed(self, model) -> None:
        self._generation += 1
        self._model_is_new = True
        self._drop_running()

    def _on_state_dataset_changed(self, data) -> None:
        # The map clears its layout itself (MapState); what is running is for the old points.
        self._generation += 1
        self._drop_running()

    def _on_state_codes_changed(self) -> None:
        self.refresh()
        self.nearest.warm_up()

    # -- jobs ----------------------------------------------------------------------------------------
    def _drop_running(self) -> None:
        self._pending = None
        if self._job is not None:
            self._job.cancel.set()

    def _request_layout(self, kind, *, align, keep_umap_layout, switch, label) -> None:
        codes = self.state.codes
        params = self.map.projection_params(kind)
        previous, previous_xy = self.map.projection, self.map.xy
        gen = self._generation
        compute = self.map.compute_layout
        fitter = None
        if kind == "umap" and self.fit_in_process:
            from explorer.jobs.umap_fit import shared_fit_process

            fitter = shared_fit_process().fit

        job = _Job("layout", gen, label=label, switch=switch)
        relay = self._relay

        def run(progress=None, should_stop=None):
            def intermediate(projection, xy):
                relay.layout_streamed.emit(job, projection, xy)

            return compute(codes, kind, params, previous=previous, previous_xy=previous_xy, align=align,
                           keep_umap_layout=keep_umap_layout, progress=progress, should_stop=should_stop,
                           fitter=fitter, intermediate=intermediate if should_stop is not None else None)

        quick = kind in ("dims", "pca") and codes.size <= SYNC_LAYOUT_ELEMENTS
        instant = (keep_umap_layout and kind == "umap" and previous is not None and previous.kind == "umap"
                   and previous_xy is not None and len(previous_xy) == len(codes)
                   and len(codes) <= SYNC_UMAP_REATTACH)
        if (quick or instant) and self._job is None:
            try:
                result = run()
            except (ValueError, RuntimeError) as exc:
                self.message_posted.emit("error", f"Could not project the codes: {exc}")
                return
            self._apply_layout(gen, result)
            return
        self._submit(job, run, lambda result: self._apply_layout(gen, result))

    def _submit(self, job: _Job, func, on_done) -> None:
        if self._closed:
            return
        if self._job is not None:
            # The running job is stale now: stop it, start this one when it is gone.
            self._job.cancel.set()
            self._pending = lambda: self._submit(job, func, on_done)
            return
        relay = self._relay
        job.worker = launch_worker(
            func, progress=throttled_progress(lambda done, total: relay.progressed.emit(job, done, total)),
            should_stop=job.cancel.is_set, returned=lambda result: None if job.cancel.is_set() else on_done(result),
            errored=lambda exc: self._on_worker_errored(job, exc), finished=lambda: self._on_worker_finished(job))
        self._job = job   # the worker's signals are queued: none arrives before this
        self.busy_changed.emit(True)
        self.progressed.emit(job.label + "…", 0.0)

    def _on_relay_progressed(self, job, done, total) -> None:
        if job is self._job and not job.cancel.is_set() and not self._closed:
            self.progressed.emit(job.label + "…", done / total if total else -1.0)

    def _on_relay_layout_streamed(self, job, projection, xy) -> None:
        if (job is not self._job or job.cancel.is_set() or self._closed or job.generation != self._generation
                or self.state.codes is None or len(xy) != len(self.state.codes)):
            return
        if job.before is None:
            job.before = (self.map.projection, self.map.xy)
        self.map.set_projection(projection, xy)
        self.intermediate_layout_applied.emit()

    def _restore_before(self, job) -> None:
        """Show again what was shown before ``job``'s intermediate layouts (cancelled or failed)."""
        before, job.before = job.before, None
        if before is None or self._closed or job.generation != self._generation:
            return
        projection, xy = before
        codes = self.state.codes
        if projection is not None and (xy is None or codes is None or len(xy) != len(codes)):
            projection, xy = None, None
        self.map.set_projection(projection, xy)

    def _on_worker_errored(self, job, exc) -> None:
        if isinstance(exc, Cancelled) or job.cancel.is_set() or self._closed:
            return
        self.message_posted.emit("error", f"{job.label} failed: {exc}")
        self._restore_before(job)
        if job.switch:
            self._revert_switcher()

    def _on_worker_finished(self, job) -> None:
        if job is not self._job:
            return
        self._job = None
        if self._closed:
            return
        pending, self._pending = self._pending, None
        if pending is not None:
            pending()
        if self._job is None:
            self.busy_changed.emit(False)
            self.progressed.emit("", 1.0)

    def _revert_switcher(self) -> None:
        shown = self.map.projection
        if shown is not None and shown.kind != self.map.kind:
            self.map.set_kind(shown.kind)

    def _apply_layout(self, generation, result) -> None:
        if generation != self._generation or self._closed:
            return
        proj, xy = result
        codes = self.state.codes
        if codes is None or len(xy) != len(codes):
            return
        self.map.set_projection(proj, xy)
        self.layout_applied.emit()

    def _on_nearest_answered(self, nearest) -> None:
        if not self._closed:
            self.map.set_nearest(nearest)


def _kind_label(kind: str) -> str:
    from explorer.state.map import KIND_NAMES

    return KIND_NAMES.get(kind, kind)


class NearestQuery(QtCore.QObject):
    """Nearest-data queries in a background thread; only the newest request is answered."""

    answered = QtCore.Signal(object)   # explorer.state.map.Nearest, for the newest request

    def __init__(self, map_state, parent=None):
        super().__init__(parent)
        self.map = map_state
        self._cond = threading.Condition()
        self._request = None
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="map-nearest", daemon=True)
        self._thread.start()

    def submit(self, z, k: int = 1) -> None:
        if z is None:
            return
        with self._cond:
            self._request = (np.asarray(z, dtype=np.float32).copy(), int(k))
            self._cond.notify()

    def warm_up(self) -> None:
        """Build the index and measure the data spacing now, before the first hover needs them."""
        with self._cond:
            if self._request is None:
                self._request = (None, 0)
                self._cond.notify()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join(timeout=2.0)
        if self._thread.is_alive():
            # Still in a query: its thread holds this QObject until it ends. Keep it so that it
            # is released on the GUI thread, never by the thread's last reference.
            keep_until(self, self._thread.is_alive)

    def _run(self) -> None:
        # Below the window like every worker: a new model's codes rebuild the index and measure
        # the data spacing here while the GUI thread repaints every panel.
        lower_thread_priority()
        pause = 0.0
        while True:
            if pause:
                # Leave the GUI thread at least as much time as the last query took: on a
                # million codes a query costs ~20 ms and holds the interpreter part of it.
                time.sleep(pause)
            with self._cond:
                while self._request is None and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
                z, k = self._request
                self._request = None
            started = time.perf_counter()
            if z is None:
                try:
                    _ = self.map.data_spacing
                except Exception:  # codes replaced meanwhile: the next request will do
                    pass
                continue
            try:
                result = self.map.query_nearest(z, k)
            except Exception:  # codes replaced mid-query (shape change): the next request will do
                continue
            elapsed = time.perf_counter() - started
            pause = elapsed if elapsed > 0.004 else 0.0
            if result is None:
                continue
            if self._closed:
                return
            try:
                self.answered.emit(result)
                if self.map.known_data_spacing() is None:
                    _ = self.map.data_spacing   # computed once, here, off the GUI thread
                    self.answered.emit(result)
            except RuntimeError:  # the QObject is gone (application quitting)
                return
            except Exception:
                continue
