"""Small items of the latent map: the cursor ring, dataset thumbnails and the view box with
its selection tools."""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

from explorer.ui.qt_utils import safe_paint, to_qimage
from explorer.ui.theme import UNLABELED_COLOR


class CursorItem(QtWidgets.QGraphicsObject):
    """A crosshair ring drawn in screen pixels; moving it repaints only its few pixels."""

    SIZE = 11

    def __init__(self):
        super().__init__()
        self.setFlag(QtWidgets.QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations, True)
        self.setZValue(50)
        self.color = QtGui.QColor(255, 255, 255)
        self.halo = QtGui.QColor(0, 0, 0, 170)

    def set_colors(self, color: QtGui.QColor, halo: QtGui.QColor) -> None:
        self.color, self.halo = QtGui.QColor(color), QtGui.QColor(halo)
        self._pixmaps = {}
        self.update()

    def _pixmap(self, dpr: float) -> QtGui.QPixmap:
        """The cursor drawn once per colour and pixel ratio: antialiased ellipses cost more than a blit."""
        cache = self.__dict__.setdefault("_pixmaps", {})
        pm = cache.get(dpr)
        if pm is None:
            r = self.boundingRect()
            pm = QtGui.QPixmap(int(math.ceil(r.width() * dpr)), int(math.ceil(r.height() * dpr)))
            pm.setDevicePixelRatio(dpr)
            pm.fill(QtCore.Qt.GlobalColor.transparent)
            p = QtGui.QPainter(pm)
            p.translate(-r.left(), -r.top())
            self._draw(p)
            p.end()
            cache[dpr] = pm
        return pm

    def boundingRect(self) -> QtCore.QRectF:
        s = self.SIZE + 3
        return QtCore.QRectF(-s, -s, 2 * s, 2 * s)

    @safe_paint
    def paint(self, painter, option=None, widget=None) -> None:
        tr = painter.transform()
        dtr = painter.deviceTransform()
        dpr = abs(dtr.m11() / tr.m11()) if tr.m11() else 1.0
        painter.drawPixmap(self.boundingRect().topLeft(), self._pixmap(round(dpr, 3)))

    def _draw(self, painter) -> None:
        s = self.SIZE
        painter.setRenderHint(QtGui.QPainter.RenderHint.Antialiasing, True)
        painter.setBrush(QtCore.Qt.BrushStyle.NoBrush)
        painter.setPen(QtGui.QPen(self.halo, 3.5))
        painter.drawEllipse(QtCore.QPointF(0, 0), s * 0.55, s * 0.55)
        painter.setPen(QtGui.QPen(self.color, 1.6))
        painter.drawEllipse(QtCore.QPointF(0, 0), s * 0.55, s * 0.55)
        for a, b in (((-s, 0), (-s * 0.75, 0)), ((s * 0.75, 0), (s, 0)), ((0, -s), (0, -s * 0.75)),
                     ((0, s * 0.75), (0, s))):
            painter.drawLine(QtCore.QPointF(*a), QtCore.QPointF(*b))


