"""The holes overlay: where the prior N(0, I) has mass and the encoded data has none.

State and mathematics: :class:`explorer.state.posterior.HolesOverlay` and
:func:`vae_core.latent.holes_map`. The grid (128×128 cells, up to 4,000 posteriors in the
mixture: one to two seconds on one core) is computed in a worker (:class:`HolesJob`) whenever the
overlay is on and the projection or the codes change; the view only shows the image.

Colours: ``log p(z) − log q(z)`` clipped to ±8 nats. Dark shade (light in the dark theme)
where the prior is denser than the data's aggregate posterior (holes: random samples land
there, off the data): no class colour is grey-black, so a hole never reads as a class. Faint
blue where the data is denser than the prior, transparent where they agree. Only the region where the prior
has its mass is shaded (its 99% region, faded out from 98%): far outside it both densities
are negligible, and their ratio, though large, says nothing about where samples land.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

from explorer.jobs.training import Task
from explorer.ui.qt_utils import Connections, is_dark

HOLE_RGB = {False: (25, 25, 30), True: (245, 245, 240)}   # by dark theme: prior mass without data
DATA_RGB = (30, 136, 229)      # blue: data denser than the prior
HOLE_ALPHA, DATA_ALPHA = 210, 90
POINTS_OPACITY = 0.45          # the points step back while the overlay is on (holes lie between them)


def holes_lut(size: int = 256, dark: bool = False) -> np.ndarray:
    """RGBA look-up table over ``[−clip, clip]``: blue ← transparent → the hole shade, opacity with |value|."""
    t = np.linspace(-1.0, 1.0, size)
    lut = np.zeros((size, 4), dtype=np.uint8)
    warm, cool = t > 0, t <= 0
    lut[warm, :3] = HOLE_RGB[bool(dark)]
    lut[cool, :3] = DATA_RGB
    # a dead zone of ±5% of the range: where prior and data agree, nothing is drawn
    strength = np.clip((np.abs(t) - 0.05) / 0.95, 0.0, 1.0) ** 0.6
    lut[:, 3] = np.where(warm, HOLE_ALPHA * strength, DATA_ALPHA * strength).astype(np.uint8)
    return lut


PRIOR_REGION = (0.98, 0.99)     # prior-mass quantiles over which the shading fades out


def holes_rgba(result, lut: np.ndarray | None = None) -> np.ndarray:
    """The overlay image of a :class:`~vae_core.latent.HolesMap`: ``rows×columns×4`` uint8.

    The log ratio through :func:`holes_lut`, its opacity faded to zero between the prior's
    98% and 99% regions (``result.prior_quantile``).
    """
    lut = holes_lut() if lut is None else lut
    t = (np.asarray(result.log_ratio, dtype=np.float64) + result.clip) / (2 * result.clip)
    rgba = lut[np.clip((t * (len(lut) - 1)).round().astype(np.int64), 0, len(lut) - 1)].copy()
    lo, hi = PRIOR_REGION
    fade = np.clip((hi - np.asarray(result.prior_quantile, dtype=np.float64)) / (hi - lo), 0.0, 1.0)
    rgba[..., 3] = (rgba[..., 3] * fade).round().astype(np.uint8)
    return rgba


class HolesLegend(QtWidgets.QFrame):
    """A colour bar with what its ends mean, floating in the map's corner."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("holes_legend")
        self.setAutoFillBackground(True)
        self.setFrameShape(QtWidgets.QFrame.Shape.StyledPanel)
        self.clip = 8.0
        self.exact = True
        self.title = QtWidgets.QLabel("<b>Holes</b>: log p(z) − log q(z)")
        self.bar = _ColourBar(self)
        self.ends = QtWidgets.QHBoxLayout()
        self.low = QtWidgets.QLabel()
        self.high = QtWidgets.QLabel()
        self.high.setAlignment(QtCore.Qt.AlignmentFlag.AlignRight)
        self.ends.addWidget(self.low)
        self.ends.addStretch(1)
        self.ends.addWidget(self.high)
        self.note = QtWidgets.QLabel()
        self.note.setWordWrap(True)
        font = self.note.font()
        font.setPointSizeF(font.pointSizeF() * 0.9)
        self.note.setFont(font)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(8, 6, 8, 6)
        layout.setSpacing(2)
        layout.addWidget(self.title)
        layout.addWidget(self.bar)
        layout.addLayout(self.ends)
        layout.addWidget(self.note)
        self.setFixedWidth(260)
        self.set_result(None)

    def set_result(self, result) -> None:
        if result is not None:
            self.clip, self.exact = result.clip, result.exact
        self.low.setText(f"−{self.clip:g}: data ≫ prior")
        self.high.setText(f"prior ≫ data: +{self.clip:g}")
        if result is None:
            self.note.setText("Computing…")
        elif result.exact:
            self.note.setText("Shaded: the prior N(0, I) has mass there and the encoded data has none, so random "
                              "samples land off the data. Exact 2-D marginals; shaded within the prior's 99% "
                              "region.")
        else:
            self.note.setText("Shaded: the prior has mass there and the encoded data has none. UMAP has no exact "
                              "2-D densities: both are compared at the code the map decodes at each position "
                              "(shaded where that code is within the prior's 99% region).")
        self.adjustSize()


