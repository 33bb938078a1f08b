"""The Runs panel: a sweep folder (or any folder of checkpoints) as a sortable table and two plots.

The table lists every run with its settings and metrics (:mod:`explorer.state.runs` reads
the folder); clicking a header sorts by that column, numbers as numbers, missing values
last. Below it, the **rate–distortion plot** puts each run at its KL (rate) against its
reconstruction term (distortion), both test-set nats per image; runs that differ only in
β are joined in β order, so a β sweep traces its curve. The **metric-vs-setting plot**
takes any two numeric columns. Points are coloured by the chosen column: a legend when it
has a few values (a sweep's β grid), a colour bar when it has many.

Double-clicking a row or a point asks to open that run as the current model
(:attr:`RunsPanel.open_requested`; the window opens it through its usual path, which asks
about unsaved training first); *Compare* asks to show it beside the current model.

The plots are ScatterPlotItems: a sweep has tens of runs, not the thousands that made
the latent map rasterise its points itself.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

from explorer.state.runs import DISTORTION, RATE, RunsState, RunTable, curves
from explorer.ui.qt_utils import Connections, MutedLabel, is_dark
from explorer.ui.theme import class_colors, plot_colors

SORT_ROLE = QtCore.Qt.ItemDataRole.UserRole + 1
ROW_ROLE = QtCore.Qt.ItemDataRole.UserRole + 2
#: A colour column with at most this many distinct values gets a legend, else a colour bar.
LEGEND_MAX = 10
PICK_RADIUS_PX = 10.0
RATE_LABEL = "Rate: KL(q(z|x) ‖ p(z)), nats"
DISTORTION_LABEL = "Distortion: reconstruction −log p(x|z), nats"


def format_value(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return "-".join(str(v) for v in value)
    return str(value)


class RunsTableModel(QtCore.QAbstractTableModel):
    """The rows of a :class:`RunTable`; ``SORT_ROLE`` gives a key that sorts numbers as numbers."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.table: RunTable | None = None

    def set_table(self, table: RunTable | None) -> None:
        self.beginResetModel()
        self.table = table
        self.endResetModel()

    def rowCount(self, parent=None) -> int:
        return 0 if self.table is None or (parent is not None and parent.isValid()) else len(self.table.runs)

    def columnCount(self, parent=None) -> int:
        return 0 if self.table is None or (parent is not None and parent.isValid()) else len(self.table.columns)

    def data(self, index, role=QtCore.Qt.ItemDataRole.DisplayRole):
        if self.table is None or not index.isValid():
            return None
        run = self.table.runs[index.row()]
        column = self.table.columns[index.column()]
        value = run.value(column)
        if role == QtCore.Qt.ItemDataRole.DisplayRole:
            return format_value(value)
        if role == SORT_ROLE:
            return value
        if role == ROW_ROLE:
            return index.row()
        if role == QtCore.Qt.ItemDataRole.TextAlignmentRole:
            numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
            return int((QtCore.Qt.AlignmentFlag.AlignRight if numeric else QtCore.Qt.AlignmentFlag.AlignLeft)
                       | QtCore.Qt.AlignmentFlag.AlignVCenter)
        if role == QtCore.Qt.ItemDataRole.ToolTipRole:
            where = str(run.path) if run.path is not None else "no checkpoint found for this run"
            return f"{run.name}\n{where}"
        return None

    def headerData(self, section, orientation, role=QtCore.Qt.ItemDataRole.DisplayRole):
        if self.table is None or role != QtCore.Qt.ItemDataRole.DisplayRole:
            return None
        if orientation == QtCore.Qt.Orientation.Horizontal:
            return self.table.columns[section]
        return str(section + 1)


class RunsSortProxy(QtCore.QSortFilterProxyModel):
    """Numbers before text, missing values last, whatever the order."""

    def lessThan(self, left, right) -> bool:
        a, b = left.data(SORT_ROLE), right.data(SORT_ROLE)
        return _sort_key(a, self.sortOrder()) < _sort_key(b, self.sortOrder())


def _sort_key(value, order):
    missing = value is None or (isinstance(value, float) and math.isnan(value))
    # Qt reverses the comparison for a descending sort; keep missing values at the bottom.
    flag = (0 if order == QtCore.Qt.SortOrder.DescendingOrder else 1) if missing else \
        (1 if order == QtCore.Qt.SortOrder.DescendingOrder else 0)
    if missing:
        return (flag, 0, 0.0, "")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (flag, 0, float(value), "")
    return (flag, 1, 0.0, format_value(value))


