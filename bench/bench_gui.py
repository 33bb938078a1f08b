"""The application window: start-up time and event-loop stalls while training.

* **Start-up** — wall time from spawning ``python -m explorer --smoke`` to the window being
  shown, to the engine (torch) being loaded and to the bundled model being on screen,
  against a bare ``QMainWindow`` started the same way in the same run. One warm-up run of
  each first, so imports come from a warm disk cache; the median of ``--repeats`` runs.
* **Responsiveness while training** — a 5 ms ``QTimer`` heartbeat on the GUI thread while
  the real window trains MNIST (``mlp`` 784-400-20, batch 128) as a user would: MNIST is
  picked in the Training panel, then Train is clicked; loading the data, building the
  model, every live update and the end-of-epoch refreshes included. A stall is the heartbeat's lateness. Threads are pinned: one torch thread for
  the GUI, ``cpu_count - 1`` for training. Also measures how long Pause takes to act.
  Skipped cleanly when MNIST is not in ``--data-root`` (default ``../shared/data``).

Usage: python bench/bench_gui.py [--repeats 5] [--epochs 2] [--write]
Runs offscreen unless ``DISPLAY`` is set (``xvfb-run -a python bench/bench_gui.py`` for X11).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from bench._common import data_root as shared_data_root  # noqa: E402
from bench._common import machine, write_section  # noqa: E402

BARE = """
import time, sys
from PySide6.QtWidgets import QApplication, QMainWindow
app = QApplication([])
w = QMainWindow()
w.resize(1440, 900)
w.show()
app.processEvents()
print(f"LE_TIMING window_shown {time.time():.6f} 0", flush=True)
"""


def _platform_env() -> dict:
    env = dict(os.environ)
    if not env.get("DISPLAY") and not env.get("WAYLAND_DISPLAY"):
        env["QT_QPA_PLATFORM"] = "offscreen"
    env["LATENT_EXPLORER_TIMING"] = "1"
    env.setdefault("NUMBA_CACHE_DIR", str(REPO / ".cache" / "numba"))
    return env


def _run(args: list[str], env: dict) -> dict[str, float]:
    start = time.time()
    out = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{out.stderr[-2000:]}")
    marks = {}
    for line in out.stdout.splitlines():
        if line.startswith("LE_TIMING "):
            _, event, stamp, _rel = line.split()
            marks[event] = float(stamp) - start
    return marks


def bench_startup(repeats: int) -> dict:
    env = _platform_env()
    app_cmd = [sys.executable, "-m", "explorer", "--smoke"]
    bare_cmd = [sys.executable, "-c", BARE]
    _run(app_cmd, env), _run(bare_cmd, env)  # warm the disk cache and the bytecode
    app_runs, bare_runs = [], []
    for _ in range(repeats):  # interleaved, so both see the same machine load
        bare_runs.append(_run(bare_cmd, env)["window_shown"])
        app_runs.append(_run(app_cmd, env))
    med = lambda key: statistics.median(r[key] for r in app_runs)  # noqa: E731
    return {"bare": statistics.median(bare_runs), "shown": med("window_shown"), "engine": med("engine_ready"),
            "model": med("model_loaded"), "shown_max": max(r["window_shown"] for r in app_runs),
            "platform": env.get("QT_QPA_PLATFORM", "xcb")}


def _stalls(gaps: list[tuple], interval: float) -> dict:
    late = sorted((g[0] - interval, g[1], g[2] if len(g) > 2 else 0.0) for g in gaps)
    values = [v for v, *_ in late]
    by_phase: dict[str, float] = {}
    for v, where, _at in late:
        by_phase[where] = max(by_phase.get(where, 0.0), v)
    worst, where, at = late[-1]
    start = min(g[2] if len(g) > 2 else 0.0 for g in gaps)
    return {"worst": worst, "where": where, "at": (at - start) / 1000, "p99": values[int(0.99 * (len(values) - 1))],
            "median": statistics.median(values), "over50": sum(v > 50 for v in values), "beats": len(values),
            "by_phase": by_phase}


def bench_stall(root: Path, epochs: int, idle_seconds: float = 5.0, *, panels: bool = True,
                window_size: tuple[int, int] = (1440, 900)) -> dict:
    """Run in a fresh process (see ``--stall-worker``): one window, one training run."""
    os.environ.update({k: v for k, v in _platform_env().items() if k == "QT_QPA_PLATFORM"})
    import torch
    from PySide6.QtCore import QElapsedTimer, QSettings, Qt, QTimer
    from PySide6.QtWidgets import QApplication

    from explorer.jobs.training import training_threads
    from explorer.state.training import TrainingOptions
    from explorer.ui.main_window import MainWindow

    torch.set_num_threads(1)  # the GUI thread's share; training sets its own
    if not panels:  # the window with its own docks only: no latent map, no studio
        MainWindow._install_panels = lambda self: None
    settings_dir = tempfile.mkdtemp(prefix="le-bench-")
    app = QApplication.instance() or QApplication([])
    window = MainWindow(settings=QSettings(str(Path(settings_dir) / "bench.ini"), QSettings.Format.IniFormat))
    # A fixed size, as on a desktop: offscreen, the window would open at its minimum size
    # (the platform's screen is 800×800), so any panel's minimum would change what is painted.
    window.resize(*window_size)
    window.show()
    import gc

    gc.freeze()  # as explorer.app does once the engine is loaded
    loaded = []
    window.initial_load_finished.connect(loaded.append)
    window.open_initial()

    def spin(condition, max_seconds: float = 600) -> None:
        deadline = time.perf_counter() + max_seconds
        while not condition() and time.perf_counter() < deadline:
            app.processEvents()
            time.sleep(0.001)

    spin(lambda: bool(loaded))
    settle = time.perf_counter() + 3
    spin(lambda: time.perf_counter() > settle)  # the map's first layout

    state = window.state
    clock = QElapsedTimer()
    gaps: list[tuple[float, str]] = []
    last = [0.0]
    phase = ["idle"]

    tracer = _StackSampler() if os.environ.get("LE_STALL_TRACE") else None
    traces: list[dict] = []

    def beat() -> None:
        now = clock.nsecsElapsed() / 1e6
        gaps.append((now - last[0], phase[0], now))
        if tracer is not None and now - last[0] > 50 and phase[0] != "idle":
            traces.append(tracer.between(time.perf_counter() - (now - last[0]) / 1000, time.perf_counter(),
                                         now - last[0], phase[0]))
        last[0] = now

    # How long the window's own handlers of state changes take (independent of machine load).
    handlers: dict[str, float] = {}
    stamps: dict[str, float] = {}
    for name in ("training_progressed", "weights_changed", "history_changed", "model_changed", "dataset_changed",
                 "codes_changed", "training_started", "training_finished", "training_status_changed"):
        signal = getattr(state, name)
        signal.connect(lambda *_a, n=name: stamps.__setitem__(n, time.perf_counter()), priority=1000)
        signal.connect(lambda *_a, n=name: handlers.__setitem__(
            n, max(handlers.get(n, 0.0), (time.perf_counter() - stamps.get(n, time.perf_counter())) * 1000)),
            priority=-1000)

    heart = QTimer()
    heart.setTimerType(Qt.TimerType.PreciseTimer)
    heart.setInterval(5)
    heart.timeout.connect(beat)
    clock.start()
    heart.start()
    idle_end = time.perf_counter() + idle_seconds
    spin(lambda: time.perf_counter() > idle_end)
    idle = _stalls(gaps[1:], 5.0)
    gaps.clear()

    # As a user would: pick MNIST in the Training panel (which starts importing torchvision in
    # the background), fill in the options, then click Train.
    phase[0] = "choosing MNIST"
    panel = window.training_panel
    panel.set_options(TrainingOptions(dataset="digits", data_root=str(root), model="mlp", latent_dim=20,
                                      hidden=(400,), epochs=epochs, batch_size=128, lr=1e-3, seed=0))
    index = panel.dataset_combo.findData("mnist")
    panel.dataset_combo.setCurrentIndex(index)
    panel.dataset_combo.activated.emit(index)
    spin(lambda: not window.prefetcher.busy, 120)
    settle = time.perf_counter() + 1
    spin(lambda: time.perf_counter() > settle)
    choosing = _stalls(gaps[1:], 5.0) if len(gaps) > 1 else None
    gaps.clear()

    pause_latency = []

    def on_progress(p) -> None:
        phase[0] = "epoch end" if p.kind == "epoch" else "training"
        if p.kind == "epoch":
            QTimer.singleShot(300, lambda: phase.__setitem__(0, "training"))
        if p.epoch == epochs - 1 and p.kind == "step" and not pause_latency and p.step % p.steps_per_epoch > 50:
            window.toggle_pause()
            pause_latency.append(None)

    def on_status(status: str) -> None:
        if status == "paused" and pause_latency:
            pause_latency[0] = window.runner.last_pause_latency
            QTimer.singleShot(300, window.toggle_pause)

    state.training_progressed.connect(on_progress)
    state.training_status_changed.connect(on_status)
    state.training_started.connect(lambda *_: phase.__setitem__(0, "training"))
    done = []
    state.training_finished.connect(done.append)
    assert panel.options().dataset == "mnist"
    phase[0] = "loading MNIST"
    last[0] = clock.nsecsElapsed() / 1e6
    started = time.perf_counter()
    cpu_started = time.thread_time()
    window.training_panel.train_button.click()
    spin(lambda: bool(done))
    wall = time.perf_counter() - started
    gui_cpu = time.thread_time() - cpu_started
    heart.stop()
    history = list(state.history)
    state._set_dirty(False)
    window.close()
    app.processEvents()

    result = _stalls(gaps[1:], 5.0)
    if tracer is not None:
        tracer.stop()
        result["traces"] = sorted(traces, key=lambda t: -t["ms"])[:8]
    result.update({"idle": idle, "choosing": choosing, "wall": wall, "gui_cpu": gui_cpu, "handlers": handlers, "outcome": done[0],
                   "epochs": len(history), "ips": [round(h["images_per_sec"]) for h in history],
                   "test": history[-1].get("test_neg_elbo") if history else None,
                   "pause": pause_latency[0] if pause_latency else None, "threads": training_threads()})
    return result


def _verdict(label: str, r: dict) -> str:
    if r["worst"] < 50:
        return f"- **{label}: goal (< 50 ms) met** — worst stall {r['worst']:.0f} ms."
    handlers = sorted(r["handlers"].items(), key=lambda kv: -kv[1])
    slowest, slowest_ms = handlers[0] if handlers else ("", 0.0)
    handled = (f"the slowest handler of a state change, `{slowest}`, took {slowest_ms:.0f} ms" if slowest_ms >= 50
               else "the window's handlers of state changes all took under 50 ms")
    return (f"- **{label}: goal (< 50 ms) not met** — worst stall {r['worst']:.0f} ms, {r['at']:.1f} s after the "
            f"click ({r['over50']} of {r['beats']} beats over 50 ms; 99th percentile {r['p99']:.0f} ms); {handled}.")


class _StackSampler:
    """Samples the GUI thread's Python stack every few milliseconds (``LE_STALL_TRACE=1``), so a
    late heartbeat can be matched with what that thread was running meanwhile: its own code,
    or a wait (for a core, or for another thread to release Python's global lock)."""

    def __init__(self, every: float = 0.003) -> None:
        import threading

        self._main = threading.main_thread().ident
        self._samples: list[tuple[float, tuple[str, ...]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(every,), daemon=True)
        self._thread.start()

    def _run(self, every: float) -> None:
        while not self._stop.wait(every):
            frame = sys._current_frames().get(self._main)
            stack = []
            while frame is not None and len(stack) < 8:
                code = frame.f_code
                where = code.co_filename.replace(str(REPO) + "/", "").split("site-packages/")[-1]
                stack.append(f"{where}:{frame.f_lineno} {code.co_name}")
                frame = frame.f_back
            self._samples.append((time.perf_counter(), tuple(stack)))

    def between(self, start: float, end: float, ms: float, phase: str) -> dict:
        from collections import Counter

        counts = Counter(stack for t, stack in self._samples if start <= t <= end)
        return {"ms": round(ms, 1), "phase": phase, "samples": sum(counts.values()),
                "stacks": [[n, list(stack)] for stack, n in counts.most_common(3)]}

    def stop(self) -> None:
        self._stop.set()


def _previous_startup_block() -> list[str]:
    """The start-up table already in docs/BENCHMARKS.md, kept by a ``--skip-startup --write``."""
    from bench._common import BENCHMARKS

    text = BENCHMARKS.read_text() if BENCHMARKS.exists() else ""
    start, end = text.find("**Start-up**"), text.find("The window costs")
    if start < 0 or end < start:
        return []
    block = text[start:text.find("\n", end) if text.find("\n", end) >= 0 else len(text)].rstrip()
    if "from the previous full run" not in block:
        block = block.replace("**Start-up** (", "**Start-up** (from the previous full run, "
                              "`python bench/bench_gui.py --write`; ", 1)
    return ["", *block.splitlines()]


def stall_in_subprocess(root: Path, epochs: int, panels: bool, window: tuple[int, int] = (1440, 900)) -> dict:
    import json

    args = [sys.executable, str(Path(__file__).resolve()), "--stall-worker", "--data-root", str(root),
            "--epochs", str(epochs), "--window", "{}x{}".format(*window)] + ([] if panels else ["--without-panels"])
    out = subprocess.run(args, cwd=REPO, env=_platform_env(), capture_output=True, text=True, timeout=1800)
    for line in out.stdout.splitlines():
        if line.startswith("LE_STALL "):
            return json.loads(line[len("LE_STALL "):])
    raise SystemExit(f"stall benchmark failed:\n{out.stderr[-3000:]}")


def _window_size(text: str) -> tuple[int, int]:
    parts = text.lower().split("x")
    if len(parts) != 2 or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT in pixels, such as 1440x900, not {text!r}")
    return int(parts[0]), int(parts[1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--data-root", type=Path, default=None)
    parser.add_argument("--skip-startup", action="store_true")
    parser.add_argument("--stall-runs", type=int, default=1,
                        help="fresh-process training runs of the full window; the table shows the one with the "
                             "longest stall and the text lists every run's")
    parser.add_argument("--window", default=(1440, 900), type=_window_size,
                        help="the window's size while training, WIDTHxHEIGHT")
    parser.add_argument("--write", action="store_true", help="update the section in docs/BENCHMARKS.md")
    parser.add_argument("--stall-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--without-panels", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.stall_worker:
        import json

        result = bench_stall(args.data_root, args.epochs, panels=not args.without_panels, window_size=args.window)
        print("LE_STALL " + json.dumps(result), flush=True)
        os._exit(0)  # skip interpreter teardown of Qt objects: only the numbers matter here

    load_before = os.getloadavg()[0]
    start = bench_startup(args.repeats) if not args.skip_startup else None
    if start:
        print(f"start-up: bare QMainWindow {start['bare']:.2f} s; app window {start['shown']:.2f} s "
              f"(worst {start['shown_max']:.2f}), engine {start['engine']:.2f} s, model on screen {start['model']:.2f} s")
    root = args.data_root or shared_data_root()
    stall = own = None
    if root is None or not (Path(root) / "MNIST" / "raw").exists():
        print("stall: skipped (MNIST not found; pass --data-root)")
    else:
        runs = [stall_in_subprocess(Path(root), args.epochs, panels=True, window=args.window)
                for _ in range(max(1, args.stall_runs))]
        stall = max(runs, key=lambda r: r["worst"])
        own = stall_in_subprocess(Path(root), args.epochs, panels=False, window=args.window)
        if len(runs) > 1:
            print("full window, worst stall per run: " + ", ".join(f"{r['worst']:.1f}" for r in runs) + " ms")
        for label, r in (("full window", stall), ("training docks only", own)):
            print(f"{label}: worst stall {r['at']:.1f} s after the click; idle worst {r['idle']['worst']:.1f} ms; choosing MNIST worst "
                  f"{r['choosing']['worst'] if r.get('choosing') else float('nan'):.1f} ms; while training MNIST worst {r['worst']:.1f} ms "
                  f"({r['where']}), p99 {r['p99']:.1f} ms, {r['over50']} of {r['beats']} beats > 50 ms late; "
                  f"by phase {({k: round(v) for k, v in r['by_phase'].items()})}; GUI CPU {r['gui_cpu']:.1f} s of "
                  f"{r['wall']:.1f} s; handlers {({k: round(v) for k, v in r['handlers'].items()})}; pause "
                  f"{r['pause'] * 1000 if r['pause'] else float('nan'):.0f} ms; {r['ips']} img/s")
    load_after = os.getloadavg()[0]

    if args.write:
        lines = [f"`python bench/bench_gui.py{' --skip-startup' if args.skip_startup else ''}"
                 f"{f' --stall-runs {args.stall_runs}' if args.stall_runs > 1 else ''} --write` on {machine()}; load average {load_before:.1f} before, "
                 f"{load_after:.1f} after" + (" (other jobs shared the machine)." if load_before >= 1.5 else ".")]
        if start:
            lines += [
                "",
                f"**Start-up** ({start['platform']} platform; median of {args.repeats} runs after a warm-up run, "
                "measured from spawning the process):",
                "",
                "| | seconds |",
                "|---|---|",
                f"| bare `QMainWindow` (PySide6 import + show), baseline | {start['bare']:.2f} |",
                f"| Latent Explorer window shown | **{start['shown']:.2f}** (worst {start['shown_max']:.2f}; goal < 3) |",
                f"| engine (torch) loaded, panels installed | {start['engine']:.2f} |",
                f"| bundled digits model and its views on screen | {start['model']:.2f} |",
                "",
                f"The window costs {start['shown'] - start['bare']:.2f} s over a bare window: it is shown before "
                "torch is imported; the engine loads right after the first paint and the model opens in a worker thread.",
            ]
        else:
            lines += _previous_startup_block()
        if stall:
            def handlers(r):
                return ", ".join(f"`{k}` {v:.0f} ms" for k, v in sorted(r["handlers"].items(), key=lambda kv: -kv[1])
                                 if v >= 1)

            def phases(r):
                return ", ".join(f"{k} {v:.0f} ms" for k, v in sorted(r["by_phase"].items(), key=lambda kv: -kv[1]))

            lines += [
                "",
                f"**Event loop while training MNIST**: a click on Train → {stall['epochs']} epochs of `mlp` 784-400-20, "
                f"batch 128 (loading the data, building the model and every live update included). The GUI thread "
                f"has 1 torch thread; training {stall['threads']}, at a lower OS priority. A 5 ms heartbeat timer runs "
                "on the GUI thread; a stall is how late a beat came. Each configuration runs in a fresh process; "
                "the idle column is the same window doing nothing for 5 s just before, i.e. the machine's own noise. "
                f"The window is {args.window[0]}×{args.window[1]} (`--window`; offscreen, it would otherwise open at "
                "its minimum size, which depends on the widest panel's).",
                "",
                ("How the stalls were traced: a watchdog thread dumped every thread's stack "
                 "(`faulthandler.dump_traceback`) whenever a heartbeat was more than 30 ms late, and "
                 "cProfile timed the GUI thread from the click to the end of the run. Found and fixed: (1) "
                 "first-time imports hold Python's global lock for up to ~100 ms at a time: the first "
                 "`torch.optim.Adam` of a process imports `torch._dynamo` (~900 modules, 1.2 s), "
                 "torchvision's datasets ~1,100 (3.6 s, dynamo included); `explorer/jobs/prefetch.py` "
                 "imports both in the background once the first model is on screen or a torchvision "
                 "dataset is chosen. (2) A new 20-dimension model replacing the bundled 2-D one built 18 "
                 "traversal slider rows in one turn (125 ms at a load average of 8 on 2 cores); they are "
                 "now built six per event-loop turn. (3) An epoch end decoded the traversal grid three "
                 "times in a row (weights, codes, the traversal's own change); it now redraws once, on the "
                 "next turn. At that load, the longest handling of `codes_changed` fell from 85-233 ms to "
                 "29-40 ms and of `model_changed` from 39-132 ms to 28-43 ms. A second pass timed every "
                 "event the GUI thread handled (an override of `QApplication.notify`, wall and thread CPU "
                 "time per event) and found long beats made of several events in a row: Qt delivers every "
                 "posted event of a turn (a worker's result, `QTimer.singleShot(0, …)`, the repaints the "
                 "widgets asked for) before it serves a timer. (4) The switch to the new model (37 ms of "
                 "CPU at a load of 2) ran inside the delivery of the dataset loader's result, followed in "
                 "the same pass by the repaint of every panel (~60 ms); the run now starts from a timer, "
                 "and a new model, dataset, set of codes or layout holds every panel's repaint and lets "
                 "them go one per turn (`MainWindow.hold_repaints`). (5) A new layout made the map's point "
                 "cloud recompute its draw order six times (positions, colours, dimming, visibility, "
                 "selection: 36 of 53 ms); it is now recomputed once, when drawn. (6) The colour-by chooser "
                 "rebuilt itself three times per model switch (now once, a turn later), new traversal rows "
                 "wait for the next turn, and the encoding and measures workers run at the training "
                 "thread's lower OS priority. (7) The new run's model and the document's copy of it are "
                "built in the dataset loader's worker (a third of the switch's GUI time). (8) The work "
                "panels defer after a change went to separate 0 ms timers, which Qt fires together in the "
                "one turn after the change (four of them took 24 ms in one pass); it now goes through one "
                "queue that runs one task a turn (`qt_utils.TurnQueue`), the repaints held by the window "
                "included. (9) Python's cycle collector runs on the GUI thread only "
                "(`jobs.workers.collect_garbage_on_gui_thread`): run in a worker, it once destroyed a "
                "former panel's Qt objects there and deadlocked the window. (10) Python's switch interval "
                "is 0.5 ms instead of 5 (`jobs.workers.favour_gui_thread`): the GUI thread waits up to "
                "the interval for the global lock after each call into Qt while a worker runs Python."
                " (11) While training, the loss curves' axes moved to a new range at every report, and "
                "pyqtgraph laid out their tick text again in each repaint (the window's most frequent long "
                "event, 15-36 ms of CPU); they now keep their range until the curves leave it (a replay of "
                "357 reports: 9.3 to 5.4 ms per report). A third pass sampled every thread's CPU and "
                "run-queue time each millisecond (`/proc/<pid>/task/*/schedstat`, from another process) "
                "during the longest GUI events: the GUI thread waited up to 12 ms of a 27 ms event for a "
                "core while two threads at its own priority ran, OpenBLAS's pool thread (numpy's matrix "
                "work for the background jobs: numpy is imported on the GUI thread, and its pool takes that "
                "thread's priority) and the map's nearest-code thread (a new model's neighbour index). "
                "(12) Every thread but the GUI thread now runs at the lower priority (`jobs.priority`; "
                "`start_worker` lowers every worker's, where only some jobs lowered their own, so a job on "
                "a pool thread none of them had used ran level with the window), and numpy's BLAS runs on "
                "the calling thread (`run_blas_on_calling_threads`). The longest GUI events left were the "
                "window's own work (CPU time close to wall time), profiled per event: (13) a progress "
                "bar's `setValue` repaints at once, and with it every widget waiting for a repaint (the "
                "start of an encode painted the latent map inside the job's progress report: 42 ms); "
                "the window's bars now show a new value at the next paint (`qt_utils.ProgressBar`). (14) "
                "An encode deep-copied the model on the GUI thread (13 ms for the MLP at every epoch "
                "end); it copies the weights there and the module in the worker. (15) Traversal rows "
                "are built three per turn (six took 27 ms). (16) What the prefetcher imports (torchvision, "
                "dynamo: ~215,000 objects) is frozen out of the cycle collector's passes once imported, as "
                "the engine's imports already were; before, the first middle-generation pass over it came "
                "mid-training (12-18 ms). A fourth pass logged, with every GUI event, the widgets whose size "
                "changed: the layout moved while training. (17) The map's status line asked for the width of "
                "its whole text, so the first codes' longer line made the window 120 px wider and every panel "
                "re-laid out and repainted in one turn; the map's progress bar, shown in a toolbar, wrapped it "
                "onto another row (the map resized twice per encode). The status line is now elided "
                "(`qt_utils.StatusLabel`) and shares its row with the progress bar. (18) Summaries rewritten "
                "at each epoch end changed their number of lines, and the Latent Units and Traversals docks "
                "re-laid out (20 slider rows, twice, as the scroll bar came and went); they keep their height "
                "now (`qt_utils.WrappedLabel`). (19) The traversal rows of a new model were built in a dock "
                "behind another's tab: Qt lays out and shows each widget added there, unseen, through one "
                "queued call per widget; the rows now wait until the panel is painted."),
                "",
                "| | idle | full window: training | idle | training docks only: training |",
                "|---|---|---|---|---|",
                f"| worst stall | {stall['idle']['worst']:.0f} ms | **{stall['worst']:.0f} ms** ({stall['where']}, "
                f"{stall['at']:.1f} s after the click) | {own['idle']['worst']:.0f} ms | **{own['worst']:.0f} ms** "
                f"({own['where']}, {own['at']:.1f} s after the click) |",
                f"| 99th percentile | {stall['idle']['p99']:.1f} ms | {stall['p99']:.1f} ms | {own['idle']['p99']:.1f} ms | "
                f"{own['p99']:.1f} ms |",
                f"| median | {stall['idle']['median']:.2f} ms | {stall['median']:.2f} ms | {own['idle']['median']:.2f} ms | "
                f"{own['median']:.2f} ms |",
                f"| beats > 50 ms late | {stall['idle']['over50']} of {stall['idle']['beats']} | {stall['over50']} of "
                f"{stall['beats']} | {own['idle']['over50']} of {own['idle']['beats']} | {own['over50']} of {own['beats']} |",
                "",
                "\"Training docks only\" is the window without the latent map and studio panels (training panel, loss "
                "curves, reconstructions, samples, latent units, latent grid).",
                "",
                _verdict("Training docks only", own),
                _verdict("Full window" + (f", worst of {len(runs)} runs" if len(runs) > 1 else ""), stall),
                (f"- The full window trained {len(runs)} times, each in a fresh process, back to back; the worst "
                 "stall of each run: " + ", ".join(f"{r['worst']:.0f}" for r in runs) + " ms (the table shows the "
                 f"run with the longest); beats more than 50 ms late per run: "
                 + ", ".join(str(r["over50"]) for r in runs) + "." if len(runs) > 1 else ""),
                f"- Worst stall by phase, full window: {phases(stall)}; training docks only: {phases(own)}.",
                f"- Choosing MNIST in the Training panel imports torchvision in the background (a few hundred "
                f"milliseconds of it hold Python's global lock), so it happens while the options are filled in, "
                f"not during training: worst stall then {stall['choosing']['worst']:.0f} ms (full window), "
                f"{own['choosing']['worst']:.0f} ms (training docks only)." if stall.get("choosing") and own.get("choosing")
                else "- Choosing MNIST: not measured.",
                f"- Longest handling of one state change on the GUI thread, full window: {handlers(stall)}; training "
                f"docks only: {handlers(own)}.",
                f"- GUI thread CPU time while training: {stall['gui_cpu']:.1f} s in {stall['wall']:.1f} s (full window), "
                f"{own['gui_cpu']:.1f} s in {own['wall']:.1f} s (training docks only).",
                f"- Pause took effect after {stall['pause'] * 1000:.0f} ms and {own['pause'] * 1000:.0f} ms (goal < 1 s)."
                if stall["pause"] and own["pause"] else "- Pause: not measured.",
                f"- Training speed in the app: {', '.join(f'{v:,}' for v in stall['ips'])} images/s per epoch (full "
                f"window), {', '.join(f'{v:,}' for v in own['ips'])} (training docks only); test −ELBO "
                f"{stall['test']:.1f} nats after {stall['epochs']} epochs.",
            ]
        else:
            lines += ["", "Event-loop stalls while training: skipped (MNIST not found)."]
        write_section("Application window", "\n".join(lines))
        print("updated docs/BENCHMARKS.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
