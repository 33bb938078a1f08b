"""The latent map: frame times at 70,000 and 1,000,000 points, hover-to-image latency.

* **Frame times** — the real :class:`~explorer.ui.map.panel.MapPanel` showing MNIST
  (70,000 codes of an ``mlp`` 784-400-20, PCA layout) and a million points (the MNIST codes
  tiled 15× with a small jitter). A frame is one pan step (``ViewBox.translateBy``), one
  zoom step (``scaleBy``) or one step of a projection transition, followed by a
  synchronous repaint of the plot's viewport. The baseline is a plain
  ``pg.ScatterPlotItem`` (raster, pxMode, one shared brush, no pen) in a plain
  ``PlotWidget`` of the same size, measured in the same run, with the cost of its
  ``setData``.
* **Hover-to-image latency** — a mouse-move event is sent to the map's viewport; the clock
  stops when the decoder preview's ``ImageItem`` has painted the new image (event loop,
  latest-wins timer, inverse projection, decode, ``setImage`` and painting all included).
  p50/p95 over a path of moves across the plot. The points must not be re-rasterised by
  hovering: the count of rasterisations is checked.

Skipped cleanly when MNIST is not under ``--data-root`` (default ``../shared/data``).
Runs offscreen unless ``DISPLAY`` is set (``xvfb-run -a python bench/bench_map.py`` for X11).

Usage: python bench/bench_map.py [--frames 40] [--hovers 300] [--write]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("NUMBA_CACHE_DIR", str(REPO / ".cache" / "numba"))

import numpy as np  # noqa: E402

from bench._common import data_root as shared_data_root  # noqa: E402
from bench._common import machine, write_section  # noqa: E402

PLOT_SIZE = (1400, 900)


def pct(values, q) -> float:
    return float(np.percentile(np.asarray(values, dtype=float), q))


class TiledImages:
    """``N×C×H×W`` images as a view on a smaller set (the million-point scene has no real images)."""

    def __init__(self, images: np.ndarray, n: int):
        self.base = images
        self.shape = (n, *images.shape[1:])
        self.size = int(np.prod(self.shape))
        self.dtype = images.dtype
        self.ndim = images.ndim

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, index):
        if isinstance(index, (int, np.integer)):
            return self.base[int(index) % len(self.base)]
        return self.base[np.asarray(index) % len(self.base)]


def build_state(data, model, codes, n_points: int | None = None):
    from explorer.state import ExplorerState
    from vae_core.data import ImageDataset

    state = ExplorerState()
    state.set_dataset(data)
    state.set_model(model)
    if n_points is not None and n_points != len(codes):
        reps = int(np.ceil(n_points / len(codes)))
        rng = np.random.default_rng(0)
        spread = np.median(np.std(codes, axis=0)) * 0.03
        big = np.tile(codes, (reps, 1))[:n_points]
        big = big + rng.normal(scale=spread, size=big.shape).astype(np.float32)
        labels = np.tile(state.labels, reps)[:n_points]
        state._all = ImageDataset(TiledImages(state.images, n_points), labels)
        codes = big
    state.set_codes(np.ascontiguousarray(codes, dtype=np.float32))
    return state


def make_host(state):
    from PySide6 import QtWidgets

    from explorer.ui.map.decoder_view import DecoderView
    from explorer.ui.map.panel import MapPanel

    host = QtWidgets.QWidget()
    panel = MapPanel(state)
    decoder = DecoderView(state)
    layout = QtWidgets.QHBoxLayout(host)
    layout.addWidget(panel, 4)
    layout.addWidget(decoder, 1)
    host.resize(*PLOT_SIZE)
    host.show()
    return host, panel, decoder


def settle(app, seconds: float = 0.3) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        app.processEvents()
        time.sleep(0.005)


def frame_times(app, view, vb, frames: int, kind: str) -> list[float]:
    """Milliseconds per pan/zoom step + synchronous repaint of the viewport."""
    out = []
    rect = vb.viewRect()
    step = rect.width() * 0.01
    for k in range(frames):
        t0 = time.perf_counter()
        if kind == "pan":
            vb.translateBy(x=step if (k // 10) % 2 == 0 else -step)
        else:
            vb.scaleBy(s=(1.03, 1.03) if (k // 10) % 2 == 0 else (1 / 1.03, 1 / 1.03))
        view.viewport().repaint()
        out.append((time.perf_counter() - t0) * 1e3)
    app.processEvents()
    return out


def transition_times(app, panel, target_xy, frames: int) -> list[float]:
    view = panel.view
    view.points.begin_transition(target_xy)
    out = []
    for k in range(frames):
        t0 = time.perf_counter()
        view.points.set_transition((k + 1) / frames)
        view.viewport().repaint()
        out.append((time.perf_counter() - t0) * 1e3)
    view.points.end_transition()
    app.processEvents()
    return out


def hover_latencies(app, panel, decoder, moves: int) -> tuple[list[float], int, list[float], list[float]]:
    """Mouse move → preview painted, in ms; also rasterisations during the run and stage costs."""
    from PySide6 import QtCore, QtGui, QtWidgets

    view = panel.view
    rect = view.mapFromScene(view.vb.sceneBoundingRect()).boundingRect()
    cx, cy = rect.center().x(), rect.center().y()
    ax, ay = rect.width() * 0.42, rect.height() * 0.42
    item = decoder.preview
    renders = view.points.render_count
    latencies, hover_ms, decode_ms, cpu_ms = [], [], [], []
    for k in range(moves):
        t = 2 * np.pi * k / moves
        pos = QtCore.QPointF(cx + ax * np.sin(3 * t), cy + ay * np.sin(2 * t + 0.3))
        ev = QtGui.QMouseEvent(QtCore.QEvent.Type.MouseMove, pos, view.viewport().mapToGlobal(pos),
                               QtCore.Qt.MouseButton.NoButton, QtCore.Qt.MouseButton.NoButton,
                               QtCore.Qt.KeyboardModifier.NoModifier)
        painted = item.paint_count
        c0 = time.thread_time()
        t0 = time.perf_counter()
        QtWidgets.QApplication.sendEvent(view.viewport(), ev)
        deadline = t0 + 2.0
        while item.paint_count == painted and time.perf_counter() < deadline:
            app.processEvents()
        cpu_ms.append((time.thread_time() - c0) * 1e3)
        latencies.append((item.last_paint - t0) * 1e3)
        hover_ms.append(view.last_hover_ms)
        decode_ms.append(decoder.last_decode_ms)
        app.processEvents()   # let the nearest-data answer and the cursor repaint through
        time.sleep(0.004)     # a mouse reports at most every few milliseconds
    return latencies, view.points.render_count - renders, hover_ms, decode_ms, cpu_ms


def baseline(app, xy: np.ndarray, frames: int) -> dict:
    import pyqtgraph as pg

    w = pg.PlotWidget()
    w.resize(int(PLOT_SIZE[0] * 0.8), PLOT_SIZE[1])
    w.show()
    settle(app, 0.2)
    item = pg.ScatterPlotItem(pxMode=True, size=5, pen=None, brush=pg.mkBrush(31, 119, 180))
    w.addItem(item)
    t0 = time.perf_counter()
    item.setData(x=xy[:, 0], y=xy[:, 1])
    set_ms = (time.perf_counter() - t0) * 1e3
    w.getViewBox().autoRange(padding=0.02)
    w.viewport().repaint()
    pan = frame_times(app, w, w.getViewBox(), frames, "pan")
    w.close()
    w.deleteLater()
    settle(app, 0.1)
    return {"set_ms": set_ms, "pan": pan}


def scene(app, name, state, args, *, big: bool) -> dict:
    host, panel, decoder = make_host(state)
    assert panel.jobs.wait(600), "projection did not finish"
    # the nearest-data index is warmed up in the background once per encoding: let it finish
    deadline = time.perf_counter() + 120
    while state.map.known_data_spacing() is None and time.perf_counter() < deadline:
        settle(app, 0.1)
    settle(app, 0.5)
    panel.view.finish_animation()
    panel.view.viewport().repaint()
    settle(app, 0.2)
    view, vb = panel.view, panel.view.vb
    res = {"name": name, "n": state.map.num_points, "plot": view.viewport().size().toTuple()}
    frames = args.frames if not big else max(10, args.frames // 2)
    res["pan"] = frame_times(app, view, vb, frames, "pan")
    res["zoom"] = frame_times(app, view, vb, frames, "zoom")
    res["density"] = bool(view.points._cache and view.points._cache["density"])
    res["in_view"] = view.points.points_in_view
    import pyqtgraph as pg

    # Colour by a continuous measure (binned into a 64-entry colour map, as the Colour by
    # panel does) with the lowest 30 % dimmed by the filter.
    measure = np.asarray(state.map.xy[:, 0], dtype=np.float64)
    edges = np.quantile(measure, np.linspace(0, 1, 65)[1:-1])
    keys = np.searchsorted(edges, measure).astype(np.int32)
    palette = [tuple(int(c) for c in rgb[:3]) for rgb in pg.colormap.get("viridis").getLookupTable(nPts=64)]
    view.points.set_color_keys(keys, palette)
    view.points.set_dimmed(measure < np.quantile(measure, 0.3))
    view.viewport().repaint()
    res["pan_coloured"] = frame_times(app, view, vb, frames, "pan")
    view.points.set_dimmed(None)
    view.points.set_color_keys(None)
    view.viewport().repaint()
    # zoomed in 4× (stamps instead of the density layer at a million points)
    full = vb.viewRect()
    vb.setRange(rect=full.adjusted(full.width() * 0.375, full.height() * 0.375,
                                   -full.width() * 0.375, -full.height() * 0.375), padding=0)
    view.viewport().repaint()
    res["pan_zoomed_in"] = frame_times(app, view, vb, frames, "pan")
    res["in_view_zoomed"] = view.points.points_in_view
    vb.setRange(rect=full, padding=0)
    view.viewport().repaint()
    # a projection transition: PCA layout -> two latent dimensions
    target = np.ascontiguousarray(state.codes[:, :2], dtype=np.float32)
    res["transition"] = transition_times(app, panel, target, frames)
    view.points.set_positions(state.map.xy)
    view.viewport().repaint()
    settle(app, 0.2)
    moves = args.hovers if not big else max(50, args.hovers // 3)
    lat, rerenders, hover_ms, decode_ms, cpu_ms = hover_latencies(app, panel, decoder, moves)
    res.update(hover=lat, rerenders=rerenders, hover_stage=hover_ms, decode_stage=decode_ms, hover_cpu=cpu_ms)
    res["baseline"] = baseline(app, state.map.xy, max(5, frames // (8 if big else 2)))
    panel.jobs.shutdown()
    host.close()
    host.deleteLater()
    settle(app, 0.2)
    return res


def summarize(r: dict) -> str:
    def fr(v):
        return f"{pct(v, 50):.1f} / {pct(v, 95):.1f}"

    b = r["baseline"]
    lines = [
        f"**{r['name']}** — {r['n']:,} points, plot {r['plot'][0]}×{r['plot'][1]} px"
        + (" (density layer when all are in view)" if r["density"] else ""),
        "",
        "| frame (ms, median / p95) | latent map | plain ScatterPlotItem |",
        "|---|---|---|",
        f"| pan, all points in view | {fr(r['pan'])} | {fr(b['pan'])} |",
        f"| zoom, all points in view | {fr(r['zoom'])} | – |",
        f"| pan, coloured by a measure, 30 % dimmed by the filter | {fr(r['pan_coloured'])} | – |",
        f"| pan, zoomed in 4× ({r['in_view_zoomed']:,} points in view) | {fr(r['pan_zoomed_in'])} | – |",
        f"| projection transition step | {fr(r['transition'])} | (would need `setData`: {b['set_ms']:.0f} ms) |",
        f"| `setData` of all points | – | {b['set_ms']:.0f} |",
        "",
        f"Pan at {1000 / pct(r['pan'], 50):.0f} frames/s (median) against {1000 / pct(b['pan'], 50):.1f} "
        f"for the plain item.",
        "",
        f"Hover → new image painted: **p50 {pct(r['hover'], 50):.2f} ms, p95 {pct(r['hover'], 95):.2f} ms** "
        f"over {len(r['hover'])} moves (max {max(r['hover']):.1f} ms). GUI-thread CPU time per move "
        f"p50 {pct(r['hover_cpu'], 50):.2f} ms, p95 {pct(r['hover_cpu'], 95):.2f} ms (from the move until the "
        f"event loop is idle again: it includes what follows the image once it is painted, the hovered point's "
        f"box and the text lines); the map's own work (inverse projection, cursor, picking, decode, `setImage`) "
        f"{pct(r['hover_stage'], 50):.2f} ms median, of which decode + `setImage` {pct(r['decode_stage'], 50):.2f} ms. "
        f"Points re-rasterised while hovering: {r['rerenders']}.",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default=None, help="folder holding MNIST/raw (default ../shared/data)")
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--hovers", type=int, default=300)
    parser.add_argument("--points", type=int, default=1_000_000, help="size of the large scene")
    parser.add_argument("--train-epochs", type=int, default=1, help="train the 784-400-20 model first")
    parser.add_argument("--write", action="store_true", help="update the section in docs/BENCHMARKS.md")
    args = parser.parse_args()

    root = Path(args.data_root) if args.data_root else shared_data_root()
    if root is None or not (root / "MNIST" / "raw").exists():
        print("MNIST not found (looked in ../shared/data): skipping the latent map benchmark.")
        return 0

    import torch
    from PySide6 import QtWidgets

    torch.set_num_threads(1)   # the GUI thread decodes with one thread, as in the app
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication([])
    import pyqtgraph as pg

    from vae_core import TrainConfig, build_model, fit, load_dataset
    from vae_core.latent import encode_dataset

    pg.setConfigOptions(antialias=False)
    data = load_dataset("mnist", str(root))
    torch.manual_seed(0)
    model = build_model("mlp", image_shape=data.image_shape, latent_dim=20, hidden=(400,),
                        likelihood=data.likelihood)
    if args.train_epochs > 0:
        t0 = time.perf_counter()
        fit(model, data, TrainConfig(epochs=args.train_epochs, batch_size=128, num_threads=os.cpu_count(),
                                     device="cpu"))
        print(f"trained {args.train_epochs} epoch(s) in {time.perf_counter() - t0:.0f} s")
    model.eval()
    all_data = data.all()
    codes, _ = encode_dataset(model, all_data.images)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")

    results = []
    for name, n in (("MNIST", None), ("A million points", args.points)):
        state = build_state(data, model, codes, n)
        t0 = time.perf_counter()
        r = scene(app, name, state, args, big=n is not None)
        print(f"{name}: scene measured in {time.perf_counter() - t0:.0f} s")
        print(summarize(r))
        print()
        results.append(r)
        del state

    platform = os.environ.get("QT_QPA_PLATFORM") or ("xcb" if os.environ.get("DISPLAY") else "default")
    load_end = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    body = "\n\n".join([
        "`python bench/bench_map.py --write` "
        f"(Qt platform `{platform}`; {machine()}; load average {load:.1f} on 2 cores when it started, "
        f"{load_end:.1f} when it ended — the "
        "machine is shared with other jobs, so wall-clock numbers move between runs; the ratios against "
        "the plain item and the CPU times much less).",
        "The map rasterises its points itself from NumPy arrays into an image at the view's resolution "
        "(discs stamped with fancy indexing; above 250,000 points in view, a density layer with one "
        "pixel per point whose opacity follows the log of its count) and caches that image with the "
        "view transform. Hovering moves a small cursor item and repaints only its region: the cached "
        "image is blitted, never re-rasterised. Transitions interpolate the position arrays and "
        "re-rasterise; no `setData`.",
        *[summarize(r) for r in results],
    ])
    if args.write:
        write_section("Latent map", body)
        print("updated docs/BENCHMARKS.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
