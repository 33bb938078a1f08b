"""Drive the real application in an X server and save screenshots to docs/screenshots/.

    make screenshots                      # installs Xvfb when missing, then runs this under xvfb-run
    xvfb-run -a -s "-screen 0 1920x1200x24" .venv/bin/python scripts/screenshots.py

Steps (each one checked, so the script doubles as an end-to-end test): open the window on
the bundled example; train a new model by clicking Train (on MNIST when it is available
under --data-root, else on digits); pause, resume, stop; save; reopen the checkpoint; switch
to the dark theme; show an error with its details; train an hvae and a vaegan from the
Training panel and show them on the map; open a model trained with the PyTorch examples code
through its adapter; show the map's VAE tools (posterior ellipse, holes, your own image,
inpainting) and the map coloured by a per-point measure with its outliers list; open a β sweep
in the Runs panel and compare two of its runs side by side. Settings go to a temporary folder.
``--only SCENE`` takes one scene: ``families`` (the hvae and vaegan shots, family-hvae.png,
family-vaegan.png), ``adapted`` (adapted-model.png), ``vae`` (map-posterior.png,
map-holes.png, map-own-image.png, inpainting.png), ``measures`` (map-colour-by.png,
map-outliers.png), ``vq`` (the vqvae's Codebook panel and Code Grid Editor, vq-codebook.png,
vq-grid-editor.png), ``experiments`` (the Runs panel and the comparison,
runs-rate-distortion.png, compare-models.png).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "docs" / "screenshots"
SHARED_DATA = REPO.parent / "shared" / "data"


def _reexec_under_xvfb() -> None:
    if os.environ.get("DISPLAY") or os.environ.get("QT_QPA_PLATFORM") == "offscreen":
        return
    xvfb = shutil.which("xvfb-run")
    if xvfb is None:
        sys.exit("No X server: install xvfb (apt-get install xvfb) or run `make screenshots`.")
    os.execv(xvfb, [xvfb, "-a", "-s", "-screen 0 1920x1200x24", sys.executable, *sys.argv])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default=str(SHARED_DATA), help="where MNIST is (default: ../shared/data)")
    parser.add_argument("--out", default=str(OUT), help="folder for the PNG files")
    parser.add_argument("--size", default="1600x980", help="window size in logical pixels")
    parser.add_argument("--only", choices=["all", "families", "adapted", "vae", "measures", "vq", "experiments"],
                        default="all",
                        help="one scene: families (hvae and vaegan), adapted (a model opened through its "
                             "adapter), vae (the map's VAE tools), measures (colour by and outliers), vq (the "
                             "vqvae panels), experiments (the Runs panel and the comparison); default: all")
    args = parser.parse_args()
    _reexec_under_xvfb()
    os.environ.setdefault("QT_QPA_PLATFORM", "xcb")
    os.environ.setdefault("QT_XCB_GL_INTEGRATION", "none")   # raster painting, no OpenGL
    os.environ.setdefault("NUMBA_CACHE_DIR", str(REPO / ".cache" / "numba"))
    sys.path.insert(0, str(REPO))

    from PySide6.QtCore import QSettings, Qt
    from PySide6.QtWidgets import QApplication

    settings_dir = tempfile.mkdtemp(prefix="le-shots-")
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, settings_dir)
    app = QApplication([sys.argv[0]])
    app.setOrganizationName("LatentExplorer")
    app.setApplicationName("Latent Explorer")

    import pyqtgraph as pg

    from explorer.ui.main_window import MainWindow, app_icon
    from explorer.ui.theme import apply_theme
    from explorer.ui.training.panel import TrainingOptions

    pg.setConfigOptions(antialias=True)
    app.setWindowIcon(app_icon())
    apply_theme(app, "light")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="le-shots-work-"))
    width, height = (int(v) for v in args.size.split("x"))

    def wait_until(condition, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise SystemExit(f"screenshots: timed out waiting for {what}")
            app.processEvents()
            time.sleep(0.01)

    def pause_for(seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            app.processEvents()
            time.sleep(0.01)

    def shot(widget, name: str) -> None:
        pause_for(0.4)  # let throttled plots and coalesced previews catch up
        path = out / name
        widget.grab().save(str(path))
        print(f"saved {path.relative_to(REPO) if path.is_relative_to(REPO) else path}")

    # As the application does: show the window first, then load the engine and the panels.
    window = MainWindow(settings=QSettings(str(Path(settings_dir) / "shots.ini"), QSettings.Format.IniFormat),
                        start_engine=False)
    window.resize(width, height)
    window.show()
    wait_until(window.isVisible, 10, "the window")
    pause_for(0.3)
    window.start_engine()
    if args.only == "adapted":
        adapted_model_shot(window, work, args.data_root, shot, wait_until, pause_for)
        return _close(window, app, work, settings_dir)
    if args.only == "experiments":
        experiment_shots(window, work, shot, wait_until, pause_for)
        return _close(window, app, work, settings_dir)
    loaded = []
    window.initial_load_finished.connect(loaded.append)
    window.open_initial()
    wait_until(lambda: loaded, 120, "the bundled model")
    assert loaded == [True], getattr(window, "last_error", None)
    state, panel = window.state, window.training_panel
    pause_for(3.0)  # the map encodes and lays out the dataset in the background
    if args.only == "families":
        family_shots(window, args, shot, wait_until, pause_for)
        return _close(window, app, work, settings_dir)
    if args.only == "vae":
        from explorer.ui.map.vae_demo import stage_vae_scenes

        stage_vae_scenes(window, args.data_root, work, shot, wait_until, pause_for)
        return _close(window, app, work, settings_dir)
    if args.only == "vq":
        vq_shots(window, args, shot, wait_until, pause_for)
        return _close(window, app, work, settings_dir)
    if args.only == "measures":
        measure_shots(window, shot, wait_until, pause_for)
        return _close(window, app, work, settings_dir)
    shot(window, "main-window.png")

    # Train a new model by clicking Train: MNIST when available, else digits.
    mnist = (Path(args.data_root) / "MNIST" / "raw").exists()
    options = (TrainingOptions(dataset="mnist", data_root=args.data_root, model="mlp", latent_dim=2, hidden=(512, 256),
                               epochs=4, batch_size=128, lr=1e-3, seed=0)
               if mnist else
               TrainingOptions(dataset="digits", model="mlp", latent_dim=2, hidden=(256, 128), epochs=60, batch_size=64,
                               lr=2e-3, seed=0))
    panel.set_options(options)
    panel.train_button.click()
    wait_until(lambda: state.training_status == "running", 120, "training to start")
    target_epochs = 2 if mnist else 25
    wait_until(lambda: state.epochs_trained >= target_epochs, 600, f"{target_epochs} epochs")
    wait_until(lambda: state.last_progress is not None and state.last_progress.kind == "step"
               and state.last_progress.step % state.last_progress.steps_per_epoch > state.last_progress.steps_per_epoch // 3,
               120, "the middle of an epoch")
    shot(window, "training.png")

    panel.pause_button.click()
    wait_until(lambda: state.training_status == "paused", 2, "the pause")
    shot(panel, "training-panel-paused.png")
    panel.pause_button.click()
    wait_until(lambda: state.training_status == "running", 2, "the resume")
    pause_for(0.5)
    panel.stop_button.click()
    wait_until(lambda: state.training_status == "idle", 2, "the stop")
    checkpoint = work / "mnist-mlp-2d.safetensors"
    assert window._save_to(checkpoint) and not state.dirty

    # Open something else, then reopen the saved checkpoint.
    window.open_default()
    wait_until(lambda: state.checkpoint_path != checkpoint and not window.busy, 120, "the bundled model")
    window.open_checkpoint(checkpoint)
    wait_until(lambda: state.checkpoint_path == checkpoint and not window.busy, 120, "the checkpoint to reopen")
    assert state.epochs_trained >= target_epochs
    pause_for(3.0)
    shot(window, "reopened.png")

    # The latent map: real mouse moves and clicks decode and pin; a lasso makes a group.
    import math

    from PySide6.QtCore import QPoint
    from PySide6.QtTest import QTest

    maps = window.map_docks
    view = maps.panel.view
    wait_until(lambda: state.map.ready and not maps.panel.jobs.busy and not view.animating, 120, "the map")
    box = view.mapFromScene(view.vb.sceneBoundingRect()).boundingRect()

    def at(fx: float, fy: float) -> QPoint:
        return QPoint(box.left() + int(box.width() * fx), box.top() + int(box.height() * fy))

    for fx, fy in ((0.3, 0.3), (0.72, 0.62)):
        QTest.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=at(fx, fy))
    for k in range(20):
        QTest.mouseMove(view.viewport(), at(0.45 + 0.004 * k, 0.5 - 0.003 * k))
        pause_for(0.02)
    shot(window, "map-decoder.png")
    maps.panel.set_tool("lasso")
    ring = [at(0.5 + 0.12 * math.cos(t * math.pi / 4), 0.72 + 0.12 * math.sin(t * math.pi / 4)) for t in range(9)]
    QTest.mousePress(view.viewport(), Qt.MouseButton.LeftButton, pos=ring[0])
    for p in ring[1:]:
        QTest.mouseMove(view.viewport(), p)
        pause_for(0.02)
    QTest.mouseRelease(view.viewport(), Qt.MouseButton.LeftButton, pos=ring[-1])
    maps.panel.set_tool("pan")
    wait_until(lambda: state.marks.groups, 5, "the lasso group")
    QTest.mouseMove(view.viewport(), at(0.6, 0.35))
    maps.docks["groups"].raise_()   # a new selection raises the Selection tab beside it
    pause_for(0.2)
    shot(window, "map-groups.png")
    state.map.select_group(None)
    maps.panel.backdrop_check.setChecked(True)
    shot(maps.panel, "map-backdrop.png")
    maps.panel.backdrop_check.setChecked(False)
    measure_shots(window, shot, wait_until, pause_for)

    window.set_theme("dark")
    pause_for(1.0)
    shot(window, "dark-theme.png")
    window.set_theme("light")

    # An error, with its details.
    bad = work / "not-a-checkpoint.safetensors"
    bad.write_bytes(b"\x80\x04 this is a pickle, not a checkpoint")
    window.open_checkpoint(bad)
    wait_until(lambda: getattr(window, "last_error", None) is not None, 30, "the error message")
    from explorer.ui.dialogs import ErrorDialog

    dialogs = [d for d in window.findChildren(ErrorDialog) if d.isVisible()]
    assert dialogs, "no error dialog"
    dialog = dialogs[-1]
    dialog.details_button.click()
    dialog.resize(640, 420)
    shot(dialog, "error-dialog.png")
    dialog.accept()

    # The studio: an interpolation picked on the map (player, filmstrip, path), an arithmetic
    # edit, traversals of a 10-d model with collapsed units; the GIF goes to docs/examples/.
    from explorer.ui.studio.demo import stage_studio_scenes

    stage_studio_scenes(window, shot, wait_until, pause_for, examples_dir=REPO / "docs" / "examples",
                        traversal_training=TrainingOptions(dataset="digits", model="mlp", latent_dim=10,
                                                           hidden=(256, 128), epochs=60, batch_size=64,
                                                           lr=2e-3, seed=0))

    family_shots(window, args, shot, wait_until, pause_for)
    from explorer.ui.map.vae_demo import stage_vae_scenes

    stage_vae_scenes(window, args.data_root, work, shot, wait_until, pause_for)
    vq_shots(window, args, shot, wait_until, pause_for)
    window.state._set_dirty(False)
    adapted_model_shot(window, work, args.data_root, shot, wait_until, pause_for)
    window.state._set_dirty(False)
    experiment_shots(window, work, shot, wait_until, pause_for)
    return _close(window, app, work, settings_dir)


def write_digits_sweep(folder: Path, betas=(0.25, 0.5, 1.0, 2.0, 4.0, 8.0), latent_dims=(2, 8),
                       epochs: int = 15) -> Path:
    """A β × latent-size sweep of mlps on digits, in the layout ``python -m vae_core sweep`` writes
    (sweep.json, runs/<name>/, summary.json with each run's settings and last test metrics)."""
    import json

    import torch

    from vae_core import TrainConfig, build_model, fit, load_dataset, save_checkpoint

    data = load_dataset("digits")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sweep.json").write_text(json.dumps({"grid": {"beta": list(betas), "latent_dim": list(latent_dims)},
                                                   "dataset": "digits", "model": "mlp", "epochs": epochs}))
    rows = []
    for latent_dim in latent_dims:
        for beta in betas:
            name = f"mlp-{latent_dim}d-beta{beta:g}"
            torch.manual_seed(0)
            model = build_model("mlp", image_shape=data.image_shape, latent_dim=latent_dim, hidden=(256, 128))
            config = TrainConfig(epochs=epochs, batch_size=128, lr=3e-3, beta=beta, seed=0, num_threads=1)
            history = fit(model, data, config)
            save_checkpoint(folder / "runs" / name, model, dataset=data, history=history, train_config=config.to_dict())
            last = history[-1]
            rows.append({"name": name, "status": "finished", "model": "mlp", "beta": beta, "latent_dim": latent_dim,
                         "seed": 0, "neg_elbo": last["test_neg_elbo"], "recon": last["test_recon"],
                         "kl": last["test_kl"], "active_units": last["test_active_units"],
                         "train_seconds": sum(e["seconds"] for e in history)})
    (folder / "summary.json").write_text(json.dumps(rows, indent=1))
    return folder


