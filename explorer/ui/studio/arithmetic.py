"""Latent arithmetic composer and attribute vectors.

The composer edits an expression such as ``#12 − mean(7) + mean(3)`` (validated live
with :func:`vae_core.latent.parse_expression`), inserts operands from the picker or the
map, scales the edit with a strength slider, and shows each term, the decoded result and
its nearest real neighbours. The attribute panel builds ``mean(A) − mean(B)`` from two
classes or groups and applies "more of / less of" to any point.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (QComboBox, QFormLayout, QGroupBox, QHBoxLayout, QLabel,
                               QLineEdit, QPushButton, QVBoxLayout, QWidget)
from superqt import QLabeledDoubleSlider
from superqt.utils import signals_blocked

from explorer.state.studio import AttributeSide
from explorer.ui.image_grid import ImageGrid
from explorer.ui.qt_utils import Connections, Deferred
from explorer.ui.studio.common import ImageView, LabelPicker, OperandPicker

ERROR_STYLE = "QLineEdit { border: 1px solid #d32f2f; }"


def _strength_slider(lo: float, hi: float, value: float, tip: str) -> QLabeledDoubleSlider:
    slider = QLabeledDoubleSlider(Qt.Orientation.Horizontal)
    slider.setRange(lo, hi)
    slider.setDecimals(2)
    slider.setSingleStep(0.05)
    slider.setValue(value)
    slider.setToolTip(tip)
    return slider


class ArithmeticPanel(QWidget):
    """The latent arithmetic composer; edits ``state.studio`` (expression, strength)."""

    def __init__(self, state, parent=None) -> None:
        super().__init__(parent)
        self._conn = Connections(self)
        self.state = state
        self.studio = state.studio

        self.expression_edit = QLineEdit()
        self.expression_edit.setPlaceholderText("e.g.  #12 − mean(7) + mean(3)")
        self.expression_edit.setToolTip(
            "Operands: #12 (data point), mean(7) or @7 (class mean), mean(\"Sneaker\"), pin:P1, group:g1, "
            "mean(#1, #5). Coefficients: 0.5*#12. The first term is the base; strength scales the rest.")
        mono = QFont("monospace")
        mono.setStyleHint(QFont.StyleHint.Monospace)
        self.expression_edit.setFont(mono)
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self.picker = OperandPicker(state, actions=(("+", "+"), ("-", "−")))
        self.picker.buttons["+"].setToolTip("Add this operand to the expression")
        self.picker.buttons["-"].setToolTip("Subtract this operand from the expression")
        self.pick_button = QPushButton("Pick on map")
        self.pick_button.setCheckable(True)
        self.pick_button.setToolTip("While on, each click on the map adds its point (or a pin at that position)")
        self.clear_button = QPushButton("Clear")
        self.strength_slider = _strength_slider(-1.0, 3.0, self.studio.arithmetic.strength,
                                                "Scales everything after the first term: A + s·(C − B)")

        self.terms = ImageGrid(placeholder="Each term and the decoded result show here.")
        self.terms.setMinimumHeight(100)
        self.terms.setToolTip("Each term's operand, decoded, then the result")
        self.neighbors_label = QLabel("Nearest real neighbours")
        font = self.neighbors_label.font()
        font.setBold(True)
        self.neighbors_label.setFont(font)
        self.neighbors = ImageGrid(placeholder="The data points nearest to the result show here.")
        self.neighbors.setMinimumHeight(64)
        self.neighbors.setToolTip("The data points whose codes are nearest to the result; click one to add it")
        self.pin_button = QPushButton("Pin result")
        self.pin_button.setToolTip("Add the result to the map as a pin")
        self.animate_button = QPushButton("Animate")
        self.animate_button.setToolTip("Play the edit in the player: strength going from 0 to its value")
        self.keyframe_button = QPushButton("+ Keyframe")
        self.keyframe_button.setToolTip("Use the result as the next interpolation keyframe")
        self.traverse_button = QPushButton("Edit dims")
        self.traverse_button.setToolTip("Send the result to the traversal panel's sliders")
        self.label_picker = LabelPicker(state, with_animate=False)

        row = QHBoxLayout()
        row.addWidget(self.pick_button)
        row.addStretch(1)
        row.addWidget(self.clear_button)
        strength = QHBoxLayout()
        strength.addWidget(QLabel("Strength"))
        strength.addWidget(self.strength_slider, 1)
        actions = QHBoxLayout()
        for b in (self.pin_button, self.animate_button, self.keyframe_button, self.traverse_button):
            actions.addWidget(b)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.expression_edit)
        layout.addWidget(self.status)
        layout.addWidget(self.picker)
        layout.addLayout(row)
        layout.addLayout(strength)
        layout.addLayout(actions)
        layout.addWidget(self.label_picker)
        layout.addWidget(self.terms, 3)
        layout.addWidget(self.neighbors_label)
        layout.addWidget(self.neighbors, 2)

        self.expression_edit.textEdited.connect(self._on_text_edited)
        self.expression_edit.returnPressed.connect(lambda: self._on_text_edited(self.expression_edit.text()))
        self.picker.action_picked.connect(self._on_picker_action_picked)
        self.pick_button.toggled.connect(self._on_pick_toggled)
        self.clear_button.clicked.connect(lambda: self.studio.arithmetic.set_expression(""))
        self.strength_slider.valueChanged.connect(self.studio.arithmetic.set_strength)
        self.pin_button.clicked.connect(self._on_pin)
        self.animate_button.clicked.connect(self._on_animate)
        self.keyframe_button.clicked.connect(self._on_keyframe)
        self.traverse_button.clicked.connect(self._on_traverse)
        self.neighbors.tile_clicked.connect(self._on_neighbor_clicked)

        self._conn.connect(self.studio.arithmetic.changed, self._on_studio_arithmetic_changed)
        self._conn.connect(self.studio.picking.target_changed, self._on_studio_pick_target_changed)
        # New codes come with the map's new layout and every panel's update: the expression
        # (which decodes) is evaluated again a turn later.
        self._revalidate_later = Deferred(self._revalidate, self)
        self._conn.connect(state.codes_changed, self._revalidate_later.start)
        self._conn.connect(state.marks.pins_changed, self._revalidate)
        self._conn.connect(state.marks.groups_changed, self._revalidate)
        self._on_studio_arithmetic_changed()

    # -- user input ----------------------------------------------------------------------------
    def _on_text_edited(self, text: str) -> None:
        self.studio.arithmetic.set_expression(text)

    def _revalidate(self, *_) -> None:
        if self.studio.arithmetic.expression.strip():
            self.studio.arithmetic.evaluate()

    def _on_picker_action_picked(self, sign: str, operand) -> None:
        self.studio.arithmetic.add_operand_to_expression(operand, sign)

    def _on_pick_toggled(self, on: bool) -> None:
        if on:
            self.studio.picking.set_target("arithmetic")
        elif self.studio.picking.target == "arithmetic":
            self.studio.picking.set_target(None)

    def _on_studio_pick_target_changed(self, target) -> None:
        with signals_blocked(self.pick_button):
            self.pick_button.setChecked(target == "arithmetic")

    def _on_pin(self) -> None:
        try:
            pin = self.studio.arithmetic.pin_result()
        except ValueError as exc:
            self.state.post_message("warning", str(exc))
            return
        self.state.post_message("info", f"Pinned the result as {pin.name}.")

    def _on_animate(self) -> None:
        try:
            self.studio.arithmetic.animate()
        except ValueError as exc:
            self.state.post_message("warning", str(exc))

    def _on_keyframe(self) -> None:
        if self.studio.arithmetic.result_z is not None:
            self.studio.interpolation.add_code_keyframe(self.studio.arithmetic.result_z, name=f"= {self.studio.arithmetic.expression}")

    def _on_traverse(self) -> None:
        if self.studio.arithmetic.result_z is not None:
            self.studio.traversal.set_code(self.studio.arithmetic.result_z)

    def _on_neighbor_clicked(self, tile: int) -> None:
        idx = self.studio.arithmetic.neighbor_indices
        if 0 <= tile < len(idx):
            self.studio.arithmetic.add_operand_to_expression(self.studio.context.operand_from_index(int(idx[tile])), "+")

    # -- state → widgets ---------------------------------------------------------------------------
    def _on_studio_arithmetic_changed(self) -> None:
        s = self.studio
        if self.expression_edit.text() != s.arithmetic.expression:
            with signals_blocked(self.expression_edit):
                cursor = self.expression_edit.cursorPosition()
                self.expression_edit.setText(s.arithmetic.expression)
                self.expression_edit.setCursorPosition(min(cursor, len(s.arithmetic.expression)) if cursor else len(s.arithmetic.expression))
        with signals_blocked(self.strength_slider):
            self.strength_slider.setValue(s.arithmetic.strength)
        has = s.arithmetic.result_z is not None
        for b in (self.pin_button, self.animate_button, self.keyframe_button, self.traverse_button):
            b.setEnabled(has)
        if s.arithmetic.error:
            self.expression_edit.setStyleSheet(ERROR_STYLE)
            self.status.setStyleSheet("color: #d32f2f;")
            self.status.setText(s.arithmetic.error)
            if s.arithmetic.error_position is not None:
                self.expression_edit.setToolTip(s.arithmetic.error)
        else:
            self.expression_edit.setStyleSheet("")
            self.status.setStyleSheet("")
            if not s.arithmetic.expression.strip():
                self.status.setText("Compose with the picker below or type an expression.")
            elif has:
                norm = float(np.linalg.norm(s.arithmetic.result_z))
                self.status.setText(f"✓ {s.arithmetic.describe_expression()} · |z| = {norm:.2f}")
        self._show_terms()
        if has:
            idx, dist = s.arithmetic.neighbor_indices, s.arithmetic.neighbor_distances
            if len(idx):
                images = self.state.float_images(idx)
                captions = [f"#{i}" for i in idx]
                self.neighbors.set_images(images, columns=len(idx), captions=captions)
                self.neighbors_label.setText(f"Nearest real neighbours (distances {dist[0]:.2f} to {dist[-1]:.2f})")
            else:
                self.neighbors.clear()
        else:
            self.neighbors_label.setText("Nearest real neighbours")
            self.neighbors.clear()

    def _show_terms(self) -> None:
        s = self.studio
        terms = s.arithmetic.term_previews()
        if not terms:
            self.terms.clear()
            return
        texts, images = zip(*terms)
        images = np.stack(images + ((s.arithmetic.result_image,) if s.arithmetic.result_image is not None else ()))
        captions = list(texts) + (["= result"] if s.arithmetic.result_image is not None else [])
        self.terms.set_images(images, columns=len(images), captions=captions)


def _side_key(side: AttributeSide | None) -> str | None:
    return None if side is None else f"{side.kind}:{side.value}"


class _SideCombo(QComboBox):
    """Pick one end of an attribute vector: a class or a selection group."""

    def __init__(self, state, parent=None) -> None:
        super().__init__(parent)
        self.state = state
        self._sides: dict[str, AttributeSide] = {}

    def refresh(self) -> None:
        current = self.currentData()
        sides = []
        sides += [(f"class {self.state.studio.context.label_name(y)}", AttributeSide("label", y))
                  for y in self.state.present_labels]
        sides += [(f"group {g}", AttributeSide("group", g)) for g, idx in self.state.marks.groups.items() if len(idx)]
        self._sides = {_side_key(side): side for _, side in sides}
        with signals_blocked(self):
            self.clear()
            for text, side in sides:
                self.addItem(text, _side_key(side))
            self.setCurrentIndex(self.findData(current) if current is not None else -1)

    def side(self) -> AttributeSide | None:
        return self._sides.get(self.currentData())

    def set_side(self, side: AttributeSide | None) -> None:
        with signals_blocked(self):
            self.setCurrentIndex(self.findData(_side_key(side)) if side is not None else -1)


class AttributePanel(QWidget):
    """Attribute vectors: ``mean(A) − mean(B)`` applied "more of / less of" to a point."""

    def __init__(self, state, parent=None) -> None:
        super().__init__(parent)
        self._conn = Connections(self)
        self.state = state
        self.studio = state.studio

        self.positive_combo = _SideCombo(state)
        self.positive_combo.setToolTip("Points that have the attribute")
        self.negative_combo = _SideCombo(state)
        self.negative_combo.setToolTip("Points that lack it (the reference)")
        self.vector_label = QLabel()
        self.vector_label.setWordWrap(True)
        self.picker = OperandPicker(state, actions=(("set", "Use this point"),))
        self.pick_button = QPushButton("Pick on map")
        self.pick_button.setCheckable(True)
        self.pick_button.setToolTip("While on, a click on the map chooses the point to edit")
        self.base_label = QLabel()
        self.amount_slider = _strength_slider(-3.0, 3.0, self.studio.attributes.amount,
                                              "Negative: less of the attribute; positive: more of it")
        self.base_view = ImageView(placeholder="point", minimum=80)
        self.shifted_view = ImageView(placeholder="shifted", minimum=80)
        self.animate_button = QPushButton("Animate")
        self.animate_button.setToolTip("Play the shift from the point to the shifted point")
        self.pin_button = QPushButton("Pin")
        self.pin_button.setToolTip("Add the shifted point to the map as a pin")
        self.keyframe_button = QPushButton("+ Keyframe")
        self.keyframe_button.setToolTip("Use the shifted point as the next interpolation keyframe")

        form = QFormLayout()
        form.addRow("More of", self.positive_combo)
        form.addRow("Compared with", self.negative_combo)
        base_row = QHBoxLayout()
        base_row.addWidget(self.picker, 1)
        point_row = QHBoxLayout()
        point_row.addWidget(self.base_label, 1)
        point_row.addWidget(self.pick_button)
        amount = QHBoxLayout()
        less = QLabel("less")
        more = QLabel("more")
        amount.addWidget(less)
        amount.addWidget(self.amount_slider, 1)
        amount.addWidget(more)
        views = QHBoxLayout()
        views.addWidget(self.base_view, 1)
        arrow = QLabel("→")
        arrow.setAlignment(Qt.AlignmentFlag.AlignCenter)
        views.addWidget(arrow)
        views.addWidget(self.shifted_view, 1)
        actions = QHBoxLayout()
        for b in (self.animate_button, self.pin_button, self.keyframe_button):
            actions.addWidget(b)
        box = QGroupBox("Apply to")
        box_layout = QVBoxLayout(box)
        box_layout.addLayout(base_row)
        box_layout.addLayout(point_row)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(form)
        layout.addWidget(self.vector_label)
        layout.addWidget(box)
        layout.addLayout(amount)
        layout.addLayout(views, 1)
        layout.addLayout(actions)

        self.positive_combo.currentIndexChanged.connect(self._on_sides_changed)
        self.negative_combo.currentIndexChanged.connect(self._on_sides_changed)
        self.picker.picked.connect(self.studio.attributes.set_base)
        self.pick_button.toggled.connect(self._on_pick_toggled)
        self.amount_slider.valueChanged.connect(self.studio.attributes.set_amount)
        self.animate_button.clicked.connect(self._on_animate)
        self.pin_button.clicked.connect(self._on_pin)
        self.keyframe_button.clicked.connect(self._on_keyframe)

        self._conn.connect(self.studio.attributes.changed, self._on_studio_attribute_changed)
        self._conn.connect(self.studio.picking.target_changed, self._on_studio_pick_target_changed)
        self._conn.connect(state.dataset_changed, self._refresh_sides)
        self._conn.connect(state.codes_changed, self._refresh_sides)
        self._conn.connect(state.marks.groups_changed, self._refresh_sides)
        self._refresh_sides()
        self._on_studio_attribute_changed()

    def _refresh_sides(self, *_) -> None:
        self.positive_combo.refresh()
        self.negative_combo.refresh()
        s = self.studio
        for combo, side in ((self.positive_combo, s.attributes.positive), (self.negative_combo, s.attributes.negative)):
            if side is not None:
                combo.set_side(side)

    def _on_sides_changed(self, *_) -> None:
        self.studio.attributes.set_sides(self.positive_combo.side(), self.negative_combo.side())

    def _on_pick_toggled(self, on: bool) -> None:
        if on:
            self.studio.picking.set_target("attribute")
        elif self.studio.picking.target == "attribute":
            self.studio.picking.set_target(None)

    def _on_studio_pick_target_changed(self, target) -> None:
        with signals_blocked(self.pick_button):
            self.pick_button.setChecked(target == "attribute")

    def _on_animate(self) -> None:
        try:
            self.studio.attributes.animate()
        except ValueError as exc:
            self.state.post_message("warning", str(exc))

    def _on_pin(self) -> None:
        s = self.studio
        if s.attributes.result_z is not None:
            pin = self.state.marks.add_pin(s.attributes.result_z, label=s.decode_label if s.context.conditional else None)
            self.state.post_message("info", f"Pinned the shifted point as {pin.name}.")

    def _on_keyframe(self) -> None:
        s = self.studio
        if s.attributes.result_z is not None:
            s.interpolation.add_code_keyframe(s.attributes.result_z, name=f"{s.attributes.base.name} {s.attributes.amount:+g}×")

    def _on_studio_attribute_changed(self) -> None:
        s = self.studio
        for combo, side in ((self.positive_combo, s.attributes.positive), (self.negative_combo, s.attributes.negative)):
            if combo.side() != side:
                combo.set_side(side)
        with signals_blocked(self.amount_slider):
            self.amount_slider.setValue(s.attributes.amount)
        if s.attributes.vector is not None:
            text = f"Attribute: {s.attributes.name}, |v| = {float(np.linalg.norm(s.attributes.vector)):.2f}"
            if s.attributes.error:
                text += f". {s.attributes.error}"
            self.vector_label.setText(text)
            self.vector_label.setStyleSheet("")
        else:
            self.vector_label.setText(s.attributes.error or "")
            self.vector_label.setStyleSheet("color: #d32f2f;" if s.attributes.error and
                                            s.attributes.positive is not None else "")
        self.base_label.setText(f"Point: {s.attributes.base.name}" if s.attributes.base is not None
                                else "Point: none yet")
        has = s.attributes.images is not None
        if has:
            self.base_view.set_image(s.attributes.images[0], caption=s.attributes.base.name)
            sign = "more" if s.attributes.amount >= 0 else "less"
            self.shifted_view.set_image(s.attributes.images[1],
                                        caption=f"{abs(s.attributes.amount):g}× {sign}")
        else:
            self.base_view.set_image(None, caption="")
            self.shifted_view.set_image(None, caption="")
        for b in (self.animate_button, self.pin_button, self.keyframe_button):
            b.setEnabled(has)
