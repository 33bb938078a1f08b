"""The outliers list: data points ranked least likely (IWAE) or worst reconstructed, with thumbnails.

Clicking one centres the map on it and marks it. This is the VAE's anomaly detection: an
image the model finds improbable under log p(x) (or cannot reconstruct) stands out.
"""

from __future__ import annotations

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets
from superqt.utils import signals_blocked

from explorer.state.measures import MEASURE_LABELS, OUTLIER_RANKINGS
from explorer.ui.image_grid import to_uint8_tiles
from explorer.ui.map.colour_by import centre_and_mark
from explorer.ui.qt_utils import Connections, MutedLabel, to_qimage

THUMB_PX = 56


class OutliersPanel(QtWidgets.QWidget):
    """A ranked list of the ``count`` most unusual data points."""

    def __init__(self, state, view, parent=None, *, count: int = 60) -> None:
        super().__init__(parent)
        self.setObjectName("outliers_panel")
        self.state = state
        self.measures = state.measures
        self.view = view
        self.count = int(count)
        self.indices = np.zeros(0, dtype=np.int64)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(6, 4, 6, 4)
        row = QtWidgets.QHBoxLayout()
        self.ranking = QtWidgets.QComboBox()
        self.ranking.setObjectName("outlier_ranking")
        for key, (label, _) in OUTLIER_RANKINGS.items():
            self.ranking.addItem(label, key)
        self.ranking.setSizeAdjustPolicy(QtWidgets.QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.ranking.setMinimumContentsLength(14)
        self.ranking.activated.connect(lambda _i: self.refresh())
        row.addWidget(self.ranking, 1)
        layout.addLayout(row)
        row = QtWidgets.QHBoxLayout()
        self.compute_button = QtWidgets.QPushButton("Compute measures")
        self.compute_button.setObjectName("outliers_compute")
        self.compute_button.setToolTip("Score every data point under the model (in the background)")
        self.compute_button.clicked.connect(self.measures.request)
        row.addWidget(self.compute_button)
        row.addStretch(1)
        layout.addLayout(row)
        self.note = MutedLabel("")
        self.note.setWordWrap(True)
        layout.addWidget(self.note)
        self.list = QtWidgets.QListWidget()
        self.list.setObjectName("outlier_list")
        self.list.setViewMode(QtWidgets.QListView.ViewMode.IconMode)
        self.list.setIconSize(QtCore.QSize(THUMB_PX, THUMB_PX))
        self.list.setGridSize(QtCore.QSize(THUMB_PX + 34, THUMB_PX + 38))
        self.list.setResizeMode(QtWidgets.QListView.ResizeMode.Adjust)
        self.list.setMovement(QtWidgets.QListView.Movement.Static)
        self.list.setWordWrap(True)
        self.list.itemClicked.connect(self._on_list_item_clicked)
        layout.addWidget(self.list, 1)
        self._connections = Connections(self)
        self._connections.connect_all([(self.measures.measures_changed, self.refresh),
                                       (self.measures.wanted_changed, self.refresh),
                                       (state.dataset_changed, self.refresh), (state.model_changed, self.refresh)])
        self.refresh()

    @property
    def by(self) -> str:
        return self.ranking.currentData()

    def set_ranking(self, key: str) -> None:
        with signals_blocked(self.ranking):
            self.ranking.setCurrentIndex(self.ranking.findData(key))
        self.refresh()

    def refresh(self, *args) -> None:
        ms = self.measures
        model = self.ranking.model()
        for i in range(self.ranking.count()):
            reason = ms.unavailable_reason(self.ranking.itemData(i)) if self.state.model is not None else None
            model.item(i).setEnabled(reason is None)
            model.item(i).setToolTip(reason or "")
        if not model.item(self.ranking.currentIndex()).isEnabled():
            enabled = [i for i in range(self.ranking.count()) if model.item(i).isEnabled()]
            if enabled:
                with signals_blocked(self.ranking):
                    self.ranking.setCurrentIndex(enabled[0])
        self.list.clear()
        self.compute_button.setVisible(ms.measures is None and not ms.wanted)
        images = self.state.images
        self.indices = ms.outliers(self.by, self.count) if images is not None else np.zeros(0, np.int64)
        if ms.measures is None:
            self.note.setText("Computing the measures…" if ms.wanted and self.state.model is not None
                              else "Compute the measures to rank the data points.")
            return
        reason = ms.unavailable_reason(self.by)
        if reason is not None:
            self.note.setText(reason)
            return
        values = ms.measures[self.by]
        self.note.setText(f"The {len(self.indices)} data points with the "
                          f"{'lowest' if OUTLIER_RANKINGS[self.by][1] else 'highest'} "
                          f"{MEASURE_LABELS[self.by]} (of {len(values):,}); click one to find it on the map.")
        tiles = to_uint8_tiles(images[self.indices]) if len(self.indices) else []
        labels = self.state.labels
        names = self.state.class_names
        for rank, (i, tile) in enumerate(zip(self.indices.tolist(), tiles)):
            pixmap = QtGui.QPixmap.fromImage(to_qimage(tile, channels_first=False)).scaled(
                THUMB_PX, THUMB_PX, QtCore.Qt.AspectRatioMode.KeepAspectRatio,
                QtCore.Qt.TransformationMode.FastTransformation)
            item = QtWidgets.QListWidgetItem(QtGui.QIcon(pixmap), f"#{i}\n{values[i]:.1f}")
            item.setData(QtCore.Qt.ItemDataRole.UserRole, i)
            label = ""
            if labels is not None:
                lab = int(labels[i])
                label = f" · {names[lab] if 0 <= lab < len(names) else lab}"
            item.setToolTip(f"{rank + 1}. data point #{i}{label}: {MEASURE_LABELS[self.by]} {values[i]:.3f}")
            self.list.addItem(item)

    def show_outlier(self, row: int) -> int:
        """Centre the map on the outlier in ``row`` and mark it; returns its data index."""
        index = int(self.indices[row])
        with signals_blocked(self.list):
            self.list.setCurrentRow(row)
        centre_and_mark(self.view, [index])
        self.state.map.set_hovered_index(index)
        return index

    def _on_list_item_clicked(self, item) -> None:
        self.show_outlier(self.list.row(item))
