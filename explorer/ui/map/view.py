"""The latent map plot: points, decoded backdrop, thumbnails, cursor, pins, neighbours, path.

:class:`LatentMapView` puts together the rasterised :class:`~explorer.ui.map.point_cloud.PointCloudItem`
(why it is not a ``ScatterPlotItem`` is written at the top of that module), the small items
of :mod:`explorer.ui.map.items` and stock pyqtgraph items for the few overlays.

Why this module is long (~710 lines): hover, click, lasso, keyboard and the overlays all
work in the view's coordinates and share its transform and throttles (the hover path is
timed to the millisecond: docs/BENCHMARKS.md); the items they draw are in other modules.
"""

from __future__ import annotations

import time

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

from explorer.ui.image_grid import tile_images
from explorer.ui.map.items import CursorItem, MapViewBox, ThumbnailItem
from explorer.ui.map.point_cloud import SELECTION_EDGE, PointCloudItem
from explorer.ui.qt_utils import Connections, is_dark
from explorer.ui.theme import UNLABELED_COLOR, class_colors


def _no_hover_events(ev, exitOnly: bool = False) -> None:
    return None


class LatentMapView(pg.PlotWidget):
    """The plot of the latent map, bound to an :class:`~explorer.state.ExplorerState`.

    Writes the cursor position into ``state.map`` (``set_cursor``, ``set_hovered_index``)
    and listens to the map state for layouts, selection, pins, highlights and paths. The
    hover pipeline is: ``sigMouseMoved`` stores the newest position → one zero-delay timer
    processes only the latest one (older ones are dropped) → inverse projection → state
    signal → decoder preview. Nothing in it re-rasterises the scatter.
    """

    status_posted = QtCore.Signal(str)
    point_clicked = QtCore.Signal(object)        # PickedPoint (after a pin was added, if pin_on_click)

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
        # The map answers the cursor itself (cursor item, picking, the decoder). pyqtgraph's
        # hover dispatch would look up and sort every item under the cursor on each move
        # (~1 ms) for items that react to hovering, which the map's scene does not hold.
        self.scene().sendHoverEvents = _no_hover_events

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
        self.vb.clicked.connect(self._on_box_clicked)
        self.vb.selection_drawn.connect(self._on_box_selection_drawn)
        self.vb.context_menu_requested.connect(self._on_box_context_menu_requested)
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

        self._connections = Connections(self)
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
            self._connections.connect(signal, slot)
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
        self.dark = is_dark(palette)
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
        index = self._point_at(x, y) if not self.animating else None
        self.map.set_hovered_index(index)
        self.map.set_cursor((x, y))
        self.hover_count += 1
        self.last_hover_ms = (time.perf_counter() - t0) * 1e3

    def _point_at(self, x: float, y: float) -> int | None:
        """The data point drawn under map position (x, y), or None.

        From the index image of the last rasterisation; before the first one of a new layout
        (its repaint may wait a few event-loop turns), the nearest point within the pick radius.
        """
        index = self.points.pick(x, y, self.pick_radius_px)
        if index is None and not self.points.has_render:
            radius = self.pick_radius_px * abs(self.vb.viewPixelSize()[0])
            index = self.map.nearest_index((x, y), radius)
        return index

    # -- clicks and selection ---------------------------------------------------------------------------
    def _on_box_clicked(self, view_pos, modifiers) -> None:
        if not self.map.ready:
            return
        x, y = view_pos.x(), view_pos.y()
        picked = self.map.pick((x, y), index=self._point_at(x, y))
        if picked is None:
            return
        studio_picks = getattr(getattr(self.state, "studio", None), "pick_target", None) is not None
        if self.pin_on_click and not studio_picks:
            self.map.add_pin(picked.z, index=picked.index,
                             label=picked.label if picked.label is not None else self._decode_label())
        self.point_clicked.emit(picked)

    def _on_box_context_menu_requested(self, view_pos, screen_pos) -> None:
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

    def _on_box_selection_drawn(self, tool, points, modifiers) -> None:
        if tool == "rect":
            (x0, y0), (x1, y1) = points[0], points[2]
            idx = self.map.select_rect(x0, y0, x1, y1)
        else:
            idx = self.map.select_polygon(points) if len(points) >= 3 else np.zeros(0, np.int64)
        add = bool(modifiers & QtCore.Qt.KeyboardModifier.ShiftModifier)
        if add and self.map.selection.size:
            idx = np.union1d(self.map.selection, idx)
        if not len(idx):
            self.status_posted.emit("The selection is empty: no shown point lies inside it.")
            return
        name = self.map.add_group(idx)
        self.status_posted.emit(f"Group {name}: {len(idx):,} points selected.")

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
            self.status_posted.emit(f"The backdrop could not be decoded: {exc}")
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

