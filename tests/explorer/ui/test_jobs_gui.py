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
