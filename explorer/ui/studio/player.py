"""The animation player: the current frame, a filmstrip, transport controls.

Whatever animation the studio holds (interpolation, arithmetic, attribute, label sweep,
traversal) plays here. The pictures shown are :meth:`StudioState.display_frames`, i.e.
:func:`vae_core.export.prepare_frames` output in the same order (ping-pong included), so an
export writes exactly what the player showed.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QSize, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QIcon, QKeySequence
from PySide6.QtWidgets import (QAbstractItemView, QBoxLayout, QCheckBox, QDoubleSpinBox, QHBoxLayout, QLabel,
                               QListView, QListWidget, QListWidgetItem, QSizePolicy, QSlider, QStyle,
                               QToolButton, QVBoxLayout, QWidget)
from superqt.utils import signals_blocked

from explorer.ui.qt_utils import Connections
from explorer.ui.studio.common import ImageView, LabelPicker, thumbnail


class Filmstrip(QListWidget):
    """A horizontal strip of the animation's decoded frames; click one to show it.

    Items are the decoded frames (before ping-pong); the frame on screen is selected.
    """

    frame_clicked = Signal(int)      # index into studio.player.frames

    def __init__(self, parent=None, *, thumb: int = 56) -> None:
        super().__init__(parent)
        self.thumb = thumb
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setFlow(QListView.Flow.LeftToRight)
        self.setWrapping(False)
        self.setMovement(QListView.Movement.Static)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setIconSize(QSize(thumb, thumb))
        self.setSpacing(2)
        self.setUniformItemSizes(True)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setFixedHeight(thumb + self.fontMetrics().height() + 30)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.itemClicked.connect(lambda item: self.frame_clicked.emit(self.row(item)))

    def set_frames(self, frames, captions=()) -> None:
        with signals_blocked(self):
            self.clear()
            if frames is None:
                return
            captions = list(captions)
            for i, image in enumerate(frames):
                caption = captions[i] if i < len(captions) and captions[i] else str(i + 1)
                item = QListWidgetItem(QIcon(thumbnail(image, self.thumb)), caption)
                item.setToolTip(f"Frame {i + 1}" + (f": {captions[i]}" if i < len(captions) and captions[i] else ""))
                item.setSizeHint(QSize(self.thumb + 8, self.thumb + self.fontMetrics().height() + 8))
                self.addItem(item)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        item = self.currentItem()
        if item is not None:
            self.scrollToItem(item, QAbstractItemView.ScrollHint.EnsureVisible)

    def showEvent(self, event) -> None:
        super().showEvent(event)
        item = self.currentItem()
        if item is not None:
            QTimer.singleShot(0, lambda: self.scrollToItem(item, QAbstractItemView.ScrollHint.EnsureVisible)
                              if self.currentItem() is item else None)

    def set_current(self, index: int | None) -> None:
        with signals_blocked(self):
            if index is None or not 0 <= index < self.count():
                self.clearSelection()
                return
            self.setCurrentRow(index)
            self.scrollToItem(self.item(index), QAbstractItemView.ScrollHint.EnsureVisible)


class PlayerWidget(QWidget):
    """Plays the studio's current animation.

    Space toggles play/pause while the player has focus; the main window adds an
    application-wide action too. Emits :attr:`export_requested` for the Export button.
    """

    export_requested = Signal()
    copy_requested = Signal()
    save_frame_requested = Signal()

    def __init__(self, state, parent=None) -> None:
        super().__init__(parent)
        self._conn = Connections(self)
        self.state = state
        self.studio = state.studio
        self._shown: list[np.ndarray] = []       # prepare_frames output: what is on screen
        self.auto_fit = True                     # orientation follows our size (see fit_to)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)

        self.title = QLabel("No animation yet: pick two keyframes, or animate an edit.")
        self.title.setWordWrap(True)
        self.view = ImageView(placeholder="The current frame shows here.", minimum=80)
        self.view.setToolTip("The current frame (Space: play/pause)")
        self.filmstrip = Filmstrip()

        style = self.style()
        self.first_button = self._tool(style.standardIcon(QStyle.StandardPixmap.SP_MediaSkipBackward), "First frame (Home)")
        self.back_button = self._tool(style.standardIcon(QStyle.StandardPixmap.SP_MediaSeekBackward), "Previous frame (←)")
        self.play_button = self._tool(style.standardIcon(QStyle.StandardPixmap.SP_MediaPlay), "Play (Space)")
        self.forward_button = self._tool(style.standardIcon(QStyle.StandardPixmap.SP_MediaSeekForward), "Next frame (→)")
        self.last_button = self._tool(style.standardIcon(QStyle.StandardPixmap.SP_MediaSkipForward), "Last frame (End)")
        self._play_icon = style.standardIcon(QStyle.StandardPixmap.SP_MediaPlay)
        self._pause_icon = style.standardIcon(QStyle.StandardPixmap.SP_MediaPause)
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setToolTip("Scrub through the animation")
        self.frame_label = QLabel("0 / 0")
        self.frame_label.setMinimumWidth(self.fontMetrics().horizontalAdvance("0000 / 0000") + 8)
        self.frame_label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.fps_spin = QDoubleSpinBox()
        self.fps_spin.setRange(0.5, 60.0)
        self.fps_spin.setDecimals(1)
        self.fps_spin.setSuffix(" fps")
        self.fps_spin.setToolTip("Playback speed; exports use the same rate by default")
        self.loop_check = QCheckBox("Loop")
        self.loop_check.setToolTip("Start over at the end")
        self.pingpong_check = QCheckBox("Ping-pong")
        self.pingpong_check.setToolTip("Play forward then backward (exports do the same)")
        self.export_button = QToolButton()
        self.export_button.setText("Export…")
        self.export_button.setToolTip("Export this animation as GIF, MP4, WebP, PNG… (Ctrl+E)")
        self.copy_button = QToolButton()
        self.copy_button.setText("Copy")
        self.copy_button.setToolTip("Copy the current frame to the clipboard")
        self.save_button = QToolButton()
        self.save_button.setText("Save…")
        self.save_button.setToolTip("Save the current frame as an image")
        self.label_picker = LabelPicker(state)

        transport = QHBoxLayout()
        transport.setSpacing(2)
        for w in (self.first_button, self.back_button, self.play_button, self.forward_button, self.last_button):
            transport.addWidget(w)
        transport.addWidget(self.slider, 1)
        transport.addWidget(self.frame_label)
        options = QHBoxLayout()
        options.addWidget(self.fps_spin)
        options.addWidget(self.loop_check)
        options.addWidget(self.pingpong_check)
        options.addStretch(1)
        files = QHBoxLayout()
        files.addStretch(1)
        files.addWidget(self.copy_button)
        files.addWidget(self.save_button)
        files.addWidget(self.export_button)
        # The frame beside the controls in a wide dock (bottom area), above them in a tall one.
        side = QWidget()
        side_layout = QVBoxLayout(side)
        side_layout.setContentsMargins(0, 0, 0, 0)
        side_layout.addWidget(self.title)
        side_layout.addWidget(self.filmstrip)
        side_layout.addLayout(transport)
        side_layout.addLayout(options)
        side_layout.addLayout(files)
        side_layout.addWidget(self.label_picker)
        side_layout.addStretch(1)
        self._side = side
        self._box = QBoxLayout(QBoxLayout.Direction.TopToBottom, self)
        self._box.setContentsMargins(4, 4, 4, 4)
        self._box.addWidget(self.view, 1)
        self._box.addWidget(side, 0)

        self.timer = QTimer(self)
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.timeout.connect(self._on_timer_timeout)

        # Keyboard: Space plays/pauses while the player (or a child) has focus.
        self.play_action = QAction("Play/Pause", self)
        self.play_action.setShortcut(QKeySequence(Qt.Key.Key_Space))
        self.play_action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self.play_action.triggered.connect(self.studio.player.toggle_playing)
        self.addAction(self.play_action)
        for key, slot in ((Qt.Key.Key_Left, lambda: self.studio.player.step(-1)),
                          (Qt.Key.Key_Right, lambda: self.studio.player.step(1)),
                          (Qt.Key.Key_Home, lambda: self.studio.player.set_current_frame(0)),
                          (Qt.Key.Key_End, lambda: self.studio.player.set_current_frame(self.studio.player.sequence_length - 1))):
            action = QAction(self)
            action.setShortcut(QKeySequence(key))
            action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            action.triggered.connect(slot)
            self.addAction(action)

        self.first_button.clicked.connect(lambda: self.studio.player.set_current_frame(0))
        self.back_button.clicked.connect(lambda: self.studio.player.step(-1))
        self.play_button.clicked.connect(self.studio.player.toggle_playing)
        self.forward_button.clicked.connect(lambda: self.studio.player.step(1))
        self.last_button.clicked.connect(lambda: self.studio.player.set_current_frame(self.studio.player.sequence_length - 1))
        self.slider.valueChanged.connect(self.studio.player.set_current_frame)
        self.fps_spin.valueChanged.connect(self.studio.player.set_fps)
        self.loop_check.toggled.connect(self.studio.player.set_loop)
        self.pingpong_check.toggled.connect(self.studio.player.set_pingpong)
        self.export_button.clicked.connect(self.export_requested)
        self.copy_button.clicked.connect(self.copy_requested)
        self.save_button.clicked.connect(self.save_frame_requested)
        self.filmstrip.frame_clicked.connect(self._on_filmstrip_frame_clicked)
        self.label_picker.animate_requested.connect(self._on_animate_labels)

        self._conn.connect(self.studio.player.frames_changed, self._on_studio_frames_changed)
        self._conn.connect(self.studio.player.current_frame_changed, self._on_studio_current_frame_changed)
        self._conn.connect(self.studio.player.playback_changed, self._on_studio_playback_changed)
        self._on_studio_playback_changed()
        self._on_studio_frames_changed()

    def fit_to(self, size: QSize) -> None:
        """Put the frame beside the controls when ``size`` (the space the player has) is
        wide, above them otherwise."""
        wide = size.width() > 1.6 * size.height()
        direction = QBoxLayout.Direction.LeftToRight if wide else QBoxLayout.Direction.TopToBottom
        if self._box.direction() != direction:
            self._box.setDirection(direction)
            self._box.setStretch(0, 2 if wide else 1)
            self._box.setStretch(1, 3 if wide else 0)

    def resizeEvent(self, event) -> None:
        # In a scroll area the container decides (our own size is at least our minimum).
        if self.auto_fit:
            self.fit_to(event.size())
        super().resizeEvent(event)

    @staticmethod
    def _tool(icon, tip: str) -> QToolButton:
        b = QToolButton()
        b.setIcon(icon)
        b.setToolTip(tip)
        b.setAutoRaise(True)
        return b

    # -- what is on screen --------------------------------------------------------------------
    @property
    def shown_frames(self) -> list[np.ndarray]:
        """The frames the player steps through, in order (prepare_frames output)."""
        return self._shown

    def current_shown_frame(self) -> np.ndarray | None:
        """The ``uint8`` frame on screen now, exactly as an export writes it."""
        f = self.studio.player.current_frame
        return self._shown[f] if 0 <= f < len(self._shown) else None

    def _rebuild_shown(self) -> None:
        self._shown = list(self.studio.player.display_frames())

    def _on_studio_frames_changed(self) -> None:
        studio = self.studio
        self._rebuild_shown()
        self.filmstrip.set_frames(studio.player.frames, studio.player.captions)
        has = studio.player.frame_count > 0
        self.title.setText(studio.player.animation_title if has else
                           "No animation yet: pick two keyframes, or animate an edit.")
        for w in (self.first_button, self.back_button, self.play_button, self.forward_button,
                  self.last_button, self.slider, self.export_button, self.copy_button, self.save_button):
            w.setEnabled(has)
        self._update_range()
        self._on_studio_current_frame_changed(studio.player.current_frame)

    def _update_range(self) -> None:
        with signals_blocked(self.slider):
            self.slider.setRange(0, max(0, self.studio.player.sequence_length - 1))
            self.slider.setValue(self.studio.player.current_frame)

    def _on_studio_current_frame_changed(self, frame: int) -> None:
        studio = self.studio
        with signals_blocked(self.slider):
            self.slider.setValue(frame)
        n = studio.player.sequence_length
        self.frame_label.setText(f"{frame + 1 if n else 0} / {n}")
        self.view.set_image(self.current_shown_frame(), caption=studio.player.current_caption)
        self.filmstrip.set_current(studio.player.current_index)

    def _on_studio_playback_changed(self) -> None:
        studio = self.studio
        with signals_blocked(self.fps_spin):
            self.fps_spin.setValue(studio.player.fps)
        with signals_blocked(self.loop_check):
            self.loop_check.setChecked(studio.player.loop)
        if self.pingpong_check.isChecked() != studio.player.pingpong:
            with signals_blocked(self.pingpong_check):
                self.pingpong_check.setChecked(studio.player.pingpong)
        if len(self._shown) != studio.player.sequence_length:
            self._rebuild_shown()
            self._update_range()
        self.play_button.setIcon(self._pause_icon if studio.player.playing else self._play_icon)
        self.play_button.setToolTip("Pause (Space)" if studio.player.playing else "Play (Space)")
        self.timer.setInterval(max(1, round(1000.0 / studio.player.fps)))
        if studio.player.playing and not self.timer.isActive():
            self.timer.start()
        elif not studio.player.playing:
            self.timer.stop()

    def _on_timer_timeout(self) -> None:
        if not self.studio.player.advance():
            self.timer.stop()

    def _on_filmstrip_frame_clicked(self, index: int) -> None:
        studio = self.studio
        studio.player.stop()
        hits = np.flatnonzero(studio.player.sequence == index)
        if len(hits):
            # The occurrence nearest to where the player is (ping-pong shows frames twice).
            studio.player.set_current_frame(int(hits[np.argmin(np.abs(hits - studio.player.current_frame))]))

    def _on_animate_labels(self) -> None:
        studio = self.studio
        z = studio.player.current_code if studio.player.current_code is not None else studio.traversal.code
        try:
            studio.labels.animate(z)
        except ValueError as exc:
            self.state.post_message("warning", str(exc))
