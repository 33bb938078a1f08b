"""The studio on the map (no Qt): clicks pick operands, the animation is drawn as a path."""

from __future__ import annotations

from psygnal import Signal

from explorer.state.studio.arithmetic import Arithmetic
from explorer.state.studio.attributes import Attributes
from explorer.state.studio.context import StudioContext
from explorer.state.studio.interpolation import Interpolation
from explorer.state.studio.player import Player
from explorer.state.studio.traversal import Traversal

#: What a click on the map is used for while the studio listens to it.
PICK_TARGETS = ("keyframes", "arithmetic", "attribute", "traversal")


class MapPicking:
    """Routes map clicks to a studio feature and draws the player's animation on the map.

    Parameters
    ----------
    map_state
        The :class:`explorer.state.map.MapState` whose clicks (``point_picked``) are
        picked up and on which the animation's path and current frame are drawn.
    """

    target_changed = Signal(object)       # PICK_TARGETS or None

    def __init__(self, context: StudioContext, map_state, player: Player, interpolation: Interpolation,
                 arithmetic: Arithmetic, attributes: Attributes, traversal: Traversal) -> None:
        self.context = context
        self.map = map_state
        self.player = player
        self.interpolation = interpolation
        self.arithmetic = arithmetic
        self.attributes = attributes
        self.traversal = traversal
        self.target: str | None = None
        map_state.point_picked.connect(self._on_map_point_picked)
        player.frames_changed.connect(self._on_player_frames_changed)
        player.current_frame_changed.connect(self._on_player_current_frame_changed)

    def set_target(self, target: str | None) -> None:
        """Route clicks on the map to the keyframes, the composer, the attribute's point or
        the traversal code (None: clicks are not picked up)."""
        if target is not None and target not in PICK_TARGETS:
            raise ValueError(f"Unknown pick target {target!r}: use one of {', '.join(PICK_TARGETS)}.")
        if target != self.target:
            self.target = target
            self.target_changed.emit(target)

    def _on_map_point_picked(self, picked) -> None:
        target = self.target
        if target is None or self.context.document.codes is None:
            return
        try:
            operand = self.context.operand_from_picked(picked)
        except ValueError:
            return
        if target == "keyframes":
            self.interpolation.add_keyframe(operand)
        elif target == "arithmetic":
            self.arithmetic.add_operand_to_expression(operand, "+")
        elif target == "attribute":
            self.attributes.set_base(operand)
        elif target == "traversal":
            self.traversal.set_code(operand.z)

    def _on_player_frames_changed(self) -> None:
        self.map.set_path(self.player.frame_codes)
        self._on_player_current_frame_changed()

    def _on_player_current_frame_changed(self, *_) -> None:
        i = self.player.current_index
        self.map.set_path_frame(-1 if i is None else i)
