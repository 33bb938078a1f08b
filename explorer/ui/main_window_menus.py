"""The main window's menu bar, actions and status bar, and the View, Help and Export
actions that need nothing but Qt.

:class:`MenuBarMixin` is one of :class:`~explorer.ui.main_window.MainWindow`'s bases; it
uses the window's ``settings``, ``menus``, ``actions`` and panels, and calls back the
window's file and training slots from its menus.
"""

from __future__ import annotations

import csv
from typing import Callable

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QApplication, QFileDialog, QLabel, QMenu, QMessageBox

from explorer.ui.dialogs import ShortcutsDialog
from explorer.ui.qt_utils import ProgressBar
from explorer.ui.theme import apply_theme


SAVE_TIP = "Save the model, its history and optimizer state"
SAVE_AS_TIP = "Save the model under a new name (a .safetensors file or a folder)"
EXPORT_MODEL_TIP = "Write the encoder and decoder as ONNX and/or TorchScript files for other programs"


class MenuBarMixin:
    """Menus, actions and the status bar of :class:`~explorer.ui.main_window.MainWindow`."""

    def add_menu_action(self, menu: str, text: str, slot: Callable, *, shortcut: str | QKeySequence | None = None,
                        tip: str = "", name: str | None = None) -> QAction:
        """Add an action to ``self.menus[menu]`` (created on the menu bar if new)."""
        if menu not in self.menus:
            created = QMenu(menu, self)
            created.setToolTipsVisible(True)
            self.menuBar().insertMenu(self.menus["Help"].menuAction(), created)
            self.menus[menu] = created
        action = QAction(text, self)
        if shortcut:
            action.setShortcut(QKeySequence(shortcut))
        if tip:
            action.setStatusTip(tip)
            action.setToolTip(tip)
        action.triggered.connect(slot)
        self.menus[menu].addAction(action)
        if name:
            self.actions[name] = action
        return action

    def _action(self, name: str, text: str, slot: Callable, *, shortcut=None, tip: str = "",
                checkable: bool = False, icon=None) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        if tip:
            action.setStatusTip(tip)
            action.setToolTip(tip)
        if icon is not None:
            action.setIcon(self.style().standardIcon(icon))
        action.setCheckable(checkable)
        action.triggered.connect(slot)
        self.actions[name] = action
        return action

    def _build_menus(self) -> None:
        bar = self.menuBar()
        sp = self.style().StandardPixmap
        file_menu = self.menus["File"] = bar.addMenu("&File")
        file_menu.setToolTipsVisible(True)
        file_menu.addAction(self._action("open", "&Open Checkpoint…", self.open_checkpoint_dialog,
                                         shortcut=QKeySequence.StandardKey.Open, icon=sp.SP_DialogOpenButton,
                                         tip="Open a saved model (a checkpoint folder or .safetensors file) and its dataset"))
        file_menu.addAction(self._action("open_code", "Open &Model Code…", self.open_model_code_dialog,
                                         tip="Open a VAE written elsewhere: an adapter .py file that builds it and "
                                             "its weights (the file's code runs; you are asked first)"))
        self.menus["Recent"] = file_menu.addMenu("Open &Recent")
        self.menus["Recent"].setToolTipsVisible(True)
        file_menu.addAction(self._action("open_default", "Open the &Bundled Example", self.open_default,
                                         tip="Open the small pretrained digits model that ships with Latent Explorer"))
        file_menu.addAction(self._action("open_folder", "Train on an Image &Folder…", self.choose_image_folder,
                                         shortcut="Ctrl+Shift+O",
                                         tip="Pick a folder of your own images (one subfolder per class, or flat) "
                                             "as the training dataset"))
        file_menu.addSeparator()
        file_menu.addAction(self._action("save", "&Save", self.save, shortcut=QKeySequence.StandardKey.Save,
                                         icon=sp.SP_DialogSaveButton, tip=SAVE_TIP))
        file_menu.addAction(self._action("save_as", "Save &As…", self.save_as, shortcut=QKeySequence.StandardKey.SaveAs,
                                         tip=SAVE_AS_TIP))
        file_menu.addSeparator()
        file_menu.addAction(self._action("quit", "&Quit", self.close, shortcut=QKeySequence.StandardKey.Quit,
                                         tip="Quit Latent Explorer (asks to save unsaved training)"))
        self.actions["quit"].setMenuRole(QAction.MenuRole.QuitRole)

        edit_menu = self.menus["Edit"] = bar.addMenu("&Edit")
        edit_menu.setToolTipsVisible(True)
        edit_menu.addAction(self._action("copy_samples", "&Copy Samples Image", self.copy_samples_image,
                                         shortcut="Ctrl+Shift+C", tip="Copy the grid of prior samples to the clipboard"))

        training = self.menus["Training"] = bar.addMenu("&Training")
        training.setToolTipsVisible(True)
        training.addAction(self._action("train", "&Train", self.start_training, shortcut="Ctrl+T",
                                        icon=sp.SP_MediaPlay, tip="Start training with the settings of the Training panel"))
        training.addAction(self._action("pause", "&Pause", self.toggle_pause, shortcut="Ctrl+P",
                                        icon=sp.SP_MediaPause, tip="Pause training, or resume it when paused"))
        training.addAction(self._action("stop", "&Stop", self.stop_training, shortcut="Ctrl+Shift+T",
                                        icon=sp.SP_MediaStop, tip="Stop training; the model keeps its last finished epoch"))

        view = self.menus["View"] = bar.addMenu("&View")
        view.setToolTipsVisible(True)
        self.menus["Panels"] = view.addMenu("&Panels")
        view.addSeparator()
        theme_menu = self.menus["Theme"] = view.addMenu("&Theme")
        group = QActionGroup(self)
        current = str(self.settings.value("window/theme", "system"))
        for key, text in (("system", "&System"), ("light", "&Light"), ("dark", "&Dark")):
            action = self._action(f"theme_{key}", text, lambda _=False, k=key: self.set_theme(k), checkable=True,
                                  tip=f"Use the {key} colour scheme" if key != "system" else "Follow the system's light or dark setting")
            action.setChecked(key == current)
            group.addAction(action)
            theme_menu.addAction(action)
        view.addAction(self._action("full_screen", "&Full Screen", self.toggle_full_screen,
                                    shortcut=QKeySequence.StandardKey.FullScreen, checkable=True,
                                    tip="Use the whole screen"))
        view.addAction(self._action("reset_layout", "&Reset Layout", self.reset_layout,
                                    tip="Put every panel back where it was at first"))

        export = self.menus["Export"] = bar.addMenu("E&xport")
        export.setToolTipsVisible(True)
        export.addAction(self._action("export_model", "&Model…", self.export_model, tip=EXPORT_MODEL_TIP))
        export.addSeparator()
        export.addAction(self._action("export_history", "Training &History as CSV…", self.export_history,
                                      tip="Save the per-epoch losses and metrics as a CSV table"))
        export.addAction(self._action("export_loss_plot", "&Loss Curves as PNG…", self.export_loss_plot,
                                      tip="Save the loss curves as an image"))
        export.addAction(self._action("export_recon", "&Reconstructions as PNG…",
                                      lambda: self._export_grid(self.recon_view, "reconstructions.png"),
                                      tip="Save the test images and their reconstructions as one image"))
        export.addAction(self._action("export_samples", "&Samples as PNG…",
                                      lambda: self._export_grid(self.sample_view, "samples.png"),
                                      tip="Save the prior samples as one image"))
        export.addSeparator()

        help_menu = self.menus["Help"] = bar.addMenu("&Help")
        help_menu.setToolTipsVisible(True)
        help_menu.addAction(self._action("shortcuts", "&Keyboard Shortcuts", self.show_shortcuts,
                                         shortcut=QKeySequence.StandardKey.HelpContents,
                                         tip="List every keyboard shortcut"))
        help_menu.addAction(self._action("readme", "&Documentation", self.open_documentation,
                                         tip="Open the README"))
        help_menu.addAction(self._action("about", "&About Latent Explorer", self.show_about,
                                         tip="Version and credits"))
        self.actions["about"].setMenuRole(QAction.MenuRole.AboutRole)
        self._rebuild_recent_menu()

    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        self.busy_label = QLabel()
        self.busy_bar = ProgressBar()
        self.busy_bar.setRange(0, 0)
        self.busy_bar.setMaximumWidth(120)
        self.busy_bar.setMaximumHeight(14)
        self.busy_bar.setTextVisible(False)
        self.busy_bar.setToolTip("Working in the background; the window stays usable")
        self.dataset_label = QLabel()
        self.dataset_label.setToolTip("The dataset in use")
        self.model_label = QLabel()
        self.model_label.setToolTip("The current model")
        for w in (self.busy_label, self.busy_bar):
            w.hide()
            bar.addPermanentWidget(w)
        bar.addPermanentWidget(self.dataset_label)
        bar.addPermanentWidget(self.model_label)

    def set_theme(self, theme: str) -> None:
        apply_theme(QApplication.instance(), theme)
        self.settings.setValue("window/theme", theme)
        action = self.actions.get(f"theme_{theme}")
        if action is not None:
            action.setChecked(True)

    def toggle_full_screen(self) -> None:
        self.setWindowState(self.windowState() ^ Qt.WindowState.WindowFullScreen)
        self.actions["full_screen"].setChecked(self.isFullScreen())

    def show_shortcuts(self) -> None:
        ShortcutsDialog(self, [m for k, m in self.menus.items() if k not in ("Recent", "Theme")]).exec()

    def show_about(self) -> None:
        QMessageBox.about(self, "About Latent Explorer",
                          "<h3>Latent Explorer 0.1</h3>"
                          "<p>Train, map, decode and animate variational autoencoders.</p>"
                          "<p>Built with PyTorch, Qt (PySide6), pyqtgraph and superqt. MIT licence.</p>")

    def copy_samples_image(self) -> None:
        array = self.sample_view.to_array()
        if array is None:
            return
        QApplication.clipboard().setImage(self.sample_view.grab().toImage())
        self.statusBar().showMessage("Samples copied to the clipboard.", 3000)

    def export_model(self) -> None:
        """Export ▸ Model…: the encoder and decoder as ONNX and/or TorchScript (a dialog)."""
        from explorer.ui.model_export_dialog import ModelExportDialog

        if self.state.model is None:
            self.statusBar().showMessage("Open or train a model first.", 4000)
            return
        dialog = ModelExportDialog(self.state, self.settings, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()
        self.model_export_dialog = dialog

    def export_history(self) -> None:
        history = self.state.history
        if not history:
            self.statusBar().showMessage("There is no training history yet.", 4000)
            return
        path, _ = QFileDialog.getSaveFileName(self, "Export Training History", f"{self._suggest_name()}-history.csv",
                                              "CSV tables (*.csv)")
        if path:
            write_history_csv(path, history)
            self.statusBar().showMessage(f"Saved {path}", 5000)

    def export_loss_plot(self) -> None:
        import pyqtgraph.exporters as exporters

        path, _ = QFileDialog.getSaveFileName(self, "Export Loss Curves", "loss-curves.png", "PNG images (*.png)")
        if path:
            exporter = exporters.ImageExporter(self.loss_plot.view.scene())
            exporter.parameters()["width"] = 1600
            exporter.export(path)
            self.statusBar().showMessage(f"Saved {path}", 5000)

    def _export_grid(self, grid, default_name: str) -> None:
        if grid.to_array() is None:
            self.statusBar().showMessage("Nothing to export yet.", 4000)
            return
        path, _ = QFileDialog.getSaveFileName(self, "Export Image", default_name, "PNG images (*.png)")
        if path:
            grid.save_png(path)
            self.statusBar().showMessage(f"Saved {path}", 5000)


def write_history_csv(path, history: list[dict]) -> None:
    """Write per-epoch history as CSV (lists such as per-dimension KL become ``;``-joined)."""
    keys: list[str] = []
    for entry in history:
        keys.extend(k for k in entry if k not in keys)
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=keys)
        writer.writeheader()
        for entry in history:
            writer.writerow({k: ";".join(f"{v:.6g}" for v in entry[k]) if isinstance(entry.get(k), list) else entry.get(k)
                             for k in keys})
