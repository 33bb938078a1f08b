"""Background jobs of the window that have no panel of their own."""

from __future__ import annotations

import sys


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
