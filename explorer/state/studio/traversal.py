"""Traversals (no Qt).

An editable code, its dimensions sorted by KL with collapsed ones flagged, and the
traversal grid (one row per dimension over center ± span·σ, :func:`vae_core.latent.traversal_grid`).
The per-dimension statistics are the document's (:meth:`ExplorerState.code_stat`),
computed once per set of codes.
"""

from __future__ import annotations

import numpy as np
from psygnal import Signal

from explorer.state.studio.context import StudioContext, vl
from explorer.state.studio.interpolation import Interpolation
from explorer.state.studio.player import Player

#: Burda et al. (2016): a dimension whose posterior means vary less than this is inactive.
COLLAPSED_VARIANCE = 0.01
#: Without codes, a dimension with less KL than this (nats) is flagged as collapsed.
COLLAPSED_KL = 0.01


class Traversal:
    """The traversal code and the grid's span, steps, σ and number of rows."""

    changed = Signal()                    # traversal code or grid settings

    def __init__(self, context: StudioContext, player: Player, timing: Interpolation) -> None:
        self.context = context
        self.player = player
        self.timing = timing              # steps of a one-dimension animation
        self.code: np.ndarray | None = None
        self.span = 3.0
        self.steps = 9
        self.sigma = "prior"              # "prior" (σ = 1) or "data" (σ of the codes)
        self.max_dims: int | None = 16
        document = context.document
        document.model_changed.connect(self._on_document_model_changed)
        document.weights_changed.connect(self.changed.emit)
        document.codes_changed.connect(self._on_document_codes_changed)
        context.decode_label_changed.connect(self._on_context_decode_label_changed)

    @property
    def latent_dim(self) -> int | None:
        return self.context.latent_dim

    def set_code(self, z) -> None:
        if z is None:
            self.code = None
        else:
            z = np.asarray(z, dtype=np.float32).reshape(-1).copy()
            if self.latent_dim is not None and z.shape != (self.latent_dim,):
                raise ValueError(f"A code of shape {z.shape} does not fit a {self.latent_dim}-d model.")
            self.code = z
        self.changed.emit()

    def set_value(self, dim: int, value: float) -> None:
        """Edit one dimension of the traversal code (the per-dimension sliders)."""
        if self.code is None:
            if self.latent_dim is None:
                return
            self.code = np.zeros(self.latent_dim, dtype=np.float32)
        if float(self.code[dim]) != float(np.float32(value)):
            self.code = self.code.copy()
            self.code[int(dim)] = value
            self.changed.emit()

    def set_options(self, *, span: float | None = None, steps: int | None = None,
                    sigma: str | None = None, max_dims: int | None | str = "keep") -> None:
        if span is not None:
            self.span = float(span)
        if steps is not None:
            self.steps = max(2, int(steps))
        if sigma is not None:
            if sigma not in ("prior", "data"):
                raise ValueError("sigma is 'prior' or 'data'.")
            self.sigma = sigma
        if max_dims != "keep":
            self.max_dims = None if max_dims is None else max(1, int(max_dims))
        self.changed.emit()

    # -- dimensions --------------------------------------------------------------------------------
    def kl_values(self) -> np.ndarray | None:
        """Per-dimension KL (nats): from the codes' posteriors when known, else the history."""
        document = self.context.document
        codes, logvar = document.codes, document.logvar
        if codes is not None and logvar is not None and len(codes):
            return document.code_stat("kl")
        kl = document.kl_per_dim
        if kl is not None and self.latent_dim is not None and len(kl) == self.latent_dim:
            return kl
        return None

    def dimension_order(self) -> np.ndarray:
        """All latent dimensions, by KL descending (index order when KL is unknown)."""
        return vl.traversal_dims(self.latent_dim or 0, self.kl_values())

    def collapsed_mask(self) -> np.ndarray:
        """``d`` booleans: dimensions the encoder does not use (posterior collapse)."""
        codes = self.context.document.codes
        if codes is not None and len(codes) > 1:
            return self.context.document.code_stat("var") <= COLLAPSED_VARIANCE
        kl = self.kl_values()
        if kl is not None:
            return np.asarray(kl) < COLLAPSED_KL
        return np.zeros(self.latent_dim or 0, dtype=bool)

    def sigmas(self) -> np.ndarray:
        if self.sigma == "data" and self.context.document.codes is not None:
            return np.maximum(self.context.document.code_stat("std"), 1e-3)
        return np.ones(self.latent_dim or 0)

    def centers(self) -> np.ndarray:
        if self.sigma == "data" and self.context.document.codes is not None:
            return self.context.document.code_stat("mean")
        return np.zeros(self.latent_dim or 0)

    def slider_range(self, dim: int) -> tuple[float, float]:
        """Range of dimension ``dim``'s slider: center ± span·σ (widened to hold the code)."""
        c, s = float(self.centers()[dim]), float(self.sigmas()[dim])
        lo, hi = c - self.span * s, c + self.span * s
        if self.code is not None:
            v = float(self.code[dim])
            lo, hi = min(lo, v), max(hi, v)
        return lo, hi

    # -- the grid ----------------------------------------------------------------------------------
    def rows(self) -> np.ndarray:
        """Dimensions shown as grid rows: by KL, at most :attr:`max_dims`."""
        return vl.traversal_dims(self.latent_dim or 0, self.kl_values(), max_dims=self.max_dims)

    def _base_code(self) -> np.ndarray:
        if self.latent_dim is None:
            raise ValueError("Load or train a model first.")
        return self.code if self.code is not None else np.zeros(self.latent_dim, np.float32)

    def grid_codes(self) -> np.ndarray:
        """``rows×steps×d`` codes: each row sweeps one dimension over center ± span·σ."""
        return vl.traversal_grid(self._base_code(), self.kl_values(), steps=self.steps, span=self.span,
                                 std=self.sigmas(), mean=self.centers(), max_dims=self.max_dims)

    def grid_images(self) -> np.ndarray:
        """Decoded traversal grid, ``rows×steps×C×H×W`` (one batched decode)."""
        return self.context.decode(self.grid_codes().reshape(-1, self.latent_dim)).reshape(
            (-1, self.steps) + tuple(self.context.document.model.image_shape))

    def row_captions(self) -> list[str]:
        kl, collapsed = self.kl_values(), self.collapsed_mask()
        out = []
        for d in self.rows():
            text = f"z{d}"
            if kl is not None:
                text += f"  KL {kl[d]:.2f}"
            if collapsed[d]:
                text += "  collapsed"
            out.append(text)
        return out

    def animate(self, dim: int, steps: int | None = None) -> np.ndarray:
        """One dimension swept over center ± span·σ, as the player's animation."""
        codes = vl.traverse(self._base_code(), int(dim), span=self.span, steps=int(steps or self.timing.steps),
                            std=self.sigmas(), mean=self.centers())
        captions = [f"z{dim} = {v:+.2f}" for v in codes[:, int(dim)]]
        return self.player.set_animation(codes, kind="traversal", title=f"traversal of z{dim}", captions=captions)

    # -- the document ------------------------------------------------------------------------------
    def _on_document_model_changed(self, model) -> None:
        if model is None:
            self.code = None
        elif self.code is None or self.code.shape != (int(model.latent_dim),):
            self.code = np.zeros(int(model.latent_dim), dtype=np.float32)
        self.changed.emit()

    def _on_document_codes_changed(self) -> None:
        if self.context.document.codes is not None:
            self.changed.emit()

    def _on_context_decode_label_changed(self, _label: int) -> None:
        if self.context.conditional:
            self.changed.emit()
