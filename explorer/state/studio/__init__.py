"""The interpolation / arithmetic studio (no Qt): one module per feature.

* :mod:`~explorer.state.studio.context` — operands (:class:`Keyframe`) and decoding with the
  label a conditional model decodes with;
* :mod:`~explorer.state.studio.player` — the current animation and its player;
* :mod:`~explorer.state.studio.interpolation` — keyframes, method, steps, easing;
* :mod:`~explorer.state.studio.arithmetic` — latent arithmetic expressions;
* :mod:`~explorer.state.studio.attributes` — attribute vectors;
* :mod:`~explorer.state.studio.traversal` — traversal code and grid;
* :mod:`~explorer.state.studio.labels` — animations across labels (conditional models);
* :mod:`~explorer.state.studio.picking` — map clicks as operands, the animation's path on the map.

Each feature subscribes to the document's signals itself, so a new feature is a new module
and one line in :class:`StudioState`, never an edit of a central reset handler.
"""

from __future__ import annotations

from explorer.state.studio.arithmetic import Arithmetic
from explorer.state.studio.attributes import AttributeSide, Attributes
from explorer.state.studio.context import Keyframe, StudioContext
from explorer.state.studio.interpolation import EASING_NAMES, METHODS, Interpolation
from explorer.state.studio.labels import LabelSweep
from explorer.state.studio.picking import PICK_TARGETS, MapPicking
from explorer.state.studio.player import ANIMATION_KINDS, Player, pingpong_indices
from explorer.state.studio.traversal import COLLAPSED_KL, COLLAPSED_VARIANCE, Traversal

__all__ = ["ANIMATION_KINDS", "COLLAPSED_KL", "COLLAPSED_VARIANCE", "EASING_NAMES", "METHODS", "PICK_TARGETS",
           "Arithmetic", "AttributeSide", "Attributes", "Interpolation", "Keyframe", "LabelSweep", "MapPicking",
           "Player", "StudioContext", "StudioState", "Traversal", "pingpong_indices"]


class StudioState:
    """The studio's features, built on one document, its marks and its map.

    Attributes
    ----------
    context : StudioContext
        Operands, decoding and the decode label.
    player, interpolation, arithmetic, attributes, traversal, labels, picking
        One object per feature.
    """

    def __init__(self, document, marks, map_state) -> None:
        self.context = StudioContext(document, marks)
        self.player = Player(self.context)
        self.interpolation = Interpolation(self.context, self.player)
        self.arithmetic = Arithmetic(self.context, self.player, self.interpolation)
        self.attributes = Attributes(self.context, self.player, self.interpolation)
        self.traversal = Traversal(self.context, self.player, self.interpolation)
        self.labels = LabelSweep(self.context, self.player)
        self.picking = MapPicking(self.context, map_state, self.player, self.interpolation, self.arithmetic,
                                  self.attributes, self.traversal)

    # Read by views that know the studio only as "the thing that may be picking" or "the label
    # to decode with" (the map view, the decoder view).
    @property
    def decode_label(self) -> int:
        return self.context.decode_label

    @property
    def pick_target(self) -> str | None:
        return self.picking.target
