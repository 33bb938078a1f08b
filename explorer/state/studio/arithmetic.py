"""Latent arithmetic (no Qt).

An expression such as ``#12 - mean(7) + mean(3)`` is parsed and evaluated by
:mod:`vae_core.latent` with a strength; the result is decoded and its nearest real
neighbours are found. The animation goes from the first term (strength 0) to the result.
"""

from __future__ import annotations

import numpy as np
from psygnal import Signal

from explorer.state.studio.context import Keyframe, StudioContext, vl
from explorer.state.studio.interpolation import Interpolation
from explorer.state.studio.player import Player


class Arithmetic:
    """The expression, its strength, its result and the result's nearest data points."""

    changed = Signal()                    # expression / strength / result / error

    def __init__(self, context: StudioContext, player: Player, timing: Interpolation) -> None:
        self.context = context
        self.player = player
        self.timing = timing              # steps and easing of the animation
        self.expression = ""
        self.strength = 1.0
        self.error: str | None = None
        self.error_position: int | None = None
        self.base: np.ndarray | None = None          # value of the first term (strength 0)
        self.result_z: np.ndarray | None = None
        self.result_image: np.ndarray | None = None  # C×H×W
        self.neighbor_indices = np.zeros(0, dtype=np.int64)
        self.neighbor_distances = np.zeros(0, dtype=np.float32)
        self.neighbor_count = 8
        self._parsed = None                           # the evaluated Expression
        self._term_images: np.ndarray | None = None   # decoded term vectors
        self._neighbor_index = None
        document = context.document
        document.model_changed.connect(self._on_document_model_changed)
        document.weights_changed.connect(self._on_document_weights_changed)
        document.codes_changed.connect(self._on_document_codes_changed)
        document.dataset_changed.connect(self._on_document_dataset_changed)
        context.decode_label_changed.connect(self._on_context_decode_label_changed)

    def validate_expression(self, text: str) -> tuple[str | None, int | None]:
        """``(None, None)`` when ``text`` parses and resolves, else ``(message, position)``."""
        try:
            expr = vl.parse_expression(text)
            self.context.resolver().term_vectors(expr)
        except vl.ExpressionError as exc:
            return str(exc), exc.position
        return None, None

    def set_expression(self, text: str) -> bool:
        """Set and evaluate an expression; returns whether it evaluated."""
        self.expression = str(text)
        return self.evaluate()

    def set_strength(self, strength: float) -> None:
        strength = float(strength)
        if strength != self.strength:
            self.strength = strength
            self.evaluate()

    def _clear_result(self) -> None:
        self.result_z = self.result_image = self.base = None
        self._parsed = self._term_images = None
        self.neighbor_indices = np.zeros(0, dtype=np.int64)
        self.neighbor_distances = np.zeros(0, dtype=np.float32)

    def evaluate(self) -> bool:
        """Evaluate :attr:`expression` at :attr:`strength`; decode it and find neighbours."""
        self.error = self.error_position = None
        self._clear_result()
        ok = False
        if not self.expression.strip():
            pass
        elif not self.context.can_decode():
            self.error = "Load or train a model first."
        else:
            try:
                expr = vl.parse_expression(self.expression)
                resolver = self.context.resolver()
                vectors = resolver.term_vectors(expr)
                self.result_z = vl.evaluate_expression(expr, resolver, self.strength)
                self.base = vl.evaluate_expression(expr, resolver, 0.0)
            except vl.ExpressionError as exc:
                self.error, self.error_position = str(exc), exc.position
            else:
                # One batched decode: every term's vector, then the result.
                images = self.context.decode(np.stack([*vectors, self.result_z]))
                self.result_image = images[-1]
                self._parsed = expr
                self._term_images = images[:-1]
                self.neighbor_indices, self.neighbor_distances = self.nearest(self.result_z)
                ok = True
        self.changed.emit()
        return ok

    def describe_expression(self) -> str:
        """The evaluated expression in canonical form, e.g. ``#12 - mean(7) + mean(3)``."""
        if self.result_z is None or self._parsed is None:
            return ""
        n = len(self._parsed.terms)
        return f"{n} term{'s' if n != 1 else ''}: {self._parsed}"

    def term_previews(self) -> list[tuple[str, np.ndarray]]:
        """``(text, C×H×W image)`` of each term's operand (before coefficients), in order.

        The text carries the term's sign and coefficient, with the strength folded into
        every term after the first, e.g. ``["#12", "− 0.5×mean(7)", "+ 0.5×mean(3)"]``.
        """
        if self.result_z is None or self._parsed is None or self._term_images is None:
            return []
        out = []
        for k, (term, image) in enumerate(zip(self._parsed.terms, self._term_images)):
            c = term.coefficient * (self.strength if k else 1.0)
            sign = "−" if c < 0 else ("+" if k else "")
            mag = abs(c)
            text = f"{sign} {'' if np.isclose(mag, 1.0) else f'{mag:.3g}×'}{term.operand}".strip()
            out.append((text, image))
        return out

    def nearest(self, z, k: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Indices and distances of the ``k`` data points whose codes are nearest to ``z``."""
        codes = self.context.document.codes
        if codes is None:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        if self._neighbor_index is None or self._neighbor_index.codes.shape != codes.shape:
            self._neighbor_index = vl.NeighborIndex(codes)
        return self._neighbor_index.query(z, self.neighbor_count if k is None else k)

    def pin_result(self, name: str | None = None):
        """Add the arithmetic result as a pin; returns the pin."""
        if self.result_z is None:
            raise ValueError("There is no arithmetic result to pin.")
        label = self.context.decode_label if self.context.conditional else None
        return self.context.marks.add_pin(self.result_z, name=name, label=label)

    def operand_text(self, operand: Keyframe) -> str:
        """The operand as expression text; plain codes are pinned first (``pin:P3``)."""
        text = operand.expression
        if text is None:
            pin = self.context.marks.add_pin(operand.z, label=operand.label)
            text = str(vl.NamedOperand("pin", pin.name))
        return text

    def add_operand_to_expression(self, operand: Keyframe, sign: str = "+") -> str:
        """Append ``± operand`` to the expression (the first operand starts it) and evaluate."""
        text = self.operand_text(operand)
        current = self.expression.strip()
        if not current:
            expression = text if sign == "+" else f"-{text}"
        else:
            expression = f"{current} {'−' if sign in ('-', '−') else '+'} {text}"
        self.set_expression(expression)
        return expression

    def animation_codes(self, steps: int | None = None) -> np.ndarray:
        """Codes from the first term to the result: the strength going 0 → :attr:`strength`."""
        if self.result_z is None or self.base is None:
            raise ValueError("Evaluate an expression first.")
        return vl.lerp(self.base, self.result_z, self.timing.eased(steps))

    def animate(self, steps: int | None = None) -> np.ndarray:
        codes = self.animation_codes(steps)
        captions = [""] * len(codes)
        captions[0], captions[-1] = "start", "result"
        title = f"{self.expression} (strength 0 → {self.strength:g})"
        return self.player.set_animation(codes, kind="arithmetic", title=title, captions=captions)

    # -- the document ------------------------------------------------------------------------------
    def _on_document_model_changed(self, model) -> None:
        self._neighbor_index = None
        # Results of another latent space cannot be decoded by this model.
        if model is not None and self.result_z is not None and self.result_z.shape != (int(model.latent_dim),):
            self._clear_result()
            self.changed.emit()

    def _redecode(self) -> None:
        if self.result_z is not None and self.context.can_decode():
            self.evaluate()

    def _on_document_weights_changed(self) -> None:
        self._redecode()

    def _on_context_decode_label_changed(self, _label: int) -> None:
        if self.context.conditional:
            self._redecode()

    def _on_document_codes_changed(self) -> None:
        self._neighbor_index = None
        if self.context.document.codes is not None and self.expression.strip():
            self.evaluate()

    def _on_document_dataset_changed(self, _data) -> None:
        self._neighbor_index = None
