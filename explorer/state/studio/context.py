"""What every studio feature works with: the document, the marks, the label to decode with.

:class:`StudioContext` is not a feature: it turns the document's data into operands
(:class:`Keyframe`: a data point, a pin, a class centroid, a group, a map position, any
code) and decodes codes with the document's model snapshot, using :attr:`decode_label`
for conditional models. Each feature (player, interpolation, arithmetic, attributes,
traversal, label sweeps, map picking) holds a context and subscribes to the document's
signals itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from psygnal import Signal

from explorer.state.lazy import LazyModule

# Imported on first use, so that building the state (and showing a window) does not wait for torch.
vl = LazyModule("vae_core.latent")
vx = LazyModule("vae_core.export")
torch = LazyModule("torch")


@dataclass(frozen=True)
class Keyframe:
    """One operand of the studio: a latent code and where it came from.

    ``kind`` is ``"index"`` (a data point, ``ref`` its index), ``"pin"`` (``ref`` the pin
    name), ``"centroid"`` (``ref`` a label), ``"group"`` (``ref`` the group name), ``"map"``
    (a position on the map, ``position`` its 2D coordinates) or ``"code"`` (any vector,
    e.g. an arithmetic result). Codes of data points, centroids and groups are looked up
    again when the dataset is re-encoded (:meth:`StudioContext.refreshed`).
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


class StudioContext:
    """The document, its marks and the decode label, as the studio features use them.

    Parameters
    ----------
    document
        The :class:`explorer.state.document.ExplorerState` (model, codes, labels).
    marks
        The :class:`explorer.state.marks.Marks` (pins and groups are operands).
    """

    decode_label_changed = Signal(int)

    def __init__(self, document, marks) -> None:
        self.document = document
        self.marks = marks
        self.decode_label = 0             # label used to decode with conditional models
        document.model_changed.connect(self._on_document_model_changed)

    # -- the model -------------------------------------------------------------------------------
    @property
    def latent_dim(self) -> int | None:
        model = self.document.model
        return int(model.latent_dim) if model is not None else None

    @property
    def conditional(self) -> bool:
        model = self.document.model
        return bool(model is not None and getattr(model, "conditional", False))

    @property
    def num_labels(self) -> int:
        """How many labels a conditional model decodes with (0 otherwise)."""
        if not self.conditional:
            return 0
        return int(getattr(self.document.model, "num_classes", 0) or len(self.document.class_names))

    def label_name(self, label: int) -> str:
        names = self.document.class_names
        return names[label] if 0 <= label < len(names) else str(label)

    def can_decode(self) -> bool:
        return self.document.model is not None

    def can_decode_unquantized(self) -> bool:
        """Whether the model can decode a code without snapping it to a codebook (vqvae)."""
        return hasattr(self.document.model, "decode_unquantized")

    def decode(self, codes, labels=None, *, unquantized: bool = False) -> np.ndarray:
        """Decode ``N×d`` codes with the snapshot (:attr:`decode_label` for conditional models).

        ``unquantized`` feeds a code-grid model's decoder the codes as they are, without
        snapping them to the codebook (ignored by models without a codebook).
        """
        z = np.atleast_2d(np.asarray(codes, dtype=np.float32))
        if unquantized and self.can_decode_unquantized():
            with torch.inference_mode():
                return self.document.model.decode_unquantized(torch.from_numpy(z)).clamp(0, 1).numpy()
        if labels is None and self.conditional:
            labels = np.full(len(z), self.decode_label, dtype=np.int64)
        return self.document.decode(z, labels)

    def set_decode_label(self, label: int) -> None:
        label = int(label)
        if label != self.decode_label:
            self.decode_label = label
            self.decode_label_changed.emit(self.decode_label)

    def _on_document_model_changed(self, model) -> None:
        if model is None or not self.conditional:
            self.decode_label = 0   # nothing decodes with it: no signal
        elif self.decode_label >= self.num_labels:
            self.set_decode_label(0)

    # -- operands --------------------------------------------------------------------------------
    def require_codes(self) -> np.ndarray:
        if self.document.codes is None:
            raise ValueError("Encode the dataset first.")
        return self.document.codes

    def resolver(self):
        """The operand source for expressions: codes, labels, class names, pins, groups."""
        codes = self.document.codes
        if codes is None:
            raise vl.ExpressionError("Encode the dataset first: operands are looked up in its codes.")
        pins = {p.name: p.z for p in self.marks.pins}
        return vl.LatentResolver(codes, self.document.labels, self.document.class_names,
                                 pins=pins, groups=dict(self.marks.groups))

    def operand_from_index(self, index: int) -> Keyframe:
        codes = self.require_codes()
        index = int(index)
        if not 0 <= index < len(codes):
            raise ValueError(f"Data point {index} does not exist: the dataset has {len(codes)} points.")
        labels = self.document.labels
        label = int(labels[index]) if labels is not None else None
        return Keyframe("index", f"#{index}", codes[index].copy(), ref=index, label=label)

    def operand_from_pin(self, pin) -> Keyframe:
        if isinstance(pin, str):
            matches = [p for p in self.marks.pins if p.name == pin]
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
        idx = self.marks.groups.get(name)
        if idx is None or len(idx) == 0:
            raise ValueError(f"The group {name!r} is empty or does not exist.")
        codes = self.require_codes()
        return Keyframe("group", f"group {name}", codes[np.asarray(idx)].mean(0).astype(np.float32),
                        ref=name)

    def operand_from_code(self, z, *, name: str = "code", position=None, label=None) -> Keyframe:
        z = np.asarray(z, dtype=np.float32).reshape(-1).copy()
        if self.latent_dim is not None and z.shape != (self.latent_dim,):
            raise ValueError(f"A code of shape {z.shape} does not fit a {self.latent_dim}-d model.")
        kind = "map" if position is not None else "code"
        pos = None if position is None else (float(position[0]), float(position[1]))
        return Keyframe(kind, name, z, position=pos, label=label)

    def operand_from_picked(self, picked) -> Keyframe:
        """A map click (``explorer.state.map.PickedPoint``) as an operand: the data point, or the position."""
        if picked.index is not None:
            return self.operand_from_index(picked.index)
        x, y = picked.xy
        return self.operand_from_code(picked.z, name=f"map ({x:.2f}, {y:.2f})", position=picked.xy)

    def refreshed(self, keyframe: Keyframe) -> Keyframe:
        """``keyframe`` looked up again in the current codes (data points, centroids, groups).

        Raises
        ------
        ValueError
            If the point, class or group is gone (another dataset).
        """
        lookup = {"index": lambda r: self.operand_from_index(int(r)),
                  "centroid": lambda r: self.operand_from_centroid(int(r)),
                  "group": lambda r: self.operand_from_group(str(r))}.get(keyframe.kind)
        if lookup is None:
            return keyframe
        try:
            return lookup(keyframe.ref)
        except vl.ExpressionError as exc:
            raise ValueError(str(exc)) from None
