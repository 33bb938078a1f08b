"""The pin gallery: codes the user clicked on the map, kept as named operands.

Each pin shows its decoded image (re-decoded when the model's weights change), an
editable name (double-click or F2), where it came from and its code. Pins are saved to and
loaded from JSON (:meth:`MapState.save_pins` / :meth:`MapState.load_pins`) and can be sent to
the studio as keyframes; in arithmetic they are ``pin:name``.
"""

from __future__ import annotations

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets
from superqt.utils import signals_blocked

from explorer.ui.qt_utils import Connections, to_qimage

ICON = 76


def add_pin_keyframe(state, pin) -> bool:
    """Append ``pin`` to the studio's keyframes; False when there is no studio to take it."""
    studio = getattr(state, "studio", None)
    if studio is None:
        return False
    studio.interpolation.add_pin_keyframe(pin)
    return True


class PinGallery(QtWidgets.QWidget):
    """Thumbnails of the pins with editable names, details, save/load and studio hooks."""

    keyframe_requested = QtCore.Signal(object)     # Pin (after it was handed to the studio)
    neighbours_requested = QtCore.Signal(object)   # Pin

    def __init__(self, state, parent=None):
        super().__init__(parent)
        self.state = state
        self.map = state.map
        self.marks = state.marks
        self.neighbours_k = 8
        self.list = QtWidgets.QListWidget()
        self.list.setObjectName("pin_list")
        self.list.setViewMode(QtWidgets.QListView.ViewMode.IconMode)
        self.list.setIconSize(QtCore.QSize(ICON, ICON))
        self.list.setGridSize(QtCore.QSize(ICON + 22, ICON + 30))
        self.list.setResizeMode(QtWidgets.QListView.ResizeMode.Adjust)
        self.list.setMovement(QtWidgets.QListView.Movement.Static)
        self.list.setWordWrap(True)
        self.list.setSelectionMode(QtWidgets.QAbstractItemView.SelectionMode.ExtendedSelection)
        self.list.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.DoubleClicked
                                  | QtWidgets.QAbstractItemView.EditTrigger.EditKeyPressed)
        self.list.setMinimumHeight(ICON + 34)
        self.list.itemChanged.connect(self._on_item_changed)
        self.list.currentItemChanged.connect(self._on_current_changed)
        self.details = QtWidgets.QLabel("Click the map to pin the decoded point.")
        self.details.setWordWrap(True)
        self.details.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        self.details.setObjectName("pin_details")

        buttons = QtWidgets.QHBoxLayout()
        self.keyframe_button = QtWidgets.QPushButton("Use as keyframe")
        self.keyframe_button.setToolTip("Append the selected pins to the studio's keyframes")
        self.keyframe_button.clicked.connect(self.use_as_keyframes)
        self.neighbours_button = QtWidgets.QPushButton("Neighbours")
        self.neighbours_button.setToolTip("Highlight the nearest data points of the selected pin on the map")
        self.neighbours_button.clicked.connect(self._on_neighbours)
        self.delete_button = QtWidgets.QPushButton("Delete")
        self.delete_button.clicked.connect(self.delete_selected)
        self.delete_button.setShortcut(QtGui.QKeySequence.StandardKey.Delete)
        for b in (self.keyframe_button, self.neighbours_button, self.delete_button):
            buttons.addWidget(b)
        files = QtWidgets.QHBoxLayout()
        self.save_button = QtWidgets.QPushButton("Save…")
        self.save_button.clicked.connect(self._save_dialog)
        self.load_button = QtWidgets.QPushButton("Load…")
        self.load_button.clicked.connect(self._load_dialog)
        self.clear_button = QtWidgets.QPushButton("Clear")
        self.clear_button.clicked.connect(self._clear)
        for b in (self.save_button, self.load_button, self.clear_button):
            files.addWidget(b)

        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.list, 1)
        layout.addWidget(self.details)
        layout.addLayout(buttons)
        layout.addLayout(files)

        self._connections = Connections(self)
        for signal, slot in ((self.marks.pins_changed, self.refresh),
                             (state.weights_changed, self.refresh),
                             (state.model_changed, self.refresh)):
            self._connections.connect(signal, slot)
        self.refresh()

    # -- contents ------------------------------------------------------------------------------------
    def _icon(self, pin) -> QtGui.QIcon:
        model = self.state.model
        if model is None or len(pin.z) != getattr(model, "latent_dim", len(pin.z)):
            pm = QtGui.QPixmap(ICON, ICON)
            pm.fill(QtGui.QColor("#30343c"))
            return QtGui.QIcon(pm)
        labels = None if pin.label is None else np.array([pin.label])
        try:
            image = self.state.decode(pin.z, labels)[0]
        except (ValueError, RuntimeError):
            pm = QtGui.QPixmap(ICON, ICON)
            pm.fill(QtGui.QColor("#30343c"))
            return QtGui.QIcon(pm)
        q = to_qimage(image, channels_first=True).scaled(ICON, ICON, QtCore.Qt.AspectRatioMode.KeepAspectRatio,
                                                         QtCore.Qt.TransformationMode.FastTransformation)
        pm = QtGui.QPixmap.fromImage(q)
        icon = QtGui.QIcon(pm)
        icon.addPixmap(pm, QtGui.QIcon.Mode.Selected)  # no selection tint over the image
        return icon

    def refresh(self, *args) -> None:
        current = self.current_pin()
        selected = {it.data(QtCore.Qt.ItemDataRole.UserRole) for it in self.list.selectedItems()}
        with signals_blocked(self.list):
            self.list.clear()
            for pin in self.marks.pins:
                item = QtWidgets.QListWidgetItem(self._icon(pin), pin.name)
                item.setData(QtCore.Qt.ItemDataRole.UserRole, pin.name)
                item.setFlags(item.flags() | QtCore.Qt.ItemFlag.ItemIsEditable)
                item.setToolTip(self._describe(pin))
                self.list.addItem(item)
                if current is not None and pin.name == current.name:
                    self.list.setCurrentItem(item)
                if pin.name in selected:
                    item.setSelected(True)
        if self.list.currentItem() is None and self.list.count():
            self.list.setCurrentRow(self.list.count() - 1)
        self._on_current_changed(self.list.currentItem(), None)
        has = bool(self.marks.pins)
        for b in (self.keyframe_button, self.neighbours_button, self.delete_button, self.save_button,
                  self.clear_button):
            b.setEnabled(has)

    def _describe(self, pin) -> str:
        source = f"data point #{pin.index:,}" if pin.index is not None else "a map position"
        names = self.state.class_names
        label = ""
        if pin.label is not None:
            label = f", label {names[pin.label] if pin.label < len(names) else pin.label}"
        code = ", ".join(f"{v:+.3f}" for v in pin.z)
        return f"{pin.name}: from {source}{label}\nz = [{code}]"

    def current_pin(self):
        item = self.list.currentItem()
        if item is None:
            return None
        try:
            return self.marks.pin(item.data(QtCore.Qt.ItemDataRole.UserRole))
        except KeyError:
            return None

    def selected_pins(self) -> list:
        names = [it.data(QtCore.Qt.ItemDataRole.UserRole) for it in self.list.selectedItems()]
        pins = [p for p in self.marks.pins if p.name in names]
        if not pins and self.current_pin() is not None:
            pins = [self.current_pin()]
        return pins

    # -- slots ---------------------------------------------------------------------------------------
    def _on_current_changed(self, item, _previous) -> None:
        pin = self.current_pin()
        if pin is None:
            self.details.setText("Click the map to pin the decoded point." if not self.marks.pins else "")
            return
        d = len(pin.z)
        code = ", ".join(f"{v:+.2f}" for v in pin.z[:12]) + (" …" if d > 12 else "")
        source = f"data point #{pin.index:,}" if pin.index is not None else "map position"
        self.details.setText(f"<b>{pin.name}</b> · {source} · use as <code>pin:{pin.name}</code><br>"
                             f"z = [{code}]")

    def _on_item_changed(self, item) -> None:
        old = item.data(QtCore.Qt.ItemDataRole.UserRole)
        new = item.text().strip()
        try:
            self.marks.rename_pin(old, new)
        except (ValueError, KeyError) as exc:
            with signals_blocked(self.list):
                item.setText(old)
            self._report(str(exc))

    def use_as_keyframes(self) -> None:
        pins = self.selected_pins()
        for pin in pins:
            if add_pin_keyframe(self.state, pin):
                self.keyframe_requested.emit(pin)
        if pins:
            self._report(f"Added {', '.join(p.name for p in pins)} to the keyframes.", "info")

    def _on_neighbours(self) -> None:
        pin = self.current_pin()
        if pin is None:
            return
        try:
            nearest = self.map.query_nearest(pin.z, self.neighbours_k)
        except ValueError as exc:  # a pin from a model with another latent size
            self._report(f"Cannot compare {pin.name} with this model's codes: {exc}")
            return
        if nearest is not None:
            self.map.set_highlight(nearest.indices)
            self._report(f"{pin.name}: nearest data point #{int(nearest.indices[0]):,} at distance "
                         f"{nearest.distance:.3g}.", "info")
        self.neighbours_requested.emit(pin)

    def delete_selected(self) -> None:
        for pin in self.selected_pins():
            self.marks.remove_pin(pin.name)

    def _clear(self) -> None:
        if not self.marks.pins:
            return
        answer = QtWidgets.QMessageBox.question(self, "Clear pins", f"Delete all {len(self.marks.pins)} pins?")
        if answer == QtWidgets.QMessageBox.StandardButton.Yes:
            self.marks.clear_pins()

    def _save_dialog(self) -> None:
        path, _ = QtWidgets.QFileDialog.getSaveFileName(self, "Save pins", "pins.json", "Pins (*.json)")
        if path:
            try:
                self.marks.save_pins(path)
                self._report(f"Saved {len(self.marks.pins)} pins to {path}.", "info")
            except OSError as exc:  # an OutputError: read-only folder, disk full
                from explorer.jobs.training import friendly_error

                self._report(friendly_error(exc, "Saving the pins"))

    def _load_dialog(self) -> None:
        path, _ = QtWidgets.QFileDialog.getOpenFileName(self, "Load pins", "", "Pins (*.json)")
        if path:
            try:
                loaded = self.marks.load_pins(path)
                self._report(f"Loaded {len(loaded)} pins.", "info")
            except ValueError as exc:
                self._report(str(exc))

    def _report(self, text: str, level: str = "warning") -> None:
        self.details.setText(text)
        self.state.post_message(level, text)

    def sizeHint(self) -> QtCore.QSize:
        return QtCore.QSize(300, 320)
