"""Interpolation through keyframes (no Qt).

Keyframes (data points, pins, class centroids, groups, map positions), a method
(lerp/slerp), a number of steps and an easing give the frame codes
(:func:`vae_core.latent.interpolate`), decoded in one batch into the player. For a model
with a codebook (``vqvae``) the frames lie in the continuous pre-quantization space and
:attr:`Interpolation.snap` says whether each frame is snapped to codebook entries before
decoding (what the model does) or decoded as it is. The steps and
the easing are also the timing of the other features' animations.
"""

from __future__ import annotations

import numpy as np
from psygnal import Signal

from explorer.state.studio.context import Keyframe, StudioContext, vl
from explorer.state.studio.player import Player

METHODS = ("lerp", "slerp")
#: Keys of :data:`vae_core.latent.EASINGS`, in its order.
EASING_NAMES = ("linear", "ease-in-out", "ease-in", "ease-out")


class Interpolation:
    """Keyframes and the interpolation settings; the interpolation plays in ``player``."""

    keyframes_changed = Signal()
    settings_changed = Signal()           # method / steps / easing / snap

    def __init__(self, context: StudioContext, player: Player) -> None:
        self.context = context
        self.player = player
        self.keyframes: list[Keyframe] = []
        self.method = "lerp"
        self.steps = 24
        self.easing = "linear"
        self.snap = True                  # codebook models: quantize each frame
        document = context.document
        document.model_changed.connect(self._on_document_model_changed)
        document.codes_changed.connect(self._on_document_codes_changed)
        document.dataset_changed.connect(self._on_document_dataset_changed)

    # -- keyframes ---------------------------------------------------------------------------------
    def add_keyframe(self, keyframe: Keyframe, index: int | None = None) -> Keyframe:
        """Insert a keyframe (at the end by default) and rebuild the interpolation."""
        if index is None:
            self.keyframes.append(keyframe)
        else:
            self.keyframes.insert(int(index), keyframe)
        self.keyframes_changed.emit()
        self.build()
        return keyframe

    def add_index_keyframe(self, index: int) -> Keyframe:
        return self.add_keyframe(self.context.operand_from_index(index))

    def add_pin_keyframe(self, pin) -> Keyframe:
        return self.add_keyframe(self.context.operand_from_pin(pin))

    def add_centroid_keyframe(self, label: int) -> Keyframe:
        return self.add_keyframe(self.context.operand_from_centroid(label))

    def add_group_keyframe(self, name: str) -> Keyframe:
        return self.add_keyframe(self.context.operand_from_group(name))

    def add_code_keyframe(self, z, *, name: str | None = None, position=None) -> Keyframe:
        if name is None:
            name = (f"map ({position[0]:.2f}, {position[1]:.2f})" if position is not None
                    else f"code {len(self.keyframes) + 1}")
        return self.add_keyframe(self.context.operand_from_code(z, name=name, position=position))

    def remove_keyframe(self, index: int) -> None:
        del self.keyframes[int(index)]
        self.keyframes_changed.emit()
        self.build()

    def move_keyframe(self, index: int, new_index: int) -> None:
        index, new_index = int(index), int(new_index)
        n = len(self.keyframes)
        if not (0 <= index < n and 0 <= new_index < n) or index == new_index:
            return
        self.keyframes.insert(new_index, self.keyframes.pop(index))
        self.keyframes_changed.emit()
        self.build()

    def reverse_keyframes(self) -> None:
        if len(self.keyframes) > 1:
            self.keyframes.reverse()
            self.keyframes_changed.emit()
            self.build()

    def clear_keyframes(self) -> None:
        if self.keyframes:
            self.keyframes.clear()
            self.keyframes_changed.emit()
            self.build()

    # -- settings ----------------------------------------------------------------------------------
    def set_method(self, method: str) -> None:
        if method not in METHODS:
            raise ValueError(f"Unknown interpolation method {method!r}: use one of {', '.join(METHODS)}.")
        if method != self.method:
            self.method = method
            self.settings_changed.emit()
            self.build()

    def set_steps(self, steps: int) -> None:
        steps = max(2, int(steps))
        if steps != self.steps:
            self.steps = steps
            self.settings_changed.emit()
            self.build()

    def set_easing(self, easing: str) -> None:
        if easing not in vl.EASINGS:
            raise ValueError(f"Unknown easing {easing!r}: use one of {', '.join(vl.EASINGS)}.")
        if easing != self.easing:
            self.easing = easing
            self.settings_changed.emit()
            self.build()

    def set_snap(self, snap: bool) -> None:
        """Snap each frame to the codebook (True) or decode the continuous code (codebook models)."""
        snap = bool(snap)
        if snap != self.snap:
            self.snap = snap
            self.settings_changed.emit()
            self.build()

    @property
    def unquantized(self) -> bool:
        """Whether frames are decoded without snapping (snap off on a model with a codebook)."""
        return not self.snap and self.context.can_decode_unquantized()

    def eased(self, steps: int | None = None) -> np.ndarray:
        """``steps`` (default :attr:`steps`) times in [0, 1] through the current easing."""
        return vl.EASINGS[self.easing](np.linspace(0.0, 1.0, int(steps or self.steps)))

    @property
    def effective_steps(self) -> int:
        """Frames of the interpolation: ``steps``, but at least one per keyframe."""
        return max(self.steps, len(self.keyframes))

    # -- the interpolation -------------------------------------------------------------------------
    def codes(self) -> np.ndarray:
        """``T×d`` codes through the keyframes (:func:`vae_core.latent.interpolate`)."""
        if len(self.keyframes) < 2:
            raise ValueError("Pick at least two keyframes.")
        keys = np.stack([k.z for k in self.keyframes])
        return vl.interpolate(keys, self.effective_steps, self.method, self.easing)

    def build(self, *, announce: bool = True) -> bool:
        """Make the interpolation through the keyframes the player's animation.

        With fewer than two keyframes (or no model) an interpolation animation is cleared.
        ``announce=False`` rebuilds it without ``animation_started`` (new codes, not a
        user's edit). Returns whether an interpolation is now shown.
        """
        player = self.player
        if len(self.keyframes) < 2 or not self.context.can_decode():
            if player.animation_kind == "interpolation":
                player.clear_animation()
            return False
        codes = self.codes()
        captions = [""] * len(codes)
        for k, i in zip(self.keyframes, self.keyframe_frame_indices()):
            captions[i] = k.name
        title = f"{self.method} through {len(self.keyframes)} keyframes, {len(codes)} frames"
        if self.context.can_decode_unquantized():
            title += ", snapped to the codebook" if self.snap else ", not snapped"
        player.set_animation(codes, kind="interpolation", title=title, captions=captions, announce=announce,
                             unquantized=self.unquantized)
        return True

    def keyframe_frame_indices(self) -> list[int]:
        """Frame index of each keyframe in the interpolation (same split as ``interpolate``)."""
        k = len(self.keyframes)
        if k < 2:
            return list(range(k))
        per_segment = np.full(k - 1, (self.effective_steps - 1) // (k - 1))
        per_segment[: (self.effective_steps - 1) % (k - 1)] += 1
        return [0, *np.cumsum(per_segment).astype(int).tolist()]

    # -- the document ------------------------------------------------------------------------------
    def _on_document_model_changed(self, model) -> None:
        if model is not None and any(k.z.shape != (int(model.latent_dim),) for k in self.keyframes):
            self.keyframes = []   # codes of another latent space
            self.keyframes_changed.emit()

    def _on_document_codes_changed(self) -> None:
        if self.context.document.codes is None:
            return
        fresh = []
        for k in self.keyframes:
            try:
                fresh.append(self.context.refreshed(k))
            except ValueError:
                continue  # the point / class / group is gone with the old dataset
        self.keyframes = fresh
        self.keyframes_changed.emit()
        if self.player.animation_kind in ("interpolation", None):
            self.build(announce=False)

    def _on_document_dataset_changed(self, _data) -> None:
        self.keyframes = [k for k in self.keyframes if k.kind in ("pin", "map", "code")]
        self.keyframes_changed.emit()
