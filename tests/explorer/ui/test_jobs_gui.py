"""Background jobs of the window that have no panel of their own."""

from __future__ import annotations

import sys

import pytest


def test_prefetcher_imports_in_order_in_the_background_and_takes_late_requests(qtbot, tmp_path, monkeypatch):
    from explorer.jobs.prefetch import Prefetcher

    # Two modules that record which thread imported them; the first is slow to import.
    (tmp_path / "le_prefetch_a.py").write_text("import threading, time\ntime.sleep(0.3)\nTHREAD = threading.get_ident()\n")
    (tmp_path / "le_prefetch_b.py").write_text("import threading\nTHREAD = threading.get_ident()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("le_prefetch_a", "le_prefetch_b"):
        monkeypatch.delitem(sys.modules, name, raising=False)

    prefetcher = Prefetcher()
    prefetcher.request(["le_prefetch_a", "le_prefetch_missing"])
    assert prefetcher.busy
    prefetcher.request(["le_prefetch_b", "le_prefetch_a"])   # joins the running worker's queue
    qtbot.waitUntil(lambda: not prefetcher.busy, timeout=10_000)
    import threading

    import le_prefetch_a
    import le_prefetch_b

    assert le_prefetch_a.THREAD != threading.get_ident() and le_prefetch_b.THREAD != threading.get_ident()
    assert "le_prefetch_missing" not in sys.modules
    prefetcher.request(["le_prefetch_a"])   # already imported: nothing to do
    assert not prefetcher.busy


def test_what_the_prefetcher_imported_is_kept_out_of_the_collectors_passes(qtbot, tmp_path, monkeypatch):
    """Imported functions live as long as the app: they are frozen, not visited in every pass."""
    import gc

    from explorer.jobs.prefetch import Prefetcher

    (tmp_path / "le_prefetch_c.py").write_text("def f():\n    return 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "le_prefetch_c", raising=False)
    frozen = gc.get_freeze_count()
    prefetcher = Prefetcher()
    prefetcher.request(["le_prefetch_c"])
    qtbot.waitUntil(lambda: not prefetcher.busy, timeout=10_000)
    import le_prefetch_c

    assert gc.get_freeze_count() > frozen
    assert not any(obj is le_prefetch_c.f for obj in gc.get_objects())   # the frozen are not listed


def test_task_relays_progress_thinned_and_the_window_shows_it(qtbot, make_main_window, tmp_path):
    import threading

    from explorer.jobs.training import Task

    release = threading.Event()

    def work(progress=None):
        for i in range(1, 20_001):                  # a folder of 20,000 files reports 20,000 times
            progress(i, 20_000)
            if i == 10_000:
                release.wait(10)
        return "done"

    seen = []
    task = Task(work, progress=True)
    task.progressed.connect(lambda done, total: seen.append((done, total)))
    with qtbot.waitSignal(task.succeeded, timeout=20_000):
        release.set()
        task.start()
    qtbot.waitUntil(lambda: seen and seen[-1] == (20_000, 20_000), timeout=5_000)
    assert len(seen) < 200                          # thinned to one report per 0.1 s, plus the last
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)

    # The window's busy bar fills with a dataset's loading progress.
    window = make_main_window()
    from PIL import Image
    import numpy as np

    folder = tmp_path / "pictures"
    folder.mkdir()
    for i in range(3):
        Image.fromarray(np.full((8, 8), 40 * i, np.uint8)).save(folder / f"{i}.png")
    gate = threading.Event()

    def load(spec, progress=None):
        from vae_core import load_dataset

        def report(done, total):
            progress(done, total)
            if done == 2:
                gate.wait(10)                      # hold the task so the window can be looked at
        return load_dataset(spec, progress=report)

    task = window.run_task("Loading pictures…", load, f"folder:{folder}", progress=True)
    qtbot.waitUntil(lambda: window.busy_bar.maximum() == 3 and window.busy_bar.value() == 2, timeout=10_000)
    assert window.busy_label.text() == "Loading pictures… 2 of 3"
    with qtbot.waitSignal(task.succeeded, timeout=10_000):
        gate.set()
    qtbot.waitUntil(lambda: not window.busy_bar.isVisible(), timeout=5_000)


# -- EncodingJob in its worker (digits are small enough to encode in the GUI thread otherwise) -------
def _encoding_job_in_a_worker(digits, make_document, monkeypatch, *, hold_result: bool = False):
    """A document with an untrained mlp, an EncodingJob that always uses its worker, the
    record of what it reported, and a gate that holds every encode until it is opened:
    before it starts (a cancel stops it), or with ``hold_result`` after it has encoded (it
    returns its codes however late)."""
    import threading

    import torch

    from explorer.jobs import encoding
    from explorer.jobs.encoding import EncodingJob
    from vae_core import build_model, latent

    monkeypatch.setattr(encoding, "SYNC_ENCODE_ELEMENTS", 0)
    gate, real_encode = threading.Event(), latent.encode_dataset

    def gated_encode(*args, **kwargs):
        if hold_result:
            result = real_encode(*args, **kwargs)
            gate.wait(10)
            return result
        gate.wait(10)
        return real_encode(*args, **kwargs)

    monkeypatch.setattr(latent, "encode_dataset", gated_encode)
    torch.manual_seed(0)
    state = make_document(build_model("mlp", image_shape=digits.image_shape, latent_dim=3, hidden=(16,)))
    job = EncodingJob(state)
    seen = {"busy": [], "progressed": [], "messages": [], "codes": []}
    job.busy_changed.connect(seen["busy"].append)
    job.progressed.connect(lambda text, fraction: seen["progressed"].append((text, fraction)))
    job.message_posted.connect(lambda level, text: seen["messages"].append((level, text)))
    state.codes_changed.connect(lambda: seen["codes"].append(state.codes))
    return state, job, gate, real_encode, seen


def test_encoding_job_drops_a_superseded_run_and_encodes_the_new_model(qtbot, digits, make_document, monkeypatch):
    import numpy as np
    import torch

    from vae_core import build_model

    state, job, gate, real_encode, seen = _encoding_job_in_a_worker(digits, make_document, monkeypatch,
                                                                    hold_result=True)
    qtbot.waitUntil(lambda: job.busy, timeout=5_000)   # the first model's codes, held at the gate
    assert seen["busy"] == [True] and seen["progressed"][0] == ("Encoding the dataset…", 0.0)
    torch.manual_seed(1)
    second = build_model("mlp", image_shape=digits.image_shape, latent_dim=2, hidden=(16,))
    state.set_model(second)   # the running encode is stale now: its codes must never arrive
    qtbot.wait(50)            # the new model's encode is asked for while the old one still runs
    gate.set()
    assert job.wait(30)
    expected, _ = real_encode(second, state.images)
    assert len(seen["codes"]) == 1 and seen["codes"][0].shape == (len(expected), 2)
    np.testing.assert_allclose(state.codes, expected, rtol=1e-5, atol=1e-6)
    # Busy throughout: the second encode starts before the first one reports that it stopped.
    assert seen["busy"][-1] is False and all(seen["busy"][:-1]) and seen["progressed"][-1] == ("", 1.0)
    assert seen["messages"] == []
    job.shutdown()


def test_an_encode_uses_the_weights_it_was_asked_with_though_its_worker_copies_the_model_later(
        qtbot, digits, make_document, monkeypatch):
    """The worker copies the module; weights changed in place before that copy do not leak in."""
    import copy
    import threading
    from types import SimpleNamespace

    import numpy as np
    import torch

    from explorer.jobs import encoding
    from explorer.jobs.encoding import EncodingJob
    from vae_core import build_model, latent

    monkeypatch.setattr(encoding, "SYNC_ENCODE_ELEMENTS", 0)
    gate = threading.Event()

    def late_deepcopy(obj):
        gate.wait(10)
        return copy.deepcopy(obj)

    monkeypatch.setattr(encoding, "copy", SimpleNamespace(deepcopy=late_deepcopy))
    torch.manual_seed(0)
    state = make_document(build_model("mlp", image_shape=digits.image_shape, latent_dim=3, hidden=(16,)))
    asked, _ = latent.encode_dataset(state.model, state.images)
    job = EncodingJob(state)
    qtbot.waitUntil(lambda: job.busy, timeout=5_000)   # asked, its worker waiting to copy the model
    with torch.no_grad():
        for p in state.model.parameters():
            p.mul_(-2.0)
    changed, _ = latent.encode_dataset(state.model, state.images)
    gate.set()
    assert job.wait(30) and state.codes is not None
    np.testing.assert_allclose(state.codes, asked, rtol=1e-5, atol=1e-6)
    assert not np.allclose(state.codes, changed, atol=1e-3)
    job.shutdown()


def test_encoding_job_cancel_keeps_no_codes_and_says_nothing(qtbot, digits, make_document, monkeypatch):
    state, job, gate, _, seen = _encoding_job_in_a_worker(digits, make_document, monkeypatch)
    qtbot.waitUntil(lambda: job.busy, timeout=5_000)
    job.cancel()
    assert seen["progressed"][-1] == ("Cancelling…", -1.0)
    gate.set()
    assert job.wait(30)
    assert state.codes is None and seen["codes"] == [] and seen["messages"] == []
    assert seen["busy"] == [True, False] and seen["progressed"][-1] == ("", 1.0)
    job.shutdown()


def test_encoding_job_reports_a_failed_encode_as_a_message(qtbot, digits, make_document, monkeypatch):
    from vae_core import latent

    state, job, gate, _, seen = _encoding_job_in_a_worker(digits, make_document, monkeypatch)

    def failing_encode(*args, **kwargs):
        gate.wait(10)
        raise ValueError("the pixels are not numbers")

    monkeypatch.setattr(latent, "encode_dataset", failing_encode)
    gate.set()
    qtbot.waitUntil(lambda: seen["busy"] == [True, False], timeout=10_000)
    assert state.codes is None
    assert seen["messages"] == [("error", "Encoding the dataset failed: the pixels are not numbers")]
    job.shutdown()


# -- CompareJob: a newer request supersedes the running one ------------------------------------------
def test_compare_job_applies_only_the_newest_request_and_stays_busy_until_it_ends(qtbot, digits, monkeypatch):
    import threading

    import torch

    from explorer.jobs import compare as compare_job
    from explorer.jobs.compare import CompareJob
    from explorer.state.compare import CompareState, compute_layouts
    from vae_core import build_model

    gate, kinds_computed = threading.Event(), []

    def gated_layouts(*args, **kwargs):
        result = compute_layouts(*args, **kwargs)
        kinds_computed.append(result.kind)
        gate.wait(10)
        return result

    monkeypatch.setattr(compare_job, "compute_layouts", gated_layouts)
    torch.manual_seed(0)
    left, right = (build_model("mlp", image_shape=digits.image_shape, latent_dim=2, hidden=(16,)) for _ in "lr")
    compare = CompareState()
    compare.set_models(left, right, digits)
    compare.set_kind("dims")
    job = CompareJob(compare)
    seen = {"busy": [], "applied": 0, "messages": []}
    job.busy_changed.connect(seen["busy"].append)
    job.applied.connect(lambda: seen.__setitem__("applied", seen["applied"] + 1))
    job.message_posted.connect(lambda level, text: seen["messages"].append((level, text)))
    job.request()
    qtbot.waitUntil(lambda: kinds_computed == ["dims"], timeout=10_000)   # done, held at the gate
    compare.set_kind("pca")
    job.request()                                                          # supersedes the "dims" run
    gate.set()
    assert job.wait(30)
    assert sorted(kinds_computed) == ["dims", "pca"] and seen["applied"] == 1
    assert compare.left.map.projection.kind == "pca" and compare.right.map.projection.kind == "pca"
    # Busy from the first request until the newest one ends; the superseded run's end is not the job's.
    assert seen["busy"] == [True, True, False] and not job.busy
    assert seen["messages"] == []

    monkeypatch.setattr(compare_job, "compute_layouts", lambda *args, **kwargs: 1 / 0)
    job.request()
    assert job.wait(30)
    assert seen["messages"] == [("error", "The comparison could not be computed: division by zero")]
    job.shutdown()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice values are Linux's")
def test_background_jobs_run_at_the_training_threads_lower_priority(qtbot, digits, make_document, monkeypatch):
    """Encoding (and every BackgroundJob) yields the CPU to the window like training does."""
    import os
    import threading

    from explorer.jobs.priority import BACKGROUND_NICENESS as TRAINING_NICENESS
    from vae_core import latent

    niceness = []
    real_encode = latent.encode_dataset

    def recording_encode(*args, **kwargs):
        niceness.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
        return real_encode(*args, **kwargs)

    state, job, gate, _, seen = _encoding_job_in_a_worker(digits, make_document, monkeypatch)
    monkeypatch.setattr(latent, "encode_dataset", recording_encode)
    job.cancel()
    gate.set()
    assert job.wait(30)
    state.set_model(state.model)   # a fresh encode, through the recording function
    assert job.wait(30) and state.codes is not None
    assert niceness and min(niceness) >= TRAINING_NICENESS
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) < TRAINING_NICENESS   # not the GUI thread
    job.shutdown()
