"""Pieces shared by the studio panels: a crisp image view, thumbnails, an operand picker
and the conditional label picker."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QImage, QPainter, QPalette, QPixmap
from PySide6.QtWidgets import (QComboBox, QHBoxLayout, QLabel, QPushButton, QSizePolicy, QSpinBox,
                               QStackedWidget, QToolButton, QWidget)
from superqt.utils import signals_blocked

from explorer.state.studio import Keyframe
from explorer.ui.qt_utils import Connections, to_qimage, to_uint8_hwc


# ---------------------------------------------------------------------------------------
# Images
# ---------------------------------------------------------------------------------------
def thumbnail(image, size: int = 48) -> QPixmap:
    """A pixel-crisp square-ish thumbnail (nearest-neighbour scaling)."""
    img = to_qimage(image)
    return QPixmap.fromImage(img.scaled(size, size, Qt.AspectRatioMode.KeepAspectRatio,
                                        Qt.TransformationMode.FastTransformation))


class ImageView(QWidget):
    """Shows one image scaled to fit, pixel-crisp (no smoothing), with an optional caption."""

    clicked = Signal()

    def __init__(self, parent=None, *, minimum: int = 64, placeholder: str = "") -> None:
        super().__init__(parent)
        self._image: QImage | None = None
        self._array: np.ndarray | None = None
        self.caption = ""
        self.placeholder = placeholder
        self.highlight: QColor | None = None
        self.setMinimumSize(minimum, minimum)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def set_image(self, image, caption: str | None = None) -> None:
        """``image``: ``C×H×W`` float (decoder output) or ``H×W[×C]`` (exported frame); None clears."""
        if image is None:
            self._image = self._array = None
        else:
            self._array = to_uint8_hwc(image)
            self._image = to_qimage(self._array)
        if caption is not None:
            self.caption = caption
        self.update()

    def image_array(self) -> np.ndarray | None:
        """The ``uint8`` ``H×W×C`` pixels shown (before scaling to the widget)."""
        return self._array

    def qimage(self) -> QImage | None:
        return self._image

    def sizeHint(self) -> QSize:
        return QSize(160, 160)

    def mousePressEvent(self, event) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            self.clicked.emit()
        super().mousePressEvent(event)

    def paintEvent(self, event) -> None:
        p = QPainter(self)
        rect = self.rect()
        p.fillRect(rect, self.palette().color(QPalette.ColorRole.Window))
        caption_h = p.fontMetrics().height() + 4 if self.caption else 0
        area = rect.adjusted(2, 2, -2, -2 - caption_h)
        caption_top = rect.height() - caption_h
        if self._image is not None and area.width() > 0 and area.height() > 0:
            iw, ih = self._image.width(), self._image.height()
            scale = min(area.width() / iw, area.height() / ih)
            if scale >= 1:
                scale = max(1, int(scale))   # whole pixels: every source pixel the same size
            w, h = iw * scale, ih * scale
            target = QRectF(area.x() + (area.width() - w) / 2, area.y() + (area.height() - h) / 2, w, h)
            p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)
            p.drawImage(target, self._image)
            caption_top = int(target.bottom()) + 2     # the caption sits right under the image
            if self.highlight is not None:
                p.setPen(self.highlight)
                p.drawRect(target.adjusted(-1, -1, 0, 0))
        elif self.placeholder:
            p.setPen(self.palette().color(QPalette.ColorRole.PlaceholderText))
            p.drawText(area, Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self.placeholder)
        if self.caption:
            p.setPen(self.palette().color(QPalette.ColorRole.Text))
            p.drawText(QRectF(2, caption_top, rect.width() - 4, caption_h),
                       Qt.AlignmentFlag.AlignCenter, self.caption)
        p.end()


# ---------------------------------------------------------------------------------------
# Operand picker
# ---------------------------------------------------------------------------------------
OPERAND_KINDS = (("index", "Data point"), ("pin", "Pin"), ("centroid", "Class mean"),
                 ("group", "Group"), ("cursor", "Map cursor"))


class OperandPicker(QWidget):
    """Choose an operand: a data point, a pin, a class centroid, a group or the map cursor.

    Emits :attr:`picked` with a :class:`~explorer.state.studio.Keyframe` when one of the
    action buttons is pressed; ``action_picked`` also says which button (its key).
    """

    picked = Signal(object)              # Keyframe
    action_picked = Signal(str, object)    # action key, Keyframe

    def __init__(self, state, actions=(("add", "Add"),), kinds=None, parent=None) -> None:
        super().__init__(parent)
        self._conn = Connections(self)
        self.state = state
        kinds = kinds or [k for k, _ in OPERAND_KINDS]
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.kind_combo = QComboBox()
        for key, text in OPERAND_KINDS:
            if key in kinds:
                self.kind_combo.addItem(text, key)
        self.stack = QStackedWidget()
        self.index_spin = QSpinBox()
        self.index_spin.setPrefix("#")
        self.index_spin.setToolTip("Index of the data point (train then test)")
        self.pin_combo = QComboBox()
        self.class_combo = QComboBox()
        self.group_combo = QComboBox()
        for combo in (self.kind_combo, self.pin_combo, self.class_combo, self.group_combo):
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(6)
        self.index_spin.setMinimumWidth(60)
        self.cursor_label = QLabel("map cursor")
        self.cursor_label.setToolTip("The code under the map cursor")
        self._editors = {"index": self.index_spin, "pin": self.pin_combo, "centroid": self.class_combo,
                         "group": self.group_combo, "cursor": self.cursor_label}
        for key in self._editors:
            self.stack.addWidget(self._editors[key])
        layout.addWidget(self.kind_combo)
        layout.addWidget(self.stack, 1)
        self.buttons: dict[str, QPushButton] = {}
        for key, text in actions:
            button = QPushButton(text)
            if len(text) <= 2:
                button.setFixedWidth(button.fontMetrics().horizontalAdvance("MM") + 16)
            button.clicked.connect(lambda _=False, k=key: self._on_action(k))
            layout.addWidget(button)
            self.buttons[key] = button
        self.kind_combo.currentIndexChanged.connect(self._on_kind_changed)
        self._conn.connect(state.dataset_changed, self.refresh)
        self._conn.connect(state.codes_changed, self.refresh)
        self._conn.connect(state.marks.pins_changed, self.refresh)
        self._conn.connect(state.marks.groups_changed, self.refresh)
        self.refresh()
        self._on_kind_changed()

    @property
    def kind(self) -> str:
        return self.kind_combo.currentData()

    def set_kind(self, kind: str) -> None:
        i = self.kind_combo.findData(kind)
        if i >= 0:
            self.kind_combo.setCurrentIndex(i)

    def refresh(self, *_) -> None:
        n = 0 if self.state.codes is None else len(self.state.codes)
        self.index_spin.setMaximum(max(0, n - 1))
        self.index_spin.setToolTip(f"Index of the data point, 0 to {n - 1} (train then test)" if n
                                   else "Index of the data point (train then test)")
        self._fill(self.pin_combo, [(p.name, p.name) for p in self.state.marks.pins], "no pins yet")
        self._fill(self.class_combo, [(f"mean of {self.state.studio.context.label_name(y)}", y)
                                      for y in self.state.present_labels], "unlabeled data")
        self._fill(self.group_combo, [(g, g) for g, idx in self.state.marks.groups.items() if len(idx)],
                   "no groups yet")
        self._update_enabled()

    @staticmethod
    def _fill(combo: QComboBox, items, empty: str) -> None:
        current = combo.currentData()
        with signals_blocked(combo):
            combo.clear()
            for text, data in items:
                combo.addItem(text, data)
            if not items:
                combo.addItem(empty, None)
            i = combo.findData(current)
            combo.setCurrentIndex(max(i, 0))

    def _on_kind_changed(self, *_) -> None:
        self.stack.setCurrentWidget(self._editors[self.kind])
        self._update_enabled()

    def _update_enabled(self) -> None:
        kind = self.kind
        ok = {"index": self.state.codes is not None and len(self.state.codes) > 0,
              "pin": bool(self.state.marks.pins),
              "centroid": self.state.codes is not None and self.state.labels is not None,
              "group": self.state.codes is not None and bool(self.state.marks.groups),
              "cursor": True}.get(kind, False)
        for b in self.buttons.values():
            b.setEnabled(ok)

    def current_operand(self) -> Keyframe:
        """The operand the picker shows now; raises ValueError with a readable message."""
        studio = self.state.studio
        kind = self.kind
        if kind == "index":
            return studio.context.operand_from_index(self.index_spin.value())
        if kind == "pin":
            if self.pin_combo.currentData() is None:
                raise ValueError("There are no pins: pin a point on the map first.")
            return studio.context.operand_from_pin(self.pin_combo.currentData())
        if kind == "centroid":
            if self.class_combo.currentData() is None:
                raise ValueError("Class means need a labelled dataset.")
            return studio.context.operand_from_centroid(self.class_combo.currentData())
        if kind == "group":
            if self.group_combo.currentData() is None:
                raise ValueError("There are no selection groups yet.")
            return studio.context.operand_from_group(self.group_combo.currentData())
        z = self.state.map.cursor_z
        if z is None:
            raise ValueError("Move the cursor over the map first.")
        return studio.context.operand_from_code(z, name="cursor")

    def _on_action(self, key: str) -> None:
        try:
            operand = self.current_operand()
        except ValueError as exc:
            self.state.post_message("warning", str(exc))
            return
        self.action_picked.emit(key, operand)
        self.picked.emit(operand)


# ---------------------------------------------------------------------------------------
# Conditional label picker
# ---------------------------------------------------------------------------------------
class LabelPicker(QWidget):
    """"Decode as: [label]" for conditional models, plus "Animate across labels".

    Hidden while the model is not conditional. Every picker writes
    ``studio.decode_label``, so several stay in sync.
    """

    animate_requested = Signal()

    def __init__(self, state, parent=None, *, with_animate: bool = True) -> None:
        super().__init__(parent)
        self._conn = Connections(self)
        self.state = state
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(QLabel("Decode as"))
        self.combo = QComboBox()
        self.combo.setToolTip("The label a conditional model decodes every code with")
        layout.addWidget(self.combo, 1)
        self.animate_button = None
        if with_animate:
            self.animate_button = QToolButton()
            self.animate_button.setText("Animate across labels")
            self.animate_button.setToolTip("Keep this style and decode it as every label in turn")
            self.animate_button.clicked.connect(self.animate_requested)
            layout.addWidget(self.animate_button)
        self.combo.currentIndexChanged.connect(self._on_combo_changed)
        self._conn.connect(state.model_changed, self.refresh)
        self._conn.connect(state.dataset_changed, self.refresh)
        self._conn.connect(state.studio.context.decode_label_changed, self._on_studio_label_changed)
        self.refresh()

    def refresh(self, *_) -> None:
        studio = self.state.studio
        with signals_blocked(self.combo):
            self.combo.clear()
            for y in range(studio.context.num_labels):
                self.combo.addItem(studio.context.label_name(y), y)
            self.combo.setCurrentIndex(max(0, self.combo.findData(studio.decode_label)))
        self.setVisible(studio.context.conditional)

    def _on_combo_changed(self, *_) -> None:
        if self.combo.currentData() is not None:
            self.state.studio.context.set_decode_label(int(self.combo.currentData()))

    def _on_studio_label_changed(self, label: int) -> None:
        with signals_blocked(self.combo):
            self.combo.setCurrentIndex(max(0, self.combo.findData(label)))
