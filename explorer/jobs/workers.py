"""Starting background workers so that their Python objects die on the GUI thread.

A superqt worker is a ``QRunnable`` whose Python object owns a ``QObject`` living in the GUI
thread (``worker.signals``, which carries ``finished``, ``returned``…), and the arguments of
its function (model copies, datasets, closures over jobs). The pool thread that runs
``worker.run()`` holds a reference to the worker until ``run()`` returns, which is *after*
``finished`` was emitted. When the GUI thread handles ``finished`` first and drops its own
references (``self._worker = None``), the pool thread's reference is the last one, and the
worker, its signals object and everything its function holds are destroyed on the pool thread:
a QObject deleted outside its thread while the GUI thread may be using the same Qt and PySide
bookkeeping (undefined behaviour). Measured with bare ``FunctionWorker``s on one core: 11 of
3,000 ended that way. Damage of that kind shows up later and elsewhere, most likely as the rare
"Fatal Python error: Aborted" of the test suite during a garbage collection on the GUI thread.
A QObject that a plain Python thread runs
(``threading.Thread(target=self._run)``) has the same hazard when the thread ends.

:func:`start_worker` and :func:`keep_until` keep a reference on the GUI thread until the other
thread has let go of the object (Qt's pool deletes the runnable right after ``run()`` returned;
a thread is no longer alive after its target returned); a timer on the GUI thread then drops it.

Every worker thread runs below the GUI thread's OS priority (:func:`start_worker` lowers it in
the pool thread before the work starts). Qt's pool reuses its threads, and a nice value stays
with the thread, so lowering it only in some jobs made the priority of the others depend on
which pool thread they landed on: a map layout could run level with the window while
training and encoding ran below it.

Python's cycle collector is the other way Qt objects die in the wrong thread: it runs in
whichever thread's allocation crosses its threshold, and destroys every unreachable object it
finds, Qt wrappers included (a closed panel's plot items, a former model's widgets). A worker
deep-copying a model collected them once in the test suite, and the QObject destructor, run in
the worker, deadlocked with the GUI thread. :func:`collect_garbage_on_gui_thread` turns
automatic collection off and collects on a GUI-thread timer instead.

:func:`favour_gui_thread` also shortens the interpreter's switch interval, so the GUI thread
gets Python's global lock back sooner from a worker running Python code.
"""

from __future__ import annotations

import gc
import sys
import threading
import time
from typing import Callable

import shiboken6
from PySide6.QtCore import QCoreApplication, Qt, QTimer
from superqt.utils import create_worker

from explorer.jobs.priority import lower_thread_priority

#: Milliseconds between two looks at the objects kept alive.
SWEEP_INTERVAL_MS = 100
#: Milliseconds between two looks at the collector's counts (see collect_garbage_on_gui_thread).
COLLECT_INTERVAL_MS = 100
#: Seconds between two full collections at least (CPython waits for a quarter more long-lived objects).
FULL_COLLECTION_INTERVAL_S = 10.0
#: Seconds a thread may keep Python's global lock while another waits for it (CPython: 0.005).
GIL_SWITCH_INTERVAL_S = 0.0005
#: Seconds between two progress reports of a worker at most (see throttled_progress).
PROGRESS_INTERVAL_S = 0.1

_kept: list[tuple[object, Callable[[], bool]]] = []
_timer: QTimer | None = None
_collector: QTimer | None = None
_last_full = [0.0]


def start_worker(worker) -> None:
    """Start a superqt worker; its Python object is released on the GUI thread once it has run.

    Call this on the GUI thread instead of ``worker.start()``.
    """
    if not worker.autoDelete():
        raise ValueError("start_worker needs a worker that Qt's thread pool deletes when it has run.")
    # A direct connection runs in the emitting thread: the pool thread, as run() begins.
    worker.started.connect(lower_thread_priority, Qt.ConnectionType.DirectConnection)
    # Valid until the pool deletes the runnable, which happens after run() returned.
    keep_until(worker, lambda: shiboken6.isValid(worker))
    worker.start()


def throttled_progress(report: Callable[[int, int], None], interval_s: float = PROGRESS_INTERVAL_S):
    """A worker's ``progress(done, total)`` that passes on at most one report every ``interval_s``.

    The last report (``done >= total``) always passes: a signal per batch would flood the GUI
    thread's queue on a large dataset.
    """
    last = [float("-inf")]   # the first report passes

    def progress(done, total) -> None:
        now = time.monotonic()
        if now - last[0] >= interval_s or done >= total:
            last[0] = now
            report(int(done), int(total))

    return progress