# -- objects that another thread runs are released on the GUI thread ------------------------------
# A job drops its worker when `finished` arrives, but the pool thread still holds the worker until
# run() returns. When that reference was the last one, the worker's signals QObject (a GUI-thread
# object) was destroyed on the pool thread, about once in 300 workers, and the test suite later
# aborted in a garbage collection on the GUI thread. The sleep after `finished` makes the race certain.
def _record_destruction_thread(qobject) -> list:
    import threading

    from PySide6.QtCore import Qt

    threads = []
    qobject.destroyed.connect(lambda *_: threads.append(threading.current_thread()), Qt.ConnectionType.DirectConnection)
    return threads


def test_a_finished_worker_is_destroyed_on_the_gui_thread_not_by_its_pool_thread(qtbot):
    import threading
    import time

    from superqt.utils import FunctionWorker

    from explorer.jobs.workers import kept_count, start_worker

    class SlowToLeave(FunctionWorker):
        def run(self):
            super().run()      # emits finished
            time.sleep(0.3)    # the pool thread still holds `self` here

    jobs = {"worker": SlowToLeave(lambda: 42)}
    destroyed_in = _record_destruction_thread(jobs["worker"].signals)
    jobs["worker"].finished.connect(lambda: jobs.update(worker=None))   # what every job does
    start_worker(jobs["worker"])
    qtbot.waitUntil(lambda: jobs["worker"] is None, timeout=10_000)
    assert destroyed_in == []   # the pool thread has not returned from run() yet
    qtbot.waitUntil(lambda: bool(destroyed_in), timeout=10_000)
    assert destroyed_in == [threading.main_thread()]
    qtbot.waitUntil(lambda: kept_count() == 0, timeout=5_000)


