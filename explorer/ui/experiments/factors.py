"""The factor × latent-dimension mutual-information heatmap (datasets with known factors).

One row per ground-truth factor, one column per latent dimension; a cell is the mutual
information normalised by the factor's entropy (:mod:`explorer.state.factors`), written in
the cell when the grid is small, in nats in its tooltip. Clicking a cell asks for that
dimension's traversal (:attr:`FactorInformation.traversal_requested`; the window shows the
studio's Traversals panel and plays the sweep). The estimate runs in a worker
(:class:`explorer.jobs.training.Task`) whenever the document's codes change while the panel
is shown.
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtWidgets

from explorer.jobs.training import Task
from explorer.state.factors import FactorInformation, factor_information
from explorer.ui.qt_utils import Connections, MutedLabel
from explorer.ui.theme import plot_colors

#: Cells are labelled with their value up to this many cells.
LABEL_CELLS = 240


class FactorHeatmap(pg.GraphicsLayoutWidget):
    """The heatmap itself; :attr:`cell_clicked` carries (factor row, latent dimension)."""

    cell_clicked = QtCore.Signal(int, int)

    def __init__(self, parent=None) -> None:
        super().__init__(parent=parent)
        self.plot = self.addPlot(0, 0)
        self.plot.setMenuEnabled(False)
        self.plot.hideButtons()
        self.plot.setMouseEnabled(False, False)
        self.plot.invertY(True)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.cmap = pg.colormap.get("viridis")
        self.image.setColorMap(self.cmap)
        self.plot.addItem(self.image)
        self.bar = pg.ColorBarItem(values=(0, 1), colorMap=self.cmap, interactive=False, width=12,
                                   label="I(factor; z) / H(factor)")
        self.addItem(self.bar, 0, 1)
        self.labels: list[pg.TextItem] = []
        self.values: np.ndarray | None = None
        self.scene().sigMouseClicked.connect(self._on_scene_clicked)
        self.setMinimumSize(280, 160)

    def set_values(self, values: np.ndarray | None, factor_names=(), mi=None) -> None:
        for label in self.labels:
            self.plot.removeItem(label)
        self.labels = []
        colors = plot_colors(self.palette())
        self.setBackground(colors["background"])
        self.values = None if values is None else np.asarray(values, dtype=np.float64)
        if self.values is None:
            self.image.clear()
            return
        k, d = self.values.shape
        self.image.setImage(self.values, levels=(0.0, 1.0), autoLevels=False)
        self.image.setRect(QtCore.QRectF(0, 0, d, k))
        left, bottom = self.plot.getAxis("left"), self.plot.getAxis("bottom")
        left.setTicks([[(i + 0.5, name) for i, name in enumerate(factor_names)]])
        step = max(1, math.ceil(d / 24))
        bottom.setTicks([[(j + 0.5, f"z{j}") for j in range(0, d, step)]])
        for axis in (left, bottom):
            axis.setPen(pg.mkPen(colors["foreground"]))
            axis.setTextPen(pg.mkPen(colors["foreground"]))
        self.plot.setLabel("bottom", "latent dimension")
        self.plot.setRange(xRange=(0, d), yRange=(0, k), padding=0)
        if k * d <= LABEL_CELLS:
            for i in range(k):
                for j in range(d):
                    v = float(self.values[i, j])
                    text = pg.TextItem(f"{v:.2f}", color="#101010" if v > 0.6 else "#f0f0f0", anchor=(0.5, 0.5))
                    text.setPos(j + 0.5, i + 0.5)
                    self.plot.addItem(text)
                    self.labels.append(text)

    def cell_at(self, scene_pos) -> tuple[int, int] | None:
        if self.values is None or not self.plot.vb.sceneBoundingRect().contains(scene_pos):
            return None
        p = self.plot.vb.mapSceneToView(scene_pos)
        row, col = math.floor(p.y()), math.floor(p.x())
        k, d = self.values.shape
        return (row, col) if 0 <= row < k and 0 <= col < d else None

    def cell_center(self, row: int, col: int) -> QtCore.QPointF:
        """Scene position of a cell's centre (tests, scripts)."""
        return self.plot.vb.mapViewToScene(QtCore.QPointF(col + 0.5, row + 0.5))

    def _on_scene_clicked(self, event) -> None:
        if event.button() != QtCore.Qt.MouseButton.LeftButton:
            return
        cell = self.cell_at(event.scenePos())
        if cell is not None:
            event.accept()
            self.cell_clicked.emit(*cell)