def launch_worker(run: Callable, *, progress: Callable, should_stop: Callable[[], bool], returned: Callable,
                  errored: Callable, finished: Callable):
    """Run ``run(progress=..., should_stop=...)`` in a superqt worker, started with :func:`start_worker`.

    The handlers run on the GUI thread: ``returned(result)``, ``errored(exc)``, then
    ``finished()``. Errors go to ``errored`` only (superqt would also log them).
    """
    worker = create_worker(run, progress=progress, should_stop=should_stop, _start_thread=False,
                           _ignore_errors=True)
    worker.returned.connect(returned)
    worker.errored.connect(errored)
    worker.finished.connect(finished)
    start_worker(worker)
    return worker


def keep_until(obj, busy: Callable[[], bool]) -> None:
    """Hold ``obj`` on the GUI thread while ``busy()`` is true, then let it go there.

    Call on the GUI thread, with a ``busy`` that turns false only once the other thread
    holds no reference to ``obj`` (e.g. ``thread.is_alive``). Without an application
    (scripts) nothing is kept: there is no GUI thread to protect.
    """
    app = QCoreApplication.instance()
    if app is None:
        return
    if threading.current_thread() is not threading.main_thread():
        raise RuntimeError("keep_until must be called on the GUI thread.")
    _kept.append((obj, busy))
    _ensure_timer(app).start()


def kept_count() -> int:
    """How many objects are still held (for tests)."""
    return len(_kept)


def _ensure_timer(app) -> QTimer:
    global _timer
    if _timer is None or not shiboken6.isValid(_timer):
        _timer = QTimer(app)   # a child of the application: never outlives it
        _timer.setInterval(SWEEP_INTERVAL_MS)
        _timer.timeout.connect(_sweep)
    return _timer


def _sweep() -> None:
    # Released here, on the GUI thread: the last reference goes with the list entry.
    _kept[:] = [(obj, busy) for obj, busy in _kept if busy()]
    if not _kept and _timer is not None:
        _timer.stop()


def favour_gui_thread() -> None:
    """Process-wide settings that keep the GUI thread responsive next to busy workers (call on it).

    * Python's cycle collector runs on the GUI thread only (:func:`collect_garbage_on_gui_thread`).
    * The switch interval drops from 5 ms to :data:`GIL_SWITCH_INTERVAL_S`. A thread that
      asks for the global lock waits up to the interval while another runs Python code, and
      the GUI thread asks again after every call into Qt that released it: a repaint making a
      dozen such calls could wait 5 ms a dozen times. In ten back-to-back training runs of the
      full window (`bench/bench_gui.py --stall-runs 5`, twice each), 3 of 10 had a beat more
      than 50 ms late at the default interval (worst 89 ms), 1 of 10 at 0.5 ms (worst 57 ms).
    """
    collect_garbage_on_gui_thread()
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)


def collect_garbage_on_gui_thread() -> None:
    """Collect Python's reference cycles on the GUI thread only, from now on (call on it).

    Automatic collection is turned off for the process; a timer on the GUI thread looks at
    the collector's counts every :data:`COLLECT_INTERVAL_MS` and collects the generations
    whose thresholds (``gc.get_threshold()``) were crossed, as the interpreter would have.
    Full collections, the slow ones, come at most every :data:`FULL_COLLECTION_INTERVAL_S`.
    pyqtgraph's ``GarbageCollector`` does the same but collects everything every hundred
    young collections, which pauses the window more often. Calling it again changes nothing.
    """
    global _collector
    app = QCoreApplication.instance()
    if app is None or (_collector is not None and shiboken6.isValid(_collector)):
        return
    if threading.current_thread() is not threading.main_thread():
        raise RuntimeError("collect_garbage_on_gui_thread must be called on the GUI thread.")
    gc.disable()
    _last_full[0] = time.monotonic()
    _collector = QTimer(app)
    _collector.setInterval(COLLECT_INTERVAL_MS)
    _collector.timeout.connect(_collect)
    _collector.destroyed.connect(lambda *_: gc.enable())   # with the application: the interpreter collects again
    _collector.start()


def _collect() -> None:
    young, middle, old = gc.get_count()
    first, second, third = gc.get_threshold()
    if young <= first:
        return
    if middle >= second and old >= third and time.monotonic() - _last_full[0] >= FULL_COLLECTION_INTERVAL_S:
        gc.collect(2)
        _last_full[0] = time.monotonic()
    elif middle >= second:
        gc.collect(1)
    else:
        gc.collect(0)