def experiment_shots(window, work: Path, shot, wait_until, pause_for) -> None:
    """The Runs panel on a β sweep (rate–distortion plot) and two of its runs side by side."""
    sweep = write_digits_sweep(work / "sweep-beta")
    docks = window.experiments
    window.open_path(sweep)   # what dropping the folder on the window does
    wait_until(lambda: not window.busy and docks.runs.table is not None, 60, "the runs")
    docks.runs_dock.resize(1000, 760)
    panel = docks.runs_panel
    panel.select_row(2)
    pause_for(0.5)
    shot(docks.runs_dock, "runs-rate-distortion.png")

    table = docks.runs.table
    left = next(r for r in table.runs if r.value("beta") == 0.5 and r.value("latent_dim") == 2)
    right = next(r for r in table.runs if r.value("beta") == 4.0 and r.value("latent_dim") == 2)
    window.open_checkpoint(left.path)
    wait_until(lambda: not window.busy and window.state.checkpoint_path == left.path, 60, "the run to open")
    docks.compare_with_checkpoint(right.path)
    view = docks.compare_view
    wait_until(lambda: not window.busy and not view.job.busy and view.compare.right.map.xy is not None, 120,
               "the comparison")
    docks.compare_dock.resize(1400, 680)
    pause_for(0.5)
    compare = view.compare
    index = int(np.argmax(compare.left.map.xy[:, 0] + compare.left.map.xy[:, 1]))   # a point near the edge
    x, y = compare.left.map.xy[index]
    view.left.view.hover_at(float(x), float(y))
    shot(docks.compare_dock, "compare-models.png")


