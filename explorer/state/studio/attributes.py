"""Attribute vectors (no Qt).

``mean(positive) - mean(negative)`` for two classes or groups
(:func:`vae_core.latent.attribute_vector`), applied "more of / less of" to a base point.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from psygnal import Signal

from explorer.state.studio.context import Keyframe, StudioContext, vl
from explorer.state.studio.interpolation import Interpolation
from explorer.state.studio.player import Player


@dataclass(frozen=True)
class AttributeSide:
    """One end of an attribute vector: a label (``kind="label"``) or a selection group."""

    kind: str
    value: object

    def describe(self, class_names=()) -> str:
        if self.kind == "label":
            label = int(self.value)
            name = class_names[label] if label < len(class_names) else str(label)
            return f"class {name}"
        return f"group {self.value}"


class Attributes:
    """The two sides of an attribute, the point it is applied to and by how much."""

    changed = Signal()

    def __init__(self, context: StudioContext, player: Player, timing: Interpolation) -> None:
        self.context = context
        self.player = player
        self.timing = timing              # steps and easing of the animation
        self.positive: AttributeSide | None = None
        self.negative: AttributeSide | None = None
        self.base: Keyframe | None = None
        self.amount = 1.0
        self.vector: np.ndarray | None = None
        self.error: str | None = None
        self.result_z: np.ndarray | None = None
        self.images: np.ndarray | None = None    # 2×C×H×W: base, shifted
        document = context.document
        document.model_changed.connect(self._on_document_model_changed)
        document.weights_changed.connect(self._on_document_weights_changed)
        document.codes_changed.connect(self._on_document_codes_changed)
        document.dataset_changed.connect(self._on_document_dataset_changed)
        context.decode_label_changed.connect(self._on_context_decode_label_changed)

    def set_sides(self, positive: AttributeSide | None, negative: AttributeSide | None) -> None:
        self.positive, self.negative = positive, negative
        self._update()

    def set_base(self, keyframe: Keyframe | None) -> None:
        self.base = keyframe
        self._update()

    def set_amount(self, amount: float) -> None:
        amount = float(amount)
        if amount != self.amount:
            self.amount = amount
            self._update()

    @property
    def name(self) -> str:
        if self.positive is None or self.negative is None:
            return ""
        names = self.context.document.class_names
        return f"{self.positive.describe(names)} − {self.negative.describe(names)}"

    def _side_selection(self, side: AttributeSide):
        if side.kind == "label":
            return int(side.value)
        idx = self.context.marks.groups.get(side.value)
        if idx is None:
            raise ValueError(f"The group {side.value!r} does not exist.")
        return np.asarray(idx, dtype=np.int64)

    def _update(self) -> None:
        document = self.context.document
        self.vector = self.result_z = self.images = None
        self.error = None
        if self.positive is None or self.negative is None:
            self.error = "Pick the two classes or groups that define the attribute."
        elif document.codes is None:
            self.error = "Encode the dataset first."
        elif self.positive == self.negative:
            self.error = "Pick two different classes or groups."
        else:
            try:
                self.vector = vl.attribute_vector(document.codes, document.labels,
                                                  self._side_selection(self.positive),
                                                  self._side_selection(self.negative))
            except ValueError as exc:
                self.error = str(exc)
        if self.vector is not None and self.base is not None and self.context.can_decode():
            self.result_z = vl.apply_attribute(self.base.z, self.vector, self.amount)
            self.images = self.context.decode(np.stack([self.base.z, self.result_z]))
        elif self.vector is not None and self.base is None:
            self.error = "Pick a point to apply the attribute to."
        self.changed.emit()

    def animation_codes(self, steps: int | None = None) -> np.ndarray:
        """Codes from the base point to the shifted point (amount 0 → :attr:`amount`)."""
        if self.vector is None or self.base is None:
            raise ValueError(self.error or "Define the attribute and its point first.")
        return vl.apply_attribute(self.base.z, self.vector, self.amount * self.timing.eased(steps))

    def animate(self, steps: int | None = None) -> np.ndarray:
        codes = self.animation_codes(steps)
        more = "more" if self.amount >= 0 else "less"
        captions = [""] * len(codes)
        captions[0] = self.base.name
        captions[-1] = f"{self.amount:+g}×"
        title = f"{self.base.name}: {more} of {self.name}"
        return self.player.set_animation(codes, kind="attribute", title=title, captions=captions)

    # -- the document ------------------------------------------------------------------------------
    def _redecode(self) -> None:
        if self.result_z is not None and self.base is not None and self.context.can_decode():
            self.images = self.context.decode(np.stack([self.base.z, self.result_z]))
            self.changed.emit()

    def _on_document_model_changed(self, model) -> None:
        if model is not None and self.base is not None and self.base.z.shape != (int(model.latent_dim),):
            self.base = None
            self.vector = self.result_z = self.images = None
            self.changed.emit()

    def _on_document_weights_changed(self) -> None:
        self._redecode()

    def _on_context_decode_label_changed(self, _label: int) -> None:
        if self.context.conditional:
            self._redecode()

    def _on_document_codes_changed(self) -> None:
        if self.context.document.codes is None:
            return
        if self.base is not None and self.base.kind in ("index", "centroid", "group"):
            try:
                self.base = self.context.refreshed(self.base)
            except ValueError:
                self.base = None
        if self.positive is not None:
            self._update()

    def _on_document_dataset_changed(self, _data) -> None:
        self.positive = self.negative = None
        self.vector = self.result_z = self.images = None
        self.changed.emit()
