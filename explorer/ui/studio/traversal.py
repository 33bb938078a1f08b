"""Traversals: one slider per latent dimension and the traversal grid.

Sliders are sorted by KL (the dimensions the model uses first); collapsed dimensions —
whose posterior means barely vary over the data — are greyed and flagged. Moving a slider
edits ``studio.traversal.code`` and decodes it live; the grid shows each dimension swept
over ±span·σ around that code.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QComboBox, QDoubleSpinBox, QGridLayout, QHBoxLayout, QLabel, QPushButton,
                               QScrollArea, QSpinBox, QSplitter, QToolButton, QVBoxLayout,
                               QWidget)
from superqt import QLabeledDoubleSlider
from superqt.utils import signals_blocked

from explorer.ui.image_grid import ImageGrid
from explorer.ui.qt_utils import Connections, Deferred, WrappedLabel
from explorer.ui.studio.common import ImageView, LabelPicker, OperandPicker

MUTED_STYLE = "color: palette(placeholder-text);"
ROWS_PER_TURN = 3   # slider rows per event-loop turn, ~4.5 ms each (see TraversalPanel._rebuild_rows)


def _set_text(label: QLabel, text: str) -> None:
    if label.text() != text:
        label.setText(text)


class _DimRow:
    """Widgets of one dimension's row in the slider grid."""

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self.name = QLabel(f"z{dim}")
        self.kl = QLabel()
        self.kl.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        # Columns as wide as their widest text from the start: a KL that gains a digit or a
        # dimension that collapses at an epoch end would otherwise resize every slider.
        metrics = self.name.fontMetrics()
        self.name.setMinimumWidth(metrics.horizontalAdvance("z000 ⊘"))
        self.kl.setMinimumWidth(metrics.horizontalAdvance("000.00"))
        self.slider = QLabeledDoubleSlider(Qt.Orientation.Horizontal)
        self.slider.setDecimals(2)
        self.slider.setMinimumWidth(120)
        self.animate = QToolButton()
        self.animate.setText("▶")
        self.animate.setAutoRaise(True)
        self.animate.setToolTip(f"Animate z{dim} over its range in the player")

    def widgets(self):
        return (self.name, self.kl, self.slider, self.animate)


