"""State of the latent map: projection, 2D layout, cursor, pins and selection groups (no Qt)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from psygnal import Signal


@dataclass
class Pin:
    """A remembered latent code: an operand for interpolation and arithmetic."""

    name: str
    z: np.ndarray
    index: int | None = None      # data point it came from, if any
    label: int | None = None      # label to decode with (conditional models)


class MapState:
    projection_changed = Signal(object)    # the projection object (vae_core.projection)
    layout_changed = Signal()              # self.xy changed (N×2)
    cursor_changed = Signal(object)        # latent code under the cursor (d,) or None
    hovered_index_changed = Signal(object) # data index under the cursor or None
    pins_changed = Signal()
    groups_changed = Signal()
    selection_changed = Signal(object)     # np.ndarray of indices

    def __init__(self, owner) -> None:
        self.owner = owner
        self.projection = None
        self.xy: np.ndarray | None = None
        self.cursor_z: np.ndarray | None = None
        self.hovered_index: int | None = None
        self.pins: list[Pin] = []
        self.groups: dict[str, np.ndarray] = {}
        self.selection = np.zeros(0, dtype=np.int64)

    def add_pin(self, z, *, name: str | None = None, index: int | None = None, label: int | None = None) -> Pin:
        taken = {p.name for p in self.pins}
        if name is None:
            n = len(self.pins) + 1
            while f"P{n}" in taken:
                n += 1
            name = f"P{n}"
        elif name in taken:
            raise ValueError(f"A pin named {name!r} already exists.")
        pin = Pin(name=name, z=np.asarray(z, dtype=np.float32).copy(), index=index, label=label)
        self.pins.append(pin)
        self.pins_changed.emit()
        return pin

    def named_vectors(self) -> dict[str, np.ndarray]:
        """Pins as ``pin:name`` and group centroids as ``group:name``, for latent arithmetic."""
        named = {f"pin:{p.name}": p.z for p in self.pins}
        codes = self.owner.codes
        if codes is not None:
            named.update({f"group:{g}": codes[idx].mean(0) for g, idx in self.groups.items() if len(idx)})
        return named