def point_colors(values: list, dark: bool) -> tuple[list[QtGui.QColor], dict | None, tuple | None]:
    """Colours for ``values``; a legend ``{text: colour}`` for few distinct values, else ``(lo, hi, colormap)``."""
    present = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    distinct = sorted(set(map(_hashable, present)), key=lambda v: _sort_key(v, QtCore.Qt.SortOrder.AscendingOrder))
    numeric = bool(present) and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present)
    missing = QtGui.QColor(150, 150, 150)
    if not present:
        return [QtGui.QColor(*class_colors(1, dark)[0]) for _ in values], None, None
    if len(distinct) <= LEGEND_MAX:
        if numeric:   # evenly spaced along viridis in value order (a β grid is geometric)
            cmap = pg.colormap.get("viridis")
            spots = np.linspace(0.05, 0.9, len(distinct)) if len(distinct) > 1 else np.array([0.5])
            table = {v: cmap.map(float(t), mode="qcolor") for v, t in zip(distinct, spots)}
        else:
            table = {v: QtGui.QColor(*rgb) for v, rgb in zip(distinct, class_colors(len(distinct), dark))}
        colors = [table.get(_hashable(v), missing) if v is not None else missing for v in values]
        return colors, {format_value(v): table[v] for v in distinct}, None
    lo, hi = float(min(present)), float(max(present))
    cmap = pg.colormap.get("viridis")
    span = hi - lo if hi > lo else 1.0
    colors = [cmap.map((float(v) - lo) / span, mode="qcolor") if isinstance(v, (int, float)) and math.isfinite(v)
              else missing for v in values]
    return colors, None, (lo, hi, cmap)


def _hashable(value):
    return tuple(value) if isinstance(value, list) else value