class ThumbnailItem(pg.GraphicsObject):
    """Dataset images drawn at their points, at a fixed size in screen pixels."""

    def __init__(self):
        super().__init__()
        self.size_px = 34
        self._xy = np.zeros((0, 2), dtype=np.float32)
        self._indices = np.zeros(0, dtype=np.int64)
        self._images = None
        self._colors: list[QtGui.QColor] = []
        self._labels = None
        self._qimages: dict[int, QtGui.QImage] = {}
        self._bounds = QtCore.QRectF()

    def set_source(self, images, labels=None, colors=()) -> None:
        # The dataset's stored pixels, uint8 or float: to_qimage reads both by the dataset
        # rule (uint8 is value / 255, so its bytes are used as they are); converting all
        # of them to float first would cost 4 bytes per pixel for a few hundred thumbnails.
        self._images = images
        self._labels = labels
        self._colors = [QtGui.QColor(*c) for c in colors]
        self._qimages.clear()
        self.set_points(np.zeros((0, 2), np.float32), np.zeros(0, np.int64))

    def set_points(self, xy, indices) -> None:
        self.prepareGeometryChange()
        self._xy = np.asarray(xy, dtype=np.float32).reshape(-1, 2)
        self._indices = np.asarray(indices, dtype=np.int64)
        keep = np.isfinite(self._xy).all(1)
        if not keep.all():
            self._xy, self._indices = self._xy[keep], self._indices[keep]
        if len(self._xy):
            lo, hi = self._xy.min(0), self._xy.max(0)
            self._bounds = QtCore.QRectF(float(lo[0]), float(lo[1]), float(hi[0] - lo[0]), float(hi[1] - lo[1]))
        else:
            self._bounds = QtCore.QRectF()
        if len(self._qimages) > 6000:
            self._qimages.clear()
        self.update()

    @property
    def count(self) -> int:
        return len(self._indices)

    def boundingRect(self) -> QtCore.QRectF:
        if not len(self._xy):
            return QtCore.QRectF()
        px = self.pixelVectors()
        if px[0] is None:
            return self._bounds
        half = self.size_px * 0.75
        dx = abs(px[0].x()) * half + abs(px[1].x()) * half
        dy = abs(px[0].y()) * half + abs(px[1].y()) * half
        return self._bounds.adjusted(-dx, -dy, dx, dy)

    def viewTransformChanged(self) -> None:
        self.prepareGeometryChange()

    def _qimage(self, i: int) -> QtGui.QImage:
        q = self._qimages.get(i)
        if q is None:
            q = to_qimage(self._images[i], channels_first=True)
            self._qimages[i] = q
        return q

    @safe_paint
    def paint(self, painter, option=None, widget=None) -> None:
        if self._images is None or not len(self._indices):
            return
        tr = painter.transform()
        s = float(self.size_px)
        painter.save()
        painter.resetTransform()
        painter.setRenderHint(QtGui.QPainter.RenderHint.SmoothPixmapTransform, True)
        for (x, y), i in zip(self._xy.tolist(), self._indices.tolist()):
            p = tr.map(QtCore.QPointF(x, y))
            rect = QtCore.QRectF(p.x() - s / 2, p.y() - s / 2, s, s)
            painter.drawImage(rect, self._qimage(i))
            if self._labels is not None and self._colors:
                color = self._colors[int(self._labels[i]) % len(self._colors)]
            else:
                color = QtGui.QColor(*UNLABELED_COLOR)
            painter.setPen(QtGui.QPen(color, 1.5))
            painter.setBrush(QtCore.Qt.BrushStyle.NoBrush)
            painter.drawRect(rect)
        painter.restore()


class MapViewBox(pg.ViewBox):
    """A ViewBox with click and rectangle/lasso selection tools.

    ``tool`` is ``"pan"`` (drag pans, wheel zooms), ``"rect"`` or ``"lasso"`` (drag draws a
    selection). Left clicks (without a drag) emit :attr:`clicked` in every tool.
    """

    clicked = QtCore.Signal(object, object)                 # view QPointF, modifiers
    selection_drawn = QtCore.Signal(str, object, object)    # "rect"|"lasso", M×2 view points, modifiers
    context_menu_requested = QtCore.Signal(object, object)  # view QPointF, screen QPoint

    def __init__(self):
        super().__init__(enableMenu=True)
        self.tool = "pan"
        self._drag_points: list[tuple[float, float]] = []
        self.outline = QtWidgets.QGraphicsPathItem()
        pen = QtGui.QPen(QtGui.QColor(255, 255, 255), 1.5, QtCore.Qt.PenStyle.DashLine)
        pen.setCosmetic(True)
        self.outline.setPen(pen)
        self.outline.setBrush(QtGui.QBrush(QtGui.QColor(255, 255, 255, 30)))
        self.outline.setZValue(100)
        self.outline.hide()
        self.addItem(self.outline, ignoreBounds=True)

    def mouseClickEvent(self, ev) -> None:
        if ev.button() == QtCore.Qt.MouseButton.LeftButton:
            ev.accept()
            self.clicked.emit(self.mapToView(ev.pos()), ev.modifiers())
            return
        super().mouseClickEvent(ev)

    def raiseContextMenu(self, ev) -> None:
        # The map's own menu (pin, neighbours, fit) instead of pyqtgraph's mouse-mode menu,
        # whose rectangle-zoom mode would fight the selection tools.
        self.context_menu_requested.emit(self.mapToView(ev.pos()), ev.screenPos().toPoint())

    def mouseDragEvent(self, ev, axis=None) -> None:
        if self.tool == "pan" or ev.button() != QtCore.Qt.MouseButton.LeftButton or axis is not None:
            super().mouseDragEvent(ev, axis)
            return
        ev.accept()
        p = self.mapToView(ev.pos())
        if ev.isStart():
            start = self.mapToView(ev.buttonDownPos())
            self._drag_points = [(start.x(), start.y())]
        self._drag_points.append((p.x(), p.y()))
        if self.tool == "rect":
            (x0, y0), (x1, y1) = self._drag_points[0], self._drag_points[-1]
            poly = [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
        else:
            poly = self._drag_points
        path = QtGui.QPainterPath()
        path.moveTo(*poly[0])
        for q in poly[1:]:
            path.lineTo(*q)
        path.closeSubpath()
        self.outline.setPath(path)
        self.outline.show()
        if ev.isFinish():
            self.outline.hide()
            pts = np.asarray(poly, dtype=np.float64)
            self._drag_points = []
            self.selection_drawn.emit(self.tool, pts, ev.modifiers())


# ---------------------------------------------------------------------------------------