class FactorPanel(QtWidgets.QWidget):
    """The heatmap of the window's document, recomputed when its codes change."""

    def __init__(self, state, parent=None) -> None:
        super().__init__(parent)
        self.state = state
        self.info = FactorInformation(state)
        self.heatmap = FactorHeatmap()
        self.heatmap.cell_clicked.connect(self._on_heatmap_cell_clicked)
        self.caption = MutedLabel("")
        self.caption.setWordWrap(True)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(6, 4, 6, 4)
        layout.addWidget(self.heatmap, 1)
        layout.addWidget(self.caption)
        self._task: Task | None = None
        self._connections = Connections(self)
        self._connections.connect(state.codes_changed, self._on_document_codes_changed)
        self._connections.connect(state.dataset_changed, self._on_document_codes_changed)
        self._connections.connect(self.info.result_changed, self._on_info_result_changed)
        self._on_info_result_changed(None)

    @property
    def busy(self) -> bool:
        return self._task is not None

    def refresh(self) -> None:
        """Compute the heatmap for the current codes in a worker (when shown and not done yet)."""
        job = self.info.request()
        if job is None or self.info.result is not None or self._task is not None:
            self._on_info_result_changed(self.info.result)
            return
        generation, codes, factors = job
        task = Task(factor_information, codes, factors, doing="Measuring the factors", parent=self)
        task.succeeded.connect(lambda result: self.info.set_result(generation, result))
        task.failed.connect(lambda text, _details: self.caption.setText(text))
        task.worker.finished.connect(lambda: self._on_task_finished(task))
        self._task = task
        self.caption.setText("Measuring how much each dimension tells about each factor…")
        task.start()

    def _on_task_finished(self, task) -> None:
        if task is self._task:
            self._task = None
            if self.info.result is None and self.isVisible():
                self.refresh()   # the codes changed while it ran

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self.refresh()

    def _on_document_codes_changed(self, *_args) -> None:
        if self.isVisible():
            self.refresh()
        else:
            self._on_info_result_changed(None)

    def _on_info_result_changed(self, result) -> None:
        if result is None:
            self.heatmap.set_values(None)
            if not self.info.available:
                self.caption.setText("This dataset has no known factors: the heatmap needs one that has "
                                     "(shapes, dsprites).")
            elif self.state.codes is None:
                self.caption.setText("Waiting for the dataset's codes…")
            return
        self.heatmap.set_values(result.normalized, result.factor_names, result.mi)
        best = ", ".join(f"{name} → z{result.best_dimension(i)}" for i, name in enumerate(result.factor_names))
        self.caption.setText(f"Mutual information of each factor with each dimension over its entropy "
                             f"({result.points:,} codes, histogram estimate). Strongest: {best}. "
                             "Click a cell to traverse that dimension.")
        mi = result.mi
        rows = [f"{name}: H = {result.entropy[i]:.2f} nats; " +
                ", ".join(f"z{j} {mi[i, j]:.2f}" for j in range(mi.shape[1])) for i, name in enumerate(result.factor_names)]
        self.heatmap.setToolTip("Mutual information in nats\n" + "\n".join(rows))

    def _on_heatmap_cell_clicked(self, _row: int, col: int) -> None:
        self.info.request_traversal(col)