def test_a_qobject_run_by_a_plain_thread_is_destroyed_on_the_gui_thread(qtbot):
    import threading
    import time

    from PySide6.QtCore import QObject, Signal

    from explorer.jobs.workers import keep_until

    class Job(QObject):   # the shape of the model export's job and of NearestQuery
        finished = Signal()

        def __init__(self):
            super().__init__()
            self._thread = threading.Thread(target=self._run, daemon=True)

        def start(self):
            self._thread.start()
            keep_until(self, self._thread.is_alive)

        def _run(self):
            self.finished.emit()
            time.sleep(0.3)

    jobs = {"job": Job()}
    destroyed_in = _record_destruction_thread(jobs["job"])
    jobs["job"].finished.connect(lambda: jobs.update(job=None))
    jobs["job"].start()
    qtbot.waitUntil(lambda: bool(destroyed_in), timeout=10_000)
    assert destroyed_in == [threading.main_thread()]


def test_reference_cycles_with_qt_objects_are_collected_on_the_gui_thread_not_by_a_worker(qtbot):
    import gc
    import threading

    from PySide6.QtCore import QObject

    from explorer.jobs.workers import collect_garbage_on_gui_thread

    collect_garbage_on_gui_thread()   # what the window does first
    assert not gc.isenabled()
    garbage = QObject()
    garbage.me = garbage              # a cycle: only the collector can free it
    destroyed_in = _record_destruction_thread(garbage)
    del garbage

    kept = []

    def allocate():                   # enough new containers to cross any generation's threshold
        kept.extend([i] for i in range(20 * sum(gc.get_threshold())))

    worker = threading.Thread(target=allocate)
    worker.start()
    worker.join()
    assert destroyed_in == []         # the interpreter would have collected it in the worker
    qtbot.waitUntil(lambda: bool(destroyed_in), timeout=10_000)
    assert destroyed_in == [threading.main_thread()]
    kept.clear()


