"""Colour the map by any column, filter it with a histogram, search it.

* :class:`MapColouring` turns ``document.measures``' colour-by column into per-point colour
  keys of the point cloud (:meth:`PointCloudItem.set_color_keys`): numbers are binned into
  a 256-entry colour map, categories index a palette, so every redraw stays one lookup
  in a small colour table and panning costs what it cost before. The filter's mask dims
  (:meth:`PointCloudItem.set_dimmed`) or hides the points outside.
* :class:`ColourKey` sits beside the map: a colour bar for numbers, a legend for categories.
* :class:`MeasuresPanel` is the dock: the "Colour by" chooser, a histogram of the column with
  a draggable range (pyqtgraph ``LinearRegionItem``), dim or hide, search, CSV columns.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets
from superqt.utils import signals_blocked

from explorer.state.measures import CSVError
from explorer.ui.qt_utils import Connections, Deferred, MutedLabel, ProgressBar
from explorer.ui.theme import class_colors, plot_colors

COLOUR_MAP = "viridis"
LEVELS = 256
MISSING_COLOR = (128, 128, 128)
HISTOGRAM_BINS = 64


def colour_map_rgb(n: int = LEVELS) -> list[tuple[int, int, int]]:
    """``n`` RGB entries of the continuous colour map (perceptually uniform, readable in grey)."""
    table = pg.colormap.get(COLOUR_MAP).getLookupTable(0.0, 1.0, n, mode="byte")
    return [tuple(int(c) for c in row[:3]) for row in table]


def colour_levels(values) -> tuple[float, float] | None:
    """The value range the colour map spans: the 1st to 99th percentile, so a few outliers do not grey out the rest."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if not len(v):
        return None
    lo, hi = np.percentile(v, [1, 99]) if len(v) > 200 else (v.min(), v.max())
    if not hi > lo:
        lo, hi = float(v.min()), float(v.max())
    if not hi > lo:
        hi = lo + 1.0
    return float(lo), float(hi)