def measure_shots(window, shot, wait_until, pause_for) -> None:
    """The map coloured by IWAE log-likelihood with its colour bar and a filter; the outliers list."""
    import numpy as np

    state = window.state
    docks = window.measure_docks
    view = window.map_docks.panel.view
    docks.docks["measures"].raise_()
    docks.panel.choose("iwae_ll")
    wait_until(lambda: state.measures.column("iwae_ll") is not None and not docks.job.busy, 300, "the measures")
    wait_until(lambda: not view.animating, 10, "the map")
    values = state.measures.column("iwae_ll").values
    lo, hi = np.percentile(values, [8, 100])
    docks.panel.filter_check.setChecked(True)
    docks.panel.set_filter_range(lo, hi)
    view.reset_view()
    shot(window, "map-colour-by.png")
    docks.panel.filter_check.setChecked(False)
    docks.docks["outliers"].raise_()
    pause_for(0.3)
    state.marks.add_group(docks.outliers.indices[:16], name="unlikely")
    docks.outliers.show_outlier(0)
    shot(window, "map-outliers.png")
    state.marks.remove_group("unlikely")
    state.map.set_highlight([])
    state.measures.set_colour_by("label")
    docks.docks["measures"].raise_()


def _close(window, app, work, settings_dir) -> int:
    window.state._set_dirty(False)
    window.close()
    app.processEvents()
    shutil.rmtree(work, ignore_errors=True)
    shutil.rmtree(settings_dir, ignore_errors=True)
    return 0