class RunsPlot(pg.GraphicsLayoutWidget):
    """Runs as points at (``x_column``, ``y_column``), coloured by the state's colour column.

    Signals
    -------
    run_clicked(int)
        Row index of the run whose point was clicked.
    run_activated(int)
        Row index of the run whose point was double-clicked.
    """

    run_clicked = QtCore.Signal(int)
    run_activated = QtCore.Signal(int)

    def __init__(self, runs: RunsState, *, rate_distortion: bool, parent=None) -> None:
        super().__init__(parent=parent)
        self.runs = runs
        self.rate_distortion = rate_distortion
        self.plot = self.addPlot(0, 0)
        self.plot.setMenuEnabled(False)
        self.plot.hideButtons()
        self.plot.showGrid(x=True, y=True, alpha=0.2)
        self.legend = self.plot.addLegend(offset=(-10, 10), labelTextSize="9pt")
        self.color_bar: pg.ColorBarItem | None = None
        self.curve_items: list[pg.PlotCurveItem] = []
        self.points = pg.ScatterPlotItem(size=11, pxMode=True, hoverable=True)
        self.points.setZValue(10)
        self.plot.addItem(self.points)
        self.ring = pg.ScatterPlotItem(size=20, pen=pg.mkPen("#ff9800", width=2.5), brush=pg.mkBrush(None))
        self.ring.setZValue(11)
        self.plot.addItem(self.ring)
        self.rows: list[int] = []                     # table row of each plotted point
        self.xy = np.zeros((0, 2))                    # their positions
        self.hint = pg.TextItem("", anchor=(0.5, 0.5))
        self.plot.addItem(self.hint, ignoreBounds=True)
        self.scene().sigMouseClicked.connect(self._on_scene_clicked)
        self._connections = Connections(self)
        self._connections.connect(runs.table_changed, self.refresh)
        self._connections.connect(runs.plot_changed, self.refresh)
        self.setMinimumSize(260, 200)
        self.refresh()

    def changeEvent(self, ev) -> None:
        if ev.type() == QtCore.QEvent.Type.PaletteChange and hasattr(self, "runs"):
            self.refresh()
        super().changeEvent(ev)

    @property
    def columns(self) -> tuple[str | None, str | None]:
        if self.rate_distortion:
            return RATE, DISTORTION
        return self.runs.x_column, self.runs.y_column

    def refresh(self, *_args) -> None:
        x_column, y_column = self.columns
        table = self.runs.table
        colors = plot_colors(self.palette())
        self.setBackground(colors["background"])
        for name in ("left", "bottom"):
            axis = self.plot.getAxis(name)
            axis.setPen(pg.mkPen(colors["foreground"]))
            axis.setTextPen(pg.mkPen(colors["foreground"]))
        self.hint.setColor(colors["muted"])
        for item in self.curve_items:
            self.plot.removeItem(item)
        self.curve_items = []
        self.legend.clear()
        if self.color_bar is not None:
            self.removeItem(self.color_bar)
            self.color_bar = None
        if table is None or x_column is None or y_column is None:
            self.rows, self.xy = [], np.zeros((0, 2))
            self.points.clear()
            self.ring.clear()
            self._show_hint("Open a sweep folder or a folder of checkpoints (File ▸ Open Runs Folder…)")
            return
        rows, xs, ys = self.runs.points(x_column, y_column)
        self.rows, self.xy = rows, np.column_stack([xs, ys]) if rows else np.zeros((0, 2))
        if self.rate_distortion:
            self.plot.setLabel("bottom", RATE_LABEL)
            self.plot.setLabel("left", DISTORTION_LABEL)
        else:
            self.plot.setLabel("bottom", x_column)
            self.plot.setLabel("left", y_column)
        color_column = self.runs.color_column
        values = [table.runs[i].value(color_column) if color_column else None for i in rows]
        point_brushes, legend, scale = point_colors(values, is_dark(self.palette()))
        edge = pg.mkPen(colors["muted"], width=0.8)
        if self.rate_distortion and color_column and rows:
            parameter = "beta" if "beta" in table.columns else color_column
            on_plot = set(rows)
            for curve in curves(table, parameter):
                curve = [i for i in curve if i in on_plot]
                if len(curve) < 2:
                    continue
                item = pg.PlotCurveItem([table.runs[i].number(RATE) for i in curve],
                                        [table.runs[i].number(DISTORTION) for i in curve],
                                        pen=pg.mkPen(QtGui.QColor(128, 128, 128, 150), width=1.5))
                item.setZValue(5)
                self.plot.addItem(item)
                self.curve_items.append(item)
        self.points.setData(x=xs, y=ys, brush=[pg.mkBrush(c) for c in point_brushes], pen=edge,
                            data=rows)
        if legend:
            for text, color in legend.items():
                sample = pg.ScatterPlotItem(size=10, brush=pg.mkBrush(color), pen=edge, symbol="o")
                self.legend.addItem(sample, f"{color_column} = {text}")
        elif scale is not None:
            lo, hi, cmap = scale
            self.color_bar = pg.ColorBarItem(values=(lo, hi), colorMap=cmap, interactive=False, width=12,
                                             label=color_column)
            self.addItem(self.color_bar, 0, 1)
        self._show_hint("" if rows else f"No run has both {x_column} and {y_column}.")
        if rows:
            self.plot.enableAutoRange()
        self.set_current_row(None)

    def _show_hint(self, text: str) -> None:
        self.hint.setText(text)
        self.hint.setVisible(bool(text))
        if text:
            self.plot.setRange(xRange=(0, 1), yRange=(0, 1))
            self.hint.setPos(0.5, 0.5)

    def set_current_row(self, row: int | None) -> None:
        """Ring the point of table row ``row`` (None: no ring)."""
        if row is None or row not in self.rows:
            self.ring.clear()
            return
        i = self.rows.index(row)
        self.ring.setData(x=[self.xy[i, 0]], y=[self.xy[i, 1]])

    def row_at(self, scene_pos) -> int | None:
        """The row of the point nearest ``scene_pos``, within :data:`PICK_RADIUS_PX`."""
        if not self.rows:
            return None
        vb = self.plot.vb
        best, best_d = None, PICK_RADIUS_PX
        for row, (x, y) in zip(self.rows, self.xy):
            p = vb.mapViewToScene(QtCore.QPointF(float(x), float(y)))
            d = math.hypot(p.x() - scene_pos.x(), p.y() - scene_pos.y())
            if d <= best_d:
                best, best_d = row, d
        return best

    def scene_position(self, row: int) -> QtCore.QPointF:
        """Where row ``row``'s point is drawn, in scene coordinates (tests, scripts)."""
        i = self.rows.index(row)
        return self.plot.vb.mapViewToScene(QtCore.QPointF(float(self.xy[i, 0]), float(self.xy[i, 1])))

    def _on_scene_clicked(self, event) -> None:
        if event.button() != QtCore.Qt.MouseButton.LeftButton:
            return
        row = self.row_at(event.scenePos())
        if row is None:
            return
        event.accept()
        if event.double():
            self.run_activated.emit(row)
        else:
            self.run_clicked.emit(row)


