"""KL per latent dimension as bars: which units carry information and which collapsed.

A unit whose average KL(q(z_i|x) ‖ p(z_i)) stays near zero ignores the input (posterior
collapse); it is drawn grey. The dashed line marks the threshold used to count active
units. While training, bars follow the running training KL; otherwise they show the
latest test evaluation from the history.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, Qt, QTimer
from PySide6.QtWidgets import QVBoxLayout, QWidget

from explorer.ui.qt_utils import WrappedLabel
from explorer.ui.theme import plot_colors, series_color

__all__ = ["KLBars", "ACTIVE_KL_THRESHOLD"]

# Same rule as vae_core.metrics.active_units (nats).
ACTIVE_KL_THRESHOLD = 0.01
REDRAW_INTERVAL_MS = 250


#: Width a dimension's label needs on the axis ("z10" and the gap to the next), in pixels.
TICK_LABEL_PX = 26
#: The y axis and the plot's margins, in pixels.
AXIS_MARGIN_PX = 60


class KLBars(QWidget):
    """Per-dimension KL of the current model, following ``state``."""

    def __init__(self, state, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.values: np.ndarray | None = None
        self.labelled: list[int] = []   # the dimensions whose bar has a label on the axis
        self.source = ""
        self.summary = WrappedLabel()
        self.summary.setToolTip("A unit is active when its average KL exceeds "
                                f"{ACTIVE_KL_THRESHOLD:g} nats; collapsed units are grey.")
        self.view = pg.PlotWidget()
        self.view.setToolTip("KL divergence of each latent dimension from the prior, in nats per image. "
                             "Tall bars: dimensions the model uses. Grey bars near zero: collapsed dimensions.")
        self.axes = self.view.getPlotItem()
        self.axes.setLabel("left", "KL (nats)")
        self.axes.setLabel("bottom", "latent dimension")
        self.axes.showGrid(y=True, alpha=0.15)
        self.axes.setMouseEnabled(x=False, y=False)
        self.axes.hideButtons()
        self.bars = pg.BarGraphItem(x=[], height=[], width=0.7)
        self.axes.addItem(self.bars)
        self.threshold = pg.InfiniteLine(pos=ACTIVE_KL_THRESHOLD, angle=0, movable=False)
        self.axes.addItem(self.threshold)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 4, 6, 4)
        layout.setSpacing(2)
        layout.addWidget(self.summary)
        layout.addWidget(self.view, 1)
        self._pending: np.ndarray | None = None
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(REDRAW_INTERVAL_MS)
        self._timer.timeout.connect(self._flush)
        self._apply_colors()

        state.model_changed.connect(self._on_state_model_changed)
        state.history_changed.connect(self._on_state_history_changed)
        state.codes_changed.connect(self._on_state_codes_changed)
        state.training_progressed.connect(self._on_state_training_progressed)
        self._show_history()

    # -- API --------------------------------------------------------------------------------------
    def set_values(self, kl_per_dim, source: str = "") -> None:
        """Show ``kl_per_dim`` (nats per dimension); ``source`` says where it comes from."""
        if kl_per_dim is None:
            self.values = None
            self.labelled = []
            self.bars.setOpts(x=[], height=[], brushes=[])
            self.summary.setText("No KL values yet: train the model or open a checkpoint.")
            return
        values = np.nan_to_num(np.asarray(kl_per_dim, dtype=float), nan=0.0)
        self.values, self.source = values, source
        d = len(values)
        active = values > ACTIVE_KL_THRESHOLD
        brushes = [pg.mkBrush(series_color("active" if a else "collapsed", self.palette())) for a in active]
        self.bars.setOpts(x=np.arange(d), height=values, width=0.7 if d > 1 else 0.5, brushes=brushes,
                          pens=[pg.mkPen(None)] * d)
        self._label_dimensions()
        self.axes.setXRange(-0.6, d - 0.4, padding=0)
        top = float(values.max()) if d else 1.0
        self.axes.setYRange(0, max(top * 1.1, ACTIVE_KL_THRESHOLD * 5), padding=0)
        n_active = int(active.sum())
        where = f" ({source})" if source else ""
        collapsed = d - n_active
        tail = f", {collapsed} collapsed" if collapsed else ""
        self.summary.setText(f"<b>{n_active} of {d}</b> dimensions above {ACTIVE_KL_THRESHOLD:g} nats of KL{tail}{where}")

    def tick_step(self) -> int:
        """Every how many dimensions a bar is labelled: as often as the labels fit side by side."""
        d = 0 if self.values is None else len(self.values)
        # The widget's own width, less the y axis and margins: the plot's inner layout is
        # updated lazily and may not have followed a resize yet.
        per_bar = max(1.0, self.width() - AXIS_MARGIN_PX) / max(d, 1)
        wanted = TICK_LABEL_PX / per_bar
        return next(step for step in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 10**9) if step >= wanted)

    def _label_dimensions(self) -> None:
        d = 0 if self.values is None else len(self.values)
        step = self.tick_step()
        self.labelled = list(range(0, d, step))
        self.axes.getAxis("bottom").setTicks([[(i, f"z{i}") for i in self.labelled], []] if d else None)

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().resizeEvent(event)
        if self.values is not None:
            self._label_dimensions()

    @property
    def active_count(self) -> int:
        return int((self.values > ACTIVE_KL_THRESHOLD).sum()) if self.values is not None else 0

    # -- state events ---------------------------------------------------------------------------------
    def _show_history(self) -> None:
        kl = self.state.kl_per_dim
        if kl is not None:
            self.set_values(kl, "test set")
        elif self.state.kl_of_another_code:
            self.set_values(None)
            self.summary.setText("The training history measured the KL of another layer than the map shows; "
                                 "this layer's appears after the next training epoch.")
        elif self.state.model is not None and self.state.limitation("train") is not None:
            # Trained elsewhere, no history here: the posteriors of the encoded data, when known.
            reason = self.state.limitation("logvar")
            self.set_values(None if reason else self.state.code_stat("kl"), "posteriors of the data")
            if reason:
                self.summary.setText(reason)
            elif self.values is None:
                self.summary.setText("KL per dimension shows once the data is encoded.")
        elif self.state.model is not None:
            self.set_values(np.zeros(self.state.model.latent_dim), "untrained")
        else:
            self.set_values(None)

    def _on_state_codes_changed(self) -> None:
        if not self.state.is_training and self.state.kl_per_dim is None:
            self._show_history()

    def _on_state_model_changed(self, _model) -> None:
        self._pending = None
        self._show_history()

    def _on_state_history_changed(self) -> None:
        if not self.state.is_training:
            self._show_history()

    def _on_state_training_progressed(self, progress) -> None:
        if progress.kind == "epoch" and progress.test and progress.test.get("kl_per_dim"):
            self._pending = None
            self.set_values(progress.test["kl_per_dim"], f"test set, epoch {progress.epoch + 1}")
        elif progress.kl_per_dim:
            self._pending = np.asarray(progress.kl_per_dim)
            if not self._timer.isActive():
                self._timer.start()

    def _flush(self) -> None:
        if self._pending is not None:
            progress = self.state.last_progress
            epoch = f", epoch {progress.epoch + 1}" if progress is not None else ""
            self.set_values(self._pending, f"training batches{epoch}")
            self._pending = None

    # -- look ---------------------------------------------------------------------------------------
    def _apply_colors(self) -> None:
        colors = plot_colors(self.palette())
        self.view.setBackground(colors["background"])
        for side in ("left", "bottom"):
            axis = self.axes.getAxis(side)
            axis.setPen(pg.mkPen(colors["muted"]))
            axis.setTextPen(pg.mkPen(colors["foreground"]))
        self.threshold.setPen(pg.mkPen(colors["muted"], style=Qt.PenStyle.DashLine))
        if self.values is not None:
            self.set_values(self.values, self.source)

    def changeEvent(self, event) -> None:  # noqa: N802 - Qt override
        if event.type() == QEvent.Type.PaletteChange:
            self._apply_colors()
        super().changeEvent(event)
