"""The code grid editor panel: an image's grid of codebook indices over the decoded image.

Each cell is tinted by its entry (a hue per index) and numbered in a chip of its colour
when there is room; edited cells have a dashed gold frame. A click or a drag paints the cells under the mouse with the brush's entry, and the decoded
image is redrawn after every cell (``state.vq.editor``). A map click, a pin (the combo)
or a sample tile opens an image; the brush comes from the spin box or a click in the
Codebook panel. Edits can be pinned or added as interpolation keyframes.
"""

from __future__ import annotations

import colorsys

import numpy as np
from PySide6.QtCore import QPoint, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QPainter, QPen
from PySide6.QtWidgets import (QComboBox, QHBoxLayout, QLabel, QPushButton, QSizePolicy, QSpinBox, QVBoxLayout,
                               QWidget)

from explorer.ui.qt_utils import Connections, MutedLabel, to_qimage

__all__ = ["CodeGridCanvas", "CodeGridEditorPanel", "code_color"]


def code_color(code: int, size: int, alpha: int = 255) -> QColor:
    """The colour of codebook entry ``code`` of ``size``: hues spread by the golden ratio."""
    hue = (code * 0.618033988749895) % 1.0
    r, g, b = colorsys.hsv_to_rgb(hue, 0.75, 0.95)
    return QColor(int(r * 255), int(g * 255), int(b * 255), alpha)


class CodeGridCanvas(QWidget):
    """The decoded image with its code grid on top; emits the cells the mouse paints."""

    cells_painted = Signal(object)   # list of (row, column)

    def __init__(self, editor, parent=None) -> None:
        super().__init__(parent)
        self.editor = editor
        self.show_numbers = True
        self.setMinimumSize(160, 160)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMouseTracking(False)
        self._last_cell: tuple[int, int] | None = None

    def image_rect(self) -> QRectF:
        grid = self.editor.grid
        image = self.editor.image
        if grid is None or image is None:
            return QRectF()
        h, w = image.shape[-2:]
        side = min(self.width() / w, self.height() / h)
        width, height = w * side, h * side
        return QRectF((self.width() - width) / 2, (self.height() - height) / 2, width, height)

    def cell_at(self, point) -> tuple[int, int] | None:
        rect, grid = self.image_rect(), self.editor.grid
        if grid is None or rect.isEmpty() or not rect.contains(point):
            return None
        rows, cols = grid.shape
        c = int((point.x() - rect.left()) / rect.width() * cols)
        r = int((point.y() - rect.top()) / rect.height() * rows)
        return min(r, rows - 1), min(c, cols - 1)

    def cell_center(self, row: int, column: int) -> QPoint:
        rect, (rows, cols) = self.image_rect(), self.editor.grid.shape
        return QPoint(int(rect.left() + (column + 0.5) * rect.width() / cols),
                      int(rect.top() + (row + 0.5) * rect.height() / rows))

    def paintEvent(self, _event) -> None:
        painter = QPainter(self)
        grid, image = self.editor.grid, self.editor.image
        if grid is None or image is None:
            painter.setPen(self.palette().color(self.foregroundRole()))
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                             "Click a data point on the map, a pin or a sample to edit its code grid.")
            return
        rect = self.image_rect()
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)
        painter.drawImage(rect, to_qimage(image))
        rows, cols = grid.shape
        cw, ch = rect.width() / cols, rect.height() / rows
        size = max(1, self.editor.document.model.num_codes if self.editor.document.model is not None else 1)
        font = painter.font()
        font.setPointSizeF(max(6.0, min(cw, ch) * 0.16))
        font.setBold(True)
        painter.setFont(font)
        chip_h = painter.fontMetrics().height() + 2
        for r in range(rows):
            for c in range(cols):
                cell = QRectF(rect.left() + c * cw, rect.top() + r * ch, cw, ch)
                code = int(grid[r, c])
                edited = self.editor.original is not None and code != int(self.editor.original[r, c])
                # A light tint and a coloured frame keep the image readable under the grid.
                painter.fillRect(cell, code_color(code, size, 40))
                painter.setPen(QPen(code_color(code, size, 210), 2))
                painter.drawRect(cell.adjusted(2, 2, -2, -2))
                if self.show_numbers and min(cw, ch) >= 18:
                    text = str(code)
                    chip = QRectF(cell.left() + 3, cell.top() + 3, painter.fontMetrics().horizontalAdvance(text) + 6,
                                  chip_h)
                    painter.fillRect(chip, code_color(code, size, 220))
                    painter.setPen(QColor(0, 0, 0))
                    painter.drawText(chip, Qt.AlignmentFlag.AlignCenter, text)
                if edited:
                    painter.setPen(QPen(QColor(255, 215, 0), 3, Qt.PenStyle.DashLine))
                    painter.drawRect(cell.adjusted(1, 1, -1, -1))
        painter.setPen(QPen(QColor(255, 255, 255, 110), 1))
        for c in range(cols + 1):
            x = rect.left() + c * cw
            painter.drawLine(int(x), int(rect.top()), int(x), int(rect.bottom()))
        for r in range(rows + 1):
            y = rect.top() + r * ch
            painter.drawLine(int(rect.left()), int(y), int(rect.right()), int(y))

    def mousePressEvent(self, event) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            self._last_cell = None
            self._paint_at(event.position())

    def mouseMoveEvent(self, event) -> None:
        if event.buttons() & Qt.MouseButton.LeftButton:
            self._paint_at(event.position())

    def mouseReleaseEvent(self, _event) -> None:
        self._last_cell = None

    def _paint_at(self, point) -> None:
        cell = self.cell_at(point)
        if cell is not None and cell != self._last_cell:
            self._last_cell = cell
            self.cells_painted.emit([cell])


