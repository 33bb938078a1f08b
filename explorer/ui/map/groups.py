"""Selection groups: named sets of data points made with the rectangle/lasso tools.

The list shows each group's name (editable) and size; the active group is the map's
selection and its images fill the grid below, next to what its centroid decodes to. In
arithmetic a group is ``group:name`` (its centroid).
"""

from __future__ import annotations

import math

import numpy as np
from PySide6 import QtCore, QtWidgets
from superqt.utils import signals_blocked

from explorer.ui.image_grid import tile_images
from explorer.ui.map.decoder_view import ImagePane
from explorer.ui.map.pins import add_pin_keyframe
from explorer.ui.qt_utils import Connections

GRID_MAX = 400


class GroupsPanel(QtWidgets.QWidget):
    """Named selections with their image grid and centroid."""

    keyframe_requested = QtCore.Signal(str)   # group name, after its centroid went to the studio

    def __init__(self, state, parent=None):
        super().__init__(parent)
        self.state = state
        self.map = state.map
        self.marks = state.marks
        self.table = QtWidgets.QTreeWidget()
        self.table.setObjectName("group_list")
        self.table.setColumnCount(2)
        self.table.setHeaderLabels(["Group", "Points"])
        self.table.setRootIsDecorated(False)
        self.table.setUniformRowHeights(True)
        self.table.header().setStretchLastSection(False)
        self.table.header().setSectionResizeMode(0, QtWidgets.QHeaderView.ResizeMode.Stretch)
        self.table.header().setSectionResizeMode(1, QtWidgets.QHeaderView.ResizeMode.ResizeToContents)
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.DoubleClicked
                                   | QtWidgets.QAbstractItemView.EditTrigger.EditKeyPressed)
        self.table.itemChanged.connect(self._on_item_changed)
        self.table.currentItemChanged.connect(self._on_current_changed)
        self.table.setMaximumHeight(150)
        self.table.setMinimumHeight(60)

        self.grid = ImagePane(minimum=60)
        self.grid.setObjectName("group_grid")
        self.grid.installEventFilter(self)
        self._regrid = QtCore.QTimer(self)
        self._regrid.setSingleShot(True)
        self._regrid.setInterval(120)
        self._regrid.timeout.connect(lambda: self._on_selection_changed(self.marks.selection))
        self.grid_caption = QtWidgets.QLabel("Select points with the Rectangle or Lasso tool to make a group.")
        self.grid_caption.setWordWrap(True)
        self.centroid = ImagePane(minimum=48)
        self.centroid.setFixedSize(72, 72)
        centroid_box = QtWidgets.QVBoxLayout()
        centroid_box.addWidget(QtWidgets.QLabel("Centroid"))
        centroid_box.addWidget(self.centroid)
        centroid_box.addStretch(1)

        buttons = QtWidgets.QHBoxLayout()
        self.keyframe_button = QtWidgets.QPushButton("Centroid as keyframe")
        self.keyframe_button.setToolTip("Add the group's centroid to the studio's keyframes")
        self.keyframe_button.clicked.connect(self.use_centroid_as_keyframe)
        self.pin_button = QtWidgets.QPushButton("Pin centroid")
        self.pin_button.clicked.connect(self.pin_centroid)
        self.delete_button = QtWidgets.QPushButton("Delete")
        self.delete_button.clicked.connect(self.delete_current)
        self.clear_button = QtWidgets.QPushButton("Deselect")
        self.clear_button.setToolTip("Clear the selection on the map (the group stays)")
        self.clear_button.clicked.connect(lambda: self.marks.select_group(None))
        for b in (self.keyframe_button, self.pin_button, self.delete_button, self.clear_button):
            buttons.addWidget(b)

        middle = QtWidgets.QHBoxLayout()
        middle.addWidget(self.grid, 1)
        middle.addLayout(centroid_box)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.table)
        layout.addLayout(buttons)
        layout.addLayout(middle, 1)
        layout.addWidget(self.grid_caption)

        self._connections = Connections(self)
        for signal, slot in ((self.marks.groups_changed, self.refresh),
                             (self.marks.selection_changed, self._on_selection_changed),
                             (state.weights_changed, self._update_centroid),
                             (state.codes_changed, self._update_centroid)):
            self._connections.connect(signal, slot)
        self.refresh()

    def eventFilter(self, obj, ev) -> bool:
        if obj is self.grid and ev.type() == QtCore.QEvent.Type.Resize:
            self._regrid.start()   # how many images fit depends on the size
        return super().eventFilter(obj, ev)

    def refresh(self, *args) -> None:
        with signals_blocked(self.table):
            self.table.clear()
            for name, idx in self.marks.groups.items():
                item = QtWidgets.QTreeWidgetItem([name, f"{len(idx):,}"])
                item.setData(0, QtCore.Qt.ItemDataRole.UserRole, name)
                item.setFlags(item.flags() | QtCore.Qt.ItemFlag.ItemIsEditable)
                item.setTextAlignment(1, QtCore.Qt.AlignmentFlag.AlignRight | QtCore.Qt.AlignmentFlag.AlignVCenter)
                self.table.addTopLevelItem(item)
                if name == self.marks.active_group:
                    self.table.setCurrentItem(item)
        has = bool(self.marks.groups)
        for b in (self.keyframe_button, self.pin_button, self.delete_button):
            b.setEnabled(has and self.marks.active_group is not None)
        self._on_selection_changed(self.marks.selection)

    def _current_name(self) -> str | None:
        item = self.table.currentItem()
        return None if item is None else item.data(0, QtCore.Qt.ItemDataRole.UserRole)

    def _on_current_changed(self, item, _previous) -> None:
        name = self._current_name()
        if name is not None and name in self.marks.groups and name != self.marks.active_group:
            self.marks.select_group(name)
        self.refresh_buttons()

    def refresh_buttons(self) -> None:
        ok = self.marks.active_group is not None
        for b in (self.keyframe_button, self.pin_button, self.delete_button):
            b.setEnabled(ok)

    def _on_item_changed(self, item, column) -> None:
        old = item.data(0, QtCore.Qt.ItemDataRole.UserRole)
        try:
            self.marks.rename_group(old, item.text(0))
        except (ValueError, KeyError) as exc:
            with signals_blocked(self.table):
                item.setText(0, old)
            self.grid_caption.setText(str(exc))

    def _on_selection_changed(self, indices) -> None:
        indices = np.asarray(indices, dtype=np.int64)
        images = self.state.images
        if images is None or not len(indices):
            self.grid.set_image(None)
            self.centroid.set_image(None)
            self.grid_caption.setText("Select points with the Rectangle or Lasso tool to make a group."
                                      if not self.marks.groups else "No group selected.")
            self.refresh_buttons()
            return
        # As many images as fit at a readable size (about 30 px each), spread over the group.
        h, w = images.shape[2:]
        size = self.grid.size()
        cols = max(1, size.width() // max(30, w + 1))
        rows = max(1, size.height() // max(30, h + 1))
        capacity = min(GRID_MAX, cols * rows)
        shown = indices if len(indices) <= capacity else indices[np.linspace(0, len(indices) - 1, capacity).astype(int)]
        if len(shown) < capacity:   # fewer images than room: a grid with the pane's proportions
            ratio = max(0.2, size.width() / max(1, size.height()))
            cols = max(1, min(len(shown), math.ceil(math.sqrt(len(shown) * ratio))))
        rows = math.ceil(len(shown) / cols)
        mosaic = tile_images(self.state.float_images(shown), rows, cols, gap=1, fill=0.15)
        self.grid.set_image(mosaic[None] if mosaic.ndim == 2 else np.moveaxis(mosaic, -1, 0))
        group = self.marks.active_group or "selection"
        labels = self.state.labels
        summary = ""
        if labels is not None:
            counts = np.bincount(labels[indices])
            top = np.argsort(counts)[::-1][:3]
            names = self.state.class_names
            summary = " · mostly " + ", ".join(
                f"{names[k] if k < len(names) else k} ({counts[k] / len(indices):.0%})" for k in top if counts[k])
        more = f"{len(shown):,} of {len(indices):,}" if len(shown) < len(indices) else f"all {len(indices):,}"
        self.grid_caption.setText(f"<b>{group}</b>: showing {more} images{summary}")
        self._update_centroid()
        self.refresh_buttons()

    def _update_centroid(self, *args) -> None:
        name = self.marks.active_group
        if name is None or name not in self.marks.groups or self.state.model is None or self.state.codes is None:
            self.centroid.set_image(None)
            return
        try:
            self.centroid.set_image(self.state.decode(self.marks.group_centroid(name))[0])
        except (ValueError, RuntimeError, IndexError):
            self.centroid.set_image(None)

    def pin_centroid(self):
        name = self.marks.active_group
        if name is None:
            return None
        base = f"{name} centroid"
        pin_name, n = base, 2
        while any(p.name == pin_name for p in self.marks.pins):
            pin_name = f"{base} ({n})"
            n += 1
        return self.marks.add_pin(self.marks.group_centroid(name), name=pin_name)

    def use_centroid_as_keyframe(self) -> None:
        """Add the active group (its centroid, looked up again after re-encoding) as a keyframe."""
        name = self.marks.active_group
        if name is None:
            return
        studio = getattr(self.state, "studio", None)
        if studio is not None:
            studio.interpolation.add_group_keyframe(name)
            self.keyframe_requested.emit(name)
            return
        pin = self.pin_centroid()
        if pin is not None and add_pin_keyframe(self.state, pin):
            self.keyframe_requested.emit(name)

    def delete_current(self) -> None:
        name = self.marks.active_group or self._current_name()
        if name is not None and name in self.marks.groups:
            self.marks.remove_group(name)

    def sizeHint(self) -> QtCore.QSize:
        return QtCore.QSize(300, 380)
