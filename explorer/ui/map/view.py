"""The latent map plot: points, decoded backdrop, thumbnails, cursor, pins, neighbours, path.

Speed is the point of this module. A plain ``pg.ScatterPlotItem`` repaints 70,000 points
in 25–30 ms and needs ~100 ms for ``setData``, so neither panning a million points nor
animating a projection switch can go through it. :class:`PointCloudItem` instead keeps the
points as NumPy arrays and rasterises them itself, at the view's device resolution, into a
``QImage``:

* each point is a small disc "stamped" into a ``uint32`` ARGB buffer with fancy indexing
  (one assignment per disc pixel for all points at once);
* above ``DENSITY_THRESHOLD`` points in view it switches to a density layer: one pixel per
  point, the pixel's alpha grows with the log of how many points landed on it;
* the image is cached with the view transform: hover, cursor and overlay updates only
  blit the cached image inside the small dirty region, never re-rasterise;
* an index image records which point is drawn at each pixel, so picking the point under
  the cursor is a lookup in a small window around it (what you see is what you pick);
* a projection switch animates by interpolating the NumPy positions per frame.

Every other overlay is small (a few dozen items at most) and uses stock pyqtgraph items.
"""

from __future__ import annotations

import math
import time

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets


DENSITY_THRESHOLD = 250_000     # points in view above which the density layer is drawn
UNLABELED_COLOR = (86, 156, 214)
SELECTION_EDGE = 0xFFFFFFFF
TAB10 = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75),
         (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207)]
# Slightly brighter than matplotlib's tab10 so that classes read on a dark background.
PALETTE = [tuple(min(255, int(c * 1.18 + 18)) for c in rgb) for rgb in TAB10]


def class_colors(n: int, dark: bool = True) -> list[tuple[int, int, int]]:
    """``n`` distinct RGB colours: tab10 first (brightened on dark backgrounds), then golden-angle hues."""
    colors = list((PALETTE if dark else TAB10)[:n])
    k = 0
    while len(colors) < n:
        hue = (0.13 + k * 0.618034) % 1.0
        c = QtGui.QColor.fromHsvF(hue, 0.65, 0.95 if dark else 0.8)
        colors.append((c.red(), c.green(), c.blue()))
        k += 1
    return colors


def _is_dark(palette: QtGui.QPalette) -> bool:
    return palette.color(QtGui.QPalette.ColorRole.Base).lightness() < 128


def safe_paint(paint):
    """Keep exceptions out of Qt's paint loop (PySide6 does not survive them well): print once."""
    reported: set[str] = set()

    def wrapper(self, painter, *args):
        try:
            paint(self, painter, *args)
        except Exception as exc:
            if type(exc).__name__ not in reported:
                reported.add(type(exc).__name__)
                import traceback

                traceback.print_exc()

    wrapper.__name__, wrapper.__doc__ = paint.__name__, paint.__doc__
    return wrapper


