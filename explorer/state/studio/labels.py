"""Label sweeps for conditional models (no Qt): one style ``z`` decoded as every class."""

from __future__ import annotations

import numpy as np

from explorer.state.studio.context import StudioContext
from explorer.state.studio.player import Player


class LabelSweep:
    """Animations across the labels of a conditional model (``cvae``).

    The label that every other feature decodes with is the context's
    :attr:`~explorer.state.studio.context.StudioContext.decode_label`.
    """

    def __init__(self, context: StudioContext, player: Player) -> None:
        self.context = context
        self.player = player

    def sweep_codes(self, z) -> tuple[np.ndarray, np.ndarray]:
        """One frame per label of a conditional model, all with the style ``z``."""
        if not self.context.conditional:
            raise ValueError("Animating across labels needs a conditional model (cvae).")
        n = self.context.num_labels
        z = np.asarray(z, dtype=np.float32).reshape(-1)
        return np.repeat(z[None], n, axis=0), np.arange(n, dtype=np.int64)

    def animate(self, z=None, *, name: str = "") -> np.ndarray:
        """Make "this style as every class" the player's animation (the origin by default)."""
        if z is None:
            z = np.zeros(self.context.latent_dim or 0)
        codes, labels = self.sweep_codes(z)
        captions = [self.context.label_name(int(y)) for y in labels]
        title = f"{name or 'style'} across {len(labels)} labels"
        return self.player.set_animation(codes, labels=labels, kind="labels", title=title, captions=captions)