def numeric_keys(values, lo: float, hi: float, n: int = LEVELS) -> np.ndarray:
    """Colour-map entry of each value (clipped to ``[lo, hi]``); missing values get entry ``n``."""
    v = np.asarray(values, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        keys = np.floor((v - lo) / (hi - lo) * n)
    keys = np.clip(np.nan_to_num(keys, nan=0.0), 0, n - 1).astype(np.int32)
    keys[~np.isfinite(v)] = n
    return keys


def category_palette(n: int, dark: bool) -> list[tuple[int, int, int]]:
    return list(class_colors(n, dark)) + [MISSING_COLOR]


def centre_and_mark(view, indices) -> None:
    """Mark data points ``indices`` on the map (the highlight ring) and centre the view on the first."""
    idx = np.asarray(indices, dtype=np.int64)
    view.map.set_highlight(idx)
    xy = view.map.xy
    if not len(idx) or xy is None or not (0 <= idx[0] < len(xy)):
        return
    x, y = (float(v) for v in xy[idx[0]])
    if not (np.isfinite(x) and np.isfinite(y)):
        return
    rect = view.vb.viewRect()
    view.follow_layout = False
    view.vb.setRange(rect=QtCore.QRectF(x - rect.width() / 2, y - rect.height() / 2, rect.width(), rect.height()),
                     padding=0)


class MapColouring(QtCore.QObject):
    """Applies the colour-by column and the filter to a :class:`~explorer.ui.map.view.LatentMapView`.

    Attributes
    ----------
    column : Column or None
        What the map is coloured by now (None: the labels' colours, drawn by the view).
    levels : (float, float) or None
        The numbers at the ends of the colour map.
    palette : list of RGB
    """

    changed = QtCore.Signal()

    def __init__(self, view, state, parent=None) -> None:
        super().__init__(parent or view)
        self.view = view
        self.state = state
        self.measures = state.measures
        self.column = None
        self.levels = None
        self.palette: list = []
        self._applied_n = -1
        self._applied_filter = None    # (mask, hide) last given to the points
        ms, m = self.measures, state.map
        self._connections = Connections(self)
        # Connected after the view's own slots: a new layout's set_data runs first.
        self._connections.connect_all([(ms.colour_by_changed, self.refresh), (ms.measures_changed, self.refresh),
                                       (ms.columns_changed, self.refresh), (m.layout_changed, self._on_map_layout_changed),
                                       (m.filter_changed, self._on_map_filter_changed),
                                       (state.dataset_changed, self.refresh)])
        self.refresh()

    def refresh(self, *args) -> None:
        """Recolour the points from the colour-by column (one rebuild of the colour keys)."""
        points = self.view.points
        n = len(points.positions)
        col = self.measures.column()
        column = col if col is not None and col.key != "label" and len(col.values) == n and n else None
        if column is None and self.column is None and n == self._applied_n:
            return   # still the labels' colours: nothing to rebuild (a rebuild costs ~0.1 s at 1M points)
        self.view.finish_animation()   # a rebuild would drop a running transition's end point
        self.column = column
        if self.column is None:
            self.levels, self.palette = None, []
            points.set_color_keys(None)
        elif self.column.categorical:
            self.levels = None
            self.palette = category_palette(len(self.column.categories), self.view.dark)
            values = self.column.values
            points.set_color_keys(np.where(values < 0, len(self.column.categories), values), self.palette)
        else:
            self.levels = colour_levels(self.column.values) or (0.0, 1.0)
            self.palette = colour_map_rgb() + [MISSING_COLOR]
            points.set_color_keys(numeric_keys(self.column.values, *self.levels), self.palette)
        self._applied_n = n
        self._applied_filter = None
        self._apply_filter()
        self.changed.emit()

    def _apply_filter(self) -> None:
        m, points = self.state.map, self.view.points
        n = len(points.positions)
        mask = m.filter_mask
        if mask is not None and len(mask) != n:
            return
        if self._applied_filter is not None and self._applied_filter[0] is mask \
                and self._applied_filter[1] == m.hide_filtered:
            return
        self._applied_filter = (mask, m.hide_filtered)
        points.set_dimmed(None if mask is None or m.hide_filtered else ~mask)
        points.set_visible_mask(m.visible_mask())

    def _on_map_layout_changed(self) -> None:
        # A new point count means the cloud was rebuilt from the labels: colour it again.
        if len(self.view.points.positions) != self._applied_n:
            self._applied_filter = None
            self.refresh()

    def _on_map_filter_changed(self, _mask) -> None:
        if self.view.animating:
            self.view.finish_animation()
        self._apply_filter()
        self.view._schedule_settle()


class _ColourBar(QtWidgets.QWidget):
    """A vertical gradient with the numbers at its ends and middle."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("colour_bar")
        self.colors: list = []
        self.levels = (0.0, 1.0)
        self.setMinimumHeight(160)
        self.setSizePolicy(QtWidgets.QSizePolicy.Policy.Preferred, QtWidgets.QSizePolicy.Policy.Expanding)

    def set_colors(self, colors, levels) -> None:
        self.colors, self.levels = list(colors), levels
        self.update()

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt override
        if not self.colors:
            return
        p = QtGui.QPainter(self)
        fm = p.fontMetrics()
        bar = QtCore.QRect(4, fm.height() // 2, 16, max(10, self.height() - fm.height()))
        grad = QtGui.QLinearGradient(QtCore.QPointF(bar.topLeft()), QtCore.QPointF(bar.bottomLeft()))
        n = len(self.colors)
        for i, rgb in enumerate(self.colors):
            grad.setColorAt(1.0 - i / max(1, n - 1), QtGui.QColor(*rgb))
        p.fillRect(bar, grad)
        p.setPen(self.palette().color(QtGui.QPalette.ColorRole.Text))
        p.drawRect(bar.adjusted(0, 0, -1, -1))
        lo, hi = self.levels
        for frac in (0.0, 0.25, 0.5, 0.75, 1.0):
            y = bar.bottom() - frac * bar.height()
            p.drawLine(bar.right() + 1, int(y), bar.right() + 4, int(y))
            text = f"{lo + frac * (hi - lo):.4g}"
            p.drawText(QtCore.QPointF(bar.right() + 7, y + fm.ascent() / 2 - 1), text)
        p.end()


class ColourKey(QtWidgets.QWidget):
    """Beside the map: a colour bar (numbers) or a legend (categories) of the colour-by column."""

    MAX_ENTRIES = 24

    def __init__(self, colouring: MapColouring, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("colour_key")
        self.colouring = colouring
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.setSpacing(2)
        self.title = QtWidgets.QLabel("")
        self.title.setWordWrap(True)
        self.title.setStyleSheet("font-weight: 600;")
        layout.addWidget(self.title)
        self.bar = _ColourBar()
        layout.addWidget(self.bar, 1)
        self.note = MutedLabel("")
        self.note.setWordWrap(True)
        layout.addWidget(self.note)
        self.legend = QtWidgets.QWidget()
        self._legend_layout = QtWidgets.QVBoxLayout(self.legend)
        self._legend_layout.setContentsMargins(0, 0, 0, 0)
        self._legend_layout.setSpacing(1)
        layout.addWidget(self.legend)
        layout.addStretch(0)
        self.entries: list[QtWidgets.QLabel] = []
        self.setFixedWidth(118)
        colouring.changed.connect(self.refresh)
        self.refresh()

    @property
    def shows_colour_bar(self) -> bool:
        return not self.isHidden() and not self.bar.isHidden()

    def refresh(self) -> None:
        col = self.colouring.column
        for label in self.entries:
            label.deleteLater()
        self.entries = []
        self.setVisible(col is not None)
        if col is None:
            return
        self.title.setText(col.label)
        if col.categorical:
            self.bar.hide()
            self.note.hide()
            self.legend.show()
            counts = np.bincount(np.where(col.values < 0, len(col.categories), col.values),
                                 minlength=len(col.categories) + 1)
            names = list(col.categories)
            shown = [i for i in range(len(names)) if counts[i]][: self.MAX_ENTRIES]
            for i in shown:
                self.entries.append(self._entry(self.colouring.palette[i], names[i], int(counts[i])))
            hidden = sum(1 for i in range(len(names)) if counts[i]) - len(shown)
            if hidden > 0:
                self.entries.append(MutedLabel(f"+ {hidden} more"))
            if counts[-1]:
                self.entries.append(self._entry(self.colouring.palette[-1], "none", int(counts[-1])))
            for label in self.entries:
                self._legend_layout.addWidget(label)
        else:
            self.legend.hide()
            self.bar.show()
            self.bar.set_colors(self.colouring.palette[:-1], self.colouring.levels)
            missing = int(np.count_nonzero(~np.isfinite(col.values)))
            self.note.setText("Clipped to the 1st–99th percentile" + (f"; {missing:,} missing (grey)" if missing
                                                                      else "") + ".")
            self.note.show()

    @staticmethod
    def _entry(rgb, name: str, count: int) -> QtWidgets.QLabel:
        label = QtWidgets.QLabel(f"<span style='color: rgb{tuple(rgb)}; font-size: 14px'>●</span> "
                                 f"{name if len(name) <= 14 else name[:13] + '…'}")
        label.setToolTip(f"{name}: {count:,} points")
        return label


class MeasuresPanel(QtWidgets.QWidget):
    """Colour by, filter by a histogram range, search, and add CSV columns."""

    def __init__(self, state, view, colouring: MapColouring, job=None, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("measures_panel")
        self.state = state
        self.measures = state.measures
        self.map = state.map
        self.view = view
        self.colouring = colouring
        self.job = job
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(6, 4, 6, 4)
        layout.setSpacing(4)

        row = QtWidgets.QHBoxLayout()
        row.addWidget(QtWidgets.QLabel("Colour by"))
        self.combo = QtWidgets.QComboBox()
        self.combo.setObjectName("colour_by_combo")
        self.combo.setToolTip("What colours the points: the label, the split, a per-point measure of the model, "
                              "a cluster, or a column of your CSV")
        self.combo.setSizeAdjustPolicy(QtWidgets.QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.combo.setMinimumContentsLength(12)
        self.combo.activated.connect(self._on_combo_activated)
        row.addWidget(self.combo, 1)
        layout.addLayout(row)

        self.progress = ProgressBar()
        self.progress.setObjectName("measures_progress")
        self.progress.setRange(0, 1000)
        self.cancel_button = QtWidgets.QPushButton("Cancel")
        self.cancel_button.setObjectName("measures_cancel")
        prow = QtWidgets.QHBoxLayout()
        prow.addWidget(self.progress, 1)
        prow.addWidget(self.cancel_button)
        layout.addLayout(prow)
        self.note = MutedLabel("")
        self.note.setObjectName("measures_note")
        self.note.setWordWrap(True)
        layout.addWidget(self.note)

        self.histogram = pg.PlotWidget()
        self.histogram.setObjectName("measure_histogram")
        self.histogram.setMinimumHeight(120)
        self.histogram.setMouseEnabled(x=False, y=False)
        self.histogram.hideButtons()
        self.histogram.setMenuEnabled(False)
        self.histogram.getPlotItem().getAxis("left").setWidth(36)
        self.bars = None
        self.region = pg.LinearRegionItem(orientation="vertical", brush=pg.mkBrush(255, 213, 74, 50),
                                          pen=pg.mkPen("#ffd54a", width=2))
        self.region.setZValue(10)
        self.region.hide()
        self.histogram.addItem(self.region, ignoreBounds=True)
        self._region_timer = QtCore.QTimer(self)
        self._region_timer.setSingleShot(True)
        self._region_timer.setInterval(60)
        self._region_timer.timeout.connect(self._on_region_settled)
        self.region.sigRegionChanged.connect(lambda *_: self._region_timer.start())
        layout.addWidget(self.histogram, 1)

        frow = QtWidgets.QHBoxLayout()
        self.filter_check = QtWidgets.QCheckBox("Filter")
        self.filter_check.setObjectName("filter_check")
        self.filter_check.setToolTip("Keep the points inside the range dragged on the histogram")
        self.filter_check.toggled.connect(self._on_filter_toggled)
        self.hide_check = QtWidgets.QCheckBox("Hide outside")
        self.hide_check.setObjectName("hide_filtered_check")
        self.hide_check.setToolTip("Hide the points outside the range instead of dimming them")
        self.hide_check.toggled.connect(self.measures.set_hide_filtered)
        self.count = QtWidgets.QLabel("")
        self.count.setObjectName("filter_count")
        frow.addWidget(self.filter_check)
        frow.addWidget(self.hide_check)
        frow.addStretch(1)
        frow.addWidget(self.count)
        layout.addLayout(frow)

        srow = QtWidgets.QHBoxLayout()
        self.search_edit = QtWidgets.QLineEdit()
        self.search_edit.setObjectName("search_edit")
        self.search_edit.setPlaceholderText("Search: index (123), label (label 3) or class name")
        self.search_edit.setClearButtonEnabled(True)
        self.search_edit.returnPressed.connect(self._on_search)
        srow.addWidget(self.search_edit, 1)
        self.csv_button = QtWidgets.QPushButton("Add CSV columns…")
        self.csv_button.setObjectName("csv_button")
        self.csv_button.setToolTip("Add columns from a CSV file with an 'index' column (the data point of each row)")
        self.csv_button.clicked.connect(self._csv_dialog)
        srow.addWidget(self.csv_button)
        layout.addLayout(srow)
        self.search_result = MutedLabel("")
        self.search_result.setObjectName("search_result")
        layout.addWidget(self.search_result)

        if job is not None:
            job.busy_changed.connect(self._on_job_busy_changed)
            job.progressed.connect(self._on_job_progressed)
            self.cancel_button.clicked.connect(job.cancel)
        self._refresh_later = Deferred(self.refresh, self)
        self._connections = Connections(self)
        ms = self.measures
        self._connections.connect_all([(ms.measures_changed, self.refresh), (ms.columns_changed, self.refresh),
                                       (ms.colour_by_changed, self.refresh), (ms.filter_changed, self._sync_filter),
                                       (ms.wanted_changed, self.refresh),
                                       (self.map.filter_changed, self._update_count),
                                       (state.model_changed, self._refresh_soon),
                                       (state.dataset_changed, self._refresh_soon),
                                       (state.codes_changed, self._refresh_soon)])
        colouring.changed.connect(self._refresh_histogram)
        self._apply_plot_colors()
        self._on_job_busy_changed(False)
        self.refresh()

    def _apply_plot_colors(self) -> None:
        colors = plot_colors(self.palette())
        self.histogram.setBackground(colors["background"])
        for name in ("left", "bottom"):
            axis = self.histogram.getPlotItem().getAxis(name)
            axis.setPen(pg.mkPen(colors["foreground"]))
            axis.setTextPen(pg.mkPen(colors["foreground"]))

    def changeEvent(self, ev) -> None:  # noqa: N802 - Qt override
        if ev.type() == QtCore.QEvent.Type.PaletteChange and hasattr(self, "histogram"):
            self._apply_plot_colors()
            self._refresh_histogram()
        super().changeEvent(ev)

    # -- chooser -------------------------------------------------------------------------------------
    def _refresh_soon(self, *args) -> None:
        # A new model or dataset emits several of these in one event-loop turn, each of which
        # would rebuild the chooser and the histogram: once, on the next turn, is enough.
        self._refresh_later.start()

    def refresh(self, *args) -> None:
        self._refresh_later.stop()
        ms = self.measures
        with signals_blocked(self.combo):
            self.combo.clear()
            model = self.combo.model()
            for i, choice in enumerate(ms.choices()):
                self.combo.addItem(choice.label, choice.key)
                if choice.reason is not None:
                    item = model.item(i)
                    item.setEnabled(False)
                    item.setToolTip(choice.reason)
            self.combo.setCurrentIndex(max(0, self.combo.findData(ms.colour_by)))
        self._update_note()
        self._refresh_histogram()
        self._sync_filter()

    def choose(self, key: str) -> None:
        """Colour by ``key`` (as picking it in the chooser does)."""
        try:
            self.measures.set_colour_by(key)
        except ValueError as exc:
            self.note.setText(str(exc))

    def _on_combo_activated(self, index: int) -> None:
        key = self.combo.itemData(index)
        if key is not None:
            self.choose(key)

    def _update_note(self) -> None:
        ms = self.measures
        key = ms.colour_by
        text = ""
        if ms.column() is None and key not in ("label", "split"):
            busy = self.job is not None and self.job.busy
            text = ("Computing the measures…" if busy else "The measures are computed in the background once "
                    "the dataset is encoded.")
            if self.state.is_training:
                text = "The measures are computed when training stops."
        elif ms.measures is not None and ms.measures.unavailable:
            missing = ", ".join(sorted(ms.measures.unavailable))
            text = f"Not defined for this model: {missing} (hover the greyed entries for why)."
        elif key in ("neg_elbo", "iwae_ll", "recon_nll") and ms.measures is not None:
            text = f"k = {ms.measures.k} importance samples per image, seed {ms.measures.seed}."
        self.note.setText(text)
        self.note.setVisible(bool(text))

    # -- histogram and filter --------------------------------------------------------------------------
    def _refresh_histogram(self) -> None:
        if self.bars is not None:
            self.histogram.removeItem(self.bars)
            self.bars = None
        col = self.measures.column()
        if col is None:
            self.region.hide()
            return
        if col.categorical:
            values = col.values[col.values >= 0]
            counts = np.bincount(values, minlength=len(col.categories))[: len(col.categories)]
            x = np.arange(len(counts), dtype=float)
            width = 0.8
            palette = category_palette(len(col.categories), self.view.dark)
            brushes = [pg.mkBrush(*palette[i]) for i in range(len(counts))]
        else:
            v = col.values[np.isfinite(col.values)]
            if not len(v):
                return
            lo, hi = float(v.min()), float(v.max())
            if not hi > lo:
                hi = lo + 1.0
            counts, edges = np.histogram(v, bins=HISTOGRAM_BINS, range=(lo, hi))
            x = (edges[:-1] + edges[1:]) / 2
            width = edges[1] - edges[0]
            levels = self.colouring.levels or (lo, hi)
            cmap = colour_map_rgb()
            keys = numeric_keys(x, *levels)
            brushes = [pg.mkBrush(*cmap[min(k, LEVELS - 1)]) for k in keys]
        self.bars = pg.BarGraphItem(x=x, height=counts, width=width, brushes=brushes, pen=pg.mkPen(None))
        self.histogram.addItem(self.bars)
        self.histogram.getPlotItem().getAxis("bottom").setLabel(col.label)
        self.histogram.autoRange()
        self._sync_filter()

    def _data_range(self) -> tuple[float, float] | None:
        col = self.measures.column()
        if col is None:
            return None
        if col.categorical:
            return (-0.5, len(col.categories) - 0.5)
        v = col.values[np.isfinite(col.values)]
        return (float(v.min()), float(v.max())) if len(v) else None

    def _on_filter_toggled(self, on: bool) -> None:
        if not on:
            self.measures.set_filter(None)
            return
        rng = self._data_range()
        if rng is None:
            with signals_blocked(self.filter_check):
                self.filter_check.setChecked(False)
            self.note.setText("There is nothing to filter on yet.")
            self.note.show()
            return
        self.set_filter_range(*rng)

    def set_filter_range(self, lo: float, hi: float) -> None:
        """Filter to ``[lo, hi]`` (as dragging the range does)."""
        self.measures.set_filter(lo, hi)

    def _on_region_settled(self) -> None:
        if self.region.isVisible() and self.filter_check.isChecked():
            lo, hi = self.region.getRegion()
            self.measures.set_filter(lo, hi)

    def _sync_filter(self, *args) -> None:
        rng = self.measures.filter_range
        with signals_blocked(self.filter_check), signals_blocked(self.hide_check):
            self.filter_check.setChecked(rng is not None)
            self.hide_check.setChecked(self.measures.hide_filtered)
        self.filter_check.setEnabled(self.measures.column() is not None)
        if rng is None:
            self.region.hide()
        else:
            with signals_blocked(self.region):
                self.region.setRegion(rng)
            self.region.show()
        self._update_count()

    def _update_count(self, *args) -> None:
        mask = self.map.filter_mask
        n = self.state.num_points
        self.count.setText("" if mask is None else f"{int(mask.sum()):,} of {n:,} points")

    # -- search -----------------------------------------------------------------------------------------
    def search(self, text: str) -> np.ndarray:
        """Find ``text`` (index, label or class name); mark the hits and centre on the first."""
        hits = self.measures.search(text)
        if not len(hits):
            self.search_result.setText(f"No data point matches {text!r}." if text.strip() else "")
            self.map.set_highlight([])
            return hits
        centre_and_mark(self.view, hits)
        self.search_result.setText(f"#{int(hits[0]):,}" if len(hits) == 1 else
                                   f"{len(hits):,} points; centred on #{int(hits[0]):,}")
        return hits

    def _on_search(self) -> None:
        self.search(self.search_edit.text())

    # -- CSV ----------------------------------------------------------------------------------------------
    def load_csv(self, path) -> bool:
        """Add the columns of a CSV keyed by index; a bad file opens an error dialog with its sentence."""
        try:
            names = self.measures.load_csv(path)
        except CSVError as exc:
            from explorer.ui.dialogs import show_error

            self.error_dialog = show_error(self, "The CSV cannot be used", str(exc))
            return False
        self.state.post_message("info", f"Added {len(names)} column(s) from {QtCore.QFileInfo(str(path)).fileName()}.")
        return True

    def _csv_dialog(self) -> None:
        path, _ = QtWidgets.QFileDialog.getOpenFileName(self, "Add columns from a CSV file", "", "CSV table (*.csv)")
        if path:
            self.load_csv(path)

    # -- the job ---------------------------------------------------------------------------------------------
    def _on_job_busy_changed(self, busy: bool) -> None:
        busy = self.job is not None and self.job.busy
        self.progress.setVisible(busy)
        self.cancel_button.setVisible(busy)
        self._update_note()

    def _on_job_progressed(self, text: str, fraction: float) -> None:
        if fraction < 0:
            self.progress.setRange(0, 0)
        else:
            self.progress.setRange(0, 1000)
            self.progress.setValue(int(fraction * 1000))
        self.progress.setFormat((text.rstrip("…") + " %p%") if fraction >= 0 else text)