class MutedLabel(QtWidgets.QLabel):
    """A label in a colour between the text and the background, in light and dark themes."""

    def __init__(self, text: str = "", parent=None):
        super().__init__(text, parent)
        self._mute()

    def _mute(self) -> None:
        palette = self.palette()
        text = palette.color(QtGui.QPalette.ColorRole.WindowText)
        window = palette.color(QtGui.QPalette.ColorRole.Window)
        mixed = QtGui.QColor((text.red() * 6 + window.red() * 4) // 10, (text.green() * 6 + window.green() * 4) // 10,
                             (text.blue() * 6 + window.blue() * 4) // 10)
        if palette.color(QtGui.QPalette.ColorRole.WindowText) != mixed:
            palette.setColor(QtGui.QPalette.ColorRole.WindowText, mixed)
            self._muting = True
            self.setPalette(palette)
            self._muting = False

    def changeEvent(self, ev) -> None:
        super().changeEvent(ev)
        if ev.type() == QtCore.QEvent.Type.PaletteChange and not getattr(self, "_muting", False):
            # A theme change: start again from the application's palette.
            self._muting = True
            self.setPalette(QtGui.QPalette())
            self._muting = False
            self._mute()


def _argb(rgb, alpha: float = 1.0) -> int:
    """Premultiplied ARGB32 pixel value."""
    a = int(round(255 * alpha))
    r, g, b = (int(round(c * alpha)) for c in rgb)
    return (a << 24) | (r << 16) | (g << 8) | b


def _disc_offsets(radius: int) -> list[tuple[int, int]]:
    if radius <= 0:
        return [(0, 0)]
    r2 = (radius + 0.5) ** 2
    return [(dx, dy) for dy in range(-radius, radius + 1) for dx in range(-radius, radius + 1)
            if dx * dx + dy * dy <= r2]


def image_to_qimage(img: np.ndarray) -> QtGui.QImage:
    """``C×H×W`` float image in [0, 1] → a QImage that owns its pixels."""
    img = np.asarray(img)
    if img.ndim == 2:
        img = img[None]
    c, h, w = img.shape
    img = np.nan_to_num(img, nan=0.0, posinf=1.0, neginf=0.0)
    u8 = np.ascontiguousarray(np.clip(img * 255.0 + 0.5, 0, 255).astype(np.uint8))
    if c == 1:
        q = QtGui.QImage(u8[0].data, w, h, w, QtGui.QImage.Format.Format_Grayscale8)
    else:
        rgb = np.ascontiguousarray(np.moveaxis(u8[:3], 0, -1))
        q = QtGui.QImage(rgb.data, w, h, 3 * w, QtGui.QImage.Format.Format_RGB888)
    return q.copy()


def tile_images(images: np.ndarray, rows: int, cols: int, gap: int = 0, fill: float = 0.0) -> np.ndarray:
    """``N×C×H×W`` images → one ``H'×W'`` (gray) or ``H'×W'×3`` (RGB) row-major mosaic."""
    n, c, h, w = images.shape
    out = np.full((c, rows * (h + gap) - gap, cols * (w + gap) - gap), fill, dtype=np.float32)
    for k in range(min(n, rows * cols)):
        r, q = divmod(k, cols)
        out[:, r * (h + gap):r * (h + gap) + h, q * (w + gap):q * (w + gap) + w] = images[k]
    return out[0] if c == 1 else np.moveaxis(out[:3], 0, -1)


# ---------------------------------------------------------------------------------------
# The point cloud
# ---------------------------------------------------------------------------------------
class PointCloudItem(pg.GraphicsObject):
    """Scatter of up to millions of points, rasterised from NumPy arrays (see module doc).

    Points are kept twice: ``positions`` in data order (for overlays and tests) and, per
    layer (unselected, then selected on top), contiguous ``x``/``y``/colour/index arrays in
    a fixed random draw order so that no class is always drawn on top.

    Attributes
    ----------
    render_count : int
        Number of rasterisations so far (tests check hovering does not add any).
    last_render_ms : float
        Duration of the latest rasterisation.
    """

    DENSITY_LEVELS = 6

    def __init__(self, seed: int = 0):
        super().__init__()
        # exposedRect in paint(): a hover repaint blits only the few pixels around the cursor.
        self.setFlag(QtWidgets.QGraphicsItem.GraphicsItemFlag.ItemUsesExtendedStyleOption, True)
        self._rng = np.random.default_rng(seed)
        self._n = 0
        self._perm = np.zeros(0, dtype=np.int64)      # draw order -> data index
        self._xy = np.zeros((0, 2), dtype=np.float32) # data order
        self._labels: np.ndarray | None = None
        self._palette = [UNLABELED_COLOR]
        self._visible: np.ndarray | None = None
        self._selected = np.zeros(0, dtype=np.int64)
        self.radius: int | None = None                # None: automatic from the point count
        self.dim_unselected = True
        self.outline_limit = 1500                     # selected points get a ring up to this many
        self.edge_color = SELECTION_EDGE
        self._layers: list[dict] = []
        self._lut = np.zeros((1, self.DENSITY_LEVELS), dtype=np.uint32)
        self._key_data = np.zeros(0, dtype=np.int32)
        self._transition = None
        self._bounds = QtCore.QRectF()
        self._cache = None
        self._buffers = None
        self._pad_px = 4.0
        self.render_count = 0
        self.last_render_ms = 0.0
        self._finite = True       # every position is a finite number (else clip each point)

    # -- data ------------------------------------------------------------------------------
    def set_data(self, xy, labels=None, colors=None) -> None:
        """New points: ``N×2`` positions, optional int labels and per-label RGB colours."""
        xy = np.ascontiguousarray(xy, dtype=np.float32).reshape(-1, 2)
        if len(xy) != self._n:
            self._perm = self._rng.permutation(len(xy))
            self._selected = np.zeros(0, dtype=np.int64)
            self._visible = None
        self._n = len(xy)
        self._xy = xy
        self._labels = None if labels is None else np.asarray(labels, dtype=np.int64)
        if colors is not None:
            self._palette = list(colors) or [UNLABELED_COLOR]
        self._transition = None
        self._rebuild()

    def set_positions(self, xy) -> None:
        """Move the same points (no re-sorting, no colour work)."""
        xy = np.ascontiguousarray(xy, dtype=np.float32).reshape(-1, 2)
        if len(xy) != self._n:
            self.set_data(xy, self._labels)
            return
        self._xy = xy
        self._transition = None
        for layer in self._layers:
            layer["x"] = np.ascontiguousarray(xy[layer["idx"], 0])
            layer["y"] = np.ascontiguousarray(xy[layer["idx"], 1])
        self._update_bounds()
        self._invalidate(geometry=True)

    def begin_transition(self, xy_to) -> None:
        """Prepare to move every point from where it is to ``xy_to`` (see :meth:`set_transition`)."""
        xy_to = np.ascontiguousarray(xy_to, dtype=np.float32).reshape(-1, 2)
        if len(xy_to) != self._n:
            raise ValueError("A transition needs the same number of points.")
        parts = []
        for layer in self._layers:
            tx = np.ascontiguousarray(xy_to[layer["idx"], 0])
            ty = np.ascontiguousarray(xy_to[layer["idx"], 1])
            # Points that are not finite on one side jump instead of travelling through NaN.
            fx, fy = layer["x"].copy(), layer["y"].copy()
            bad = ~(np.isfinite(fx) & np.isfinite(fy))
            if bad.any():
                fx[bad], fy[bad] = tx[bad], ty[bad]
            parts.append((fx, fy, tx - fx, ty - fy))
        lo = np.fmin(self._xy_bounds(self._xy)[0], self._xy_bounds(xy_to)[0])
        hi = np.fmax(self._xy_bounds(self._xy)[1], self._xy_bounds(xy_to)[1])
        finite = bool(np.isfinite(xy_to).all())
        self._transition = {"to": xy_to, "parts": parts, "bounds": (lo, hi), "finite": finite}

    def set_transition(self, t: float) -> None:
        """Draw the transition at ``t`` in [0, 1]: two multiply-adds per point, no gathers."""
        tr = self._transition
        if tr is None:
            return
        t = np.float32(t)
        for layer, (fx, fy, dx, dy) in zip(self._layers, tr["parts"]):
            np.multiply(dx, t, out=layer["x"])
            layer["x"] += fx
            np.multiply(dy, t, out=layer["y"])
            layer["y"] += fy
        lo, hi = tr["bounds"]
        self._finite = tr["finite"]
        self._set_bounds(lo, hi)
        self._invalidate(geometry=True)

    def end_transition(self) -> None:
        tr = self._transition
        if tr is not None:
            self.set_positions(tr["to"])

    def set_visible_mask(self, mask) -> None:
        self._visible = None if mask is None else np.asarray(mask, dtype=bool)
        self._rebuild()

    def set_selection(self, indices) -> None:
        self._selected = np.asarray(indices if indices is not None else [], dtype=np.int64)
        self._rebuild()

    def set_radius(self, radius: int | None) -> None:
        self.radius = None if radius is None else max(0, int(radius))
        self._invalidate()

    @property
    def positions(self) -> np.ndarray:
        """``N×2`` positions in data order (the end point while a transition runs)."""
        return self._transition["to"] if self._transition is not None else self._xy

    def auto_radius(self) -> int:
        if self.radius is not None:
            return self.radius
        n = self._n
        return 3 if n <= 3000 else 2 if n <= 150_000 else 1

    def _rebuild(self) -> None:
        """Recompute the draw-order layers from labels, visibility and selection."""
        n = self._n
        self._transition = None
        self._layers = []
        if n == 0:
            self._bounds = QtCore.QRectF()
            self._invalidate(geometry=True)
            return
        perm = self._perm
        keep = np.ones(n, dtype=bool) if self._visible is None else self._visible[perm]
        sel_mask = np.zeros(n, dtype=bool)
        if self._selected.size:
            flags = np.zeros(n, dtype=bool)
            flags[self._selected[(self._selected >= 0) & (self._selected < n)]] = True
            sel_mask = flags[perm]
        any_sel = bool(sel_mask.any())
        n_cls = len(self._palette)
        # Colour table: row = class (+ n_cls for the faded variant), column = density level.
        levels = self.DENSITY_LEVELS
        alphas = 0.42 + 0.58 * np.arange(levels) / (levels - 1)
        fade = 0.3 if any_sel and self.dim_unselected else 1.0
        lut = np.array([[_argb(rgb, a * f) for a in alphas] for f in (1.0, fade) for rgb in self._palette],
                       dtype=np.uint32)
        if self._labels is not None and n_cls > 1:
            key = np.clip(self._labels[perm], 0, n_cls - 1).astype(np.int32)
        else:
            key = np.zeros(n, dtype=np.int32)
        for name, mask, faded in (("unsel", keep & ~sel_mask, any_sel and self.dim_unselected),
                                  ("sel", keep & sel_mask, False)):
            order = np.flatnonzero(mask)
            k = key[order] + (n_cls if faded else 0)
            idx = perm[order].astype(np.int32)
            self._layers.append({"name": name, "idx": idx, "key_offset": n_cls if faded else 0, "col": lut[k, -1],
                                 "x": np.ascontiguousarray(self._xy[idx, 0]),
                                 "y": np.ascontiguousarray(self._xy[idx, 1])})
        self._lut = lut
        self._key_data = np.empty(n, dtype=np.int32)   # colour-table row of each point, data order
        self._key_data[perm] = key
        self._update_bounds()
        self._invalidate(geometry=True)

    @staticmethod
    def _xy_bounds(xy):
        if not len(xy):
            return np.zeros(2, np.float32), np.zeros(2, np.float32)
        x, y = xy[:, 0], xy[:, 1]
        lo = np.array([x.min(), y.min()])
        hi = np.array([x.max(), y.max()])
        if not (np.isfinite(lo).all() and np.isfinite(hi).all()):
            ok = np.isfinite(xy).all(1)
            if not ok.any():
                return np.zeros(2, np.float32), np.zeros(2, np.float32)
            lo, hi = xy[ok].min(0), xy[ok].max(0)
        return lo, hi

    def _update_bounds(self) -> None:
        self._finite = bool(np.isfinite(self._xy).all())
        lo, hi = self._xy_bounds(self._xy)
        self._set_bounds(lo, hi)

    def _set_bounds(self, lo, hi) -> None:
        self._bounds = QtCore.QRectF(float(lo[0]), float(lo[1]), float(hi[0] - lo[0]), float(hi[1] - lo[1]))

    def _invalidate(self, geometry: bool = False) -> None:
        self._cache = None
        if geometry:
            self.prepareGeometryChange()
        self.update()

    # -- QGraphicsItem / pyqtgraph protocol ---------------------------------------------------------
    def boundingRect(self) -> QtCore.QRectF:
        if self._n == 0:
            return QtCore.QRectF()
        px = self.pixelVectors()
        pad_x = pad_y = 0.0
        if px[0] is not None:
            pad_x = abs(px[0].x()) * self._pad_px * 2 + abs(px[1].x()) * self._pad_px * 2
            pad_y = abs(px[0].y()) * self._pad_px * 2 + abs(px[1].y()) * self._pad_px * 2
        return self._bounds.adjusted(-pad_x, -pad_y, pad_x, pad_y)

    def viewTransformChanged(self) -> None:
        self.prepareGeometryChange()

    def dataBounds(self, ax, frac=1.0, orthoRange=None):
        if self._n == 0:
            return (None, None)
        v = self._xy[:, ax]
        v = v[np.isfinite(v)]
        if not len(v):
            return (None, None)
        if frac >= 1.0:
            return (float(v.min()), float(v.max()))
        lo, hi = np.percentile(v, [50 * (1 - frac), 50 * (1 + frac)])
        return (float(lo), float(hi))

    def pixelPadding(self) -> float:
        return float(self.auto_radius() + 1)

    # -- painting ------------------------------------------------------------------------------------
    @safe_paint
    def paint(self, painter: QtGui.QPainter, option=None, widget=None) -> None:
        self._paint(painter, option)

    def _paint(self, painter: QtGui.QPainter, option) -> None:
        if not self._layers:
            return
        engine = painter.paintEngine()
        if engine is not None and engine.type() == QtGui.QPaintEngine.Type.SVG:
            self._paint_vector(painter)
            return
        tr = painter.transform()
        if tr.m12() != 0.0 or tr.m21() != 0.0:
            self._paint_vector(painter)  # rotated views are not used by the map; stay correct anyway
            return
        vb = self.getViewBox()
        area = vb.viewRect() if vb is not None else self.boundingRect()
        dev_rect = tr.mapRect(area).toAlignedRect()
        if dev_rect.width() <= 0 or dev_rect.height() <= 0:
            return
        # Never touch painter.device() here: its temporary Python wrapper can delete the viewport.
        dtr = painter.deviceTransform()
        dpr = abs(dtr.m11() / tr.m11()) if tr.m11() else 1.0
        dpr = 1.0 if not math.isfinite(dpr) or abs(dpr - 1.0) < 1e-6 else dpr
        w = min(int(math.ceil(dev_rect.width() * dpr)), 16384)
        h = min(int(math.ceil(dev_rect.height() * dpr)), 16384)
        key = (round(tr.m11(), 9), round(tr.m22(), 9), round(tr.dx(), 4), round(tr.dy(), 4),
               dev_rect.x(), dev_rect.y(), w, h, dpr)
        if self._cache is None or self._cache["key"] != key:
            # device pixel = (m11 * x + dx - left) * dpr
            sx, sy = tr.m11() * dpr, tr.m22() * dpr
            ox, oy = (tr.dx() - dev_rect.x()) * dpr, (tr.dy() - dev_rect.y()) * dpr
            self._cache = self._render(sx, sy, ox, oy, w, h, dpr)
            self._cache["key"] = key
        c = self._cache
        pad, (w, h) = c["pad"], c["size"]
        target = QtCore.QRectF(dev_rect.x(), dev_rect.y(), w / dpr, h / dpr)
        exposed = getattr(option, "exposedRect", None) if option is not None else None
        if exposed is not None and not exposed.isEmpty():
            part = tr.mapRect(exposed).adjusted(-1, -1, 1, 1).intersected(target)
            if part.isEmpty():
                return
            target = part
        source = QtCore.QRectF(pad + (target.x() - dev_rect.x()) * dpr, pad + (target.y() - dev_rect.y()) * dpr,
                               target.width() * dpr, target.height() * dpr)
        painter.save()
        painter.resetTransform()
        painter.drawImage(target, c["image"], source)
        painter.restore()

    def render_to_image(self, view_rect: QtCore.QRectF, width: int, height: int) -> QtGui.QImage:
        """Rasterise the points of ``view_rect`` into a ``width×height`` image (benchmarks, tests)."""
        sx = width / view_rect.width()
        sy = -height / view_rect.height()
        c = self._render(sx, sy, -view_rect.left() * sx, -view_rect.bottom() * sy, width, height, 1.0)
        pad = c["pad"]
        return c["image"].copy(pad, pad, width, height)

    def _render(self, sx, sy, ox, oy, w, h, dpr) -> dict:
        """Rasterise into a padded ``w×h`` ARGB buffer; pixel = (sx·x + ox, sy·y + oy)."""
        t0 = time.perf_counter()
        r = max(0, int(round(self.auto_radius() * dpr)))
        # Points outside the view are sent to a "parking" pixel in the top-left padding,
        # far enough from the visible area that their stamps never show: cheaper than
        # compacting every array with a mask.
        pad = 2 * r + 4
        park_xy = r + 1
        wp, hp = w + 2 * pad, h + 2 * pad
        park = park_xy * wp + park_xy
        # Reused buffers: fresh multi-megabyte arrays cost more in page faults than the drawing.
        if self._buffers is None or self._buffers[0].size != wp * hp:
            self._buffers = (np.zeros(wp * hp, dtype=np.uint32), np.full(wp * hp, -1, dtype=np.int32))
        else:
            self._buffers[0].fill(0)
            self._buffers[1].fill(-1)
        buf, index = self._buffers
        # Pixel bounds of the whole data: when they fit, no per-point clipping is needed.
        b = self._bounds
        bx = sorted((sx * b.left() + ox + pad, sx * b.right() + ox + pad))
        by = sorted((sy * b.top() + oy + pad, sy * b.bottom() + oy + pad))
        all_inside = (self._finite and bx[0] >= pad - r and bx[1] < wp - pad + r
                      and by[0] >= pad - r and by[1] < hp - pad + r)
        placed = []
        total = 0
        with np.errstate(invalid="ignore", over="ignore"):
            for layer in self._layers:
                x, y = layer["x"], layer["y"]
                if not len(x):
                    continue
                rr = r + 1 if layer["name"] == "sel" else r
                px = x * np.float32(sx)
                px += np.float32(ox + pad)
                py = y * np.float32(sy)
                py += np.float32(oy + pad)
                flat = py.astype(np.int32)
                flat *= np.int32(wp)
                flat += px.astype(np.int32)
                if all_inside:
                    n_in = len(flat)
                else:
                    lo, hi = np.float32(pad - r), np.float32(wp - pad + r)
                    inside = (px >= lo) & (px < hi)
                    inside &= py >= lo
                    inside &= py < np.float32(hp - pad + r)
                    n_in = int(np.count_nonzero(inside))
                    if n_in < len(flat) // 4:  # few points in view: compacting is cheaper
                        keep = np.flatnonzero(inside)
                        placed.append((layer, rr, flat[keep], keep))
                        total += n_in
                        continue
                    flat[~inside] = park
                total += n_in
                placed.append((layer, rr, flat, None))
        density = total > DENSITY_THRESHOLD
        for layer, rr, flat, keep in placed:
            idx = layer["idx"] if keep is None else layer["idx"][keep]
            if density and layer["name"] == "unsel":
                index[flat] = idx
                index[park] = -1
                self._splat_density(buf, flat, index, layer["key_offset"], wp * hp, park)
                continue
            col = layer["col"] if keep is None else layer["col"][keep]
            tmp = np.empty_like(flat)   # one index buffer reused by every offset of the stamp
            if layer["name"] == "sel" and len(flat) <= self.outline_limit:
                for dx, dy in _disc_offsets(rr):
                    buf[np.add(flat, dy * wp + dx, out=tmp)] = self.edge_color
                for dx, dy in _disc_offsets(max(0, rr - 1)):
                    buf[np.add(flat, dy * wp + dx, out=tmp)] = col
            else:
                for dx, dy in _disc_offsets(rr if layer["name"] == "unsel" else max(0, rr - 1)):
                    buf[np.add(flat, dy * wp + dx, out=tmp)] = col
            index[flat] = idx
        index[park] = -1
        image = QtGui.QImage(buf.data, wp, hp, 4 * wp, QtGui.QImage.Format.Format_ARGB32_Premultiplied)
        image.setDevicePixelRatio(dpr)
        self.render_count += 1
        self.last_render_ms = (time.perf_counter() - t0) * 1e3
        return {"image": image, "data": buf, "index": index.reshape(hp, wp), "pad": pad, "size": (w, h),
                "map": (sx, sy, ox, oy), "dpr": dpr, "in_view": total, "density": density}

    def _splat_density(self, buf, flat, index, key_offset, size, park) -> None:
        """One pixel per point; the pixel's alpha grows with how many points landed on it.

        The colour is that of the last point drawn on the pixel, read back through the
        index image (already written), which saves a second scatter of every point.
        """
        levels = self.DENSITY_LEVELS
        counts = np.bincount(flat, minlength=size)
        counts[park] = 0
        hit = np.flatnonzero(counts)
        if not len(hit):
            return
        c = counts[hit]
        top = max(2, int(c.max()))
        level = (np.log2(c) * ((levels - 1) / math.log2(top))).astype(np.int32)
        np.minimum(level, levels - 1, out=level)
        keys = self._key_data[index[hit]]       # colour-table row of the point drawn last there
        keys += key_offset
        keys *= levels
        keys += level
        buf[hit] = self._lut.ravel()[keys]

    def _paint_vector(self, painter: QtGui.QPainter) -> None:
        """Vector drawing for SVG export (and rotated transforms): one circle per point."""
        limit = 200_000
        r_px = self.auto_radius() + 0.5
        tr = painter.transform()
        vb = self.getViewBox()
        area = vb.viewRect() if vb is not None else None
        painter.save()
        painter.resetTransform()
        painter.setPen(QtCore.Qt.PenStyle.NoPen)
        for layer in self._layers:
            x, y, col = layer["x"], layer["y"], layer["col"]
            if area is not None:   # SVG clipping is unreliable: leave out what the view does not show
                keep = (x >= area.left()) & (x <= area.right()) & (y >= area.top()) & (y <= area.bottom())
                x, y, col = x[keep], y[keep], col[keep]
            x, y, col = x[:limit], y[:limit], col[:limit]
            for value in np.unique(col):
                m = col == value
                c = QtGui.QColor.fromRgba(int(value))
                alpha = c.alpha() / 255.0 or 1.0
                painter.setBrush(QtGui.QColor(int(min(255, c.red() / alpha)), int(min(255, c.green() / alpha)),
                                              int(min(255, c.blue() / alpha)), c.alpha()))
                for px, py in zip(x[m].tolist(), y[m].tolist()):
                    painter.drawEllipse(tr.map(QtCore.QPointF(px, py)), r_px, r_px)
        painter.restore()

    # -- picking -------------------------------------------------------------------------------------
    def pick(self, x: float, y: float, radius_px: float = 6.0) -> int | None:
        """Index of the drawn point nearest map position (x, y) within ``radius_px``.

        Uses the index image of the latest rasterisation; None when nothing was drawn
        there (or nothing rendered yet: see :attr:`has_render`).
        """
        c = self._cache
        if c is None:
            return None
        sx, sy, ox, oy = c["map"]
        pad = c["pad"]
        px = sx * x + ox + pad
        py = sy * y + oy + pad
        index = c["index"]
        hp, wp = index.shape
        if not (math.isfinite(px) and math.isfinite(py)):
            return None
        rad = int(math.ceil(radius_px * c["dpr"]))
        cx, cy = int(px), int(py)
        x0, x1 = max(0, cx - rad), min(wp, cx + rad + 1)
        y0, y1 = max(0, cy - rad), min(hp, cy + rad + 1)
        if x0 >= x1 or y0 >= y1:
            return None
        win = index[y0:y1, x0:x1]
        hits = np.argwhere(win >= 0)
        if not len(hits):
            return None
        d2 = (hits[:, 0] + y0 + 0.5 - py) ** 2 + (hits[:, 1] + x0 + 0.5 - px) ** 2
        best = int(np.argmin(d2))
        if d2[best] > (rad + 0.75) ** 2:
            return None
        return int(win[hits[best, 0], hits[best, 1]])

    @property
    def has_render(self) -> bool:
        return self._cache is not None

    @property
    def points_in_view(self) -> int:
        return 0 if self._cache is None else int(self._cache["in_view"])


# ---------------------------------------------------------------------------------------
# Small overlay items
# ---------------------------------------------------------------------------------------
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
            q = image_to_qimage(self._images[i])
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
    selection). Left clicks (without a drag) emit :attr:`sig_clicked` in every tool.
    """

    sig_clicked = QtCore.Signal(object, object)            # view QPointF, modifiers
    sig_selection_drawn = QtCore.Signal(str, object, object)  # "rect"|"lasso", M×2 view points, modifiers
    sig_context_menu = QtCore.Signal(object, object)       # view QPointF, screen QPoint

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
            self.sig_clicked.emit(self.mapToView(ev.pos()), ev.modifiers())
            return
        super().mouseClickEvent(ev)

    def raiseContextMenu(self, ev) -> None:
        # The map's own menu (pin, neighbours, fit) instead of pyqtgraph's mouse-mode menu,
        # whose rectangle-zoom mode would fight the selection tools.
        self.sig_context_menu.emit(self.mapToView(ev.pos()), ev.screenPos().toPoint())

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
            self.sig_selection_drawn.emit(self.tool, pts, ev.modifiers())


# ---------------------------------------------------------------------------------------
# The map view
# ---------------------------------------------------------------------------------------
class LatentMapView(pg.PlotWidget):
    """The plot of the latent map, bound to an :class:`~explorer.state.ExplorerState`.

    Writes the cursor position into ``state.map`` (``set_cursor``, ``set_hovered_index``)
    and listens to the map state for layouts, selection, pins, highlights and paths. The
    hover pipeline is: ``sigMouseMoved`` stores the newest position → one zero-delay timer
    processes only the latest one (older ones are dropped) → inverse projection → state
    signal → decoder preview. Nothing in it re-rasterises the scatter.
    """

    sig_status = QtCore.Signal(str)
    sig_clicked = QtCore.Signal(object)          # PickedPoint (after a pin was added, if pin_on_click)

    def __init__(self, state, parent=None):
        self.vb = MapViewBox()
        super().__init__(parent=parent, viewBox=self.vb)
        self.state = state
        self.map = state.map
        self.pin_on_click = True
        self.animate = True
        self.animation_ms = 450
        self.backdrop_enabled = False
        self.backdrop_grid = 16
        self.thumbnails_enabled = False
        self.thumbnail_max_per_cell = 4.0
        self.pick_radius_px = 7.0
        self.setMinimumSize(240, 200)
        self.setMouseTracking(True)

        self.plot_item = self.getPlotItem()
        self.plot_item.hideButtons()
        self.plot_item.setMenuEnabled(False)
        self.vb.setAspectLocked(False)
        self.vb.disableAutoRange()

        self.backdrop = pg.ImageItem(axisOrder="row-major")
        self.backdrop.setZValue(-10)
        self.backdrop.hide()
        self.vb.addItem(self.backdrop, ignoreBounds=True)

        self.points = PointCloudItem()
        self.points.setZValue(0)
        self.vb.addItem(self.points)

        self.thumbnails = ThumbnailItem()
        self.thumbnails.setZValue(5)
        self.vb.addItem(self.thumbnails, ignoreBounds=True)

        self.highlight_item = pg.ScatterPlotItem(size=15, pen=pg.mkPen("#ffd54a", width=2.2),
                                                 brush=pg.mkBrush(None), pxMode=True)
        self.highlight_item.setZValue(20)
        self.vb.addItem(self.highlight_item, ignoreBounds=True)

        self.path_curve = pg.PlotCurveItem(pen=pg.mkPen("#ff6fb5", width=2.5))
        self.path_curve.setZValue(30)
        self.path_dots = pg.ScatterPlotItem(size=6, pen=pg.mkPen(None), brush=pg.mkBrush("#ff6fb5"))
        self.path_dots.setZValue(31)
        self.path_marker = pg.ScatterPlotItem(size=17, symbol="o", pen=pg.mkPen("#ffffff", width=2.5),
                                              brush=pg.mkBrush("#ff2d95"))
        self.path_marker.setZValue(32)
        for item in (self.path_curve, self.path_dots, self.path_marker):
            self.vb.addItem(item, ignoreBounds=True)

        self.pin_item = pg.ScatterPlotItem(size=16, symbol="star", pen=pg.mkPen("#1b1b1b", width=1.2),
                                           brush=pg.mkBrush("#ffe14d"))
        self.pin_item.setZValue(40)
        self.vb.addItem(self.pin_item, ignoreBounds=True)
        self._pin_labels: list[pg.TextItem] = []

        for item in (self.highlight_item, self.path_curve, self.path_dots, self.path_marker, self.pin_item):
            item.hide()
        self.cursor_item = CursorItem()
        self.cursor_item.hide()
        self.vb.addItem(self.cursor_item, ignoreBounds=True)

        self.hint = pg.TextItem("", anchor=(0.5, 0.5))
        self.hint.setZValue(60)
        self.vb.addItem(self.hint, ignoreBounds=True)
        self.hint.hide()

        # latest-wins hover processing
        self._pending_hover = None
        self._hover_timer = QtCore.QTimer(self)
        self._hover_timer.setSingleShot(True)
        self._hover_timer.setInterval(0)
        self._hover_timer.timeout.connect(self._process_hover)
        self.hover_count = 0
        self.last_hover_ms = 0.0

        # view settled -> backdrop and thumbnails
        self._settle_timer = QtCore.QTimer(self)
        self._settle_timer.setSingleShot(True)
        self._settle_timer.setInterval(180)
        self._settle_timer.timeout.connect(self._on_view_settled)
        self.vb.sigRangeChanged.connect(self._on_range_changed)
        self.vb.sigRangeChangedManually.connect(self._on_user_moved_view)
        self.vb.sig_clicked.connect(self._on_clicked)
        self.vb.sig_selection_drawn.connect(self._on_selection_drawn)
        self.vb.sig_context_menu.connect(self._on_context_menu)
        self.neighbours_k = 8

        # projection transitions
        self._anim = QtCore.QVariantAnimation(self)
        self._anim.setStartValue(0.0)
        self._anim.setEndValue(1.0)
        self._anim.setEasingCurve(QtCore.QEasingCurve.Type.InOutCubic)
        self._anim.valueChanged.connect(self._on_anim_step)
        self._anim.finished.connect(self._on_anim_finished)
        self._range_from = self._range_to = None
        self._shown_projection_key = None
        # The view frames each new layout (e.g. after every training epoch, when the codes
        # spread out from a fresh model's tiny ones) until the user pans or zooms by hand.
        self.follow_layout = True
        self._colors: list[tuple[int, int, int]] = []

        self._connections = []
        m = self.map
        for signal, slot in ((m.layout_changed, self._on_layout_changed),
                             (m.projection_changed, self._on_projection_changed),
                             (m.selection_changed, self._on_selection_changed),
                             (m.hidden_labels_changed, self._on_hidden_labels_changed),
                             (m.pins_changed, self._refresh_pins),
                             (m.highlight_changed, self._on_highlight_changed),
                             (m.path_changed, self._refresh_path),
                             (m.path_frame_changed, self._refresh_path_marker),
                             (state.dataset_changed, self._on_dataset_changed),
                             (state.weights_changed, self._schedule_backdrop),
                             (state.model_changed, self._schedule_backdrop)):
            signal.connect(slot)
            self._connections.append((signal, slot))
        conns = self._connections
        self.destroyed.connect(lambda *_: _disconnect_all(conns))
        self.dark = True
        self._apply_colors()
        self._on_dataset_changed(state.dataset)
        if m.xy is not None:
            self._on_layout_changed()
        self._update_hint()

    # -- colours -----------------------------------------------------------------------------------------
    def _apply_colors(self) -> None:
        """Follow the widget palette (light or dark theme)."""
        palette = self.palette()
        self.dark = _is_dark(palette)
        base = palette.color(QtGui.QPalette.ColorRole.Base)
        text = palette.color(QtGui.QPalette.ColorRole.Text)
        self.setBackground(base)
        for name in ("left", "bottom"):
            axis = self.plot_item.getAxis(name)
            axis.enableAutoSIPrefix(False)   # no "(x0.001)" label to re-typeset on every frame
            axis.setPen(pg.mkPen(text))
            axis.setTextPen(pg.mkPen(text))
        muted = QtGui.QColor(text)
        muted.setAlpha(170)
        self.hint.setColor(muted)
        self.points.edge_color = SELECTION_EDGE if self.dark else 0xFF101010
        self.cursor_item.set_colors(QtGui.QColor(255, 255, 255) if self.dark else QtGui.QColor(20, 20, 20),
                                    QtGui.QColor(0, 0, 0, 170) if self.dark else QtGui.QColor(255, 255, 255, 200))
        ring = "#ffd54a" if self.dark else "#e65100"
        self.highlight_item.setPen(pg.mkPen(ring, width=2.2))
        # Pin names sit on a translucent plate so they read over points and the backdrop.
        self._pin_text_color = "#ffe14d" if self.dark else "#5c4300"
        self._pin_fill = pg.mkBrush(0, 0, 0, 150) if self.dark else pg.mkBrush(255, 255, 255, 190)
        labels, colors = self._labels_and_colors()
        if colors != self._colors:
            self._colors = colors
            self.thumbnails.set_source(self.state.images, labels, colors)
            if self.points.positions.shape[0]:
                self.points.set_data(self.points.positions, labels, colors)
                self.points.set_visible_mask(self.map.visible_mask())
                self.points.set_selection(self.map.selection)
        self._refresh_pins()

    def changeEvent(self, ev) -> None:
        if ev.type() == QtCore.QEvent.Type.PaletteChange and hasattr(self, "dark"):
            self._apply_colors()
        super().changeEvent(ev)

    # -- layout and animation ------------------------------------------------------------------------
    def _labels_and_colors(self):
        labels = self.state.labels
        n_classes = max(len(self.state.class_names), int(labels.max()) + 1 if labels is not None and len(labels) else 0)
        colors = class_colors(n_classes, self.dark) if labels is not None else [UNLABELED_COLOR]
        return labels, colors

    @property
    def colors(self) -> list[tuple[int, int, int]]:
        return self._colors

    def _on_dataset_changed(self, data=None) -> None:
        labels, self._colors = self._labels_and_colors()
        self.thumbnails.set_source(self.state.images, labels, self._colors)
        self._anim.stop()
        self.points.set_data(np.zeros((0, 2), np.float32))
        self.backdrop.hide()
        self._shown_projection_key = None
        self._update_hint()

    def _projection_key(self):
        proj = self.map.projection
        return None if proj is None else (proj.kind, proj.name)

    def _on_projection_changed(self, projection) -> None:
        proj = projection
        if proj is None:
            self.plot_item.setLabel("bottom", "")
            self.plot_item.setLabel("left", "")
            return
        if proj.kind == "dims":
            bx, ly = f"z{proj.i}", f"z{proj.j}"
        elif proj.kind == "pca":
            ratio = getattr(proj, "explained_variance_ratio", None)
            aligned = not np.allclose(proj.affine, np.array([[1, 0, 0], [0, 1, 0]]))
            if ratio is not None and not aligned:
                bx, ly = f"PC 1 ({ratio[0]:.0%} of variance)", f"PC 2 ({ratio[1]:.0%})"
            else:
                bx, ly = "PCA x", "PCA y"
        else:
            bx, ly = f"{proj.name} x", f"{proj.name} y"
        self.plot_item.setLabel("bottom", bx)
        self.plot_item.setLabel("left", ly)

    def _on_layout_changed(self) -> None:
        xy = self.map.xy
        self._anim.stop()
        if xy is None:
            self.points.set_data(np.zeros((0, 2), np.float32))
            self._shown_projection_key = None
            self._update_hint()
            return
        key = self._projection_key()
        if key != self._shown_projection_key:
            self.follow_layout = True
        reframe = self.follow_layout
        first = self.points.positions.shape[0] != len(xy) or self._shown_projection_key is None
        self._shown_projection_key = key
        labels, colors = self._labels_and_colors()
        if first:
            self.points.set_data(xy, labels, colors)
            self.points.set_visible_mask(self.map.visible_mask())
            self.points.set_selection(self.map.selection)
            self.vb.setRange(rect=self._target_rect(xy), padding=0)
            self._after_layout()
            return
        target_rect = self._target_rect(xy) if reframe else None
        if not self.animate or self.animation_ms <= 0:
            self.points.set_positions(xy)
            if target_rect is not None:
                self.vb.setRange(rect=target_rect, padding=0)
            self._after_layout()
            return
        self.points.begin_transition(xy)
        self._range_from = self.vb.viewRect() if target_rect is not None else None
        self._range_to = target_rect
        self.thumbnails.hide()
        self.highlight_item.hide()
        self._anim.setDuration(int(self.animation_ms))
        self._anim.start()

    def _on_anim_step(self, t) -> None:
        t = float(t)
        self.points.set_transition(t)
        if self._range_to is not None:
            r0, r1 = self._range_from, self._range_to
            rect = QtCore.QRectF(r0.x() + (r1.x() - r0.x()) * t, r0.y() + (r1.y() - r0.y()) * t,
                                 r0.width() + (r1.width() - r0.width()) * t,
                                 r0.height() + (r1.height() - r0.height()) * t)
            self.vb.setRange(rect=rect, padding=0)

    def _on_anim_finished(self) -> None:
        self.points.end_transition()
        if self._range_to is not None:
            self.vb.setRange(rect=self._range_to, padding=0)
        self._range_from = self._range_to = None
        self.thumbnails.setVisible(self.thumbnails_enabled)
        self._after_layout()

    @property
    def animating(self) -> bool:
        return self._anim.state() == QtCore.QAbstractAnimation.State.Running

    def finish_animation(self) -> None:
        """Jump to the end of a running transition (tests, exports)."""
        if self.animating:
            self._anim.stop()
            self._on_anim_finished()

    def _after_layout(self) -> None:
        self._refresh_overlays()
        self._update_hint()
        self._schedule_backdrop()

    def _refresh_overlays(self) -> None:
        self._refresh_pins()
        self._on_highlight_changed(self.map.highlight)

    @staticmethod
    def _target_rect(xy) -> QtCore.QRectF:
        """A frame around the bulk of the points: outliers do not squash the map."""
        pts = xy[np.isfinite(xy).all(1)]
        if not len(pts):
            return QtCore.QRectF(-1, -1, 2, 2)
        if len(pts) > 200_000:
            pts = pts[:: len(pts) // 200_000 + 1]
        lo = np.percentile(pts, 0.2, axis=0) if len(pts) > 500 else pts.min(0)
        hi = np.percentile(pts, 99.8, axis=0) if len(pts) > 500 else pts.max(0)
        span = np.maximum(hi - lo, 1e-6)
        lo, hi = lo - 0.06 * span, hi + 0.06 * span
        return QtCore.QRectF(float(lo[0]), float(lo[1]), float(hi[0] - lo[0]), float(hi[1] - lo[1]))

    def _on_user_moved_view(self, *_) -> None:
        self.follow_layout = False

    def reset_view(self) -> None:
        self.follow_layout = True
        if self.map.xy is not None:
            self.vb.setRange(rect=self._target_rect(self.map.xy), padding=0)

    # -- state -> view ---------------------------------------------------------------------------------
    def _on_selection_changed(self, indices) -> None:
        self.points.set_selection(indices)

    def _on_hidden_labels_changed(self, labels) -> None:
        self.points.set_visible_mask(self.map.visible_mask())
        self._schedule_settle()

    def _on_highlight_changed(self, indices) -> None:
        xy = self.points.positions
        idx = np.asarray(indices, dtype=np.int64)
        idx = idx[(idx >= 0) & (idx < len(xy))]
        if not len(idx):
            _show_scatter(self.highlight_item, None)
            return
        _show_scatter(self.highlight_item, pos=xy[idx], data=idx)

    def _refresh_pins(self) -> None:
        for label in self._pin_labels:
            self.vb.removeItem(label)
        self._pin_labels = []
        spots = []
        for pin in self.map.pins:
            pos = self._pin_position(pin)
            if pos is None:
                continue
            spots.append({"pos": pos, "data": pin.name})
            text = pg.TextItem(pin.name, color=self._pin_text_color, anchor=(-0.15, 1.1), fill=self._pin_fill)
            text.setZValue(41)
            text.setPos(*pos)
            self.vb.addItem(text, ignoreBounds=True)
            self._pin_labels.append(text)
        _show_scatter(self.pin_item, spots or None)

    def _pin_position(self, pin):
        xy = self.points.positions
        if pin.index is not None and 0 <= pin.index < len(xy) and self.map.codes is not None \
                and len(self.map.codes) == len(xy) and np.allclose(self.map.codes[pin.index], pin.z, atol=1e-6):
            return tuple(float(v) for v in xy[pin.index])
        return self.map.pin_xy(pin)

    def _refresh_path(self) -> None:
        xy = self.map.path_xy
        if xy is None or not len(xy):
            self.path_curve.clear()
            self.path_curve.hide()
            _show_scatter(self.path_dots, None)
            _show_scatter(self.path_marker, None)
            return
        self.path_curve.setData(xy[:, 0], xy[:, 1])
        self.path_curve.show()
        _show_scatter(self.path_dots, pos=xy[[0, -1]] if len(xy) > 1 else xy, size=10,
                               brush=[pg.mkBrush("#7ee787"), pg.mkBrush("#ff6fb5")][: min(2, len(xy))])
        self._refresh_path_marker()

    def _refresh_path_marker(self, frame=None) -> None:
        xy = self.map.path_xy
        frame = self.map.path_frame
        if xy is None or not (0 <= frame < len(xy)):
            _show_scatter(self.path_marker, None)
            return
        _show_scatter(self.path_marker, pos=xy[frame:frame + 1])

    def _update_hint(self) -> None:
        text = ""
        if self.state.dataset is None:
            text = "Load a dataset to see its latent map"
        elif self.state.model is None:
            text = "Load or train a model to map the dataset"
        elif self.map.xy is None:
            text = "Encoding and projecting…"
        elif self.thumbnails_enabled and not self.thumbnails.count and self.map.xy is not None:
            text = "Zoom in to see image thumbnails"
        if text:
            self.hint.setText(text)
            self._place_hint()
            self.hint.show()
        else:
            self.hint.hide()

    # -- hover ------------------------------------------------------------------------------------------
    def mouseMoveEvent(self, ev) -> None:
        # pyqtgraph's scene drops mouse moves closer than 10 ms apart (``mouseRateLimit``),
        # which can leave the cursor on a stale position when the mouse stops. Record every
        # position here; the zero-delay timer still processes only the newest one.
        self._on_scene_mouse_moved(self.mapToScene(ev.position().toPoint()))
        super().mouseMoveEvent(ev)

    def _on_scene_mouse_moved(self, scene_pos) -> None:
        if self.vb.sceneBoundingRect().contains(scene_pos):
            p = self.vb.mapSceneToView(scene_pos)
            self._pending_hover = (p.x(), p.y())
        else:
            self._pending_hover = None
        if not self._hover_timer.isActive():
            self._hover_timer.start()

    def leaveEvent(self, ev) -> None:
        self._pending_hover = None
        if not self._hover_timer.isActive():
            self._hover_timer.start()
        super().leaveEvent(ev)

    def hover_at(self, x: float, y: float) -> None:
        """Process a cursor at map position (x, y) now (scripts, tests)."""
        self._pending_hover = (float(x), float(y))
        self._process_hover()

    def _process_hover(self) -> None:
        pending = self._pending_hover
        t0 = time.perf_counter()
        if pending is None or not self.map.ready:
            self.cursor_item.hide()
            self.map.set_hovered_index(None)
            self.map.set_cursor(None)
            return
        x, y = pending
        self.cursor_item.setPos(x, y)
        self.cursor_item.show()
        index = self.points.pick(x, y, self.pick_radius_px) if not self.animating else None
        if index is None and not self.points.has_render:
            radius = self.pick_radius_px * abs(self.vb.viewPixelSize()[0])
            index = self.map.nearest_index((x, y), radius)
        self.map.set_hovered_index(index)
        self.map.set_cursor((x, y))
        self.hover_count += 1
        self.last_hover_ms = (time.perf_counter() - t0) * 1e3

    # -- clicks and selection ---------------------------------------------------------------------------
    def _on_clicked(self, view_pos, modifiers) -> None:
        if not self.map.ready:
            return
        x, y = view_pos.x(), view_pos.y()
        index = self.points.pick(x, y, self.pick_radius_px)
        picked = self.map.pick((x, y), index=index)
        if picked is None:
            return
        studio_picks = getattr(getattr(self.state, "studio", None), "pick_target", None) is not None
        if self.pin_on_click and not studio_picks:
            self.map.add_pin(picked.z, index=picked.index,
                             label=picked.label if picked.label is not None else self._decode_label())
        self.sig_clicked.emit(picked)

    def _on_context_menu(self, view_pos, screen_pos) -> None:
        menu = self.context_menu(view_pos.x(), view_pos.y())
        menu.popup(screen_pos)

    def context_menu(self, x: float, y: float) -> QtWidgets.QMenu:
        """The right-click menu for map position (x, y)."""
        menu = QtWidgets.QMenu(self)
        ready = self.map.ready
        index = self.points.pick(x, y, self.pick_radius_px) if ready else None

        def pin():
            picked = self.map.pick((x, y), index=index)
            if picked is not None:
                self.map.add_pin(picked.z, index=picked.index,
                                 label=picked.label if picked.label is not None else self._decode_label())

        def neighbours():
            nearest = self.map.query_nearest(self.map.inverse(np.array([x, y])), self.neighbours_k)
            if nearest is not None:
                self.map.set_highlight(nearest.indices)

        what = f"data point #{index:,}" if index is not None else "this point"
        menu.addAction(f"Pin {what}", pin).setEnabled(ready)
        menu.addAction(f"Highlight the {self.neighbours_k} nearest data points", neighbours).setEnabled(ready)
        menu.addAction("Clear highlights", lambda: self.map.set_highlight([])).setEnabled(bool(len(self.map.highlight)))
        menu.addAction("Clear selection", lambda: self.map.select_group(None)).setEnabled(bool(self.map.selection.size))
        menu.addSeparator()
        menu.addAction("Fit view", self.reset_view)
        return menu

    def _decode_label(self):
        model = self.state.model
        if model is not None and getattr(model, "conditional", False):
            return int(self.state.studio.decode_label)
        return None

    def _on_selection_drawn(self, tool, points, modifiers) -> None:
        if tool == "rect":
            (x0, y0), (x1, y1) = points[0], points[2]
            idx = self.map.select_rect(x0, y0, x1, y1)
        else:
            idx = self.map.select_polygon(points) if len(points) >= 3 else np.zeros(0, np.int64)
        add = bool(modifiers & QtCore.Qt.KeyboardModifier.ShiftModifier)
        if add and self.map.selection.size:
            idx = np.union1d(self.map.selection, idx)
        if not len(idx):
            self.sig_status.emit("The selection is empty: no shown point lies inside it.")
            return
        name = self.map.add_group(idx)
        self.sig_status.emit(f"Group {name}: {len(idx):,} points selected.")

    def set_tool(self, tool: str) -> None:
        if tool not in ("pan", "rect", "lasso"):
            raise ValueError(tool)
        self.vb.tool = tool

    # -- backdrop and thumbnails --------------------------------------------------------------------------
    def _place_hint(self) -> None:
        rect = self.vb.viewRect()
        if self.map.xy is None:   # nothing drawn: the middle
            self.hint.setAnchor((0.5, 0.5))
            self.hint.setPos(rect.center())
        else:                     # over the points: the top edge
            self.hint.setAnchor((0.5, 0.0))
            self.hint.setPos(rect.center().x(), rect.bottom())

    def _on_range_changed(self, *args) -> None:
        if self.hint.isVisible():
            self._place_hint()
        self._schedule_settle()

    def _schedule_settle(self, *args) -> None:
        if self.backdrop_enabled or self.thumbnails_enabled:
            self._settle_timer.start()

    def _schedule_backdrop(self, *args) -> None:
        if self.backdrop_enabled:
            self._settle_timer.start()

    def _on_view_settled(self) -> None:
        if self.animating:
            self._settle_timer.start()
            return
        if self.backdrop_enabled:
            self.update_backdrop()
        if self.thumbnails_enabled:
            self.update_thumbnails()
        self._update_hint()

    def set_backdrop_enabled(self, on: bool) -> None:
        self.backdrop_enabled = bool(on)
        self.points.setOpacity(0.4 if on else 1.0)
        if on:
            self.update_backdrop()
        else:
            self.backdrop.hide()

    def set_backdrop_grid(self, k: int) -> None:
        self.backdrop_grid = max(2, int(k))
        if self.backdrop_enabled:
            self.update_backdrop()

    def update_backdrop(self) -> None:
        """Decode a k×k grid of the visible area and tile it behind the points."""
        if not self.map.ready or self.state.model is None:
            self.backdrop.hide()
            return
        rect = self.vb.viewRect()
        k = self.backdrop_grid
        xs = rect.left() + (np.arange(k) + 0.5) * rect.width() / k
        ys = rect.top() + (np.arange(k) + 0.5) * rect.height() / k
        # Row 0 of the mosaic is drawn at the top of the view, where y is largest.
        gx, gy = np.meshgrid(xs, ys[::-1])
        pts = np.column_stack([gx.ravel(), gy.ravel()])
        try:
            codes = self.map.inverse(pts)
            images = self.state.decode(codes)
        except (ValueError, RuntimeError) as exc:
            self.sig_status.emit(f"The backdrop could not be decoded: {exc}")
            self.backdrop.hide()
            return
        mosaic = np.nan_to_num(tile_images(images, k, k), nan=0.0, posinf=1.0, neginf=0.0)
        self.backdrop.setImage(np.ascontiguousarray(mosaic[::-1]), levels=(0.0, 1.0), autoLevels=False)
        self.backdrop.setRect(rect)
        self.backdrop.show()

    def set_thumbnails_enabled(self, on: bool) -> None:
        self.thumbnails_enabled = bool(on)
        self.thumbnails.setVisible(self.thumbnails_enabled)
        if on:
            self.update_thumbnails()
        self._update_hint()

    def update_thumbnails(self) -> None:
        """Pick non-overlapping data points in view (one per thumbnail-sized cell)."""
        xy = self.points.positions
        if not self.thumbnails_enabled or self.state.images is None or not len(xy) or len(xy) != len(self.state.images):
            self.thumbnails.set_points(np.zeros((0, 2), np.float32), np.zeros(0, np.int64))
            return
        rect = self.vb.viewRect()
        inside = (xy[:, 0] >= rect.left()) & (xy[:, 0] <= rect.right()) & \
                 (xy[:, 1] >= rect.top()) & (xy[:, 1] <= rect.bottom())
        visible = self.map.visible_mask()
        if visible is not None:
            inside &= visible
        idx = np.flatnonzero(inside)
        px, py = self.vb.viewPixelSize()
        cell = self.thumbnails.size_px * 1.05
        cells = max(1.0, (rect.width() / (px * cell)) * (rect.height() / (py * cell)))
        # "Zoomed in": few enough points per thumbnail-sized cell that the images do not
        # simply tile the whole view.
        if not len(idx) or len(idx) / cells > self.thumbnail_max_per_cell:
            self.thumbnails.set_points(np.zeros((0, 2), np.float32), np.zeros(0, np.int64))
            return
        cx = np.floor((xy[idx, 0] - rect.left()) / (px * cell)).astype(np.int64)
        cy = np.floor((xy[idx, 1] - rect.top()) / (py * cell)).astype(np.int64)
        _, first = np.unique(cx * 1_000_003 + cy, return_index=True)
        chosen = idx[np.sort(first)][:1500]
        self.thumbnails.set_points(xy[chosen], chosen)

    # -- export ------------------------------------------------------------------------------------------
    def _export_svg(self, path: str) -> None:
        # Qt's SVG paint engine renders the scene directly (the points draw as real circles);
        # pyqtgraph's SVGExporter cannot parse the path data current Qt 6 writes.
        _render_svg(self.scene(), self.plot_item.sceneBoundingRect(), self.backgroundBrush().color(), path)

    def export_image(self, path, width: int | None = None) -> None:
        """Save the plot as PNG (raster, optionally wider) or SVG (vector points)."""
        from pyqtgraph.exporters import ImageExporter

        self.finish_animation()
        cursor_visible = self.cursor_item.isVisible()
        self.cursor_item.hide()
        try:
            path = str(path)
            if path.lower().endswith(".svg"):
                self._export_svg(path)
            else:
                exporter = ImageExporter(self.plot_item)
                if width:
                    exporter.parameters()["width"] = int(width)
                exporter.export(path)
        finally:
            self.cursor_item.setVisible(cursor_visible)


def _render_svg(scene: QtWidgets.QGraphicsScene, source: QtCore.QRectF, background: QtGui.QColor, path: str,
                title: str = "Latent map") -> None:
    from PySide6 import QtSvg

    gen = QtSvg.QSvgGenerator()
    gen.setFileName(path)
    size = source.size().toSize()
    gen.setSize(size)
    gen.setViewBox(QtCore.QRect(0, 0, size.width(), size.height()))
    gen.setTitle(title)
    gen.setDescription("Exported by Latent Explorer")
    painter = QtGui.QPainter(gen)
    try:
        target = QtCore.QRectF(0, 0, size.width(), size.height())
        painter.fillRect(target, background)
        scene.render(painter, target, source)
    finally:
        painter.end()


def _show_scatter(item: pg.ScatterPlotItem, spots=None, **kwargs) -> None:
    """Set a small overlay's points, hiding it when empty (empty items still cost a paint)."""
    if spots is None and not kwargs:
        item.clear()
        item.hide()
        return
    item.setData(spots, **kwargs) if spots is not None else item.setData(**kwargs)
    item.show()


def _disconnect_all(connections) -> None:
    for signal, slot in connections:
        try:
            signal.disconnect(slot)
        except (ValueError, RuntimeError, TypeError):
            pass