class RunsPanel(QtWidgets.QWidget):
    """The table of runs, the rate–distortion plot and the metric-vs-setting plot.

    Signals
    -------
    folder_requested()
        *Open Folder…* was pressed.
    open_requested(Path)
        Open this run's checkpoint as the current model.
    compare_requested(Path)
        Show this run's checkpoint beside the current model.
    """

    folder_requested = QtCore.Signal()
    open_requested = QtCore.Signal(object)
    compare_requested = QtCore.Signal(object)

    def __init__(self, runs: RunsState | None = None, parent=None) -> None:
        super().__init__(parent)
        self.runs = runs or RunsState()
        self.open_folder_button = QtWidgets.QPushButton("Open Folder…")
        self.open_folder_button.setToolTip("Open a sweep folder (summary.json, runs/) or any folder of checkpoints")
        self.open_folder_button.clicked.connect(self.folder_requested)
        self.folder_label = MutedLabel("No folder open")
        self.folder_label.setSizePolicy(QtWidgets.QSizePolicy.Policy.Ignored, QtWidgets.QSizePolicy.Policy.Preferred)
        self.color_combo = QtWidgets.QComboBox()
        self.color_combo.setToolTip("Colour the points of both plots by this column")
        self.color_combo.currentIndexChanged.connect(self._on_color_combo_changed)
        self.open_button = QtWidgets.QPushButton("Open Run")
        self.open_button.setToolTip("Open the selected run as the current model (double-click a row or a point too)")
        self.open_button.clicked.connect(lambda: self._request(self.open_requested))
        self.compare_button = QtWidgets.QPushButton("Compare")
        self.compare_button.setToolTip("Show the selected run's map beside the current model's")
        self.compare_button.clicked.connect(lambda: self._request(self.compare_requested))
        top = QtWidgets.QHBoxLayout()
        top.addWidget(self.open_folder_button)
        top.addWidget(self.folder_label, 1)
        top.addWidget(QtWidgets.QLabel("Colour by"))
        top.addWidget(self.color_combo)
        top.addWidget(self.open_button)
        top.addWidget(self.compare_button)

        self.model = RunsTableModel(self)
        self.proxy = RunsSortProxy(self)
        self.proxy.setSourceModel(self.model)
        self.proxy.setSortRole(SORT_ROLE)
        self.table = QtWidgets.QTableView()
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QtWidgets.QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setSectionResizeMode(QtWidgets.QHeaderView.ResizeMode.ResizeToContents)
        self.table.doubleClicked.connect(self._on_table_double_clicked)
        self.table.selectionModel().currentRowChanged.connect(self._on_table_current_changed)

        self.rd_plot = RunsPlot(self.runs, rate_distortion=True)
        self.metric_plot = RunsPlot(self.runs, rate_distortion=False)
        self.x_combo, self.y_combo = QtWidgets.QComboBox(), QtWidgets.QComboBox()
        self.x_combo.setToolTip("The setting (or metric) along x")
        self.y_combo.setToolTip("The metric (or setting) along y")
        self.x_combo.currentIndexChanged.connect(self._on_axis_combo_changed)
        self.y_combo.currentIndexChanged.connect(self._on_axis_combo_changed)
        metric_page = QtWidgets.QWidget()
        mp = QtWidgets.QVBoxLayout(metric_page)
        mp.setContentsMargins(0, 0, 0, 0)
        axes = QtWidgets.QHBoxLayout()
        axes.addWidget(QtWidgets.QLabel("x"))
        axes.addWidget(self.x_combo)
        axes.addWidget(QtWidgets.QLabel("y"))
        axes.addWidget(self.y_combo)
        axes.addStretch(1)
        mp.addLayout(axes)
        mp.addWidget(self.metric_plot)
        self.plots = QtWidgets.QTabWidget()
        self.plots.addTab(self.rd_plot, "Rate–distortion")
        self.plots.addTab(metric_page, "Metric vs setting")
        for plot in (self.rd_plot, self.metric_plot):
            plot.run_clicked.connect(self.select_row)
            plot.run_activated.connect(self._on_plot_run_activated)

        self.splitter = QtWidgets.QSplitter(QtCore.Qt.Orientation.Vertical)
        self.splitter.addWidget(self.table)
        self.splitter.addWidget(self.plots)
        self.splitter.setStretchFactor(0, 2)
        self.splitter.setStretchFactor(1, 3)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(6, 4, 6, 4)
        layout.addLayout(top)
        layout.addWidget(self.splitter, 1)

        self._connections = Connections(self)
        self._connections.connect(self.runs.table_changed, self._on_runs_table_changed)
        self._connections.connect(self.runs.plot_changed, self._sync_combos)
        self._on_runs_table_changed(self.runs.table)

    # -- state -> widgets -------------------------------------------------------------------------
    def _on_runs_table_changed(self, table) -> None:
        self.model.set_table(table)
        if table is None:
            self.folder_label.setText("No folder open")
        else:
            kind = "sweep" if table.source == "summary" else "checkpoints"
            skipped = f", {len(table.notes)} unreadable" if table.notes else ""
            self.folder_label.setText(f"{table.folder} · {len(table)} runs ({kind}{skipped})")
            self.folder_label.setToolTip("\n".join([str(table.folder), *table.notes]))
        self.table.sortByColumn(-1, QtCore.Qt.SortOrder.AscendingOrder)   # the folder's own order
        self._sync_combos()
        self._update_buttons()

    def _sync_combos(self) -> None:
        table = self.runs.table
        columns = list(table.columns) if table is not None else []
        numeric = table.numeric_columns() if table is not None else []
        for combo, items, current in ((self.color_combo, columns, self.runs.color_column),
                                      (self.x_combo, numeric, self.runs.x_column),
                                      (self.y_combo, numeric, self.runs.y_column)):
            with QtCore.QSignalBlocker(combo):
                if [combo.itemText(i) for i in range(combo.count())] != items:
                    combo.clear()
                    combo.addItems(items)
                combo.setCurrentIndex(items.index(current) if current in items else -1)

    def _update_buttons(self) -> None:
        run = self.current_run()
        ok = run is not None and run.path is not None
        self.open_button.setEnabled(ok)
        self.compare_button.setEnabled(ok)

    # -- widgets -> state -------------------------------------------------------------------------
    def _on_color_combo_changed(self, _index: int) -> None:
        text = self.color_combo.currentText()
        if text:
            self.runs.set_color_column(text)

    def _on_axis_combo_changed(self, _index: int) -> None:
        x, y = self.x_combo.currentText(), self.y_combo.currentText()
        self.runs.set_axes(x=x or None, y=y or None)

    # -- runs -----------------------------------------------------------------------------------------
    def current_row(self) -> int | None:
        """Row (in the table's own order) of the selected run, or None."""
        index = self.table.currentIndex()
        if not index.isValid():
            return None
        return self.proxy.mapToSource(index).row()

    def current_run(self):
        row = self.current_row()
        return None if row is None or self.runs.table is None else self.runs.table.runs[row]

    def select_row(self, row: int) -> None:
        """Select the run of table row ``row`` (its place in the folder's order)."""
        index = self.proxy.mapFromSource(self.model.index(int(row), 0))
        self.table.setCurrentIndex(index)
        self.table.scrollTo(index)

    def _on_table_current_changed(self, *_args) -> None:
        row = self.current_row()
        self.rd_plot.set_current_row(row)
        self.metric_plot.set_current_row(row)
        self._update_buttons()

    def _on_table_double_clicked(self, index) -> None:
        self.activate_row(self.proxy.mapToSource(index).row())

    def _on_plot_run_activated(self, row: int) -> None:
        self.select_row(row)
        self.activate_row(row)

    def activate_row(self, row: int) -> None:
        """Ask to open run ``row`` (a double-click on its row or point)."""
        self._request(self.open_requested, row)

    def _request(self, signal, row: int | None = None) -> None:
        row = self.current_row() if row is None else row
        table = self.runs.table
        if table is None or row is None:
            return
        run = table.runs[row]
        if run.path is None:
            QtWidgets.QToolTip.showText(QtGui.QCursor.pos(), f"{run.name} has no checkpoint in {table.folder}.")
            return
        signal.emit(Path(run.path))

    def sizeHint(self) -> QtCore.QSize:
        return QtCore.QSize(760, 620)
