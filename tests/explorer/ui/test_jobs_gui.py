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
