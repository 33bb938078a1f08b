"""The current animation and its player (no Qt).

Whatever animation is current (an interpolation, an arithmetic edit, an attribute shift,
a label sweep, a one-dimension traversal) is a ``T×d`` code array, its decoded
``T×C×H×W`` frames and captions. The player walks :attr:`Player.sequence`, the frame
order :func:`vae_core.export.prepare_frames` writes (ping-pong included), so what plays is
what an export writes.
"""

from __future__ import annotations

import numpy as np
from psygnal import Signal

from explorer.state.studio.context import StudioContext, vx

ANIMATION_KINDS = ("interpolation", "arithmetic", "attribute", "labels", "traversal")


def pingpong_indices(count: int, pingpong: bool) -> np.ndarray:
    """Frame order of :func:`vae_core.export.prepare_frames`: ``0..T-1``, then with
    ping-pong back down to 1 (``2T - 2`` frames; the ends are not repeated, and fewer than
    three frames are left as they are)."""
    forward = np.arange(int(count), dtype=np.int64)
    if not pingpong or count < 3:
        return forward
    return np.r_[forward, np.arange(count - 2, 0, -1, dtype=np.int64)]


class Player:
    """The animation shown now, the frame on screen, and how it plays."""

    frames_changed = Signal()             # frame_codes / frames recomputed
    animation_started = Signal(str)       # a new animation (its kind) replaced the previous one
    current_frame_changed = Signal(int)   # position in self.sequence
    playback_changed = Signal()           # playing / fps / loop / pingpong

    def __init__(self, context: StudioContext) -> None:
        self.context = context
        self.animation_kind: str | None = None
        self.animation_title = ""
        self.frame_codes: np.ndarray | None = None   # T×d
        self.frame_labels: np.ndarray | None = None  # T labels (label sweeps) or None = decode_label
        self.frames: np.ndarray | None = None        # T×C×H×W in [0, 1]
        self.unquantized = False                     # frames decoded without snapping (vqvae)
        self.captions: list[str] = []
        self.current_frame = 0            # index into self.sequence
        self.playing = False
        self.fps = 12.0
        self.loop = True
        self.pingpong = False
        document = context.document
        document.model_changed.connect(self._on_document_model_changed)
        document.weights_changed.connect(self._on_document_weights_changed)
        context.decode_label_changed.connect(self._on_context_decode_label_changed)

    # -- the animation -----------------------------------------------------------------------------
    def set_animation(self, codes, *, labels=None, kind: str = "interpolation", title: str = "",
                      captions=None, announce: bool = True, unquantized: bool = False) -> np.ndarray:
        """Decode ``codes`` (``T×d``) in one batch and make them the current animation.

        ``labels`` (``T``) decodes each frame with its own label (conditional models);
        otherwise frames use the context's decode label. :attr:`animation_started` tells
        the window to bring the player forward unless ``announce`` is False.
        ``unquantized`` decodes a code-grid model's frames without snapping them to the
        codebook. Returns the ``T×C×H×W`` frames.
        """
        if kind not in ANIMATION_KINDS:
            raise ValueError(f"Unknown animation kind {kind!r}.")
        codes = np.atleast_2d(np.asarray(codes, dtype=np.float32))
        labels = None if labels is None else np.asarray(labels, dtype=np.int64).reshape(-1)
        if labels is not None and len(labels) != len(codes):
            raise ValueError(f"Got {len(labels)} labels for {len(codes)} frames.")
        frames = self.context.decode(codes, labels, unquantized=unquantized)
        self.frame_codes, self.frame_labels, self.frames = codes, labels, frames
        self.unquantized = unquantized
        self.animation_kind, self.animation_title = kind, title
        captions = list(captions) if captions is not None else [""] * len(codes)
        self.captions = (captions + [""] * len(codes))[: len(codes)]
        self.frames_changed.emit()
        self._clamp_current_frame(force_emit=True)
        if announce:
            self.animation_started.emit(kind)
        return frames

    def clear_animation(self) -> None:
        self.stop()
        self.frame_codes = self.frame_labels = self.frames = None
        self.captions = []
        self.animation_kind, self.animation_title = None, ""
        self.frames_changed.emit()
        self._clamp_current_frame(force_emit=True)

    def redecode_animation(self) -> None:
        """Decode the current animation again (new weights or a new decode label)."""
        if self.frame_codes is None:
            return
        if not self.context.can_decode():
            self.clear_animation()
            return
        self.frames = self.context.decode(self.frame_codes, self.frame_labels, unquantized=self.unquantized)
        self.frames_changed.emit()

    @property
    def frame_count(self) -> int:
        """Decoded frames of the animation (before ping-pong)."""
        return 0 if self.frames is None else len(self.frames)

    @property
    def sequence(self) -> np.ndarray:
        """Frame indices in the order the player shows them and an export writes them."""
        return pingpong_indices(self.frame_count, self.pingpong)

    @property
    def sequence_length(self) -> int:
        return len(self.sequence)

    @property
    def current_index(self) -> int | None:
        """Index into :attr:`frames` / :attr:`frame_codes` of the frame shown now."""
        seq = self.sequence
        return int(seq[self.current_frame]) if len(seq) else None

    @property
    def current_code(self) -> np.ndarray | None:
        i = self.current_index
        return None if i is None else self.frame_codes[i]

    @property
    def current_image(self) -> np.ndarray | None:
        """``C×H×W`` image of the frame shown now."""
        i = self.current_index
        return None if i is None else self.frames[i]

    @property
    def current_caption(self) -> str:
        i = self.current_index
        return "" if i is None else self.captions[i]

    # -- playing -----------------------------------------------------------------------------------
    def set_current_frame(self, frame: int) -> None:
        n = self.sequence_length
        frame = min(max(int(frame), 0), max(n - 1, 0))
        if frame != self.current_frame:
            self.current_frame = frame
            self.current_frame_changed.emit(frame)

    def step(self, delta: int = 1) -> None:
        """Move by ``delta`` frames, wrapping around (the player's step buttons)."""
        n = self.sequence_length
        if n:
            self.set_current_frame((self.current_frame + int(delta)) % n)

    def advance(self) -> bool:
        """One player tick: the next frame. At the end, wrap when looping, else stop.

        Returns whether the player is still playing.
        """
        n = self.sequence_length
        if n == 0:
            self.stop()
            return False
        nxt = self.current_frame + 1
        if nxt >= n:
            if not self.loop:
                self.stop()
                return False
            nxt = 0
        self.set_current_frame(nxt)
        return self.playing

    def play(self) -> None:
        if self.sequence_length < 2:
            return
        if not self.loop and self.current_frame >= self.sequence_length - 1:
            self.set_current_frame(0)   # replay from the start
        if not self.playing:
            self.playing = True
            self.playback_changed.emit()

    def stop(self) -> None:
        if self.playing:
            self.playing = False
            self.playback_changed.emit()

    pause = stop

    def toggle_playing(self) -> None:
        self.stop() if self.playing else self.play()

    def set_fps(self, fps: float) -> None:
        fps = float(min(max(fps, 0.5), 60.0))
        if fps != self.fps:
            self.fps = fps
            self.playback_changed.emit()

    def set_loop(self, loop: bool) -> None:
        if bool(loop) != self.loop:
            self.loop = bool(loop)
            self.playback_changed.emit()

    def set_pingpong(self, pingpong: bool) -> None:
        if bool(pingpong) == self.pingpong:
            return
        shown = self.current_index
        self.pingpong = bool(pingpong)
        self.playback_changed.emit()
        # Keep the same picture on screen: its first occurrence in the new order.
        if shown is not None:
            hits = np.flatnonzero(self.sequence == shown)
            self.current_frame = int(hits[0]) if len(hits) else 0
        self._clamp_current_frame(force_emit=True)

    def _clamp_current_frame(self, force_emit: bool = False) -> None:
        n = self.sequence_length
        frame = min(self.current_frame, max(n - 1, 0))
        if frame != self.current_frame or force_emit:
            self.current_frame = frame
            self.current_frame_changed.emit(frame)
        if n < 2:
            self.stop()

    # -- what an export writes ---------------------------------------------------------------------
    def display_frames(self, *, upscale: int | None = None, size=None, captions: bool = False) -> np.ndarray:
        """The frames as the player shows them and an export writes them.

        :func:`vae_core.export.prepare_frames` of the decoded frames with this player's
        ping-pong setting: ``T'×H×W`` (grayscale) or ``T'×H×W×3`` ``uint8`` in the order of
        :attr:`sequence`. ``upscale``/``size`` enlarge them as an export would;
        ``captions=True`` draws :attr:`captions` under them.
        """
        if self.frames is None:
            return np.zeros((0, 1, 1), dtype=np.uint8)
        return vx.prepare_frames(self.frames, pingpong=self.pingpong, upscale=upscale, size=size,
                                 captions=self.captions if captions else None)

    def export_options(self, **overrides) -> dict:
        """Keyword arguments for :func:`vae_core.export.export_animation` that write what the
        player shows (its ping-pong, fps and loop); ``overrides`` add size, captions…"""
        options = {"fps": self.fps, "loop": self.loop, "pingpong": self.pingpong}
        options.update(overrides)
        return options

    def export(self, path, *, progress=None, **overrides):
        """Write the current animation to ``path`` (format from the extension)."""
        if self.frames is None:
            raise ValueError("There is no animation to export.")
        options = self.export_options(**overrides)
        if options.pop("captions", None) is True:
            options["captions"] = self.captions
        return vx.export_animation(self.frames, path, progress=progress, **options)

    # -- the document ------------------------------------------------------------------------------
    def _on_document_model_changed(self, model) -> None:
        if model is None:
            self.clear_animation()
        elif self.frame_codes is not None and self.frame_codes.shape[1] != int(model.latent_dim):
            self.clear_animation()   # codes of another latent space
        else:
            self.redecode_animation()

    def _on_document_weights_changed(self) -> None:
        self.redecode_animation()

    def _on_context_decode_label_changed(self, _label: int) -> None:
        if self.context.conditional and self.frame_codes is not None and self.frame_labels is None:
            self.redecode_animation()
