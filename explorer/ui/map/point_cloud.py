"""The latent map's point cloud: up to millions of points rasterised from NumPy.

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

from explorer.ui.qt_utils import safe_paint
from explorer.ui.theme import UNLABELED_COLOR

DENSITY_THRESHOLD = 250_000     # points in view above which the density layer is drawn
SELECTION_EDGE = 0xFFFFFFFF


def argb_table(palette, alphas) -> np.ndarray:
    """Premultiplied ARGB32 pixel values: a row per ``(r, g, b)`` of ``palette``, a column per alpha.

    Channels are rounded half to even, as Python's ``round``. One NumPy expression: the
    table is rebuilt with every new layout, colouring or selection, and 180 calls of a
    per-pixel function took 1.5 ms of the GUI thread each time (0.1 ms now).
    """
    rgb = np.asarray(palette, dtype=np.float64).reshape(-1, 3)
    alphas = np.asarray(alphas, dtype=np.float64).reshape(-1)
    a = np.round(255 * alphas).astype(np.uint32)[None, :]
    r, g, b = (np.round(rgb[:, c, None] * alphas[None, :]).astype(np.uint32) for c in range(3))
    return (a << 24) | (r << 16) | (g << 8) | b


def _disc_offsets(radius: int) -> list[tuple[int, int]]:
    if radius <= 0:
        return [(0, 0)]
    r2 = (radius + 0.5) ** 2
    return [(dx, dy) for dy in range(-radius, radius + 1) for dx in range(-radius, radius + 1)
            if dx * dx + dy * dy <= r2]



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
        self._color_keys: np.ndarray | None = None    # per-point palette rows (colour by a measure)
        self._key_palette: list | None = None
        self._dimmed: np.ndarray | None = None        # per-point: drawn faded (outside a filter)
        self.dim_alpha = 0.12
        self._selected = np.zeros(0, dtype=np.int64)
        self.radius: int | None = None                # None: automatic from the point count
        self.dim_unselected = True
        self.outline_limit = 1500                     # selected points get a ring up to this many
        self.edge_color = SELECTION_EDGE
        self._layer_list: list[dict] = []
        self._stale = False        # the layers wait for the next draw (see _rebuild)
        self._lut = np.zeros((1, self.DENSITY_LEVELS), dtype=np.uint32)
        self._key_data = np.zeros(0, dtype=np.int32)
        self._transition = None
        self._bounds = QtCore.QRectF()
        self._cache = None
        self._buffers = None
        self._pad_px = 4.0
        self._brect: QtCore.QRectF | None = None   # boundingRect, until the bounds or the view change
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
            self._color_keys = self._key_palette = self._dimmed = None
        self._n = len(xy)
        self._xy = xy
        self._brect = None
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

    def set_color_keys(self, keys, palette=None) -> None:
        """Colour point ``i`` with ``palette[keys[i]]`` (RGB tuples) instead of its label's colour.

        A continuous measure arrives binned into a colour map's entries, so every draw
        stays a lookup in one small colour table. ``keys=None`` goes back to the labels.
        """
        if keys is None:
            self._color_keys = self._key_palette = None
        else:
            keys = np.asarray(keys, dtype=np.int32).reshape(-1)
            if len(keys) != self._n:
                raise ValueError(f"{len(keys)} colour keys for {self._n} points.")
            if not palette:
                raise ValueError("Colour keys need a palette.")
            self._color_keys, self._key_palette = keys, list(palette)
        self._rebuild()

    def set_dimmed(self, mask) -> None:
        """Draw the points where ``mask`` is True faded (at :attr:`dim_alpha`), under the others."""
        if mask is not None:
            mask = np.asarray(mask, dtype=bool).reshape(-1)
            if len(mask) != self._n:
                raise ValueError(f"A dimming mask of {len(mask)} points for {self._n}.")
            if not mask.any():
                mask = None
        self._dimmed = mask
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
        """Mark the draw-order layers stale: they are recomputed once, when next needed.

        A new layout sets the positions, the colours, the filter's dimming and visibility
        and the selection one after another; recomputed at each (0.1 s at a million
        points), the GUI thread did the same work six times in one turn.
        """
        self._transition = None
        self._stale = True
        if self._n == 0:
            self._layer_list = []
            self._bounds = QtCore.QRectF()
            self._brect = None
        else:
            self._update_bounds()
        self._invalidate(geometry=True)

    @property
    def _layers(self) -> list[dict]:
        if self._stale:
            self._stale = False
            self._build_layers()
        return self._layer_list

    def _build_layers(self) -> None:
        """Compute the draw-order layers from labels, visibility, selection and colours."""
        n = self._n
        self._layer_list = []
        if n == 0:
            return
        perm = self._perm
        keep = np.ones(n, dtype=bool) if self._visible is None else self._visible[perm]
        sel_mask = np.zeros(n, dtype=bool)
        if self._selected.size:
            flags = np.zeros(n, dtype=bool)
            flags[self._selected[(self._selected >= 0) & (self._selected < n)]] = True
            sel_mask = flags[perm]
        any_sel = bool(sel_mask.any())
        palette = self._key_palette if self._color_keys is not None else self._palette
        n_cls = len(palette)
        # Colour table: row = colour (+ n_cls faded by a selection, + 2·n_cls dimmed by a
        # filter), column = density level.
        levels = self.DENSITY_LEVELS
        alphas = 0.42 + 0.58 * np.arange(levels) / (levels - 1)
        fade = 0.3 if any_sel and self.dim_unselected else 1.0
        lut = np.concatenate([argb_table(palette, alphas * f) for f in (1.0, fade, self.dim_alpha)])
        if self._color_keys is not None:
            key = np.clip(self._color_keys[perm], 0, n_cls - 1).astype(np.int32)
        elif self._labels is not None and n_cls > 1:
            key = np.clip(self._labels[perm], 0, n_cls - 1).astype(np.int32)
        else:
            key = np.zeros(n, dtype=np.int32)
        dimmed = None if self._dimmed is None else self._dimmed[perm]
        key_data = key.copy()                          # colour-table row of each point, draw order
        for name, mask, faded in (("unsel", keep & ~sel_mask, any_sel and self.dim_unselected),
                                  ("sel", keep & sel_mask, False)):
            order = np.flatnonzero(mask)
            if dimmed is not None:   # dimmed points first, so the points inside the filter cover them
                low = dimmed[order]
                order = np.concatenate([order[low], order[~low]])
            k = key[order] + (n_cls if faded else 0)
            if dimmed is not None:
                k[dimmed[order]] = key[order][dimmed[order]] + 2 * n_cls
            key_data[order] = k
            idx = perm[order].astype(np.int32)
            self._layer_list.append({"name": name, "idx": idx, "key_offset": n_cls if faded else 0, "col": lut[k, -1],
                                 "x": np.ascontiguousarray(self._xy[idx, 0]),
                                 "y": np.ascontiguousarray(self._xy[idx, 1])})
        self._lut = lut
        self._key_data = np.empty(n, dtype=np.int32)   # colour-table row of each point, data order
        self._key_data[perm] = key_data

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
        self._brect = None

    def _invalidate(self, geometry: bool = False) -> None:
        self._cache = None
        if geometry:
            self.prepareGeometryChange()
            self._brect = None
        self.update()

    # -- QGraphicsItem / pyqtgraph protocol ---------------------------------------------------------
    def boundingRect(self) -> QtCore.QRectF:
        # Asked ~10 times per mouse move (the scene's hover lookup, painting): the padding's
        # pixelVectors cost 0.1 ms a call, and they change only with the view.
        if self._brect is None:
            self._brect = self._padded_bounds()
        return self._brect

    def _padded_bounds(self) -> QtCore.QRectF:
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
        self._brect = None

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
        layers = self._layers   # rebuilt here if stale, with the colour table and keys below
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
            for layer in layers:
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
                self._splat_density(buf, flat, index, wp * hp, park)
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

    def _splat_density(self, buf, flat, index, size, park) -> None:
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
        keys = self._key_data[index[hit]]       # colour-table row (fades included) of the point drawn last
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