def family_shots(window, args, shot, wait_until, pause_for) -> None:
    """An hvae (MNIST when available) with its layer picker and posterior samples; a vaegan
    with its adversarial loss terms."""
    import numpy as np
    from PySide6.QtCore import QPointF
    from PySide6.QtTest import QTest

    from explorer.ui.training.panel import TrainingOptions

    state, panel, maps = window.state, window.training_panel, window.map_docks
    view = maps.panel.view
    mnist = (Path(args.data_root) / "MNIST" / "raw").exists()

    def train(options: TrainingOptions, epochs_done: int) -> None:
        state._set_dirty(False)   # no "save the previous model?" question in the way
        panel.set_options(options)
        panel.train_button.click()
        wait_until(lambda: state.training_status == "running", 120, "training to start")
        wait_until(lambda: state.training_status == "idle", 1200, f"{options.model} to train")
        assert state.epochs_trained == epochs_done, getattr(window, "last_error", None)
        wait_until(lambda: state.codes is not None and state.map.ready and not maps.panel.jobs.busy
                   and not view.animating and not window.encoder.busy, 120, "the map")
        pause_for(1.0)

    def hover_point(fraction: float) -> None:
        # A data point near the middle of the map, then the cursor resting on it.
        xy = state.map.xy
        rect = view.vb.viewRect()
        centre = np.array([rect.center().x(), rect.center().y()]) + fraction * np.array([rect.width(), 0])
        i = int(np.argmin(((xy - centre) ** 2).sum(1)))
        pixel = view.mapFromScene(view.vb.mapViewToScene(QPointF(*xy[i])))
        QTest.mouseMove(view.viewport(), pixel)
        wait_until(lambda: state.map.hovered_index is not None, 5, "a hovered data point")
        pause_for(0.3)

    # The map shows all layers concatenated (chosen in the Training panel, so the panel and the
    # map toolbar agree), laid out by PCA. KL warm-up keeps the top layer's units active.
    hvae = (TrainingOptions(dataset="mnist", data_root=args.data_root, model="hvae", latent_dim=8, hidden=(256, 64),
                            lower_dims=(32,), map_layer="all", epochs=4, batch_size=128, lr=1e-3, seed=0,
                            kl_anneal="linear", warmup_epochs=2.0)
            if mnist else
            TrainingOptions(dataset="digits", model="hvae", latent_dim=4, hidden=(128, 32), lower_dims=(16,),
                            map_layer="all", epochs=60, batch_size=64, lr=2e-3, seed=0, kl_anneal="linear",
                            warmup_epochs=20.0))
    train(hvae, hvae.epochs)
    assert maps.panel.code_box.isVisible() and maps.panel.code_combo.currentData() == "all"
    maps.panel.set_projection("pca")
    wait_until(lambda: state.map.ready and not maps.panel.jobs.busy and not view.animating, 120, "the PCA map")
    pause_for(1.0)
    maps.decoder.samples_toggle.setChecked(True)
    hover_point(0.05)
    wait_until(lambda: maps.decoder.samples_index == state.map.hovered_index, 5, "the posterior samples")
    shot(window, "family-hvae.png")
    maps.decoder.samples_toggle.setChecked(False)

    vaegan = TrainingOptions(dataset="digits", model="vaegan", latent_dim=2, hidden=(128,), gan_weight=0.5,
                             epochs=25, batch_size=64, lr=2e-3, seed=0)
    train(vaegan, vaegan.epochs)
    assert set(window.loss_plot.terms) == {"gan", "disc", "feature"}
    hover_point(-0.1)
    shot(window, "family-vaegan.png")