class CodeGridEditorPanel(QWidget):
    """Source, brush, the grid canvas and the pin / keyframe / reset buttons."""

    def __init__(self, state, parent=None) -> None:
        super().__init__(parent)
        self.state = state
        self.editor = state.vq.editor
        self.source_label = QLabel()
        self.source_label.setWordWrap(True)
        self.pin_combo = QComboBox()
        self.pin_combo.setToolTip("Open a pin's code grid")
        self.canvas = CodeGridCanvas(self.editor)
        self.canvas.setToolTip("Click a cell, or drag over several, to paint them with the brush's code")
        self.brush_spin = QSpinBox()
        self.brush_spin.setToolTip("The codebook entry painted into cells (or click one in the Codebook panel)")
        self.brush_swatch = QLabel()
        self.brush_swatch.setFixedSize(18, 18)
        self.reset_button = QPushButton("Reset")
        self.reset_button.setToolTip("Back to the image's own grid")
        self.pin_button = QPushButton("Pin edit")
        self.pin_button.setToolTip("Pin the edited grid's code: it appears on the map and in expressions")
        self.keyframe_button = QPushButton("Add as keyframe")
        self.keyframe_button.setToolTip("Add the edited grid's code to the interpolation's keyframes")
        self.status = MutedLabel("")

        top = QHBoxLayout()
        top.addWidget(self.source_label, 1)
        top.addWidget(QLabel("Pin:"))
        top.addWidget(self.pin_combo)
        brush = QHBoxLayout()
        brush.addWidget(QLabel("Brush code:"))
        brush.addWidget(self.brush_spin)
        brush.addWidget(self.brush_swatch)
        brush.addStretch(1)
        buttons = QHBoxLayout()
        for b in (self.reset_button, self.pin_button, self.keyframe_button):
            buttons.addWidget(b)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 4, 6, 4)
        layout.addLayout(top)
        layout.addWidget(self.canvas, 1)
        layout.addLayout(brush)
        layout.addLayout(buttons)
        layout.addWidget(self.status)

        self.canvas.cells_painted.connect(self._on_canvas_cells_painted)
        self.brush_spin.valueChanged.connect(self._on_brush_spin_changed)
        self.pin_combo.activated.connect(self._on_pin_combo_activated)
        self.reset_button.clicked.connect(self.editor.reset)
        self.pin_button.clicked.connect(self._on_pin_clicked)
        self.keyframe_button.clicked.connect(self._on_keyframe_clicked)
        self._conn = Connections(self)
        self._conn.connect(self.editor.grid_changed, self._on_editor_grid_changed)
        self._conn.connect(self.editor.brush_changed, self._on_editor_brush_changed)
        self._conn.connect(state.marks.pins_changed, self._on_marks_pins_changed)
        self._conn.connect(state.model_changed, self._on_state_model_changed)
        self._on_state_model_changed(state.model)
        self._on_marks_pins_changed()

    # -- slots ----------------------------------------------------------------------------------
    def _on_canvas_cells_painted(self, cells) -> None:
        try:
            self.editor.paint(cells)
        except ValueError as exc:
            self.state.post_message("warning", str(exc))

    def _on_brush_spin_changed(self, value: int) -> None:
        if self.editor.available:
            self.editor.set_brush(value)
        self._update_swatch()

    def _on_editor_brush_changed(self, code: int) -> None:
        self.brush_spin.blockSignals(True)
        self.brush_spin.setValue(code)
        self.brush_spin.blockSignals(False)
        self._update_swatch()

    def _on_pin_combo_activated(self, index: int) -> None:
        name = self.pin_combo.itemData(index)
        if name is None:
            return
        try:
            self.editor.set_pin(self.state.marks.pin(name))
        except (KeyError, ValueError) as exc:
            self.state.post_message("warning", str(exc))

    def _on_pin_clicked(self) -> None:
        pin = self.editor.pin()
        self.state.post_message("info", f"Pinned the edited grid as {pin.name}.")

    def _on_keyframe_clicked(self) -> None:
        keyframe = self.editor.add_keyframe()
        self.state.post_message("info", f"Added {keyframe.name} to the interpolation's keyframes.")

    def _on_marks_pins_changed(self) -> None:
        self.pin_combo.clear()
        self.pin_combo.addItem("–", None)
        for pin in self.state.marks.pins:
            self.pin_combo.addItem(pin.name, pin.name)

    def _on_state_model_changed(self, model) -> None:
        available = self.editor.available
        self.brush_spin.setRange(0, max(0, model.num_codes - 1) if available else 0)
        self.setEnabled(available)
        self._on_editor_grid_changed()

    def _on_editor_grid_changed(self) -> None:
        editor = self.editor
        if not editor.available:
            self.source_label.setText("The code grid editor works with models that have a discrete code grid "
                                      "(vqvae).")
        elif editor.grid is None:
            self.source_label.setText("No image: click a data point on the map, open a pin or click a sample.")
        else:
            rows, cols = editor.grid.shape
            self.source_label.setText(f"<b>{editor.source}</b> · {rows}×{cols} grid")
        edited = editor.edited_cells
        self.status.setText(f"{edited} cell{'s' if edited != 1 else ''} edited" if editor.grid is not None else "")
        has = editor.grid is not None
        for b in (self.reset_button, self.pin_button, self.keyframe_button):
            b.setEnabled(has)
        self.canvas.update()

    def _update_swatch(self) -> None:
        size = self.brush_spin.maximum() + 1
        color = code_color(self.brush_spin.value(), size)
        self.brush_swatch.setStyleSheet(f"background: {color.name()}; border: 1px solid #777;")

    def grid_image(self) -> np.ndarray | None:
        """The decoded image of the edited grid (what the canvas draws under the grid)."""
        return self.editor.image
