"""The experiment views in the window: the Runs panel, the comparison and the factor heatmap.

:func:`install_experiments` docks them (hidden until used, listed in View ▸ Panels; a click on
a heatmap cell shows that dimension's traversal in the studio) and adds
File ▸ Open Runs Folder… and File ▸ Compare With Checkpoint…. Runs open through the
window's own :meth:`~explorer.ui.main_window.MainWindow.open_checkpoint`, which asks about
unsaved training first; folders and checkpoints are read in workers (``window.run_task``).
"""

from __future__ import annotations

from pathlib import Path

from PySide6 import QtCore, QtWidgets
from PySide6.QtGui import QAction

from explorer.state.runs import RunsFolderError, RunsState, read_runs
from explorer.ui.experiments.compare import CompareView
from explorer.ui.experiments.factors import FactorPanel
from explorer.ui.experiments.runs import RunsPanel

RUNS_TIP = "Open a sweep folder or any folder of checkpoints as a table of runs with a rate–distortion plot"
COMPARE_TIP = "Show the current model's map beside another checkpoint's, aligned, with linked hover"


def _read_runs_or_error(folder):
    """``(table, None)``, or ``(None, sentence)`` for a folder without runs.

    A folder without runs is the user's mistake, not a failure: it comes back as a result
    (a worker that returns an exception object reports it as an error).
    """
    try:
        return read_runs(folder), None
    except RunsFolderError as exc:
        return None, str(exc)