def vq_shots(window, args, shot, wait_until, pause_for) -> None:
    """A vqvae on digits with its prior trained from the Code Prior panel: the
    Codebook panel (vq-codebook.png) and the Code Grid Editor with a data point whose grid
    was painted over (vq-grid-editor.png), each floated at a readable size."""
    import numpy as np

    from explorer.ui.training.panel import TrainingOptions

    state, panel, maps, docks = window.state, window.training_panel, window.map_docks, window.vq_docks
    # Digits (a 4×4 grid of codes): the scene, its prior and its map take seconds rather than
    # the minutes an MNIST epoch, a 70,000-point map and its prior take on a two-core machine.
    options = TrainingOptions(dataset="digits", model="vqvae", latent_dim=4, codebook_size=32, epochs=30,
                              batch_size=64, lr=3e-3, seed=0)
    state._set_dirty(False)
    panel.set_options(options)
    panel.train_button.click()
    wait_until(lambda: state.training_status == "running", 120, "training to start")
    wait_until(lambda: state.training_status == "idle", 1800, "the vqvae to train")
    assert state.epochs_trained == options.epochs, getattr(window, "last_error", None)
    wait_until(lambda: state.codes is not None and state.map.ready and not maps.panel.jobs.busy
               and not window.encoder.busy, 300, "the map")
    prior = docks.prior
    prior.epochs_spin.setValue(10)
    done = []
    prior.runner.finished.connect(lambda status, *_: done.append(status))
    prior.train_button.click()
    wait_until(lambda: done, 1800, "the prior to train")
    assert done == ["completed"], prior.progress_label.text()

    def float_dock(name: str, width: int, height: int):
        dock = docks.docks[name]
        dock.show()
        dock.setFloating(True)
        dock.resize(width, height)
        pause_for(0.5)
        return dock

    docks.codebook.refresh()
    dock = float_dock("codebook", 900, 820)
    shot(dock, "vq-codebook.png")
    dock.setFloating(False)

    editor = state.vq.editor
    index = int(np.flatnonzero(state.labels == 3)[0]) if state.labels is not None else 0
    editor.set_index(index)
    usage = state.vq.codebook.usage()
    editor.set_brush(int(np.argmax(usage)))
    rows, cols = editor.grid.shape
    editor.paint([(r, c) for r in range(rows // 2 - 1, rows // 2 + 1) for c in range(cols // 2, cols)])
    prior.rows_spin.setValue(rows // 2)
    prior.complete()
    dock = float_dock("code_grid_editor", 640, 700)
    shot(dock, "vq-grid-editor.png")
    dock.setFloating(False)
    state._set_dirty(False)


def adapted_model_shot(window, work: Path, data_root: str, shot, wait_until, pause_for) -> None:
    """Train the PyTorch examples VAE with its own loop, save its state dict, open it through
    examples/pytorch_mnist_vae.py and shoot the window (adapted-model.png)."""
    import importlib.util

    import torch
    from PySide6.QtCore import QPoint
    from PySide6.QtTest import QTest

    from vae_core.data import load_dataset

    adapter = REPO / "examples" / "pytorch_mnist_vae.py"
    spec = "mnist" if (Path(data_root) / "MNIST" / "raw").exists() else "digits"
    window.state.set_data_root(data_root)
    data = load_dataset(spec, data_root, image_size=28)
    module_spec = importlib.util.spec_from_file_location("pytorch_mnist_vae", adapter)
    example = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(example)
    torch.manual_seed(1)
    model = example.VAE()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    images = data.train.batch()   # float32 in [0, 1], as the example's own loop expects
    for _ in range(2000):   # the example's own loop: about two epochs of MNIST at batch 64
        x = images[torch.randint(0, len(images), (64,))]
        out, mu, logvar = model(x)
        loss = example.loss_function(out, x, mu, logvar)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    weights = work / "model.pt"
    torch.save(model.state_dict(), weights)

    state = window.state
    window.open_adapted_model(adapter, weights, dataset=spec)
    wait_until(lambda: state.model is not None and state.model.name == example.NAME and not window.busy, 120,
               "the adapted model")
    maps = window.map_docks
    view = maps.panel.view
    wait_until(lambda: state.codes is not None and state.map.ready and not maps.panel.jobs.busy
               and not view.animating, 180, "the adapted model's map")
    window.docks["training"].raise_()
    box = view.mapFromScene(view.vb.sceneBoundingRect()).boundingRect()
    for k in range(20):
        QTest.mouseMove(view.viewport(), QPoint(box.left() + int(box.width() * (0.4 + 0.004 * k)),
                                                box.top() + int(box.height() * (0.45 - 0.003 * k))))
        pause_for(0.02)
    assert not window.training_panel.train_button.isEnabled()
    shot(window, "adapted-model.png")


if __name__ == "__main__":
    sys.exit(main())