def test_the_window_keeps_the_collector_and_the_global_lock_on_its_side(make_main_window):
    import gc

    from explorer.jobs.workers import GIL_SWITCH_INTERVAL_S

    sys.setswitchinterval(0.005)
    make_main_window()
    assert not gc.isenabled()
    assert sys.getswitchinterval() == pytest.approx(GIL_SWITCH_INTERVAL_S)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice values are Linux's")
def test_every_worker_runs_below_the_gui_threads_priority_even_on_a_fresh_pool_thread(qtbot):
    """start_worker lowers the priority itself: a job that did not ask (a map layout) ran level
    with the window whenever it landed on a pool thread no lowering job had used before."""
    import os
    import threading

    from PySide6.QtCore import QThreadPool
    from superqt.utils import FunctionWorker

    from explorer.jobs.priority import BACKGROUND_NICENESS
    from explorer.jobs.workers import start_worker

    pool = QThreadPool.globalInstance()
    expiry = pool.expiryTimeout()
    pool.setExpiryTimeout(1)   # idle pool threads end: the next worker gets a new thread
    try:
        qtbot.waitUntil(lambda: pool.activeThreadCount() == 0, timeout=10_000)
        qtbot.wait(50)
        seen = []
        start_worker(FunctionWorker(lambda: seen.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))))
        qtbot.waitUntil(lambda: bool(seen), timeout=10_000)
    finally:
        pool.setExpiryTimeout(expiry)
    gui = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    assert gui < BACKGROUND_NICENESS   # a new thread starts from this value
    assert seen == [max(gui, BACKGROUND_NICENESS)]