class TraversalPanel(QWidget):
    """Per-dimension sliders (sorted by KL) editing the traversal code, plus its grid."""

    def __init__(self, state, parent=None) -> None:
        super().__init__(parent)
        self._conn = Connections(self)
        self.state = state
        self.studio = state.studio
        self._rows: dict[int, _DimRow] = {}
        self._order: list[int] = []
        self._rows_pending = False
        self._grid_codes: np.ndarray | None = None
        self._more_rows = Deferred(self._rebuild_rows, self)
        self._redraw_timer = Deferred(self._redraw, self)

        self.picker = OperandPicker(state, actions=(("set", "Start from"),))
        self.pick_button = QPushButton("Pick on map")
        self.pick_button.setCheckable(True)
        self.pick_button.setToolTip("While on, a click on the map sets the code to edit")
        self.zero_button = QPushButton("Zero")
        self.zero_button.setToolTip("Reset every dimension to 0 (the prior mean)")
        self.label_picker = LabelPicker(state)

        self.view = ImageView(placeholder="The edited code decodes here.", minimum=96)
        self.slider_box = QWidget()
        self.slider_grid = QGridLayout(self.slider_box)
        self.slider_grid.setContentsMargins(2, 2, 2, 2)
        self.slider_grid.setVerticalSpacing(2)
        self.slider_grid.setColumnStretch(2, 1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.slider_box)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.dims_info = WrappedLabel()

        self.span_spin = QDoubleSpinBox()
        self.span_spin.setRange(0.5, 10.0)
        self.span_spin.setSingleStep(0.5)
        self.span_spin.setPrefix("±")
        self.span_spin.setSuffix(" σ")
        self.span_spin.setToolTip("Sweep and slider range around the center, in standard deviations")
        self.steps_spin = QSpinBox()
        self.steps_spin.setRange(3, 25)
        self.steps_spin.setSuffix(" steps")
        self.sigma_combo = QComboBox()
        self.sigma_combo.addItem("prior σ", "prior")
        self.sigma_combo.addItem("data σ", "data")
        self.sigma_combo.setToolTip("Center and σ of the sweep: the prior N(0, 1), or each dimension's spread over the data")
        self.rows_spin = QSpinBox()
        self.rows_spin.setRange(1, 512)
        self.rows_spin.setPrefix("top ")
        self.rows_spin.setToolTip("How many dimensions (by KL) the grid shows")
        self.grid = ImageGrid(placeholder="The traversal grid shows here.")
        self.grid.setToolTip("Each row sweeps one dimension; click a tile to edit from there")
        self.grid.setMinimumHeight(140)

        top = QHBoxLayout()
        top.addWidget(self.picker, 1)
        second = QHBoxLayout()
        second.addWidget(self.pick_button)
        second.addWidget(self.zero_button)
        second.addWidget(self.label_picker, 1)
        second.addStretch(0)
        upper = QWidget()
        upper_layout = QHBoxLayout(upper)
        upper_layout.setContentsMargins(0, 0, 0, 0)
        left = QVBoxLayout()
        left.addWidget(self.view, 1)
        upper_layout.addLayout(left, 2)
        right = QVBoxLayout()
        right.addWidget(self.dims_info)
        right.addWidget(scroll, 1)
        upper_layout.addLayout(right, 3)
        options = QHBoxLayout()
        for w in (self.span_spin, self.steps_spin, self.sigma_combo, self.rows_spin):
            options.addWidget(w)
        options.addStretch(1)
        lower = QWidget()
        lower_layout = QVBoxLayout(lower)
        lower_layout.setContentsMargins(0, 0, 0, 0)
        lower_layout.addLayout(options)
        lower_layout.addWidget(self.grid, 1)
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(upper)
        splitter.addWidget(lower)
        splitter.setStretchFactor(0, 2)
        splitter.setStretchFactor(1, 3)
        splitter.setChildrenCollapsible(False)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(top)
        layout.addLayout(second)
        layout.addWidget(splitter, 1)

        self.picker.picked.connect(lambda k: self.studio.traversal.set_code(k.z))
        self.pick_button.toggled.connect(self._on_pick_toggled)
        self.zero_button.clicked.connect(self._on_zero)
        self.label_picker.animate_requested.connect(self._on_animate_labels)
        self.span_spin.valueChanged.connect(lambda v: self.studio.traversal.set_options(span=v))
        self.steps_spin.valueChanged.connect(lambda v: self.studio.traversal.set_options(steps=v))
        self.sigma_combo.currentIndexChanged.connect(
            lambda: self.studio.traversal.set_options(sigma=self.sigma_combo.currentData()))
        self.rows_spin.valueChanged.connect(lambda v: self.studio.traversal.set_options(max_dims=v))
        self.grid.tile_clicked.connect(self._on_grid_tile_clicked)

        self._conn.connect(self.studio.traversal.changed, self._on_studio_traversal_changed)
        self._conn.connect(self.studio.picking.target_changed, self._on_studio_pick_target_changed)
        self._conn.connect(self.studio.context.decode_label_changed, self._on_studio_traversal_changed)
        self._conn.connect(state.model_changed, self._on_document_changed)
        self._conn.connect(state.codes_changed, self._on_document_changed)
        self._conn.connect(state.history_changed, self._on_document_changed)
        self._conn.connect(state.weights_changed, self._on_studio_traversal_changed)
        self._rebuild_rows()

    # -- slider rows ---------------------------------------------------------------------------
    def _on_document_changed(self, *_) -> None:
        # The turn that switches the model already redraws every panel: new rows wait.
        self._rebuild_rows(build=False)

    def _rebuild_rows(self, *_, build: bool = True) -> None:
        """One row per dimension, in KL order (rebuilt when the model or its codes change).

        Rows of dimensions that remain are kept: their texts are updated in place and, if
        the KL order changed, they are moved to their new grid rows. Missing rows are
        created at most :data:`ROWS_PER_TURN` per event-loop turn, and none in the turn of a
        change of model or codes (``build=False``): a row costs 2-7 ms (its labelled slider is
        four widgets), and a new 20-dimension model replacing a 2-D one made the window stall
        for 40-130 ms right after Train was clicked. Nor while the panel cannot be seen (a dock
        behind another's tab, or closed): Qt lays out and shows the widgets of such a dock all
        the same, one queued call per widget. The rows it skipped are built once it is painted.
        """
        s = self.studio
        d = s.context.latent_dim or 0
        wanted = [int(i) for i in s.traversal.dimension_order()] if d else []
        kl = s.traversal.kl_values()
        collapsed = s.traversal.collapsed_mask() if d else np.zeros(0, bool)
        for dim in set(self._rows) - set(wanted):
            for w in self._rows.pop(dim).widgets():
                self.slider_grid.removeWidget(w)
                w.deleteLater()
            self._order = []
        # While a continuation is pending, this turn has had its rows (a model change emits
        # several signals in one turn).
        unseen = self.visibleRegion().isEmpty()
        batch = 0 if self._more_rows.isActive() or not build or unseen else ROWS_PER_TURN
        for dim in [dim for dim in wanted if dim not in self._rows][:batch]:
            row = _DimRow(dim)
            row.slider.valueChanged.connect(lambda v, dim=dim: self.studio.traversal.set_value(dim, v))
            row.animate.clicked.connect(lambda _=False, dim=dim: self._on_animate_dim(dim))
            self._rows[dim] = row
            self._order = []
        order = [dim for dim in wanted if dim in self._rows]
        self._rows_pending = len(order) < len(wanted)
        if self._rows_pending and not unseen:
            self._more_rows.start()   # the rest on the next turns
        if order != self._order:
            for dim in order:
                for w in self._rows[dim].widgets():
                    self.slider_grid.removeWidget(w)
            for r, dim in enumerate(order):
                for c, w in enumerate(self._rows[dim].widgets()):
                    self.slider_grid.addWidget(w, r, c)
            for r in range(self.slider_grid.rowCount()):
                self.slider_grid.setRowStretch(r, 0)
            self.slider_grid.setRowStretch(len(order), 1)   # rows stay at the top
        self._order = order
        for dim in order:
            self._update_row_texts(self._rows[dim], kl, bool(collapsed[dim]))
        n_collapsed = int(collapsed.sum()) if d else 0
        if not d:
            self.dims_info.setText("Load or train a model to edit its latent code.")
        else:
            text = f"{d} dimensions, sorted by KL" if kl is not None else f"{d} dimensions"
            if n_collapsed:
                text += f"; {n_collapsed} collapsed (⊘, greyed)"
            self.dims_info.setText(text + ".")
        with signals_blocked(self.rows_spin):
            self.rows_spin.setMaximum(max(1, d))
        self._on_studio_traversal_changed()

    def paintEvent(self, event) -> None:
        super().paintEvent(event)
        if self._rows_pending and not self._more_rows.isActive():
            self._more_rows.start()   # seen again: the rows skipped meanwhile

    @staticmethod
    def _update_row_texts(row: _DimRow, kl, collapsed: bool) -> None:
        dim = row.dim
        _set_text(row.kl, f"{kl[dim]:.2f}" if kl is not None else "")
        row.kl.setToolTip(f"KL of z{dim}: {kl[dim]:.3f} nats per image" if kl is not None else "")
        if collapsed:
            _set_text(row.name, f"z{dim} ⊘")
            row.name.setToolTip(f"z{dim} is collapsed: its posterior means barely vary over the data, "
                                "so the decoder ignores it")
        else:
            _set_text(row.name, f"z{dim}")
            row.name.setToolTip(f"Latent dimension {dim}")
        style = MUTED_STYLE if collapsed else ""
        for w in (row.name, row.kl):
            if w.styleSheet() != style:
                w.setStyleSheet(style)

    # -- user input ----------------------------------------------------------------------------
    def _on_pick_toggled(self, on: bool) -> None:
        if on:
            self.studio.picking.set_target("traversal")
        elif self.studio.picking.target == "traversal":
            self.studio.picking.set_target(None)

    def _on_studio_pick_target_changed(self, target) -> None:
        with signals_blocked(self.pick_button):
            self.pick_button.setChecked(target == "traversal")

    def _on_zero(self) -> None:
        if self.studio.context.latent_dim:
            self.studio.traversal.set_code(np.zeros(self.studio.context.latent_dim, np.float32))

    def _on_animate_dim(self, dim: int) -> None:
        try:
            self.studio.traversal.animate(dim)
        except ValueError as exc:
            self.state.post_message("warning", str(exc))

    def _on_animate_labels(self) -> None:
        try:
            self.studio.labels.animate(self.studio.traversal.code, name="this code")
        except ValueError as exc:
            self.state.post_message("warning", str(exc))

    def _on_grid_tile_clicked(self, tile: int) -> None:
        if self._grid_codes is not None:
            flat = self._grid_codes.reshape(-1, self._grid_codes.shape[-1])
            if 0 <= tile < len(flat):
                self.studio.traversal.set_code(flat[tile])

    # -- state → widgets ---------------------------------------------------------------------------
    def _on_studio_traversal_changed(self, *_) -> None:
        # Latest wins, on the next event-loop turn: an epoch end asks three times (weights,
        # codes, the traversal's own change), and each redraw decodes the whole grid.
        self._redraw_timer.start()

    def _redraw(self) -> None:
        s = self.studio
        with signals_blocked(self.span_spin):
            self.span_spin.setValue(s.traversal.span)
        with signals_blocked(self.steps_spin):
            self.steps_spin.setValue(s.traversal.steps)
        with signals_blocked(self.sigma_combo):
            self.sigma_combo.setCurrentIndex(self.sigma_combo.findData(s.traversal.sigma))
        d = s.context.latent_dim or 0
        with signals_blocked(self.rows_spin):
            self.rows_spin.setValue(min(d, s.traversal.max_dims or d) if d else 1)
        if not d or not s.context.can_decode() or set(self._rows) != set(range(d)):
            self.view.set_image(None, caption="")
            self.grid.clear()
            self._grid_codes = None
            return
        z = s.traversal.code if s.traversal.code is not None else np.zeros(d, np.float32)
        for dim, row in self._rows.items():
            lo, hi = s.traversal.slider_range(dim)
            with signals_blocked(row.slider):
                row.slider.setRange(lo, hi)
                row.slider.setValue(float(z[dim]))
        self.view.set_image(s.context.decode(z)[0], caption=self._code_caption(z))
        self._grid_codes = s.traversal.grid_codes()
        images = s.context.decode(self._grid_codes.reshape(-1, d))
        steps = self._grid_codes.shape[1]
        self.grid.set_images(images, columns=steps, row_labels=s.traversal.row_captions())
        self.grid.set_caption(f"Each row: one dimension from −{s.traversal.span:g}σ to +{s.traversal.span:g}σ "
                              f"({'prior' if s.traversal.sigma == 'prior' else 'data'} σ), other dimensions fixed")

    def _code_caption(self, z) -> str:
        order = self._order or list(range(len(z)))
        shown = "  ".join(f"z{d} {z[d]:+.2f}" for d in order[:3])
        return shown + ("  …" if len(z) > 3 else "")