class ExperimentDocks(QtCore.QObject):
    """Owns the experiment panels of one window and connects them to its files."""

    def __init__(self, window) -> None:
        super().__init__(window)
        self.window = window
        right = QtCore.Qt.DockWidgetArea.RightDockWidgetArea
        self.runs = RunsState()
        self.runs_panel = RunsPanel(self.runs)
        self.runs_panel.folder_requested.connect(self.choose_runs_folder)
        self.runs_panel.open_requested.connect(self._on_runs_panel_open_requested)
        self.runs_panel.compare_requested.connect(self.compare_with_checkpoint)
        self.runs_dock = window.add_panel_dock("Runs", self.runs_panel, right, "runs", visible=False, shortcut="",
                                               tip="A sweep's runs: table, rate–distortion and metric plots")
        self.compare_view = CompareView()
        self.compare_view.checkpoint_requested.connect(self.choose_compare_checkpoint)
        self.compare_view.current_requested.connect(self.use_current_model)
        self.compare_dock = window.add_panel_dock("Compare", self.compare_view, right, "compare", visible=False,
                                                  shortcut="", tip="Two models' maps side by side")
        self.factor_panel = FactorPanel(window.state)
        self.factor_panel.info.traversal_requested.connect(self.show_traversal)
        self.factor_dock = window.add_panel_dock("Factors", self.factor_panel, right, "factors", visible=False,
                                                 shortcut="", tip="Which latent dimension carries which "
                                                                  "ground-truth factor (shapes, dsprites)")
        self._placed: set[str] = set()
        self._add_actions()

    def _add_actions(self) -> None:
        w = self.window
        file_menu = w.menus["File"]
        after = w.actions["open_folder"]
        actions = file_menu.actions()
        before = actions[actions.index(after) + 1] if after in actions and actions.index(after) + 1 < len(actions) \
            else None
        for name, text, slot, tip in (("open_runs", "Open R&uns Folder…", self.choose_runs_folder, RUNS_TIP),
                                      ("compare_with", "&Compare With Checkpoint…", self.choose_compare_checkpoint,
                                       COMPARE_TIP)):
            action = QAction(text, w)
            action.setStatusTip(tip)
            action.setToolTip(tip)
            action.triggered.connect(slot)
            file_menu.insertAction(before, action)
            w.actions[name] = action

    def show_dock(self, dock: QtWidgets.QDockWidget, size: QtCore.QSize) -> None:
        """Show ``dock``; the first time (no saved place), as a window of ``size`` over the main window."""
        if dock.isHidden() and dock.objectName() not in self._placed:
            dock.setFloating(True)
            dock.resize(size)
            centre = self.window.geometry().center()
            dock.move(centre.x() - size.width() // 2, centre.y() - size.height() // 2)
        self._placed.add(dock.objectName())
        dock.show()
        dock.raise_()

    def show_traversal(self, dimension: int) -> None:
        """Show the studio's Traversals panel and play the sweep of ``dimension``."""
        w = self.window
        dock = w.docks.get("studio_traversals")
        if dock is not None:
            dock.show()
            dock.raise_()
        w.state.studio.traversal.animate(int(dimension))
        w.statusBar().showMessage(f"Traversal of z{dimension}", 4000)

    # -- runs ---------------------------------------------------------------------------------------
    def choose_runs_folder(self) -> None:
        w = self.window
        start = str(w.settings.value("files/runs_dir", "") or Path.home())
        folder = QtWidgets.QFileDialog.getExistingDirectory(w, "Open a Sweep or a Folder of Checkpoints", start)
        if folder:
            self.open_runs_folder(folder)

    def open_runs_folder(self, folder) -> None:
        """Read ``folder`` in a worker and show it in the Runs panel."""
        folder = Path(folder)
        self.window.settings.setValue("files/runs_dir", str(folder.parent))

        def done(result) -> None:
            table, problem = result
            if problem is not None:
                self.window.show_error("No runs in this folder", problem, level="warning")
                return
            self.runs.set_table(table)
            self.show_dock(self.runs_dock, QtCore.QSize(900, 680))
            self.window.statusBar().showMessage(f"{len(table)} runs in {folder.name}", 6000)

        self.window.run_task(f"Reading the runs in {folder.name}…", _read_runs_or_error, folder, on_done=done,
                             doing="Reading the runs", error_title="Could not read the runs")

    def _on_runs_panel_open_requested(self, path) -> None:
        self.window.open_checkpoint(Path(path))

    # -- comparison -----------------------------------------------------------------------------------
    def choose_compare_checkpoint(self) -> None:
        from explorer.ui.main_window import CHECKPOINT_FILTER

        w = self.window
        start = str(w.state.checkpoint_path.parent) if w.state.checkpoint_path else str(Path.home())
        path, _ = QtWidgets.QFileDialog.getOpenFileName(w, "Compare With Checkpoint", start,
                                                        f"{CHECKPOINT_FILTER};;All files (*)")
        if path:
            p = Path(path)
            self.compare_with_checkpoint(p.parent if p.name == "config.json" else p)

    def compare_with_checkpoint(self, path) -> None:
        """Open ``path`` (in a worker) and show it beside the current model on its dataset."""
        from explorer.state import read_checkpoint

        w = self.window
        if w.state.model is None or w.state.dataset is None:
            w.show_error("Nothing to compare with", "Open or train a model first: the comparison puts another "
                         "checkpoint beside the current model, on its dataset.", level="info")
            return
        path = Path(path)
        left, left_path, data = w.state.model, w.state.checkpoint_path, w.state.dataset

        def done(result) -> None:
            ckpt, _data = result
            self.compare_view.compare_models(left, ckpt.model, data, left_path=left_path, right_path=ckpt.path)
            self.show_dock(self.compare_dock, QtCore.QSize(1280, 640))

        w.run_task(f"Opening {path.name} to compare…", read_checkpoint, path, dataset=data, on_done=done,
                   doing="Opening the checkpoint", error_title="Could not compare with this checkpoint")

    def use_current_model(self) -> None:
        """Put the window's current model on the left, keeping the right one."""
        w, compare = self.window, self.compare_view.compare
        if w.state.model is None or compare.right.model is None:
            self.choose_compare_checkpoint()
            return
        if w.state.dataset is not compare.right.dataset and compare.right.model is not None:
            reason = w.state.compatible(compare.right.model, w.state.dataset)
            if reason is not None:
                w.show_error("These models read different images", reason, level="warning")
                return
        self.compare_view.compare_models(w.state.model, compare.right.model, w.state.dataset,
                                         left_path=w.state.checkpoint_path, right_path=compare.right.checkpoint_path)


def install_experiments(window) -> ExperimentDocks:
    """Dock the Runs panel and the comparison in ``window`` and add their File menu actions."""
    window.experiments = ExperimentDocks(window)
    return window.experiments
