"""The studio's docks (:func:`install_studio`) and its interpolation panel: keyframes,
method, steps and easing.

Keyframes come from the operand picker (data point, pin, class mean, group, map cursor)
or from clicks on the map while "Pick on map" is on. The frames play in the player
(:mod:`explorer.ui.studio.player`) and their path is drawn on the map.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QEvent, QObject, QSize, Qt, QTimer
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import (QAbstractItemView, QCheckBox, QComboBox, QFormLayout, QFrame, QHBoxLayout, QLabel,
                               QListWidget, QListWidgetItem, QPushButton, QScrollArea, QSpinBox, QToolButton,
                               QVBoxLayout, QWidget)
from superqt.utils import signals_blocked

from explorer.state.studio import EASING_NAMES, METHODS, pingpong_indices
from explorer.ui.qt_utils import Connections
from explorer.ui.studio.common import OperandPicker, thumbnail

EASING_TEXT = {"linear": "Linear", "ease-in-out": "Ease in-out", "ease-in": "Ease in", "ease-out": "Ease out"}
METHOD_TEXT = {"lerp": "Linear (lerp)", "slerp": "Spherical (slerp)"}


class InterpolationPanel(QWidget):
    """Keyframe list and interpolation settings; edits ``state.studio``."""

    def __init__(self, state, parent=None) -> None:
        super().__init__(parent)
        self._conn = Connections(self)
        self.state = state
        self.studio = state.studio

        self.keyframe_list = QListWidget()
        self.keyframe_list.setIconSize(QSize(40, 40))
        self.keyframe_list.setDragDropMode(QAbstractItemView.DragDropMode.InternalMove)
        self.keyframe_list.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.keyframe_list.setToolTip("Keyframes in order; drag to reorder, Delete to remove")
        self.keyframe_list.model().rowsMoved.connect(self._on_rows_moved)
        self.keyframe_list.setMinimumHeight(120)

        self.picker = OperandPicker(state, actions=(("add", "Add keyframe"),))
        self.pick_button = QPushButton("Pick on map")
        self.pick_button.setCheckable(True)
        self.pick_button.setToolTip("While on, every click on the map (a data point or any position) adds a keyframe")
        self.remove_button = QToolButton()
        self.remove_button.setText("Remove")
        self.up_button = QToolButton()
        self.up_button.setText("▲")
        self.up_button.setToolTip("Move the keyframe earlier")
        self.down_button = QToolButton()
        self.down_button.setText("▼")
        self.down_button.setToolTip("Move the keyframe later")
        self.reverse_button = QToolButton()
        self.reverse_button.setText("Reverse")
        self.clear_button = QToolButton()
        self.clear_button.setText("Clear")

        self.method_combo = QComboBox()
        for m in METHODS:
            self.method_combo.addItem(METHOD_TEXT.get(m, m), m)
        self.method_combo.setToolTip("lerp: straight lines between codes. slerp: along the sphere; "
                                     "keeps codes at a typical distance from the origin")
        self.steps_spin = QSpinBox()
        self.steps_spin.setRange(2, 600)
        self.steps_spin.setToolTip("Total number of frames, keyframes included")
        self.easing_combo = QComboBox()
        for e in EASING_NAMES:
            self.easing_combo.addItem(EASING_TEXT.get(e, e), e)
        self.easing_combo.setToolTip("Timing within each segment between two keyframes")
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.show_button = QPushButton("Play interpolation")
        self.show_button.setToolTip("Show the interpolation in the player again (after animating something else)")

        buttons = QHBoxLayout()
        buttons.addWidget(self.pick_button)
        buttons.addStretch(1)
        for b in (self.up_button, self.down_button, self.reverse_button, self.remove_button, self.clear_button):
            buttons.addWidget(b)
        form = QFormLayout()
        form.addRow("Method", self.method_combo)
        form.addRow("Frames", self.steps_spin)
        form.addRow("Easing", self.easing_combo)
        # Codebook models (vqvae): frames in the continuous pre-quantization space, snapped or not.
        self.snap_check = QCheckBox("Snap each frame to the codebook")
        self.snap_check.setToolTip("On: every frame is quantized to codebook entries before decoding, as the model "
                                   "does, so the images change in jumps. Off: the decoder reads the continuous, "
                                   "unquantized codes between the keyframes")
        form.addRow("", self.snap_check)
        self._form = form
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.picker)
        layout.addLayout(buttons)
        layout.addWidget(self.keyframe_list, 1)
        layout.addLayout(form)
        layout.addWidget(self.summary)
        layout.addWidget(self.show_button)

        self.picker.picked.connect(self._on_picker_picked)
        self.pick_button.toggled.connect(self._on_pick_toggled)
        self.remove_button.clicked.connect(self._on_remove)
        self.up_button.clicked.connect(lambda: self._move_selected(-1))
        self.down_button.clicked.connect(lambda: self._move_selected(1))
        self.reverse_button.clicked.connect(self.studio.interpolation.reverse_keyframes)
        self.clear_button.clicked.connect(self.studio.interpolation.clear_keyframes)
        self.method_combo.currentIndexChanged.connect(
            lambda: self.studio.interpolation.set_method(self.method_combo.currentData()))
        self.steps_spin.valueChanged.connect(self.studio.interpolation.set_steps)
        self.easing_combo.currentIndexChanged.connect(
            lambda: self.studio.interpolation.set_easing(self.easing_combo.currentData()))
        self.show_button.clicked.connect(self._on_show)
        self.snap_check.toggled.connect(self.studio.interpolation.set_snap)
        self.keyframe_list.currentRowChanged.connect(self._update_buttons)

        self._conn.connect(self.studio.interpolation.keyframes_changed, self._on_studio_keyframes_changed)
        self._conn.connect(self.studio.interpolation.settings_changed, self._on_studio_settings_changed)
        self._conn.connect(self.studio.player.frames_changed, self._update_summary)
        self._conn.connect(self.studio.player.playback_changed, self._update_summary)
        self._conn.connect(self.studio.picking.target_changed, self._on_studio_pick_target_changed)
        self._conn.connect(state.weights_changed, self._on_studio_keyframes_changed)
        self._conn.connect(state.model_changed, self._on_studio_keyframes_changed)
        self._conn.connect(state.model_changed, self._on_studio_settings_changed)
        self._conn.connect(self.studio.context.decode_label_changed, self._on_studio_keyframes_changed)
        self._on_studio_settings_changed()
        self._on_studio_keyframes_changed()

    def keyPressEvent(self, event) -> None:
        if event.key() in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace) and self.keyframe_list.hasFocus():
            self._on_remove()
            return
        super().keyPressEvent(event)

    # -- user input ----------------------------------------------------------------------------
    def _on_picker_picked(self, keyframe) -> None:
        self.studio.interpolation.add_keyframe(keyframe)
        self.keyframe_list.setCurrentRow(self.keyframe_list.count() - 1)

    def _on_pick_toggled(self, on: bool) -> None:
        if on:
            self.studio.picking.set_target("keyframes")
        elif self.studio.picking.target == "keyframes":
            self.studio.picking.set_target(None)

    def _on_remove(self) -> None:
        row = self.keyframe_list.currentRow()
        if 0 <= row < len(self.studio.interpolation.keyframes):
            self.studio.interpolation.remove_keyframe(row)
            self.keyframe_list.setCurrentRow(min(row, self.keyframe_list.count() - 1))

    def _move_selected(self, delta: int) -> None:
        row = self.keyframe_list.currentRow()
        new = row + delta
        if 0 <= row < len(self.studio.interpolation.keyframes) and 0 <= new < len(self.studio.interpolation.keyframes):
            self.studio.interpolation.move_keyframe(row, new)
            self.keyframe_list.setCurrentRow(new)

    def _on_rows_moved(self, _parent, start, _end, _dest, row) -> None:
        # Qt reports the destination before removal; translate to the final position.
        new = row - 1 if row > start else row
        self.studio.interpolation.move_keyframe(start, new)

    def _on_show(self) -> None:
        if not self.studio.interpolation.build():
            self.state.post_message("warning", "Pick at least two keyframes (and load a model).")

    # -- state → widgets ---------------------------------------------------------------------------
    def _on_studio_keyframes_changed(self, *_) -> None:
        keys = self.studio.interpolation.keyframes
        images = None
        if keys and self.studio.context.can_decode():
            try:
                images = self.studio.context.decode(np.stack([k.z for k in keys]))
            except ValueError:
                images = None
        row = self.keyframe_list.currentRow()
        frame_at = self.studio.interpolation.keyframe_frame_indices()
        with signals_blocked(self.keyframe_list):
            self.keyframe_list.clear()
            for i, k in enumerate(keys):
                text = f"{i + 1}. {k.name}"
                if len(keys) > 1:
                    text += f"  (frame {frame_at[i] + 1})"
                item = QListWidgetItem(text)
                if images is not None:
                    item.setIcon(QIcon(thumbnail(images[i], 40)))
                tip = {"index": "data point", "pin": "pin", "centroid": "class mean", "group": "group centroid",
                       "map": "map position", "code": "code"}.get(k.kind, k.kind)
                item.setToolTip(f"{k.name} — {tip}" + (f", label {self.studio.context.label_name(k.label)}"
                                                      if k.label is not None else ""))
                self.keyframe_list.addItem(item)
            self.keyframe_list.setCurrentRow(min(row, len(keys) - 1) if keys else -1)
        self._update_buttons()
        self._update_summary()

    def _on_studio_settings_changed(self) -> None:
        s = self.studio
        with signals_blocked(self.method_combo):
            self.method_combo.setCurrentIndex(self.method_combo.findData(s.interpolation.method))
        with signals_blocked(self.steps_spin):
            self.steps_spin.setValue(s.interpolation.steps)
        with signals_blocked(self.easing_combo):
            self.easing_combo.setCurrentIndex(self.easing_combo.findData(s.interpolation.easing))
        with signals_blocked(self.snap_check):
            self.snap_check.setChecked(s.interpolation.snap)
        self._form.setRowVisible(self.snap_check, s.context.can_decode_unquantized())
        self._update_summary()

    def _on_studio_pick_target_changed(self, target) -> None:
        with signals_blocked(self.pick_button):
            self.pick_button.setChecked(target == "keyframes")

    def _update_buttons(self, *_) -> None:
        n = len(self.studio.interpolation.keyframes)
        row = self.keyframe_list.currentRow()
        self.remove_button.setEnabled(0 <= row < n)
        self.up_button.setEnabled(0 < row < n)
        self.down_button.setEnabled(0 <= row < n - 1)
        self.reverse_button.setEnabled(n > 1)
        self.clear_button.setEnabled(n > 0)
        self.show_button.setEnabled(n > 1 and self.studio.context.can_decode())

    def _update_summary(self, *_) -> None:
        s = self.studio
        n = len(s.interpolation.keyframes)
        if n < 2:
            self.summary.setText(f"{n} keyframe{'s' if n != 1 else ''}: pick at least two "
                                 "(Add keyframe, or Pick on map and click).")
        else:
            frames = s.interpolation.effective_steps
            shown = len(pingpong_indices(frames, s.player.pingpong))
            text = f"{n} keyframes → {frames} frames, {shown / s.player.fps:.1f} s at {s.player.fps:g} fps"
            if s.player.pingpong:
                text += " (ping-pong)"
            if s.interpolation.steps < n:
                text += f". At least one frame per keyframe: {frames} frames."
            self.summary.setText(text)
        self._update_buttons()


# ==========================================================================================
# Integration into the main window
# ==========================================================================================
class StudioDocks(QObject):
    """The studio's docks, menu actions and map overlays in a :class:`MainWindow`.

    Created by :func:`install_studio`. Docks: Player, Interpolation, Arithmetic,
    Attributes and Traversals. Menus: Export ▸ Animation… (Ctrl+E) and Current Frame…,
    Edit ▸ Copy Current Frame, and a Studio menu with Play/Pause (Space anywhere a text
    field does not have the keyboard).
    """

    def __init__(self, window) -> None:
        super().__init__(window)
        from explorer.ui.studio.arithmetic import ArithmeticPanel, AttributePanel
        from explorer.ui.studio.player import PlayerWidget
        from explorer.ui.studio.traversal import TraversalPanel

        self.window = window
        self.state = window.state
        self.studio = window.state.studio
        self._conn = Connections(self)
        self._export_dialog = None
        self._pin_on_click_before: bool | None = None

        self.player = PlayerWidget(self.state)
        self.interpolation = InterpolationPanel(self.state)
        self.arithmetic = ArithmeticPanel(self.state)
        self.attributes = AttributePanel(self.state)
        self.traversals = TraversalPanel(self.state)
        # Space is a window-wide action below; a second one on the player would be ambiguous.
        self.player.removeAction(self.player.play_action)

        right = Qt.DockWidgetArea.RightDockWidgetArea
        add = window.add_panel_dock
        self.docks = {
            "player": add("Player", _scrollable(self.player), right, "studio_player",
                          tip="Play, scrub and export the current animation"),
            "interpolation": add("Interpolation", _scrollable(self.interpolation), right, "studio_interpolation",
                                 tip="Keyframes, lerp/slerp, frames and easing"),
            "arithmetic": add("Arithmetic", _scrollable(self.arithmetic), right, "studio_arithmetic",
                              tip="Latent arithmetic: A − B + C with a strength, its result and neighbours"),
            "attributes": add("Attributes", _scrollable(self.attributes), right, "studio_attributes",
                              tip="Attribute vectors between two classes or groups, applied to any point"),
            "traversals": add("Traversals", _scrollable(self.traversals), right, "studio_traversals",
                              tip="One slider per latent dimension and the traversal grid"),
        }
        d = self.docks
        # The player shares the bottom with the loss curves (wide: frame beside controls);
        # the panels that feed it are tabs on the right, beside the map.
        samples = window.docks.get("samples")
        window.tab_docks((window.docks.get("loss_curves"), Qt.DockWidgetArea.BottomDockWidgetArea, [d["player"]]),
                         (samples, right, [d[key] for key in ("interpolation", "arithmetic", "attributes",
                                                              "traversals")]))
        d["player"].raise_()
        d["interpolation"].raise_()
        window.resizeDocks([d["interpolation"]], [460], Qt.Orientation.Horizontal)
        recon = window.docks.get("reconstructions")
        if recon is not None and samples is not None:
            # the studio tabs get most of the column; reconstructions stay visible above
            window.resizeDocks([recon, d["interpolation"]], [28, 72], Qt.Orientation.Vertical)
        hide_stale_tab_bars(window)
        window.installEventFilter(self)

        # menus
        self.export_action = window.add_menu_action(
            "Export", "&Animation…", self.open_export_dialog, shortcut="Ctrl+E", name="export_animation",
            tip="Export the player's animation as GIF, MP4, WebP, animated PNG or a PNG strip/grid")
        self.save_frame_action = window.add_menu_action(
            "Export", "Current &Frame as Image…", self.save_current_frame, shortcut="Ctrl+Shift+E",
            name="export_frame", tip="Save the frame on the player as an image")
        self.copy_frame_action = window.add_menu_action(
            "Edit", "Copy Current &Frame", self.copy_current_frame, shortcut="Ctrl+Alt+C", name="copy_frame",
            tip="Copy the frame on the player to the clipboard")
        self.play_action = window.add_menu_action(
            "Studio", "&Play/Pause", self.toggle_playing, shortcut="Space", name="studio_play",
            tip="Play or pause the animation (Space, unless a text field has the keyboard)")
        window.add_menu_action("Studio", "&Next Frame", lambda: self.studio.player.step(1), shortcut="Ctrl+Right",
                               name="studio_next", tip="Show the next frame")
        window.add_menu_action("Studio", "Pre&vious Frame", lambda: self.studio.player.step(-1), shortcut="Ctrl+Left",
                               name="studio_previous", tip="Show the previous frame")
        window.menus["Studio"].addSeparator()
        self.pick_action = window.add_menu_action(
            "Studio", "Pick &Keyframes on Map", self._on_pick_action, shortcut="Ctrl+K", name="studio_pick",
            tip="While on, clicks on the map add interpolation keyframes")
        self.pick_action.setCheckable(True)
        window.add_menu_action("Studio", "&Clear Keyframes", self.studio.interpolation.clear_keyframes, name="studio_clear",
                               tip="Remove every keyframe")

        self.player.export_requested.connect(self.open_export_dialog)
        self.player.copy_requested.connect(self.copy_current_frame)
        self.player.save_frame_requested.connect(self.save_current_frame)
        self._conn.connect(self.studio.player.animation_started, self._on_studio_animation_started)
        self._conn.connect(self.studio.player.frames_changed, self._update_actions)
        self._conn.connect(self.studio.picking.target_changed, self._on_studio_pick_target_changed)
        self._conn.connect(self.studio.arithmetic.changed, self._on_studio_arithmetic_changed)
        self._conn.connect(self.studio.attributes.changed, self._update_markers)
        self._conn.connect(self.state.map.layout_changed, self._update_markers)
        self._conn.connect(self.state.map.projection_changed, self._update_markers)
        self._markers = None
        self._update_actions()

    def eventFilter(self, obj, event) -> bool:
        if obj is self.window and event.type() == QEvent.Type.Show:
            QTimer.singleShot(0, lambda: hide_stale_tab_bars(self.window, by_geometry=True))
        return False

    # -- the map ---------------------------------------------------------------------------------
    def map_panel(self):
        """The central map panel when it is one (it has the studio hooks), else None."""
        panel = getattr(self.window, "central_panel", None)
        if panel is None or not hasattr(panel, "pin_on_click"):
            return None
        if getattr(panel, "follow_studio", False):
            # The studio keeps the map's path and marker in step itself (the marker
            # follows the frame on screen, ping-pong included).
            panel.follow_studio = False
        return panel

    def _on_studio_pick_target_changed(self, target) -> None:
        with signals_blocked(self.pick_action):
            self.pick_action.setChecked(target == "keyframes")
        panel = self.map_panel()
        if panel is None:
            return
        # While the studio picks, a click should not also drop a pin.
        if target is not None and self._pin_on_click_before is None:
            self._pin_on_click_before = panel.pin_on_click
            panel.pin_on_click = False
        elif target is None and self._pin_on_click_before is not None:
            panel.pin_on_click = self._pin_on_click_before
            self._pin_on_click_before = None

    def _on_pick_action(self, checked: bool) -> None:
        if checked:
            self.studio.picking.set_target("keyframes")
            self.docks["interpolation"].raise_()
        elif self.studio.picking.target == "keyframes":
            self.studio.picking.set_target(None)

    def _on_studio_arithmetic_changed(self) -> None:
        s = self.studio
        if s.arithmetic.result_z is not None and len(s.arithmetic.neighbor_indices):
            self.state.map.set_highlight(s.arithmetic.neighbor_indices)
        self._update_markers()

    def _ensure_markers(self):
        panel = self.map_panel()
        view = getattr(panel, "view", None) if panel is not None else None
        vb = getattr(view, "vb", None)
        if vb is None:
            return None
        if self._markers is None or self._markers[0] is not vb:
            import pyqtgraph as pg

            result = pg.ScatterPlotItem(size=18, symbol="d", pen=pg.mkPen("#1b1b1b", width=1.5),
                                        brush=pg.mkBrush("#35d0ff"))
            result.setZValue(45)
            shifted = pg.ScatterPlotItem(size=16, symbol="t1", pen=pg.mkPen("#1b1b1b", width=1.5),
                                         brush=pg.mkBrush("#8cff66"))
            shifted.setZValue(45)
            label = pg.TextItem("", color="#35d0ff", anchor=(0, 1))
            label.setZValue(46)
            for item in (result, shifted, label):
                vb.addItem(item, ignoreBounds=True)
            self._markers = (vb, result, shifted, label)
        return self._markers

    def _update_markers(self, *_) -> None:
        markers = self._ensure_markers()
        if markers is None:
            return
        _, result, shifted, label = markers
        m, s = self.state.map, self.studio
        for item, z in ((result, s.arithmetic.result_z), (shifted, s.attributes.result_z)):
            xy = None
            if z is not None and m.ready:
                try:
                    xy = m.forward(np.atleast_2d(z))
                except ValueError:
                    xy = None
            if xy is None:
                item.clear()
                if item is result:
                    label.setText("")
            else:
                item.setData(pos=xy)
                if item is result:
                    label.setText("result")
                    label.setPos(float(xy[0, 0]), float(xy[0, 1]))

    # -- player and export -------------------------------------------------------------------------
    def toggle_playing(self) -> None:
        """Space: play/pause, unless a focused button or list should get the key."""
        from PySide6.QtWidgets import QAbstractButton, QApplication, QComboBox

        focus = QApplication.focusWidget()
        if isinstance(focus, QAbstractButton) and not self.player.isAncestorOf(focus):
            focus.animateClick()
            return
        if isinstance(focus, QComboBox):
            focus.showPopup()
            return
        self.studio.player.toggle_playing()

    def _on_studio_animation_started(self, kind: str) -> None:
        self.docks["player"].raise_()

    def _update_actions(self) -> None:
        has = self.studio.player.frame_count > 0
        for a in (self.export_action, self.save_frame_action, self.copy_frame_action):
            a.setEnabled(has)

    def open_export_dialog(self):
        from explorer.ui.studio.export_dialog import ExportDialog

        if self.studio.player.frame_count == 0:
            self.state.post_message("warning", "There is no animation to export yet.")
            return None
        if self._export_dialog is None:
            self._export_dialog = ExportDialog(self.state, self.window)
        self._export_dialog.show()
        self._export_dialog.raise_()
        self._export_dialog.activateWindow()
        return self._export_dialog

    def copy_current_frame(self) -> None:
        from explorer.ui.studio.export_dialog import copy_frame_to_clipboard

        frame = self.player.current_shown_frame()
        if frame is not None:
            copy_frame_to_clipboard(frame)
            self.state.post_message("info", "Copied the current frame.")

    def save_current_frame(self) -> None:
        from PySide6.QtWidgets import QFileDialog

        from explorer.ui.studio.export_dialog import save_frame

        frame = self.player.current_shown_frame()
        if frame is None:
            return
        name = f"frame-{self.studio.player.current_frame + 1:03d}.png"
        path, _ = QFileDialog.getSaveFileName(self.window, "Save Current Frame", name,
                                              "PNG images (*.png);;JPEG images (*.jpg *.jpeg);;WebP images (*.webp)")
        if path:
            try:
                saved = save_frame(frame, path)
            except (OSError, ValueError) as exc:
                from explorer.jobs.training import friendly_error

                self.window.show_error("Could not save the frame", friendly_error(exc, "Saving the frame"))
                return
            self.state.post_message("info", f"Saved {saved.name}.")


def hide_stale_tab_bars(window, *, by_geometry: bool = False) -> int:
    """Hide dock tab bars that ``window``'s layout no longer uses; returns how many.

    Qt (seen with 6.12) leaves the first tab bar of a second tab group visible after
    more docks join the group, drawn over whatever lies beneath. A bar is stale when its
    docks are not a current tab group or, once the window is laid out, when it does not
    touch the dock it shows.
    """
    import shiboken6
    from PySide6.QtWidgets import QDockWidget, QTabBar

    docks = {shiboken6.getCppPointer(d)[0]: d for d in window.findChildren(QDockWidget)}
    groups = [{d, *window.tabifiedDockWidgets(d)} for d in docks.values() if window.tabifiedDockWidgets(d)]
    hidden = 0
    for bar in window.findChildren(QTabBar, options=Qt.FindChildOption.FindDirectChildrenOnly):
        if bar.isHidden() or not bar.count():
            continue
        members = [docks.get(bar.tabData(i)) for i in range(bar.count())]
        stale = set(members) not in groups
        if not stale and by_geometry:
            current = members[bar.currentIndex()] if 0 <= bar.currentIndex() < len(members) else None
            g, b = current.geometry() if current is not None else None, bar.geometry()
            stale = g is None or not (abs(b.top() - g.bottom() - 1) <= 3 or abs(g.top() - b.bottom() - 1) <= 3) or \
                b.right() < g.left() or b.left() > g.right()
        if stale:
            bar.hide()
            hidden += 1
    return hidden


class _NoHeightForWidthLayout(QVBoxLayout):
    """A layout that does not report height-for-width.

    QScrollArea sizes a height-for-width widget to at least its *preferred* height, so
    one word-wrapped label inside a panel would make its dock scroll long before the
    panel is actually cramped.
    """

    def hasHeightForWidth(self) -> bool:
        return False


class _DockScroll(QScrollArea):
    """A frameless scroll area for a dock: it scrolls only below the panel's minimum size."""

    def __init__(self, panel: QWidget) -> None:
        super().__init__()
        self.panel = panel
        container = QWidget()
        layout = _NoHeightForWidthLayout(container)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(panel, 1)
        self.setWidget(container)
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setMinimumSize(200, 120)
        if hasattr(panel, "fit_to"):
            panel.auto_fit = False       # the space of this scroll area decides

    def sizeHint(self) -> QSize:
        hint = self.panel.sizeHint()
        return QSize(min(hint.width(), 460), min(hint.height(), 320))

    def resizeEvent(self, event) -> None:
        if hasattr(self.panel, "fit_to"):
            self.panel.fit_to(self.viewport().size())
        super().resizeEvent(event)


def _scrollable(widget: QWidget) -> QScrollArea:
    """``widget`` in a frameless scroll area, so a small dock scrolls instead of forcing
    the window to grow."""
    return _DockScroll(widget)


def install_studio(window) -> StudioDocks:
    """Add the studio's docks, menu actions and map overlays to ``window``."""
    window.studio_docks = StudioDocks(window)
    window.studio_docks.map_panel()
    return window.studio_docks
