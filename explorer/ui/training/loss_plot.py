"""Live loss curves: training loss, reconstruction and KL as batches come, test ELBO per epoch.

Two pyqtgraph plots share the epoch axis: the top one the negative ELBO and its
reconstruction term, the bottom one the KL term (it is much smaller, so it gets its own
scale). Each objective's and model's own terms get curves of their own as soon as they
appear in the reports or the history (:data:`TERMS`): the IWAE run's single-sample
−ELBO on the top plot, β-TCVAE's mutual information, total correlation and
dimension-wise KL beside the KL, and a VAE/GAN's adversarial terms on a third plot that
exists only while there are such terms. Live training curves show the mean loss of the batches between two reports
(lightly smoothed); test curves one point per epoch. Points arrive at up to ~10 per second from the training worker; redraws are
throttled to 10 Hz and reuse the same ``PlotDataItem`` objects (``setData``).
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, Qt, QTimer
from PySide6.QtWidgets import QVBoxLayout, QWidget

from explorer.ui.qt_utils import Deferred, is_dark
from explorer.ui.theme import plot_colors, series_color

__all__ = ["LossPlot"]

# name -> (label, plot row, history key, live key, is per-epoch test metric)
_SERIES = {
    "loss": ("Train loss (−ELBO)", 0, "train_loss", "loss", False),
    "recon": ("Train reconstruction", 0, "train_recon", "recon", False),
    "test": ("Test −ELBO", 0, "test_neg_elbo", None, True),
    "kl": ("Train KL", 1, "train_kl", "kl", False),
    "test_kl": ("Test KL", 1, "test_kl", None, True),
}
#: An objective's or model's own terms: name -> (label, plot row, light colour, dark colour).
#: Row 2 is the third plot (adversarial and any term not listed here).
TERMS = {
    "neg_elbo": ("Train −ELBO (one sample)", 0, "#00838f", "#4dd0e1"),
    "mi": ("Train mutual information", 1, "#8e24aa", "#ce93d8"),
    "tc": ("Train total correlation", 1, "#d81b60", "#f48fb1"),
    "dim_kl": ("Train dimension-wise KL", 1, "#6d4c41", "#bcaaa4"),
    "gan": ("Train generator (GAN)", 2, "#5e35b1", "#b39ddb"),
    "disc": ("Train discriminator", 2, "#616161", "#bdbdbd"),
    "feature": ("Train feature reconstruction", 2, "#f9a825", "#ffe082"),
}
#: Report and history entries that are not loss terms.
NOT_TERMS = {"loss", "recon", "kl", "beta"}
#: The loss curve's legend per objective.
LOSS_LABELS = {"elbo": "Train loss (−ELBO)", "iwae": "Train loss (−IWAE bound)", "tcvae": "Train loss (β-TCVAE)"}
REDRAW_INTERVAL_MS = 100
MAX_MARKERS = 40
SMOOTHING = 0.3      # weight of the newest interval in the live curves' moving average


class LossPlot(QWidget):
    """Loss curves of the current model, following ``state`` (an :class:`ExplorerState`)."""

    def __init__(self, state, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self._live: dict[str, list[float]] = {"x": [], "loss": [], "recon": [], "kl": []}
        self._live_terms: dict[str, tuple[list[float], list[float]]] = {}   # term -> live (x, y)
        self._previous: tuple | None = None   # (epoch, batches seen, running means) of the last report
        self._smooth: dict[str, float] = {}
        self._run_start_epoch = 0
        self._redraws = 0
        self.view = pg.GraphicsLayoutWidget()
        self.view.setToolTip("Loss per image in nats. Drag to pan, scroll to zoom, right-click for options; "
                             "double-click to fit the curves.")
        # One legend for both plots, in a row of its own so it never hides a curve.
        self.legend = pg.LegendItem(colCount=5, labelTextSize="8pt", horSpacing=18, verSpacing=-4)
        self.view.addItem(self.legend, row=0, col=0)
        self.loss_axes = self.view.addPlot(row=1, col=0)
        self.kl_axes = self.view.addPlot(row=2, col=0)
        self.kl_axes.setXLink(self.loss_axes)
        # The third plot joins the layout only while some term needs it.
        self.term_axes = pg.PlotItem()
        self.term_axes.setXLink(self.loss_axes)
        self.term_axes.setLabel("left", "terms")
        self._term_axes_shown = False
        self.loss_axes.setLabel("left", "−ELBO")
        self.kl_axes.setLabel("left", "KL")
        self.setMinimumHeight(160)
        self.kl_axes.setLabel("bottom", "epoch")
        self.view.ci.layout.setRowStretchFactor(0, 0)
        self.view.ci.layout.setRowStretchFactor(1, 3)
        self.view.ci.layout.setRowStretchFactor(2, 2)
        self.view.ci.layout.setContentsMargins(4, 0, 8, 4)
        self.curves: dict[str, pg.PlotDataItem] = {}
        self._term_names: list[str] = []
        for name, (label, row, *_rest, is_test) in _SERIES.items():
            axes = self.loss_axes if row == 0 else self.kl_axes
            curve = axes.plot([], [])
            self.legend.addItem(curve, label)
            self.curves[name] = curve
        # Fit the y axes to training after its first steps (the first losses are huge and would
        # flatten the rest), until the user zooms by hand; the "A" button brings the fit back.
        self._auto_y = True
        for axes in (self.loss_axes, self.kl_axes, self.term_axes):
            axes.getViewBox().sigRangeChangedManually.connect(self._on_view_range_changed_manually)
            axes.autoBtn.clicked.connect(self._on_auto_button_clicked)
        for axes in (self.loss_axes, self.kl_axes, self.term_axes):
            axes.showGrid(x=True, y=True, alpha=0.15)
            axes.setMenuEnabled(True)
            axes.getViewBox().setMouseEnabled(x=True, y=True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.view)

        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(REDRAW_INTERVAL_MS)
        self._timer.timeout.connect(self.redraw)
        # A new model or run redraws on the next turn: the turn that switches the model
        # already updates every panel.
        self._soon = Deferred(self.redraw, self)
        self._apply_colors()

        state.history_changed.connect(self._on_state_history_changed)
        state.model_changed.connect(self._on_state_model_changed)
        state.training_started.connect(self._on_state_training_started)
        state.training_progressed.connect(self._on_state_training_progressed)
        self.redraw()

    # -- data -----------------------------------------------------------------------------------
    def series(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """The x (epochs) and y values a curve shows now."""
        x, y = self.curves[name].getData()
        return (np.zeros(0), np.zeros(0)) if x is None else (np.asarray(x), np.asarray(y))

    @property
    def terms(self) -> list[str]:
        """The objective's or model's own terms that have curves now (e.g. ``["mi", "tc", "dim_kl"]``)."""
        return [name for name in self.curves if name in self._term_names]

    @property
    def redraw_count(self) -> int:
        return self._redraws

    def _history_series(self, key: str, upto: int | None = None) -> tuple[list[float], list[float]]:
        xs, ys = [], []
        for entry in self.state.history:
            epoch = entry.get("epoch")
            value = entry.get(key)
            if epoch is None or value is None or not np.isfinite(value):
                continue
            if upto is not None and epoch > upto:
                continue
            xs.append(float(epoch))
            ys.append(float(value))
        return xs, ys

    def _current_terms(self) -> list[str]:
        names: list[str] = []
        for entry in self.state.history:
            names += [k[6:] for k in entry if k.startswith("train_") and k[6:] not in NOT_TERMS]
        names += list(self._live_terms)
        return list(dict.fromkeys(names))

    def _sync_term_curves(self) -> None:
        wanted = self._current_terms()
        for name in [n for n in self._term_names if n not in wanted]:
            curve = self.curves.pop(name)
            self.legend.removeItem(curve)
            for axes in (self.loss_axes, self.kl_axes, self.term_axes):
                if curve in axes.items:
                    axes.removeItem(curve)
            self._term_names.remove(name)
        for name in wanted:
            if name in self.curves:
                continue
            label, row = TERMS.get(name, (f"Train {name}", 2))[:2]
            axes = (self.loss_axes, self.kl_axes, self.term_axes)[row]
            curve = axes.plot([], [])
            self.legend.addItem(curve, label)
            self.curves[name] = curve
            self._term_names.append(name)
            self._color_term(name, curve)
        needs_third = any(TERMS.get(n, ("", 2))[1] == 2 for n in self._term_names)
        if needs_third != self._term_axes_shown:
            if needs_third:
                self.view.addItem(self.term_axes, row=3, col=0)
                self.view.ci.layout.setRowStretchFactor(3, 2)
                self.kl_axes.setLabel("bottom", None)
                self.term_axes.setLabel("bottom", "epoch")
            else:
                self.view.removeItem(self.term_axes)
                self.kl_axes.setLabel("bottom", "epoch")
            self._term_axes_shown = needs_third

    def _color_term(self, name: str, curve) -> None:
        light, dark = TERMS.get(name, ("", 0, "#455a64", "#90a4ae"))[2:]
        curve.setPen(pg.mkPen(dark if is_dark(self.palette()) else light, width=1.5))

    def redraw(self) -> None:
        """Push the current data into the curves (called at most every 100 ms while training)."""
        self._redraws += 1
        live_x = self._live["x"]
        self._sync_term_curves()
        objective = (self.state.train_config or {}).get("objective", "elbo")
        label = self.legend.getLabel(self.curves["loss"])
        if label is not None:
            label.setText(LOSS_LABELS.get(objective, "Train loss"))
        upto = self._run_start_epoch if live_x else None
        for name in self._term_names:
            xs, ys = self._history_series(f"train_{name}", upto)
            live = self._live_terms.get(name)
            if live:
                xs, ys = xs + live[0], ys + live[1]
            self.curves[name].setData(np.asarray(xs, dtype=float), np.asarray(ys, dtype=float))
        for name, (_label, _row, hist_key, live_key, is_test) in _SERIES.items():
            if is_test or live_key is None:
                xs, ys = self._history_series(hist_key)
            else:
                # Epochs before this run come from the history, this run from its live reports.
                upto = self._run_start_epoch if live_x else None
                xs, ys = self._history_series(hist_key, upto)
                if live_x:
                    xs = xs + live_x
                    ys = ys + self._live[live_key]
            if is_test:  # markers while they stay readable, a plain line for long histories
                self.curves[name].setSymbol("o" if len(xs) <= MAX_MARKERS else None)
                self.curves[name].setSymbolSize(6)
            self.curves[name].setData(np.asarray(xs, dtype=float), np.asarray(ys, dtype=float))
        has_data = bool(self.state.history) or bool(live_x)
        self.loss_axes.setTitle(None if has_data else "Loss curves appear here while a model trains")
        if self._auto_y and has_data:
            self._fit_y(self.loss_axes, ("loss", "recon", "test"))
            self._fit_y(self.kl_axes, ("kl", "test_kl", *(n for n in self._term_names if TERMS.get(n, ("", 2))[1] == 1)))
            if self._term_axes_shown:
                self._fit_y(self.term_axes, [n for n in self._term_names if TERMS.get(n, ("", 2))[1] == 2])

    def _fit_y(self, axes, names) -> None:
        xs = [self.series(n)[0] for n in names]
        ys = [self.series(n)[1] for n in names]
        x_all = np.concatenate(xs) if xs else np.zeros(0)
        if not len(x_all):
            return
        lo_x, hi_x = float(np.nanmin(x_all)), float(np.nanmax(x_all))
        skip = lo_x + 0.1 * (hi_x - lo_x) if hi_x - lo_x >= 2 else -np.inf  # ignore the first 10% of training
        values = np.concatenate([y[(x >= skip) & np.isfinite(y)] for x, y in zip(xs, ys)])
        if not len(values):
            return
        lo, hi = float(values.min()), float(values.max())
        pad = max((hi - lo) * 0.08, 1e-3 * max(1.0, abs(hi)))
        live = self.state.is_training   # room for the next reports; a finished history fits exactly
        if axes is self.loss_axes:   # the others follow its x axis
            _keep_or_set(axes.getViewBox(), 0, lo_x, hi_x, after=0.5 * max(hi_x - lo_x, 0.05) if live else 0.0,
                         keep=live)
        _keep_or_set(axes.getViewBox(), 1, lo - pad, hi + pad, after=0.25 * (hi - lo) if live else 0.0, keep=live)

    def _on_view_range_changed_manually(self, *_args) -> None:
        self._auto_y = False

    def _on_auto_button_clicked(self) -> None:
        self._auto_y = True
        self.redraw()

    def _schedule_redraw(self) -> None:
        if not self._timer.isActive():
            self._timer.start()

    # -- state events ------------------------------------------------------------------------------
    def _on_state_history_changed(self) -> None:
        self._schedule_redraw()

    def _on_state_model_changed(self, _model) -> None:
        if not self.state.is_training:
            self._clear_live()
        self._soon.start()

    def _on_state_training_started(self, _config) -> None:
        self._clear_live()
        self._run_start_epoch = self.state.epochs_trained
        self._soon.start()

    def _on_state_training_progressed(self, progress) -> None:
        # Reports carry running means since the start of the epoch; plotting them would draw
        # a sawtooth. The mean over the batches since the previous report is what we want:
        #   (mean_now·n_now − mean_before·n_before) / (n_now − n_before)   with n in batches.
        spe = max(1, progress.steps_per_epoch)
        n = progress.step - progress.epoch * spe
        epoch, n_before, before = self._previous if self._previous else (None, 0, {})
        if epoch != progress.epoch:
            n_before, before = 0, {}
        if n <= n_before:
            return
        x = progress.step / spe
        self._live["x"].append(x)
        keys = ["loss", "recon", "kl"] + [k for k in progress.losses if k not in NOT_TERMS]
        for key in keys:
            now = float(progress.losses.get(key, np.nan))
            value = (now * n - before.get(key, 0.0) * n_before) / (n - n_before)
            # A light exponential moving average: a few batches per report are noisy.
            previous = self._smooth.get(key)
            value = value if previous is None else previous + SMOOTHING * (value - previous)
            self._smooth[key] = value
            if key in self._live:
                self._live[key].append(value)
            else:
                xs, ys = self._live_terms.setdefault(key, ([], []))
                xs.append(x)
                ys.append(value)
        self._previous = (progress.epoch, n, dict(progress.losses))
        self._schedule_redraw()

    def _clear_live(self) -> None:
        for values in self._live.values():
            values.clear()
        self._live_terms = {}
        self._previous = None
        self._smooth = {}

    # -- look ------------------------------------------------------------------------------------
    def _apply_colors(self) -> None:
        colors = plot_colors(self.palette())
        self.view.setBackground(colors["background"])
        for axes in (self.loss_axes, self.kl_axes, self.term_axes):
            for side in ("left", "bottom"):
                axis = axes.getAxis(side)
                axis.setPen(pg.mkPen(colors["muted"]))
                axis.setTextPen(pg.mkPen(colors["foreground"]))
            axes.titleLabel.setAttr("color", colors["foreground"])
        widths = {"loss": 2.0, "recon": 1.5, "test": 2.0, "kl": 2.0, "test_kl": 2.0}
        colour_names = {"loss": "loss", "recon": "recon", "test": "test", "kl": "kl", "test_kl": "test"}
        for name, curve in self.curves.items():
            if name in self._term_names:
                self._color_term(name, curve)
                continue
            color = series_color(colour_names[name], self.palette())
            style = Qt.PenStyle.DashLine if name == "recon" else Qt.PenStyle.SolidLine
            curve.setPen(pg.mkPen(color, width=widths[name], style=style))
            if _SERIES[name][4]:
                curve.setSymbolBrush(pg.mkBrush(color))
                curve.setSymbolPen(pg.mkPen(colors["background"]))
        self.legend.setLabelTextColor(colors["foreground"])
        self.legend.setBrush(pg.mkBrush(None))
        self.legend.setPen(pg.mkPen(None))

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt override
        # As many legend columns as fit: 5 in a wide dock, fewer in a narrow one.
        width = event.size().width()
        columns = 5 if width >= 760 else 3 if width >= 430 else 2
        if self.legend.columnCount != columns:
            self.legend.setColumnCount(columns)
        super().resizeEvent(event)

    def changeEvent(self, event) -> None:  # noqa: N802 - Qt override
        if event.type() == QEvent.Type.PaletteChange:
            self._apply_colors()
            self.redraw()
        super().changeEvent(event)


def _keep_or_set(view, axis: int, lo: float, hi: float, *, after: float, keep: bool = True) -> None:
    """Show at least ``[lo, hi]`` on ``axis`` (0: x, 1: y) of ``view``; with ``keep``, keep the
    range it has while that covers them and is at most twice as wide.

    A new range makes pyqtgraph lay out the axis' ticks and text again, the most expensive part
    of a repaint; moved to every report it cost most of the plot's time while training. A range
    that has to change leaves ``after`` of room beyond ``hi`` (and below ``lo`` on y), so the
    next reports fit in it.
    """
    (now_lo, now_hi) = view.viewRange()[axis]
    if keep and now_lo <= lo and hi <= now_hi and now_hi - now_lo <= 2 * max(hi - lo + 2 * after, 1e-12):
        return
    if axis == 0:
        view.setXRange(lo, hi + after, padding=0)
    else:
        view.setYRange(lo - after, hi + after, padding=0)