class _ColourBar(QtWidgets.QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.setFixedHeight(12)
        self._lut = holes_lut()

    def set_lut(self, lut: np.ndarray) -> None:
        self._lut = lut
        self.update()

    def paintEvent(self, ev) -> None:
        p = QtGui.QPainter(self)
        r = self.rect().adjusted(0, 0, -1, -1)
        p.fillRect(r, self.palette().color(QtGui.QPalette.ColorRole.Base))
        n = len(self._lut)
        for i, (red, green, blue, alpha) in enumerate(self._lut):
            x0 = r.left() + r.width() * i // n
            x1 = r.left() + r.width() * (i + 1) // n
            p.fillRect(QtCore.QRect(x0, r.top(), max(1, x1 - x0), r.height()), QtGui.QColor(red, green, blue, alpha))
        p.setPen(self.palette().color(QtGui.QPalette.ColorRole.Mid))
        p.drawRect(r)
        p.end()


class HolesJob(QtCore.QObject):
    """Computes ``state.map.holes`` in a worker whenever it is on and stale (newest inputs win)."""

    finished = QtCore.Signal(bool)      # True: a result for the shown map was set
    failed = QtCore.Signal(str)

    def __init__(self, state, parent=None):
        super().__init__(parent)
        self.holes = state.map.holes
        self.task: Task | None = None
        self._again = False
        self._connections = Connections(self)
        self._connections.connect(self.holes.holes_changed, self._on_holes_changed)
        self._connections.connect(self.holes.enabled_changed, self._on_holes_changed)

    @property
    def busy(self) -> bool:
        return self.task is not None

    def _on_holes_changed(self, *args) -> None:
        if self.holes.enabled and self.holes.result is None:
            self.start()

    def start(self) -> None:
        if self.task is not None:
            self._again = True
            return
        request = self.holes.request()
        if request is None:
            return
        key, args = request
        self._again = False
        task = Task(self.holes.compute, *args, doing="Computing the holes overlay", parent=self)
        task.succeeded.connect(lambda result, key=key: self._on_task_succeeded(key, result))
        task.failed.connect(self._on_task_failed)
        self.task = task.start()

    def _on_task_succeeded(self, key, result) -> None:
        self.task = None
        shown = self.holes.set_result(key, result)
        if self.holes.enabled and (self._again or not shown):
            self.start()
        self.finished.emit(shown)

    def _on_task_failed(self, text, details) -> None:
        self.task = None
        self.failed.emit(text)

    def wait(self, seconds: float = 30.0) -> bool:
        """Process events until no computation runs (tests)."""
        deadline = QtCore.QDeadlineTimer(int(seconds * 1000))
        while self.task is not None and not deadline.hasExpired():
            QtCore.QCoreApplication.processEvents(QtCore.QEventLoop.ProcessEventsFlag.AllEvents, 50)
            QtCore.QThread.msleep(5)
        return self.task is None


class HolesOverlayView(QtCore.QObject):
    """The holes image behind the points of a map view, and its legend in the corner."""

    def __init__(self, state, view, parent=None):
        super().__init__(parent or view)
        self.state = state
        self.holes = state.map.holes
        self.view = view
        self.item = pg.ImageItem(axisOrder="row-major")
        self.item.setZValue(-5)      # above the decoded backdrop (−10), below the points (0)
        self.item.hide()
        view.vb.addItem(self.item, ignoreBounds=True)
        self.legend = HolesLegend(view)
        self.legend.hide()
        self.job = HolesJob(state, self)
        self.job.failed.connect(lambda text: state.post_message("error", text))
        self._set_theme()
        self._connections = Connections(self)
        self._connections.connect(self.holes.holes_changed, self._on_holes_changed)
        self._connections.connect(self.holes.enabled_changed, self._on_holes_enabled_changed)
        view.installEventFilter(self)

    def eventFilter(self, obj, ev) -> bool:  # noqa: N802 - Qt override
        if obj is self.view and ev.type() == QtCore.QEvent.Type.Resize:
            self._place_legend()
        elif obj is self.view and ev.type() == QtCore.QEvent.Type.PaletteChange:
            self._set_theme()
            if self.holes.result is not None:
                self._on_holes_changed(self.holes.result)
        return False

    def _set_theme(self) -> None:
        self.dark = is_dark(self.view.palette())
        self._lut = holes_lut(dark=self.dark)
        self.legend.bar.set_lut(self._lut)

    def _place_legend(self) -> None:
        self.legend.adjustSize()
        vb_rect = self.view.mapFromScene(self.view.vb.sceneBoundingRect()).boundingRect()
        self.legend.move(vb_rect.right() - self.legend.width() - 8, vb_rect.top() + 8)

    def _on_holes_enabled_changed(self, on: bool) -> None:
        self.view.points.setOpacity(POINTS_OPACITY if on else (0.4 if self.view.backdrop_enabled else 1.0))
        self.legend.setVisible(on)
        self.item.setVisible(on and self.holes.result is not None)
        if on:
            self.legend.set_result(self.holes.result)
            self._place_legend()
            self.legend.raise_()
            if self.holes.available is not None:
                self.state.post_message("warning", self.holes.available)

    def _on_holes_changed(self, result) -> None:
        self.legend.set_result(result)
        if result is None:
            self.item.hide()
            return
        xmin, ymin, xmax, ymax = result.extent
        self.item.setImage(holes_rgba(result, self._lut), autoLevels=False)
        self.item.setRect(QtCore.QRectF(xmin, ymin, xmax - xmin, ymax - ymin))
        self.item.setVisible(self.holes.enabled)
        self._place_legend()
