"""The hovered point's posterior q(z|x) drawn on the map (state: :mod:`explorer.state.posterior`).

On a linear map the 1σ and 2σ ellipses are exact and drawn as the cursor moves (their
computation is a ``2×d`` product, microseconds). Through UMAP, or for a posterior that is
not the encoder's Gaussian (hvae, iaf), samples of q(z|x) are pushed through the projection
once the cursor has rested for ``REST_MS``: that costs a k-NN query, which must not sit on
the hover-to-image path.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui

from explorer.ui.qt_utils import Connections, is_dark, safe_paint

REST_MS = 90


class PosteriorCloudItem(pg.GraphicsObject):
    """Ellipses (1σ filled, 2σ dashed) or a cloud of sample dots, in map coordinates."""

    def __init__(self):
        super().__init__()
        self.shape = None
        self._bounds = QtCore.QRectF()
        self.dot_px = 3.2
        self.setZValue(15)      # above the points and thumbnails, below highlights and pins
        self.set_dark(True)

    def set_dark(self, dark: bool) -> None:
        """Ink and halo: the theme's text colour on its base, so the ellipse never blends into a class colour."""
        self.ink = QtGui.QColor(255, 255, 255) if dark else QtGui.QColor(15, 15, 20)
        self.halo = QtGui.QColor(0, 0, 0, 170) if dark else QtGui.QColor(255, 255, 255, 200)
        self.update()

    def set_shape(self, shape) -> None:
        self.prepareGeometryChange()
        self.shape = shape
        if shape is None:
            self._bounds = QtCore.QRectF()
        else:
            pts = [*shape.outlines.values()] if shape.outlines else [shape.samples]
            pts = np.concatenate([np.atleast_2d(p) for p in pts] + [np.atleast_2d(shape.centre)])
            pts = pts[np.isfinite(pts).all(1)]
            lo, hi = pts.min(0), pts.max(0)
            self._bounds = QtCore.QRectF(float(lo[0]), float(lo[1]), float(hi[0] - lo[0]), float(hi[1] - lo[1]))
        self.setVisible(shape is not None)
        self.update()

    def boundingRect(self) -> QtCore.QRectF:
        if self.shape is None:
            return QtCore.QRectF()
        px = self.pixelVectors()
        if px[0] is None:
            return self._bounds
        pad = 2 * self.dot_px + 4
        dx = (abs(px[0].x()) + abs(px[1].x())) * pad
        dy = (abs(px[0].y()) + abs(px[1].y())) * pad
        return self._bounds.adjusted(-dx, -dy, dx, dy)

    def viewTransformChanged(self) -> None:
        self.prepareGeometryChange()

    @safe_paint
    def paint(self, painter, option=None, widget=None) -> None:
        shape = self.shape
        if shape is None:
            return
        tr = painter.transform()
        painter.save()
        painter.resetTransform()     # draw in device pixels: line widths and dots stay constant
        painter.setRenderHint(QtGui.QPainter.RenderHint.Antialiasing, True)
        halo = QtGui.QPen(self.halo, 4.0)
        if shape.outlines:
            for k, outline in sorted(shape.outlines.items(), reverse=True):
                poly = QtGui.QPolygonF([tr.map(QtCore.QPointF(float(x), float(y))) for x, y in outline])
                fill = QtGui.QColor(self.ink)
                fill.setAlpha(45 if k <= 1 else 18)
                painter.setBrush(fill)
                painter.setPen(halo)
                painter.drawPolygon(poly)
                pen = QtGui.QPen(self.ink, 1.8)
                if k > 1:
                    pen.setStyle(QtCore.Qt.PenStyle.DashLine)
                painter.setBrush(QtCore.Qt.BrushStyle.NoBrush)
                painter.setPen(pen)
                painter.drawPolygon(poly)
        else:
            painter.setPen(QtGui.QPen(self.halo, 1.2))
            painter.setBrush(self.ink)
            r = self.dot_px
            for x, y in np.asarray(shape.samples, dtype=np.float64):
                if np.isfinite(x) and np.isfinite(y):
                    painter.drawEllipse(tr.map(QtCore.QPointF(float(x), float(y))), r, r)
        c = tr.map(QtCore.QPointF(float(shape.centre[0]), float(shape.centre[1])))
        painter.setPen(QtGui.QPen(self.halo, 1.5))
        painter.setBrush(self.ink)
        painter.drawEllipse(c, 2.8, 2.8)
        painter.restore()


class PosteriorCloudOverlay(QtCore.QObject):
    """Draws ``state.map.posterior`` on a map view and asks for sampled clouds when the cursor rests."""

    def __init__(self, state, view, parent=None):
        super().__init__(parent or view)
        self.state = state
        self.cloud = state.map.posterior
        self.view = view
        self.item = PosteriorCloudItem()
        self.item.set_dark(is_dark(view.palette()))
        self.item.hide()
        view.vb.addItem(self.item, ignoreBounds=True)
        view.installEventFilter(self)
        self._rest = QtCore.QTimer(self)
        self._rest.setSingleShot(True)
        self._rest.setInterval(REST_MS)
        self._rest.timeout.connect(self._on_rest_timeout)
        self._connections = Connections(self)
        self._connections.connect(self.cloud.cloud_changed, self.item.set_shape)
        self._connections.connect(state.map.hovered_index_changed, self._on_map_hovered_index_changed)

    def eventFilter(self, obj, ev) -> bool:
        if obj is self.view and ev.type() == QtCore.QEvent.Type.PaletteChange:
            self.item.set_dark(is_dark(self.view.palette()))
        return False

    def _on_map_hovered_index_changed(self, index) -> None:
        if self.cloud.enabled and index is not None and not self.cloud.is_immediate():
            self._rest.start()
        else:
            self._rest.stop()

    def _on_rest_timeout(self) -> None:
        index = self.state.map.hovered_index
        if index is not None and self.cloud.enabled:
            self.cloud.show(index)
