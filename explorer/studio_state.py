"""State of the interpolation / arithmetic studio (no Qt).

Everything the studio panels show is computed here, through ``vae_core`` calls, so tests
can check it without a window:

* **Interpolation** — keyframes (data points, pins, class centroids, groups, map
  positions), a method (lerp/slerp), a number of steps and an easing give the frame codes
  (:func:`vae_core.latent.interpolate`), decoded in one batch.
* **The animation and its player** — whatever animation is current (an interpolation, an
  arithmetic edit, an attribute shift, a label sweep, a one-dimension traversal) is a
  ``T×d`` code array, its decoded ``T×C×H×W`` frames and captions. The player walks
  :attr:`StudioState.sequence`, the frame order :func:`vae_core.export.prepare_frames`
  writes (ping-pong included), so what plays is what an export writes.
* **Latent arithmetic** — an expression such as ``#12 - mean(7) + mean(3)`` parsed and
  evaluated by :mod:`vae_core.latent` with a strength, its decoded result and its nearest
  real neighbours.
* **Attribute vectors** — ``mean(positive) - mean(negative)`` for two classes or groups,
  applied "more of / less of" to a base point.
* **Traversals** — an editable code, its dimensions sorted by KL with collapsed ones
  flagged, and the traversal grid (one row per dimension over ±span·σ).
* **Conditional models** — the label to decode with, and animations across labels.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
from psygnal import Signal


class _Engine:
    """``vae_core`` modules imported on first use, so that importing the application
    state (and showing a window) does not wait for torch to load."""

    def __init__(self, module: str) -> None:
        self._module = module

    def __getattr__(self, name: str):
        import importlib

        return getattr(importlib.import_module(self._module), name)


vl = _Engine("vae_core.latent")
vx = _Engine("vae_core.export")

METHODS = ("lerp", "slerp")
#: Keys of :data:`vae_core.latent.EASINGS`, in its order.
EASING_NAMES = ("linear", "ease-in-out", "ease-in", "ease-out")
#: What a click on the map is used for while the studio listens to it.
PICK_TARGETS = ("keyframes", "arithmetic", "attribute", "traversal")
ANIMATION_KINDS = ("interpolation", "arithmetic", "attribute", "labels", "traversal")
#: Burda et al. (2016): a dimension whose posterior means vary less than this is inactive.
COLLAPSED_VARIANCE = 0.01
#: Without codes, a dimension with less KL than this (nats) is flagged as collapsed.
COLLAPSED_KL = 0.01


def pingpong_indices(count: int, pingpong: bool) -> np.ndarray:
    """Frame order of :func:`vae_core.export.prepare_frames`: ``0..T-1``, then with
    ping-pong back down to 1 (``2T - 2`` frames; the ends are not repeated, and fewer than
    three frames are left as they are)."""
    forward = np.arange(int(count), dtype=np.int64)
    if not pingpong or count < 3:
        return forward
    return np.r_[forward, np.arange(count - 2, 0, -1, dtype=np.int64)]


@dataclass(frozen=True)
class Keyframe:
    """One operand of the studio: a latent code and where it came from.

    ``kind`` is ``"index"`` (a data point, ``ref`` its index), ``"pin"`` (``ref`` the pin
    name), ``"centroid"`` (``ref`` a label), ``"group"`` (``ref`` the group name), ``"map"``
    (a position on the map, ``position`` its 2D coordinates) or ``"code"`` (any vector,
    e.g. an arithmetic result). Codes of data points, centroids and groups are looked up
    again when the dataset is re-encoded.
    """

    kind: str
    name: str
    z: np.ndarray = field(repr=False, compare=False)
    ref: object = None
    label: int | None = None
    position: tuple[float, float] | None = None

    @property
    def expression(self) -> str | None:
        """The operand as latent arithmetic text, or None for plain codes."""
        if self.kind == "index":
            return f"#{int(self.ref)}"
        if self.kind == "centroid":
            return f"mean({int(self.ref)})"
        if self.kind in ("pin", "group"):
            return str(vl.NamedOperand(self.kind, str(self.ref)))
        return None


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


class StudioState:
    """Keyframes, the current animation and its player, arithmetic, attributes, traversals.

    Parameters
    ----------
    owner
        The :class:`explorer.state.ExplorerState` whose model, codes, labels, pins and
        groups the studio uses.
    """

    keyframes_changed = Signal()
    settings_changed = Signal()           # method / steps / easing
    frames_changed = Signal()             # self.frame_codes / self.frames recomputed
    animation_started = Signal(str)       # a new animation (its kind) replaced the previous one
    current_frame_changed = Signal(int)   # position in self.sequence
    playback_changed = Signal()           # playing / fps / loop / pingpong
    decode_label_changed = Signal(int)
    arithmetic_changed = Signal()         # expression / strength / result / error
    attribute_changed = Signal()
    traversal_changed = Signal()          # traversal code or grid settings
    pick_target_changed = Signal(object)  # what a click on the map picks: PICK_TARGETS or None

    def __init__(self, owner) -> None:
        self.owner = owner
        # interpolation
        self.keyframes: list[Keyframe] = []
        self.method = "lerp"
        self.steps = 24
        self.easing = "linear"
        # the current animation
        self.animation_kind: str | None = None
        self.animation_title = ""
        self.frame_codes: np.ndarray | None = None   # T×d
        self.frame_labels: np.ndarray | None = None  # T labels (label sweeps) or None = decode_label
        self.frames: np.ndarray | None = None        # T×C×H×W in [0, 1]
        self.captions: list[str] = []
        # player
        self.current_frame = 0            # index into self.sequence
        self.playing = False
        self.fps = 12.0
        self.loop = True
        self.pingpong = False
        self.decode_label = 0             # label used to decode with conditional models
        # arithmetic
        self.expression = ""
        self.strength = 1.0
        self.arithmetic_error: str | None = None
        self.arithmetic_error_position: int | None = None
        self.arithmetic_base: np.ndarray | None = None   # value of the first term (strength 0)
        self.result_z: np.ndarray | None = None
        self.result_image: np.ndarray | None = None      # C×H×W
        self.neighbor_indices = np.zeros(0, dtype=np.int64)
        self.neighbor_distances = np.zeros(0, dtype=np.float32)
        self.neighbor_count = 8
        self._parsed = None                               # the evaluated Expression
        self._term_images: np.ndarray | None = None       # decoded term vectors
        # attribute vectors
        self.attribute_positive: AttributeSide | None = None
        self.attribute_negative: AttributeSide | None = None
        self.attribute_base: Keyframe | None = None
        self.attribute_amount = 1.0
        self.attribute_vector: np.ndarray | None = None
        self.attribute_error: str | None = None
        self.attribute_result_z: np.ndarray | None = None
        self.attribute_images: np.ndarray | None = None  # 2×C×H×W: base, shifted
        # traversals
        self.traversal_code: np.ndarray | None = None
        self.traversal_span = 3.0
        self.traversal_steps = 9
        self.traversal_sigma = "prior"   # "prior" (σ = 1) or "data" (σ of the codes)
        self.traversal_max_dims: int | None = 16
        self._neighbor_index: vl.NeighborIndex | None = None
        self.pick_target: str | None = None

        owner.model_changed.connect(self._on_owner_model_changed)
        owner.weights_changed.connect(self._on_owner_weights_changed)
        owner.codes_changed.connect(self._on_owner_codes_changed)
        owner.dataset_changed.connect(self._on_owner_dataset_changed)
        # The map draws the animation's path and marks the frame on screen; clicks on it
        # can pick keyframes and operands.
        self.frames_changed.connect(self._update_map_path)
        self.current_frame_changed.connect(self._update_map_marker)
        owner.map.point_picked.connect(self._on_map_point_picked)

    # ==================================================================================
    # Helpers on the owner
    # ==================================================================================
    @property
    def latent_dim(self) -> int | None:
        model = self.owner.model
        return int(model.latent_dim) if model is not None else None

    @property
    def conditional(self) -> bool:
        model = self.owner.model
        return bool(model is not None and getattr(model, "conditional", False))

    @property
    def num_labels(self) -> int:
        """How many labels a conditional model decodes with (0 otherwise)."""
        if not self.conditional:
            return 0
        return int(getattr(self.owner.model, "num_classes", 0) or len(self.owner.class_names))

    def label_name(self, label: int) -> str:
        names = self.owner.class_names
        return names[label] if 0 <= label < len(names) else str(label)

    def can_decode(self) -> bool:
        return self.owner.model is not None

    def decode(self, codes, labels=None) -> np.ndarray:
        """Decode ``N×d`` codes with the snapshot (``decode_label`` for conditional models)."""
        return self.owner.decode(codes, labels)

    def resolver(self) -> vl.LatentResolver:
        """The operand source for expressions: codes, labels, class names, pins, groups."""
        codes = self.owner.codes
        if codes is None:
            raise vl.ExpressionError("Encode the dataset first: operands are looked up in its codes.")
        pins = {p.name: p.z for p in self.owner.map.pins}
        return vl.LatentResolver(codes, self.owner.labels, self.owner.class_names,
                                 pins=pins, groups=dict(self.owner.map.groups))

    # ==================================================================================
    # Keyframes and operands
    # ==================================================================================
    def operand_from_index(self, index: int) -> Keyframe:
        codes = self._require_codes()
        index = int(index)
        if not 0 <= index < len(codes):
            raise ValueError(f"Data point {index} does not exist: the dataset has {len(codes)} points.")
        labels = self.owner.labels
        label = int(labels[index]) if labels is not None else None
        return Keyframe("index", f"#{index}", codes[index].copy(), ref=index, label=label)

    def operand_from_pin(self, pin) -> Keyframe:
        if isinstance(pin, str):
            matches = [p for p in self.owner.map.pins if p.name == pin]
            if not matches:
                raise ValueError(f"There is no pin named {pin!r}.")
            pin = matches[0]
        return Keyframe("pin", pin.name, np.asarray(pin.z, dtype=np.float32).copy(), ref=pin.name,
                        label=pin.label)

    def operand_from_centroid(self, label: int) -> Keyframe:
        resolver = self.resolver()
        try:
            z = resolver.label_mean(int(label))
        except vl.ExpressionError as exc:
            raise ValueError(str(exc)) from None
        return Keyframe("centroid", f"mean of {self.label_name(int(label))}", z, ref=int(label),
                        label=int(label))

    def operand_from_group(self, name: str) -> Keyframe:
        idx = self.owner.map.groups.get(name)
        if idx is None or len(idx) == 0:
            raise ValueError(f"The group {name!r} is empty or does not exist.")
        codes = self._require_codes()
        return Keyframe("group", f"group {name}", codes[np.asarray(idx)].mean(0).astype(np.float32),
                        ref=name)

    def operand_from_code(self, z, *, name: str = "code", position=None, label=None) -> Keyframe:
        z = np.asarray(z, dtype=np.float32).reshape(-1).copy()
        if self.latent_dim is not None and z.shape != (self.latent_dim,):
            raise ValueError(f"A code of shape {z.shape} does not fit a {self.latent_dim}-d model.")
        kind = "map" if position is not None else "code"
        pos = None if position is None else (float(position[0]), float(position[1]))
        return Keyframe(kind, name, z, position=pos, label=label)

    def add_keyframe(self, keyframe: Keyframe, index: int | None = None) -> Keyframe:
        """Insert a keyframe (at the end by default) and rebuild the interpolation."""
        if index is None:
            self.keyframes.append(keyframe)
        else:
            self.keyframes.insert(int(index), keyframe)
        self.keyframes_changed.emit()
        self.build_interpolation()
        return keyframe

    def add_index_keyframe(self, index: int) -> Keyframe:
        return self.add_keyframe(self.operand_from_index(index))

    def add_pin_keyframe(self, pin) -> Keyframe:
        return self.add_keyframe(self.operand_from_pin(pin))

    def add_centroid_keyframe(self, label: int) -> Keyframe:
        return self.add_keyframe(self.operand_from_centroid(label))

    def add_group_keyframe(self, name: str) -> Keyframe:
        return self.add_keyframe(self.operand_from_group(name))

    def add_code_keyframe(self, z, *, name: str | None = None, position=None) -> Keyframe:
        if name is None:
            name = (f"map ({position[0]:.2f}, {position[1]:.2f})" if position is not None
                    else f"code {len(self.keyframes) + 1}")
        return self.add_keyframe(self.operand_from_code(z, name=name, position=position))

    def remove_keyframe(self, index: int) -> None:
        del self.keyframes[int(index)]
        self.keyframes_changed.emit()
        self.build_interpolation()

    def move_keyframe(self, index: int, new_index: int) -> None:
        index, new_index = int(index), int(new_index)
        n = len(self.keyframes)
        if not (0 <= index < n and 0 <= new_index < n) or index == new_index:
            return
        self.keyframes.insert(new_index, self.keyframes.pop(index))
        self.keyframes_changed.emit()
        self.build_interpolation()

    def reverse_keyframes(self) -> None:
        if len(self.keyframes) > 1:
            self.keyframes.reverse()
            self.keyframes_changed.emit()
            self.build_interpolation()

    def clear_keyframes(self) -> None:
        if self.keyframes:
            self.keyframes.clear()
            self.keyframes_changed.emit()
            self.build_interpolation()

    # -- interpolation settings ---------------------------------------------------------
    def set_method(self, method: str) -> None:
        if method not in METHODS:
            raise ValueError(f"Unknown interpolation method {method!r}: use one of {', '.join(METHODS)}.")
        if method != self.method:
            self.method = method
            self.settings_changed.emit()
            self.build_interpolation()

    def set_steps(self, steps: int) -> None:
        steps = max(2, int(steps))
        if steps != self.steps:
            self.steps = steps
            self.settings_changed.emit()
            self.build_interpolation()

    def set_easing(self, easing: str) -> None:
        if easing not in vl.EASINGS:
            raise ValueError(f"Unknown easing {easing!r}: use one of {', '.join(vl.EASINGS)}.")
        if easing != self.easing:
            self.easing = easing
            self.settings_changed.emit()
            self.build_interpolation()

    @property
    def effective_steps(self) -> int:
        """Frames of the interpolation: ``steps``, but at least one per keyframe."""
        return max(self.steps, len(self.keyframes))

    def interpolation_codes(self) -> np.ndarray:
        """``T×d`` codes through the keyframes (:func:`vae_core.latent.interpolate`)."""
        if len(self.keyframes) < 2:
            raise ValueError("Pick at least two keyframes.")
        keys = np.stack([k.z for k in self.keyframes])
        return vl.interpolate(keys, self.effective_steps, self.method, self.easing)

    def build_interpolation(self, *, announce: bool = True) -> bool:
        """Make the interpolation through the keyframes the current animation.

        With fewer than two keyframes (or no model) an interpolation animation is cleared.
        ``announce=False`` rebuilds it without :attr:`animation_started` (new codes, not a
        user's edit). Returns whether an interpolation is now shown.
        """
        if len(self.keyframes) < 2 or not self.can_decode():
            if self.animation_kind == "interpolation":
                self.clear_animation()
            return False
        codes = self.interpolation_codes()
        key_at = self.keyframe_frame_indices()
        captions = [""] * len(codes)
        for k, i in zip(self.keyframes, key_at):
            captions[i] = k.name
        title = f"{self.method} through {len(self.keyframes)} keyframes, {len(codes)} frames"
        self.set_animation(codes, kind="interpolation", title=title, captions=captions, announce=announce)
        return True

    def keyframe_frame_indices(self) -> list[int]:
        """Frame index of each keyframe in the interpolation (same split as ``interpolate``)."""
        k = len(self.keyframes)
        if k < 2:
            return list(range(k))
        per_segment = np.full(k - 1, (self.effective_steps - 1) // (k - 1))
        per_segment[: (self.effective_steps - 1) % (k - 1)] += 1
        return [0, *np.cumsum(per_segment).astype(int).tolist()]

    # ==================================================================================
    # The current animation and the player
    # ==================================================================================
    def set_animation(self, codes, *, labels=None, kind: str = "interpolation", title: str = "",
                      captions=None, announce: bool = True) -> np.ndarray:
        """Decode ``codes`` (``T×d``) in one batch and make them the current animation.

        ``labels`` (``T``) decodes each frame with its own label (conditional models);
        otherwise frames use :attr:`decode_label`. :attr:`animation_started` tells the
        window to bring the player forward unless ``announce`` is False. Returns the
        ``T×C×H×W`` frames.
        """
        if kind not in ANIMATION_KINDS:
            raise ValueError(f"Unknown animation kind {kind!r}.")
        codes = np.atleast_2d(np.asarray(codes, dtype=np.float32))
        labels = None if labels is None else np.asarray(labels, dtype=np.int64).reshape(-1)
        if labels is not None and len(labels) != len(codes):
            raise ValueError(f"Got {len(labels)} labels for {len(codes)} frames.")
        frames = self.decode(codes, labels)
        self.frame_codes, self.frame_labels, self.frames = codes, labels, frames
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
        if not self.can_decode():
            self.clear_animation()
            return
        self.frames = self.decode(self.frame_codes, self.frame_labels)
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

    # ==================================================================================
    # Conditional models
    # ==================================================================================
    def set_decode_label(self, label: int) -> None:
        label = int(label)
        if label != self.decode_label:
            self.decode_label = label
            self.decode_label_changed.emit(self.decode_label)
            if self.conditional:
                if self.frame_codes is not None and self.frame_labels is None:
                    self.redecode_animation()
                self._redecode_results()

    def label_sweep_codes(self, z) -> tuple[np.ndarray, np.ndarray]:
        """One frame per label of a conditional model, all with the style ``z``."""
        if not self.conditional:
            raise ValueError("Animating across labels needs a conditional model (cvae).")
        n = self.num_labels
        z = np.asarray(z, dtype=np.float32).reshape(-1)
        return np.repeat(z[None], n, axis=0), np.arange(n, dtype=np.int64)

    def animate_labels(self, z=None, *, name: str = "") -> np.ndarray:
        """Make "this style as every class" the current animation (conditional models)."""
        if z is None:
            z = self.traversal_code if self.traversal_code is not None else np.zeros(self.latent_dim or 0)
        codes, labels = self.label_sweep_codes(z)
        captions = [self.label_name(int(y)) for y in labels]
        title = f"{name or 'style'} across {len(labels)} labels"
        return self.set_animation(codes, labels=labels, kind="labels", title=title, captions=captions)

    # ==================================================================================
    # Latent arithmetic
    # ==================================================================================
    def validate_expression(self, text: str) -> tuple[str | None, int | None]:
        """``(None, None)`` when ``text`` parses and resolves, else ``(message, position)``."""
        try:
            expr = vl.parse_expression(text)
            self.resolver().term_vectors(expr)
        except vl.ExpressionError as exc:
            return str(exc), exc.position
        return None, None

    def set_expression(self, text: str) -> bool:
        """Set and evaluate an expression; returns whether it evaluated."""
        self.expression = str(text)
        return self.evaluate_arithmetic()

    def set_strength(self, strength: float) -> None:
        strength = float(strength)
        if strength != self.strength:
            self.strength = strength
            self.evaluate_arithmetic()

    def evaluate_arithmetic(self) -> bool:
        """Evaluate :attr:`expression` at :attr:`strength`; decode it and find neighbours."""
        self.arithmetic_error = self.arithmetic_error_position = None
        self.result_z = self.result_image = self.arithmetic_base = None
        self._parsed = self._term_images = None
        self.neighbor_indices = np.zeros(0, dtype=np.int64)
        self.neighbor_distances = np.zeros(0, dtype=np.float32)
        ok = False
        if not self.expression.strip():
            pass
        elif not self.can_decode():
            self.arithmetic_error = "Load or train a model first."
        else:
            try:
                expr = vl.parse_expression(self.expression)
                resolver = self.resolver()
                vectors = resolver.term_vectors(expr)
                self.result_z = vl.evaluate_expression(expr, resolver, self.strength)
                self.arithmetic_base = vl.evaluate_expression(expr, resolver, 0.0)
            except vl.ExpressionError as exc:
                self.arithmetic_error, self.arithmetic_error_position = str(exc), exc.position
            else:
                # One batched decode: every term's vector, then the result.
                images = self.decode(np.stack([*vectors, self.result_z]))
                self.result_image = images[-1]
                self._parsed = expr
                self._term_images = images[:-1]
                self.neighbor_indices, self.neighbor_distances = self.nearest(self.result_z)
                ok = True
        self.arithmetic_changed.emit()
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
        codes = self.owner.codes
        if codes is None:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        if self._neighbor_index is None or self._neighbor_index.codes.shape != codes.shape:
            self._neighbor_index = vl.NeighborIndex(codes)
        return self._neighbor_index.query(z, self.neighbor_count if k is None else k)

    def pin_result(self, name: str | None = None):
        """Add the arithmetic result as a pin on the map; returns the pin."""
        if self.result_z is None:
            raise ValueError("There is no arithmetic result to pin.")
        label = self.decode_label if self.conditional else None
        return self.owner.map.add_pin(self.result_z, name=name, label=label)

    def arithmetic_animation_codes(self, steps: int | None = None) -> np.ndarray:
        """Codes from the first term to the result: the strength going 0 → :attr:`strength`."""
        if self.result_z is None or self.arithmetic_base is None:
            raise ValueError("Evaluate an expression first.")
        t = vl.EASINGS[self.easing](np.linspace(0.0, 1.0, int(steps or self.steps)))
        return vl.lerp(self.arithmetic_base, self.result_z, t)

    def animate_arithmetic(self, steps: int | None = None) -> np.ndarray:
        codes = self.arithmetic_animation_codes(steps)
        captions = [""] * len(codes)
        captions[0], captions[-1] = "start", "result"
        title = f"{self.expression} (strength 0 → {self.strength:g})"
        return self.set_animation(codes, kind="arithmetic", title=title, captions=captions)

    # ==================================================================================
    # Attribute vectors
    # ==================================================================================
    def set_attribute_sides(self, positive: AttributeSide | None, negative: AttributeSide | None) -> None:
        self.attribute_positive, self.attribute_negative = positive, negative
        self._update_attribute()

    def set_attribute_base(self, keyframe: Keyframe | None) -> None:
        self.attribute_base = keyframe
        self._update_attribute()

    def set_attribute_amount(self, amount: float) -> None:
        amount = float(amount)
        if amount != self.attribute_amount:
            self.attribute_amount = amount
            self._update_attribute()

    def _side_selection(self, side: AttributeSide):
        if side.kind == "label":
            return int(side.value)
        idx = self.owner.map.groups.get(side.value)
        if idx is None:
            raise ValueError(f"The group {side.value!r} does not exist.")
        return np.asarray(idx, dtype=np.int64)

    @property
    def attribute_name(self) -> str:
        if self.attribute_positive is None or self.attribute_negative is None:
            return ""
        names = self.owner.class_names
        return f"{self.attribute_positive.describe(names)} − {self.attribute_negative.describe(names)}"

    def _update_attribute(self) -> None:
        self.attribute_vector = self.attribute_result_z = self.attribute_images = None
        self.attribute_error = None
        if self.attribute_positive is None or self.attribute_negative is None:
            self.attribute_error = "Pick the two classes or groups that define the attribute."
        elif self.owner.codes is None:
            self.attribute_error = "Encode the dataset first."
        elif self.attribute_positive == self.attribute_negative:
            self.attribute_error = "Pick two different classes or groups."
        else:
            try:
                self.attribute_vector = vl.attribute_vector(
                    self.owner.codes, self.owner.labels,
                    self._side_selection(self.attribute_positive),
                    self._side_selection(self.attribute_negative))
            except ValueError as exc:
                self.attribute_error = str(exc)
        if self.attribute_vector is not None and self.attribute_base is not None and self.can_decode():
            self.attribute_result_z = vl.apply_attribute(self.attribute_base.z, self.attribute_vector,
                                                         self.attribute_amount)
            self.attribute_images = self.decode(np.stack([self.attribute_base.z, self.attribute_result_z]))
        elif self.attribute_vector is not None and self.attribute_base is None:
            self.attribute_error = "Pick a point to apply the attribute to."
        self.attribute_changed.emit()

    def attribute_animation_codes(self, steps: int | None = None) -> np.ndarray:
        """Codes from the base point to the shifted point (amount 0 → :attr:`attribute_amount`)."""
        if self.attribute_vector is None or self.attribute_base is None:
            raise ValueError(self.attribute_error or "Define the attribute and its point first.")
        amounts = self.attribute_amount * vl.EASINGS[self.easing](np.linspace(0.0, 1.0, int(steps or self.steps)))
        return vl.apply_attribute(self.attribute_base.z, self.attribute_vector, amounts)

    def animate_attribute(self, steps: int | None = None) -> np.ndarray:
        codes = self.attribute_animation_codes(steps)
        more = "more" if self.attribute_amount >= 0 else "less"
        captions = [""] * len(codes)
        captions[0] = self.attribute_base.name
        captions[-1] = f"{self.attribute_amount:+g}×"
        title = f"{self.attribute_base.name}: {more} of {self.attribute_name}"
        return self.set_animation(codes, kind="attribute", title=title, captions=captions)

    # ==================================================================================
    # Traversals
    # ==================================================================================
    def set_traversal_code(self, z) -> None:
        if z is None:
            self.traversal_code = None
        else:
            z = np.asarray(z, dtype=np.float32).reshape(-1).copy()
            if self.latent_dim is not None and z.shape != (self.latent_dim,):
                raise ValueError(f"A code of shape {z.shape} does not fit a {self.latent_dim}-d model.")
            self.traversal_code = z
        self.traversal_changed.emit()

    def set_traversal_value(self, dim: int, value: float) -> None:
        """Edit one dimension of the traversal code (the per-dimension sliders)."""
        if self.traversal_code is None:
            if self.latent_dim is None:
                return
            self.traversal_code = np.zeros(self.latent_dim, dtype=np.float32)
        if float(self.traversal_code[dim]) != float(np.float32(value)):
            self.traversal_code = self.traversal_code.copy()
            self.traversal_code[int(dim)] = value
            self.traversal_changed.emit()

    def set_traversal_options(self, *, span: float | None = None, steps: int | None = None,
                              sigma: str | None = None, max_dims: int | None | str = "keep") -> None:
        if span is not None:
            self.traversal_span = float(span)
        if steps is not None:
            self.traversal_steps = max(2, int(steps))
        if sigma is not None:
            if sigma not in ("prior", "data"):
                raise ValueError("sigma is 'prior' or 'data'.")
            self.traversal_sigma = sigma
        if max_dims != "keep":
            self.traversal_max_dims = None if max_dims is None else max(1, int(max_dims))
        self.traversal_changed.emit()

    def _code_stats(self) -> dict:
        """Per-dimension statistics of the owner's codes, computed once per set of codes.

        Every caption, slider range and row order asks for these; recomputing them over
        all N codes on each call made an epoch's refresh cost hundreds of milliseconds.
        The cache is keyed on the identity of the code arrays (``set_codes`` replaces them).
        """
        codes, logvar = self.owner.codes, self.owner.logvar
        cache = getattr(self, "_stats_cache", None)
        if cache is not None and cache["codes"] is codes and cache["logvar"] is logvar:
            return cache
        cache = {"codes": codes, "logvar": logvar}
        # Statistics computed alongside the codes in a worker thread (see MapJobs.encode).
        pre = getattr(self.owner, "precomputed_code_stats", None)
        if pre is not None and pre[0] is codes and pre[1] is logvar:
            cache.update(pre[2])
            self.owner.precomputed_code_stats = None   # used once: later in-place edits recompute
        self._stats_cache = cache
        return cache

    def _stat(self, name: str, compute):
        cache = self._code_stats()
        if name not in cache:
            cache[name] = compute(cache["codes"], cache["logvar"])
        value = cache[name]
        return value.copy() if isinstance(value, np.ndarray) else value

    def kl_values(self) -> np.ndarray | None:
        """Per-dimension KL (nats): from the codes' posteriors when known, else the history."""
        codes, logvar = self.owner.codes, self.owner.logvar
        if codes is not None and logvar is not None and len(codes):
            return self._stat("kl", _posterior_kl)
        kl = self.owner.kl_per_dim
        if kl is not None and self.latent_dim is not None and len(kl) == self.latent_dim:
            return kl
        return None

    def dimension_order(self) -> np.ndarray:
        """All latent dimensions, by KL descending (index order when KL is unknown)."""
        d = self.latent_dim or 0
        return vl.traversal_dims(d, self.kl_values())

    def collapsed_mask(self) -> np.ndarray:
        """``d`` booleans: dimensions the encoder does not use (posterior collapse)."""
        d = self.latent_dim or 0
        codes = self.owner.codes
        if codes is not None and len(codes) > 1:
            return self._stat("var", lambda c, _lv: c.var(axis=0)) <= COLLAPSED_VARIANCE
        kl = self.kl_values()
        if kl is not None:
            return np.asarray(kl) < COLLAPSED_KL
        return np.zeros(d, dtype=bool)

    def traversal_sigmas(self) -> np.ndarray:
        d = self.latent_dim or 0
        if self.traversal_sigma == "data" and self.owner.codes is not None:
            return np.maximum(self._stat("std", lambda c, _lv: c.std(axis=0).astype(np.float64)), 1e-3)
        return np.ones(d)

    def traversal_centers(self) -> np.ndarray:
        d = self.latent_dim or 0
        if self.traversal_sigma == "data" and self.owner.codes is not None:
            return self._stat("mean", lambda c, _lv: c.mean(axis=0).astype(np.float64))
        return np.zeros(d)

    def slider_range(self, dim: int) -> tuple[float, float]:
        """Range of dimension ``dim``'s slider: center ± span·σ (widened to hold the code)."""
        c, s = float(self.traversal_centers()[dim]), float(self.traversal_sigmas()[dim])
        lo, hi = c - self.traversal_span * s, c + self.traversal_span * s
        if self.traversal_code is not None:
            v = float(self.traversal_code[dim])
            lo, hi = min(lo, v), max(hi, v)
        return lo, hi

    def traversal_rows(self) -> np.ndarray:
        """Dimensions shown as grid rows: by KL, at most :attr:`traversal_max_dims`."""
        return vl.traversal_dims(self.latent_dim or 0, self.kl_values(), max_dims=self.traversal_max_dims)

    def traversal_grid_codes(self) -> np.ndarray:
        """``rows×steps×d`` codes: each row sweeps one dimension over center ± span·σ."""
        if self.latent_dim is None:
            raise ValueError("Load or train a model first.")
        z = self.traversal_code if self.traversal_code is not None else np.zeros(self.latent_dim, np.float32)
        return vl.traversal_grid(z, self.kl_values(), steps=self.traversal_steps, span=self.traversal_span,
                                 std=self.traversal_sigmas(), mean=self.traversal_centers(),
                                 max_dims=self.traversal_max_dims)

    def traversal_grid_images(self) -> np.ndarray:
        """Decoded traversal grid, ``rows×steps×C×H×W`` (one batched decode)."""
        return self.decode(self.traversal_grid_codes().reshape(-1, self.latent_dim)).reshape(
            (-1, self.traversal_steps) + tuple(self.owner.model.image_shape))

    def traversal_row_captions(self) -> list[str]:
        kl, collapsed = self.kl_values(), self.collapsed_mask()
        out = []
        for d in self.traversal_rows():
            text = f"z{d}"
            if kl is not None:
                text += f"  KL {kl[d]:.2f}"
            if collapsed[d]:
                text += "  collapsed"
            out.append(text)
        return out

    def animate_traversal(self, dim: int, steps: int | None = None) -> np.ndarray:
        """One dimension swept over center ± span·σ, as the current animation."""
        if self.latent_dim is None:
            raise ValueError("Load or train a model first.")
        z = self.traversal_code if self.traversal_code is not None else np.zeros(self.latent_dim, np.float32)
        codes = vl.traverse(z, int(dim), span=self.traversal_span, steps=int(steps or self.steps),
                            std=self.traversal_sigmas(), mean=self.traversal_centers())
        captions = [f"z{dim} = {v:+.2f}" for v in codes[:, int(dim)]]
        return self.set_animation(codes, kind="traversal", title=f"traversal of z{dim}", captions=captions)

    # ==================================================================================
    # The map: path, marker, picking
    # ==================================================================================
    def set_pick_target(self, target: str | None) -> None:
        """Route clicks on the map to the keyframes, the composer, the attribute's point or
        the traversal code (None: clicks are not picked up)."""
        if target is not None and target not in PICK_TARGETS:
            raise ValueError(f"Unknown pick target {target!r}: use one of {', '.join(PICK_TARGETS)}.")
        if target != self.pick_target:
            self.pick_target = target
            self.pick_target_changed.emit(target)

    def operand_from_picked(self, picked) -> Keyframe:
        """A map click (``MapState.PickedPoint``) as an operand: the data point, or the position."""
        if picked.index is not None:
            return self.operand_from_index(picked.index)
        x, y = picked.xy
        return self.operand_from_code(picked.z, name=f"map ({x:.2f}, {y:.2f})", position=picked.xy)

    def operand_text(self, operand: Keyframe) -> str:
        """The operand as expression text; plain codes are pinned first (``pin:P3``)."""
        text = operand.expression
        if text is None:
            pin = self.owner.map.add_pin(operand.z, label=operand.label)
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

    def _on_map_point_picked(self, picked) -> None:
        target = self.pick_target
        if target is None or self.owner.codes is None:
            return
        try:
            operand = self.operand_from_picked(picked)
        except ValueError:
            return
        if target == "keyframes":
            self.add_keyframe(operand)
        elif target == "arithmetic":
            self.add_operand_to_expression(operand, "+")
        elif target == "attribute":
            self.set_attribute_base(operand)
        elif target == "traversal":
            self.set_traversal_code(operand.z)

    def _update_map_path(self) -> None:
        self.owner.map.set_path(self.frame_codes)
        self._update_map_marker()

    def _update_map_marker(self, *_) -> None:
        i = self.current_index
        self.owner.map.set_path_frame(-1 if i is None else i)

    # ==================================================================================
    # Reacting to the document
    # ==================================================================================
    def _require_codes(self) -> np.ndarray:
        if self.owner.codes is None:
            raise ValueError("Encode the dataset first.")
        return self.owner.codes

    def _redecode_results(self) -> None:
        if self.result_z is not None and self.can_decode():
            self.evaluate_arithmetic()
        if self.attribute_result_z is not None and self.attribute_base is not None and self.can_decode():
            self.attribute_images = self.decode(np.stack([self.attribute_base.z, self.attribute_result_z]))
            self.attribute_changed.emit()
        self.traversal_changed.emit()

    def _refresh_keyframes(self) -> None:
        """Look data points, centroids and groups up again in the new codes."""
        codes = self.owner.codes
        if codes is None:
            return
        fresh = []
        for k in self.keyframes:
            try:
                if k.kind == "index":
                    k = replace(self.operand_from_index(int(k.ref)))
                elif k.kind == "centroid":
                    k = self.operand_from_centroid(int(k.ref))
                elif k.kind == "group":
                    k = self.operand_from_group(str(k.ref))
            except (ValueError, vl.ExpressionError):
                continue  # the point / class / group is gone with the old dataset
            fresh.append(k)
        self.keyframes = fresh
        if self.attribute_base is not None and self.attribute_base.kind in ("index", "centroid", "group"):
            try:
                self.attribute_base = {"index": self.operand_from_index, "centroid": self.operand_from_centroid,
                                       "group": self.operand_from_group}[self.attribute_base.kind](
                    self.attribute_base.ref)
            except (ValueError, vl.ExpressionError):
                self.attribute_base = None

    def _on_owner_model_changed(self, model) -> None:
        self._neighbor_index = None
        if model is None:
            self.clear_animation()
            self.traversal_code = None
        else:
            d = int(model.latent_dim)
            if self.traversal_code is None or self.traversal_code.shape != (d,):
                self.traversal_code = np.zeros(d, dtype=np.float32)
            if any(k.z.shape != (d,) for k in self.keyframes):
                self.keyframes = []
                self.keyframes_changed.emit()
            if self.frame_codes is not None and self.frame_codes.shape[1] != d:
                self.clear_animation()
            else:
                self.redecode_animation()
            # Results of another latent space cannot be decoded by this model.
            if self.result_z is not None and self.result_z.shape != (d,):
                self.result_z = self.result_image = self.arithmetic_base = None
                self._parsed = self._term_images = None
                self.neighbor_indices = np.zeros(0, dtype=np.int64)
                self.neighbor_distances = np.zeros(0, dtype=np.float32)
                self.arithmetic_changed.emit()
            if self.attribute_base is not None and self.attribute_base.z.shape != (d,):
                self.attribute_base = None
                self.attribute_vector = self.attribute_result_z = self.attribute_images = None
                self.attribute_changed.emit()
            if not self.conditional:
                self.decode_label = 0
            elif self.decode_label >= self.num_labels:
                self.set_decode_label(0)
        self.traversal_changed.emit()

    def _on_owner_weights_changed(self) -> None:
        self.redecode_animation()
        self._redecode_results()

    def _on_owner_codes_changed(self) -> None:
        self._stats_cache = None   # new codes (possibly the same array, edited in place)
        self._neighbor_index = None
        if self.owner.codes is None:
            return
        self._refresh_keyframes()
        self.keyframes_changed.emit()
        if self.animation_kind == "interpolation" or self.animation_kind is None:
            self.build_interpolation(announce=False)
        if self.expression.strip():
            self.evaluate_arithmetic()
        if self.attribute_positive is not None:
            self._update_attribute()
        self.traversal_changed.emit()

    def _on_owner_dataset_changed(self, data) -> None:
        self._neighbor_index = None
        self.keyframes = [k for k in self.keyframes if k.kind in ("pin", "map", "code")]
        self.keyframes_changed.emit()
        self.attribute_positive = self.attribute_negative = None
        self.attribute_vector = self.attribute_result_z = self.attribute_images = None
        self.attribute_changed.emit()


def _posterior_kl(codes: np.ndarray, logvar: np.ndarray) -> np.ndarray:
    """Mean per-dimension KL(q(z|x) ‖ N(0, I)) over the rows of ``codes``/``logvar``."""
    lv = logvar.astype(np.float64)
    kl = 0.5 * (codes.astype(np.float64) ** 2 + np.exp(lv) - lv - 1.0)
    return kl.mean(axis=0)
