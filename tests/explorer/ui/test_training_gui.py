"""The main window driven through its real widgets (offscreen): train, pause, resume, stop,
save, reopen, continue; error messages; quitting; settings; drag and drop; the app entry point."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PySide6.QtCore import QMimeData, QPointF, QSettings, Qt, QThreadPool, QUrl
from PySide6.QtGui import QDropEvent
from PySide6.QtWidgets import QDockWidget, QLabel, QWidget

from explorer.ui.training.panel import TrainingOptions

REPO = Path(__file__).resolve().parents[3]
FAST = dict(dataset="digits", model="mlp", latent_dim=2, hidden=(32,), batch_size=64, lr=3e-3, seed=0)


def _train(qtbot, window, **options):
    """Fill the Training panel and click Train; return once the run has started."""
    panel = window.training_panel
    panel.set_options(TrainingOptions(**{**FAST, **options}))
    with qtbot.waitSignal(window.state.training_started, timeout=30_000):
        qtbot.mouseClick(panel.train_button, Qt.MouseButton.LeftButton)


def _wait_finished(qtbot, window, timeout=60_000) -> str:
    with qtbot.waitSignal(window.state.training_finished, timeout=timeout) as blocker:
        pass
    return blocker.args[0]


def test_window_has_menus_docks_tooltips_and_hooks(make_main_window):
    window = make_main_window()
    assert {"File", "Edit", "View", "Training", "Export", "Help"} <= set(window.menus)
    a = window.actions
    assert a["open"].shortcut().toString() == "Ctrl+O"
    assert a["save"].shortcut().toString() == "Ctrl+S"
    assert a["train"].shortcut().toString() == "Ctrl+T"
    assert {"training", "loss_curves", "reconstructions", "samples", "latent_units"} <= set(window.docks)
    # Every control of the training panel explains itself.
    from PySide6.QtWidgets import QAbstractButton, QAbstractSpinBox, QComboBox, QLineEdit

    controls = [w for w in window.training_panel.findChildren(QWidget)
                if isinstance(w, (QAbstractButton, QAbstractSpinBox, QComboBox, QLineEdit))
                and not isinstance(w.parent(), (QAbstractSpinBox, QComboBox, QLineEdit))]
    assert controls and all(w.toolTip() for w in controls), [w for w in controls if not w.toolTip()]

    # Hooks for other panels.
    extra = QLabel("studio")
    dock = window.add_panel_dock("Extra", extra, Qt.DockWidgetArea.RightDockWidgetArea, "extra_panel",
                                 shortcut="Ctrl+Alt+E")
    assert isinstance(dock, QDockWidget) and window.docks["extra_panel"] is dock
    assert dock.toggleViewAction() in window.menus["Panels"].actions()
    assert dock.toggleViewAction().shortcut().toString() == "Ctrl+Alt+E"
    assert window.docks["training"].toggleViewAction().shortcut().toString() == "Ctrl+1"
    with pytest.raises(ValueError):
        window.add_panel_dock("Extra", QLabel(), Qt.DockWidgetArea.RightDockWidgetArea, "extra_panel")
    central = QLabel("map")
    window.set_central_panel(central)
    assert window.centralWidget() is central and "latent_grid" in window.docks
    action = window.add_menu_action("Export", "Animation…", lambda: None, shortcut="Ctrl+E")
    assert action in window.menus["Export"].actions()
    window.add_menu_action("Tools", "Something", lambda: None)
    assert "Tools" in window.menus

    # Help ▸ Keyboard Shortcuts lists what the menus show.
    from explorer.ui.dialogs import ShortcutsDialog
    from PySide6.QtWidgets import QTableWidget

    table = ShortcutsDialog(window, list(window.menus.values())).findChild(QTableWidget)
    rows = {(table.item(r, 1).text(), table.item(r, 2).text()) for r in range(table.rowCount())}
    assert ("Open Checkpoint", "Ctrl+O") in rows and ("Train", "Ctrl+T") in rows and ("Animation", "Ctrl+E") in rows



def test_tab_docks_joins_a_panels_tabs_or_starts_them_in_an_area(qtbot, make_main_window):
    window = make_main_window()
    qtbot.waitUntil(lambda: window.engine_ready, timeout=60_000)
    d = window.docks
    # The map's measures and the studio's panels joined the tabs of the panels beside them.
    assert {d["map_measures"], d["map_outliers"], d["studio_interpolation"], d["studio_arithmetic"],
            d["studio_attributes"], d["studio_traversals"]} <= set(window.tabifiedDockWidgets(d["samples"]))
    assert d["studio_player"] in window.tabifiedDockWidgets(d["loss_curves"])
    assert d["map_selection"] in window.tabifiedDockWidgets(d["map_groups"])
    # Without a panel to join, the first dock starts the tabs in the area given.
    right, bottom = Qt.DockWidgetArea.RightDockWidgetArea, Qt.DockWidgetArea.BottomDockWidgetArea
    a, b, c = (window.add_panel_dock(name, QLabel(name), right, f"extra_{name}", shortcut="", visible=False)
               for name in "abc")
    window.tab_docks((None, bottom, [a, b]), (d["latent_units"], right, [c]))
    assert window.dockWidgetArea(a) == bottom and window.tabifiedDockWidgets(a) == [b]
    assert c in window.tabifiedDockWidgets(d["latent_units"]) and window.dockWidgetArea(c) == bottom
    assert not any(dock.isHidden() for dock in (a, b, c))

def test_history_exports_as_csv(tmp_path):
    import csv

    from explorer.ui.main_window_menus import write_history_csv

    path = tmp_path / "h.csv"
    write_history_csv(path, [{"epoch": 1, "train_loss": 3.5, "test_kl_per_dim": [0.5, 0.25]}, {"epoch": 2, "extra": 1}])
    rows = list(csv.DictReader(path.open()))
    assert rows[0]["test_kl_per_dim"] == "0.5;0.25" and rows[1]["extra"] == "1" and rows[1]["train_loss"] == ""


def test_default_model_opens_with_a_working_view(qtbot, make_main_window):
    window = make_main_window(open_default=True)
    state = window.state
    assert state.model is not None and state.model.latent_dim == 2
    assert state.dataset.spec == "digits" and not state.dirty
    assert state.epochs_trained == 150
    qtbot.waitUntil(lambda: window.latent_grid.count() == 15 * 15, timeout=3_000)
    assert window.recon_view.count() == 20 and window.sample_view.count() == 32
    assert window.kl_bars.active_count == 2
    x, y = window.loss_plot.series("test")
    assert len(x) == 150 and np.all(np.isfinite(y))
    assert window.windowTitle().startswith("digits-mlp-2d")


def test_train_pause_resume_stop_save_and_reopen(qtbot, make_main_window, tmp_path, monkeypatch):
    window = make_main_window()
    state, panel, runner = window.state, window.training_panel, window.runner
    progress = []
    state.training_progressed.connect(progress.append)

    _train(qtbot, window, epochs=400)
    assert state.training_status == "running"
    assert not panel.train_button.isEnabled() and panel.stop_button.isEnabled()
    qtbot.waitUntil(lambda: state.epochs_trained >= 3, timeout=30_000)

    # Live views follow the epochs: curves, progress bar, reconstructions, samples, KL bars.
    qtbot.waitUntil(lambda: len(window.loss_plot.series("loss")[0]) >= 3, timeout=5_000)
    qtbot.waitUntil(lambda: len(window.loss_plot.series("test")[0]) >= 3, timeout=5_000)
    assert panel.progress_bar.value() > 0 and "Epoch" in panel.progress_label.text()
    qtbot.waitUntil(lambda: window.recon_view.refresh_count >= 1 and window.sample_view.refresh_count >= 1,
                    timeout=5_000)
    assert window.kl_bars.values is not None and len(window.kl_bars.values) == 2
    assert progress and all(p.kind in ("step", "epoch") for p in progress)
    assert state.dirty and window.isWindowModified()

    # Pause takes effect within a second and nothing arrives while paused.
    qtbot.mouseClick(panel.pause_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: state.training_status == "paused", timeout=1_000)
    assert runner.last_pause_latency < 1.0
    assert panel.pause_button.text() == "Resume"
    qtbot.wait(150)
    count = len(progress)
    qtbot.wait(400)
    assert len(progress) == count

    # Resume, then stop within a second; the model keeps its last finished epoch.
    qtbot.mouseClick(panel.pause_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(progress) > count, timeout=5_000)
    assert state.training_status == "running"
    with qtbot.waitSignal(state.training_finished, timeout=2_000) as finished:
        qtbot.mouseClick(panel.stop_button, Qt.MouseButton.LeftButton)
    assert finished.args == ["stopped"]
    assert runner.last_stop_latency < 1.0
    assert not runner.running and state.training_status == "idle" and panel.train_button.isEnabled()
    epochs = state.epochs_trained
    assert 3 <= epochs < 400 and len(state.history) == epochs
    assert "Stopped" in panel.progress_bar.format()

    # Save (Ctrl+S asks for a name the first time).
    target = tmp_path / "digits-run.safetensors"
    monkeypatch.setattr("explorer.ui.main_window.QFileDialog.getSaveFileName",
                        lambda *a, **k: (str(target), "Checkpoint file (*.safetensors)"))
    window.actions["save"].trigger()
    assert target.exists() and not state.dirty and not window.isWindowModified()
    assert window.windowTitle().startswith("digits-run")
    assert window.recent_files()[0] == str(target.resolve())
    weights = {k: v.clone() for k, v in state.model.state_dict().items()}

    # Reopen in a fresh window: same weights, same history, curves drawn from it.
    other = make_main_window()
    with qtbot.waitSignal(other.state.model_changed, timeout=30_000):
        assert other.open_checkpoint(target)
    for key, value in weights.items():
        assert torch.equal(other.state.model.state_dict()[key], value)
    assert other.state.history == state.history
    # The curves redraw a few event-loop turns later, after the panels' repaints.
    qtbot.waitUntil(lambda: len(other.loss_plot.series("test")[0]) == epochs, timeout=3_000)
    assert other.state.optimizer_state is not None


def test_continue_training_extends_the_history(qtbot, make_main_window):
    window = make_main_window(open_default=True)
    state = window.state
    before = state.epochs_trained
    qtbot.waitUntil(lambda: len(window.loss_plot.series("loss")[0]) > 0, timeout=3_000)
    x_before = window.loss_plot.series("loss")[0].max()
    window.training_panel.continue_radio.setChecked(True)
    assert not window.training_panel.latent_spin.isEnabled()
    assert window.training_panel.train_button.text() == "Continue"
    _train(qtbot, window, continue_training=True, epochs=3)
    assert _wait_finished(qtbot, window) == "completed"
    assert state.epochs_trained == before + 3 and state.history[-1]["epoch"] == before + 3
    assert state.model.latent_dim == 2 and state.dirty
    qtbot.waitUntil(lambda: window.loss_plot.series("loss")[0].max() > x_before, timeout=3_000)
    assert "Done" in window.training_panel.progress_bar.format()


def test_a_model_that_does_not_fit_the_dataset_gives_a_clear_message(qtbot, make_main_window, tmp_path):
    window = make_main_window(open_default=True)
    path = tmp_path / "big.npz"
    np.savez(path, x=np.random.default_rng(0).random((64, 16, 16)).astype(np.float32))
    window.training_panel.continue_radio.setChecked(True)
    window.training_panel.set_dataset_spec(f"npz:{path}")
    qtbot.mouseClick(window.training_panel.train_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: getattr(window, "last_error", None) is not None, timeout=20_000)
    title, text, _ = window.last_error
    assert "cannot train" in title and "8×8" in text and "16×16" in text
    assert not window.state.is_training and window.state.dataset.spec == "digits"


def test_nan_loss_stops_with_a_message_and_keeps_the_window_alive(qtbot, make_main_window):
    window = make_main_window(open_default=True)
    state = window.state
    with torch.no_grad():
        next(state.model.parameters()).fill_(float("nan"))
    window.training_panel.continue_radio.setChecked(True)
    _train(qtbot, window, continue_training=True, epochs=2)
    assert _wait_finished(qtbot, window) == "failed"
    title, text, details = window.last_error
    assert title == "Training stopped" and "stopped being a number" in text
    assert "NonFiniteLossError" in details
    dialog = window.findChild(QWidget, "ErrorDialog")
    assert dialog is not None and dialog.isVisible()
    assert dialog.details_view.isHidden()
    dialog.details_button.click()
    assert dialog.details_view.isVisibleTo(dialog) and "Traceback" in dialog.details_view.toPlainText()
    dialog.accept()
    assert state.training_status == "idle" and window.training_panel.train_button.isEnabled()


@pytest.mark.parametrize("content, expected", [(None, "No checkpoint"), (b"garbage", "not a valid")])
def test_missing_or_corrupt_checkpoint_gives_a_message(qtbot, make_main_window, tmp_path, content, expected):
    window = make_main_window()
    path = tmp_path / "broken.safetensors"
    if content is not None:
        path.write_bytes(content)
    window.open_checkpoint(path)
    qtbot.waitUntil(lambda: getattr(window, "last_error", None) is not None, timeout=20_000)
    title, text, details = window.last_error
    assert title == "Could not open the checkpoint" and expected in text and details
    assert window.state.model is None and not window.busy


def test_missing_dataset_gives_a_message(qtbot, make_main_window, tmp_path):
    window = make_main_window()
    window.training_panel.set_dataset_spec(f"folder:{tmp_path / 'no-such-folder'}")
    qtbot.mouseClick(window.training_panel.train_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: getattr(window, "last_error", None) is not None, timeout=20_000)
    title, text, _ = window.last_error
    assert title == "Could not load the dataset" and "no-such-folder" in text
    assert not window.state.is_training and window.training_panel.train_button.isEnabled()


def test_missing_torchvision_dataset_offline_gives_a_message(qtbot, make_main_window, tmp_path, monkeypatch):
    import socket

    def offline(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(socket.socket, "connect", offline)  # never download, even where online
    window = make_main_window()
    window.training_panel.set_options(TrainingOptions(**{**FAST, "dataset": "kmnist", "data_root": str(tmp_path)}))
    qtbot.mouseClick(window.training_panel.train_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: getattr(window, "last_error", None) is not None, timeout=60_000)
    title, text, details = window.last_error
    assert title == "Could not load the dataset"
    assert "Kuzushiji-MNIST was not found" in text and "data root in the Training panel" in text and details
    assert not window.state.is_training


def test_errors_are_explained_in_plain_words():
    from explorer.jobs.training import friendly_error
    from vae_core import NonFiniteLossError

    assert "ran out of memory" in friendly_error(torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB"))
    assert "ran out of memory" in friendly_error(MemoryError())
    assert "smaller batch size" in friendly_error(RuntimeError("DefaultCPUAllocator: can't allocate memory: out of memory"))
    assert "stopped being a number" in friendly_error(NonFiniteLossError("The loss became nan"))
    assert friendly_error(KeyError("x")).startswith("Training failed unexpectedly")


def test_quitting_during_training_stops_the_worker(qtbot, make_main_window):
    window = make_main_window()
    _train(qtbot, window, epochs=1000)
    qtbot.waitUntil(lambda: window.state.epochs_trained >= 1, timeout=30_000)
    started = time.perf_counter()
    assert window.close()
    assert time.perf_counter() - started < 5
    assert not window.runner.running and window.state.training_status == "idle"
    assert QThreadPool.globalInstance().activeThreadCount() == 0


def test_unsaved_changes_are_asked_about(qtbot, make_main_window, monkeypatch, tmp_path):
    window = make_main_window(open_default=True)
    window.state.apply_weights({k: v.clone() for k, v in window.state.model.state_dict().items()})
    assert window.state.dirty
    answers = []

    def ask(parent, name, doing="closing"):
        answers.append(doing)
        return "cancel"

    monkeypatch.setattr("explorer.ui.main_window.ask_save_changes", ask)
    assert not window.close() and window.isVisible()
    assert not window.open_checkpoint(REPO / "assets" / "digits-mlp-2d")
    assert answers == ["quitting", "opening another model"]

    target = tmp_path / "kept"
    monkeypatch.setattr("explorer.ui.main_window.ask_save_changes", lambda *a, **k: "save")
    monkeypatch.setattr("explorer.ui.main_window.QFileDialog.getSaveFileName",
                        lambda *a, **k: (str(target), "Checkpoint folder (*)"))
    assert window.close()
    assert (target / "config.json").exists()


def test_settings_are_remembered(qtbot, make_main_window, settings_path, tmp_path):
    settings = QSettings(str(settings_path), QSettings.Format.IniFormat)
    first = make_main_window(settings=settings)
    first.training_panel.set_options(TrainingOptions(dataset="fashion-mnist", data_root=str(tmp_path), latent_dim=7,
                                                     epochs=12, beta=2.5, model="conv", hidden=(64,)))
    first.resizeDocks([first.docks["training"]], [420], Qt.Orientation.Horizontal)
    first.docks["latent_units"].hide()
    assert first.close()

    second = make_main_window(settings=QSettings(str(settings_path), QSettings.Format.IniFormat))
    options = second.training_panel.options()
    assert (options.dataset, options.data_root, options.latent_dim, options.epochs, options.beta, options.model) == \
        ("fashion-mnist", str(tmp_path), 7, 12, 2.5, "conv")
    assert second.docks["latent_units"].isHidden()
    assert second.training_panel.data_root_edit.isEnabled()  # a torchvision dataset: the root matters


def test_drop_a_checkpoint_or_an_image_folder(qtbot, make_main_window, tmp_path):
    window = make_main_window()

    def drop(path: Path):
        mime = QMimeData()
        mime.setUrls([QUrl.fromLocalFile(str(path))])
        event = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                           Qt.KeyboardModifier.NoModifier)
        window.dropEvent(event)
        assert event.isAccepted()

    with qtbot.waitSignal(window.state.model_changed, timeout=30_000):
        drop(REPO / "assets" / "digits-mlp-2d")
    assert window.state.model is not None
    folder = tmp_path / "pictures"
    folder.mkdir()
    drop(folder)
    qtbot.waitUntil(lambda: window.training_panel.current_dataset_spec() == f"folder:{folder}", timeout=2_000)
    assert "pictures" in window.training_panel.dataset_combo.currentText()


def test_image_grid_api():
    from explorer.ui.image_grid import ImageGrid, mosaic

    grid = ImageGrid("caption")
    images = np.random.default_rng(0).random((6, 3, 5, 4)).astype(np.float32)
    grid.set_images(images, columns=3, captions=list("abcdef"))
    assert grid.count() == 6 and grid.columns == 3 and grid.caption() == "caption"
    assert grid.to_array().shape == (2 * 6 + 1, 3 * 5 + 1, 3)
    with pytest.raises(ValueError):
        grid.set_images(images, columns=3, captions=["a"])
    grid.clear("nothing")
    assert grid.count() == 0 and grid.to_array() is None
    assert mosaic(images[:, :1], 2).shape == (3 * 6 + 1, 2 * 5 + 1, 1)


def test_app_smoke_and_no_display_message():
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    out = subprocess.run([sys.executable, "-m", "explorer", "--smoke"], cwd=REPO, env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    out = subprocess.run([sys.executable, "-m", "explorer"], cwd=REPO, env=env, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 2 and "xvfb-run" in out.stderr and "QT_QPA_PLATFORM=offscreen" in out.stderr


def test_a_model_switch_repaints_the_panels_one_per_event_loop_turn(qtbot, make_main_window):
    """A new model redraws every panel: the window holds their repaints and lets them go one
    per turn, so its timers run between them; none is left without updates."""
    window = make_main_window(open_default=True)
    qtbot.waitUntil(lambda: window.engine_ready and window.state.codes is not None, timeout=60_000)
    qtbot.wait(100)
    panels = [window.centralWidget()] + [d.widget() for d in window.docks.values() if d.isVisible()]
    assert len(panels) > 3
    qtbot.waitUntil(lambda: all(p.updatesEnabled() for p in panels), timeout=5000)   # the opening's own
    seen_by_a_panel_slot = []
    window.state.model_changed.connect(lambda *_: seen_by_a_panel_slot.append(panels[0].updatesEnabled()))
    window.state.set_model(window.state.model)
    assert seen_by_a_panel_slot == [False]   # held before any panel's own slot could post its repaint
    held = [p for p in panels if not p.updatesEnabled()]
    assert held == panels
    window._release_repaint.run_now()   # one turn's worth
    assert sum(p.updatesEnabled() for p in panels) == 1
    assert window._release_repaint.isActive()
    qtbot.waitUntil(lambda: all(p.updatesEnabled() for p in panels), timeout=5000)
    assert not window._release_repaint.isActive()


def test_the_loss_curves_follow_a_new_model_on_the_next_turn(qtbot, make_trained_document):
    from explorer.ui.training.loss_plot import LossPlot

    trained = make_trained_document(latent_dim=2)
    plot = LossPlot(trained)
    qtbot.addWidget(plot)
    x, y = plot.series("loss")
    np.testing.assert_allclose(y, [e["train_loss"] for e in trained.history])
    other = make_trained_document(latent_dim=3)
    trained.set_model(other.model)   # a new model without a history: the curves empty
    qtbot.waitUntil(lambda: len(plot.series("loss")[0]) == 0, timeout=2000)
    trained.set_model(other.model, history=other.history)
    qtbot.waitUntil(lambda: len(plot.series("loss")[1]) == len(other.history), timeout=2000)
    np.testing.assert_allclose(plot.series("loss")[1], [e["train_loss"] for e in other.history])


def test_while_training_the_loss_axes_keep_their_range_until_the_curves_leave_it(qtbot, state):
    from types import SimpleNamespace

    from explorer.ui.training.loss_plot import LossPlot

    plot = LossPlot(state)
    qtbot.addWidget(plot)
    plot.resize(500, 400)
    plot.show()
    state.history = []
    state.training_status = "running"
    plot._on_state_training_started(None)
    view = plot.loss_axes.getViewBox()
    ranges = []
    for k in range(1, 80):   # a loss falling from 300 towards 100 over 0.7 epochs of reports
        plot._on_state_training_progressed(SimpleNamespace(
            kind="step", epoch=0, step=4 * k, steps_per_epoch=469,
            losses={"loss": 100 + 200 * np.exp(-k / 20), "recon": 90 + 200 * np.exp(-k / 20), "kl": 10.0}))
        plot.redraw()
        (x0, x1), (y0, y1) = view.viewRange()
        x, y = plot.series("loss")
        assert x0 <= x.min() and x.max() <= x1 and y0 <= y[-1] <= y1   # the newest report is always in view
        ranges.append((x0, x1, y0, y1))
    # A new range makes pyqtgraph lay out the axis text again: it changes now and then, not per report.
    changes = sum(a != b for a, b in zip(ranges, ranges[1:]))
    assert 0 < changes < len(ranges) // 4
    state.training_status = "idle"
    plot.redraw()                 # a finished history fits exactly, without the room left for more
    assert view.viewRange()[0][1] == pytest.approx(plot.series("loss")[0].max())


def test_kl_bars_label_as_many_dimensions_as_fit_side_by_side(qtbot, state):
    from explorer.ui.training.kl_bars import AXIS_MARGIN_PX, TICK_LABEL_PX, KLBars

    bars = KLBars(state)
    qtbot.addWidget(bars)
    bars.show()
    for width, d in ((240, 20), (900, 20), (240, 4), (600, 128)):
        bars.resize(width, 260)
        bars.set_values(np.linspace(0.0, 2.0, d))
        step = bars.labelled[1] - bars.labelled[0]
        assert bars.labelled == list(range(0, d, step))
        per_bar = (width - AXIS_MARGIN_PX) / d
        assert step * per_bar >= TICK_LABEL_PX                       # neighbouring labels do not overlap
        assert step == 1 or step * per_bar < 5 * TICK_LABEL_PX       # and are not sparser than needed
    bars.resize(900, 260)
    bars.set_values(np.ones(8))
    assert bars.labelled == list(range(8))
    bars.resize(200, 260)                                            # a narrower panel labels fewer
    assert bars.labelled == list(range(0, 8, 2))
