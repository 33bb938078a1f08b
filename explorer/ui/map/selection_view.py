"""The selection as images and as a table (index, label, every measure), and its export.

The selection is ``state.marks.selection`` (the active group). Exports write every
selected point, also when the grid and the table show only the first ones:
images as PNG files (a folder, or a ZIP), the table as CSV, and indices, images, labels,
codes and every column as one ``.npz`` (:mod:`explorer.state.selection_export`).
"""

from __future__ import annotations

import numpy as np
from PySide6 import QtCore, QtWidgets

from explorer.state import selection_export
from explorer.ui.image_grid import ImageGrid
from explorer.ui.qt_utils import Connections, MutedLabel

GRID_MAX = 200
TABLE_MAX = 2000


class SelectionView(QtWidgets.QWidget):
    """The selected points' images (grid), their table, and export buttons."""

    def __init__(self, state, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("selection_view")
        self.state = state
        self.marks = state.marks
        self.measures = state.measures
        self.indices = np.zeros(0, dtype=np.int64)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        top = QtWidgets.QHBoxLayout()
        self.caption = QtWidgets.QLabel("")
        self.caption.setObjectName("selection_caption")
        layout.addWidget(self.caption)
        self.images_button = QtWidgets.QToolButton(text="Export images")
        self.images_button.setObjectName("export_selection_images")
        self.images_button.setPopupMode(QtWidgets.QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QtWidgets.QMenu(self.images_button)
        menu.addAction("To a folder…", lambda: self._export_dialog("folder"))
        menu.addAction("As a ZIP…", lambda: self._export_dialog("zip"))
        self.images_button.setMenu(menu)
        self.csv_button = QtWidgets.QPushButton("CSV…")
        self.csv_button.setObjectName("export_selection_csv")
        self.csv_button.setToolTip("The table of the selection (every point): index, label, class, every measure")
        self.csv_button.clicked.connect(lambda: self._export_dialog("csv"))
        self.npz_button = QtWidgets.QPushButton(".npz…")
        self.npz_button.setObjectName("export_selection_npz")
        self.npz_button.setToolTip("Indices, images, labels, codes and every measure of the selection in one file")
        self.npz_button.clicked.connect(lambda: self._export_dialog("npz"))
        for w in (self.images_button, self.csv_button, self.npz_button):
            top.addWidget(w)
        top.addStretch(1)
        layout.addLayout(top)
        split = QtWidgets.QSplitter(QtCore.Qt.Orientation.Horizontal)
        self.grid = ImageGrid(placeholder="Select points with the Rectangle or Lasso tool.")
        self.grid.setObjectName("selection_grid")
        self.table = QtWidgets.QTableWidget()
        self.table.setObjectName("selection_table")
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.table.setSortingEnabled(True)
        self.table.setMinimumWidth(120)
        split.addWidget(self.grid)
        split.addWidget(self.table)
        split.setSizes([300, 500])
        layout.addWidget(split, 1)
        self.note = MutedLabel("")
        layout.addWidget(self.note)
        self._refresh_timer = QtCore.QTimer(self)
        self._refresh_timer.setSingleShot(True)
        self._refresh_timer.setInterval(80)
        self._refresh_timer.timeout.connect(self.refresh)
        self._connections = Connections(self)
        self._connections.connect_all([(self.marks.selection_changed, self._schedule),
                                       (self.measures.measures_changed, self._schedule),
                                       (self.measures.columns_changed, self._schedule),
                                       (state.dataset_changed, self._schedule)])
        self.refresh()

    def _schedule(self, *args) -> None:
        self._refresh_timer.start()

    def refresh(self) -> None:
        """Show the current selection (the first :data:`GRID_MAX` images, :data:`TABLE_MAX` rows)."""
        images = self.state.images
        idx = np.asarray(self.marks.selection, dtype=np.int64)
        if images is not None:
            idx = idx[(idx >= 0) & (idx < len(images))]
        else:
            idx = np.zeros(0, dtype=np.int64)
        self.indices = idx
        for w in (self.images_button, self.csv_button, self.npz_button):
            w.setEnabled(bool(len(idx)))
        group = self.marks.active_group
        self.caption.setText(f"{'Group ' + group if group else 'Selection'}: {len(idx):,} points" if len(idx)
                             else "No selection")
        self.table.setSortingEnabled(False)
        self.table.clear()
        if not len(idx):
            self.grid.clear()
            self.table.setRowCount(0)
            self.table.setColumnCount(0)
            self.note.setText("")
            return
        captions = [f"#{i}" for i in idx[:GRID_MAX].tolist()]
        self.grid.set_images(images[idx[:GRID_MAX]], captions=captions)
        header, rows = self.measures.table(idx[:TABLE_MAX])
        self.table.setColumnCount(len(header))
        self.table.setHorizontalHeaderLabels(header)
        self.table.setRowCount(len(rows))
        for r, row in enumerate(rows):
            for c, value in enumerate(row):
                item = QtWidgets.QTableWidgetItem()
                if isinstance(value, float):
                    item.setData(QtCore.Qt.ItemDataRole.DisplayRole, float(f"{value:.6g}"))
                elif isinstance(value, int):
                    item.setData(QtCore.Qt.ItemDataRole.DisplayRole, value)
                else:
                    item.setText(str(value))
                self.table.setItem(r, c, item)
        self.table.setSortingEnabled(True)
        self.table.resizeColumnsToContents()
        shown = []
        if len(idx) > GRID_MAX:
            shown.append(f"the grid shows the first {GRID_MAX}")
        if len(idx) > TABLE_MAX:
            shown.append(f"the table the first {TABLE_MAX:,}")
        extra = "; ".join(shown)
        if self.measures.measures is None:
            extra = (extra + "; " if extra else "") + "the measures appear once computed"
        self.note.setText(("Exports include every point; " + extra) if extra else "")

    # -- export ---------------------------------------------------------------------------------------
    def export_images(self, path) -> list:
        """Write the selection's images as PNGs into a folder, or a ZIP when ``path`` ends in ``.zip``."""
        doc = self.state
        return selection_export.export_images(path, doc.images, self.indices, doc.labels, doc.class_names)

    def export_csv(self, path):
        """Write the selection's table (every point) as CSV."""
        header, rows = self.measures.table(self.indices)
        return selection_export.export_csv(path, header, rows)

    def export_npz(self, path):
        """Write indices, images, labels, codes and every measure and CSV column of the selection."""
        doc, ms = self.state, self.measures
        columns = {}
        if ms.measures is not None:
            columns.update(ms.measures.values)
        for name, values in ms.user_columns.items():
            cats = ms.user_categories.get(name)
            if cats is not None:
                values = np.array([cats[v] if v >= 0 else "" for v in values.tolist()])
            columns[f"csv_{name}"] = values
        return selection_export.export_npz(path, self.indices, doc.images, doc.labels, doc.codes, columns)

    def _export_dialog(self, kind: str) -> None:
        if kind == "folder":
            path = QtWidgets.QFileDialog.getExistingDirectory(self, "Export the selection's images to a folder")
        else:
            filters = {"zip": "ZIP archive (*.zip)", "csv": "CSV table (*.csv)", "npz": "NumPy archive (*.npz)"}
            path, _ = QtWidgets.QFileDialog.getSaveFileName(self, "Export the selection", f"selection.{kind}",
                                                            filters[kind])
            if path and not path.lower().endswith("." + kind):
                path += "." + kind
        if not path:
            return
        try:
            {"folder": self.export_images, "zip": self.export_images, "csv": self.export_csv,
             "npz": self.export_npz}[kind](path)
        except OSError as exc:
            from explorer.jobs.training import friendly_error
            from explorer.ui.dialogs import show_error

            show_error(self, "Export failed", friendly_error(exc, "Exporting the selection"))
            return
        self.state.post_message("info", f"Exported {len(self.indices):,} points to {path}")