def test_every_worker_of_the_application_is_started_through_start_worker():
    import re
    from pathlib import Path

    import explorer

    # Modules that make superqt workers (QRunnables) name them `worker`/`_worker`; a bare
    # .start() there would bring the race back. workers.py is the one place that may call it.
    makes_workers = re.compile(r"(FunctionWorker|GeneratorWorker|create_worker)\(")
    bare_start = re.compile(r"\b_?worker\.start\(\)")
    offenders = []
    for path in Path(explorer.__file__).parent.rglob("*.py"):
        text = path.read_text()
        if path.name != "workers.py" and makes_workers.search(text):
            offenders += [f"{path.name}:{n}" for n, line in enumerate(text.splitlines(), 1) if bare_start.search(line)]
    assert offenders == []


def test_a_workers_progress_is_thinned_but_its_first_and_last_reports_pass():
    from explorer.jobs.workers import throttled_progress

    reports = []
    progress = throttled_progress(lambda done, total: reports.append((done, total)), interval_s=3600)
    for done in range(1, 101):
        progress(done, 100)
    assert reports == [(1, 100), (100, 100)]
    every = []
    progress = throttled_progress(lambda done, total: every.append(done), interval_s=0)
    for done in range(5):
        progress(done, 4.0)
    assert every == [0, 1, 2, 3, 4] and all(isinstance(d, int) for d in every)
