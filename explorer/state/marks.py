"""Pins, groups and the selection: the operands the map and the studio share (no Qt).

A *pin* is a remembered latent code (``pin:NAME`` in latent arithmetic); a *group* is a
named set of data indices whose centroid is an operand (``group:NAME``); the *selection*
is the set of data points selected on the map. They live here rather than in the map's
state so that the studio can use them whether or not a map is shown, and so that both
save with a checkpoint (``pins.json`` and ``groups.json``, see
:mod:`explorer.state.document`).

Groups and the selection are indices into ``document.all_data``: a new dataset makes them
meaningless, so :class:`Marks` drops them when the document's dataset changes. Pins are
codes and stay.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from psygnal import Signal

from explorer.state.files import write_atomic

PINS_FORMAT = "latent-explorer-pins"
PINS_FORMAT_VERSION = 1
GROUPS_FORMAT = "latent-explorer-groups"
GROUPS_FORMAT_VERSION = 1


@dataclass
class Pin:
    """A remembered latent code: an operand for interpolation and arithmetic."""

    name: str
    z: np.ndarray
    index: int | None = None      # data point it came from, if any
    label: int | None = None      # label to decode with (conditional models)


class Marks:
    """What the user marked: pins, named groups of data points, the current selection.

    Parameters
    ----------
    document
        The :class:`explorer.state.document.ExplorerState` whose codes give pins their
        dimension and groups their centroids.
    """

    pins_changed = Signal()
    groups_changed = Signal()
    selection_changed = Signal(object)     # np.ndarray of indices

    def __init__(self, document) -> None:
        self.document = document
        self.pins: list[Pin] = []
        self.groups: dict[str, np.ndarray] = {}
        self.selection = np.zeros(0, dtype=np.int64)
        self.active_group: str | None = None
        document.dataset_changed.connect(self._on_document_dataset_changed)
        document.codes_changed.connect(self._on_document_codes_changed)

    @property
    def codes(self) -> np.ndarray | None:
        return self.document.codes

    def _on_document_dataset_changed(self, _data) -> None:
        # Group and selection indices refer to the old dataset's points; pins are codes and stay.
        self.clear_groups()

    def _on_document_codes_changed(self) -> None:
        # Another map code (an hvae layer) changes the codes' dimension: a pin taken from a
        # data point follows it; a pin of another size with no data point cannot be kept.
        codes = self.codes
        if codes is None or not self.pins or all(len(p.z) == codes.shape[1] for p in self.pins):
            return
        kept = []
        for pin in self.pins:
            if len(pin.z) != codes.shape[1]:
                if pin.index is None or not 0 <= pin.index < len(codes):
                    continue
                pin.z = np.asarray(codes[pin.index], dtype=np.float32).copy()
            kept.append(pin)
        dropped = len(self.pins) - len(kept)
        self.pins = kept
        if dropped:
            self.document.post_message("warning", f"{dropped} pin{'s' if dropped != 1 else ''} not taken from a data "
                                                  "point did not fit the new code and were removed.")
        self.pins_changed.emit()

    # -- pins --------------------------------------------------------------------------------------
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

    def pin(self, name: str) -> Pin:
        for p in self.pins:
            if p.name == name:
                return p
        raise KeyError(f"There is no pin named {name!r}.")

    def remove_pin(self, name: str) -> None:
        pin = self.pin(name)
        self.pins.remove(pin)
        self.pins_changed.emit()

    def rename_pin(self, old: str, new: str) -> None:
        new = new.strip()
        if not new:
            raise ValueError("A pin needs a name.")
        pin = self.pin(old)
        if new == old:
            return
        if any(p.name == new for p in self.pins):
            raise ValueError(f"A pin named {new!r} already exists.")
        pin.name = new
        self.pins_changed.emit()

    def clear_pins(self) -> None:
        if self.pins:
            self.pins = []
            self.pins_changed.emit()

    def save_pins(self, path) -> Path:
        """Write the pins to a JSON file (names, codes, source indices, labels)."""
        dims = {len(p.z) for p in self.pins}
        data = {
            "format": PINS_FORMAT,
            "format_version": PINS_FORMAT_VERSION,
            "latent_dim": dims.pop() if len(dims) == 1 else None,
            "pins": [{"name": p.name, "z": [float(v) for v in p.z], "index": p.index, "label": p.label}
                     for p in self.pins],
        }
        return _write_json(Path(path), data)

    def load_pins(self, path, *, replace: bool = False) -> list[Pin]:
        """Read pins saved by :meth:`save_pins`; clashing names get a suffix."""
        path = Path(path)
        data = _read_json(path, PINS_FORMAT, PINS_FORMAT_VERSION, "pins")
        codes = self.codes
        want = codes.shape[1] if codes is not None else None
        loaded = []
        for entry in data.get("pins", []):
            z = np.asarray(entry.get("z", []), dtype=np.float32)
            if z.ndim != 1 or not len(z) or not np.isfinite(z).all():
                raise ValueError(f"{path.name}: pin {entry.get('name')!r} has no valid code.")
            if want is not None and len(z) != want:
                raise ValueError(f"{path.name} holds {len(z)}-dimensional pins; this model's codes have {want} "
                                 "dimensions.")
            index = entry.get("index")
            label = entry.get("label")
            loaded.append(Pin(name=str(entry.get("name") or "P"), z=z, index=None if index is None else int(index),
                              label=None if label is None else int(label)))
        if replace:
            self.pins = []
        taken = {p.name for p in self.pins}
        for pin in loaded:
            base, n = pin.name, 2
            while pin.name in taken:
                pin.name = f"{base} ({n})"
                n += 1
            taken.add(pin.name)
            self.pins.append(pin)
        self.pins_changed.emit()
        return loaded

    # -- selection and groups ------------------------------------------------------------------------
    def set_selection(self, indices) -> None:
        sel = np.unique(np.asarray(indices if indices is not None else [], dtype=np.int64))
        if not np.array_equal(sel, self.selection):
            self.selection = sel
            self.selection_changed.emit(sel)

    def _unique_group_name(self, base: str) -> str:
        if base not in self.groups:
            return base
        n = 2
        while f"{base} ({n})" in self.groups:
            n += 1
        return f"{base} ({n})"

    def add_group(self, indices, name: str | None = None, *, select: bool = True) -> str:
        """Store ``indices`` as a named group (an operand: ``group:name`` is its centroid)."""
        idx = np.unique(np.asarray(indices, dtype=np.int64))
        if name is None:
            n = len(self.groups) + 1
            while f"G{n}" in self.groups:
                n += 1
            name = f"G{n}"
        else:
            name = name.strip()
            if not name:
                raise ValueError("A group needs a name.")
            if name in self.groups:
                raise ValueError(f"A group named {name!r} already exists.")
        self.groups[name] = idx
        self.groups_changed.emit()
        if select:
            self.select_group(name)
        return name

    def select_group(self, name: str | None) -> None:
        """Make a group the active one and select its points (None: clear the selection)."""
        if name is not None and name not in self.groups:
            raise KeyError(f"There is no group named {name!r}.")
        self.active_group = name
        self.set_selection(self.groups[name] if name is not None else [])

    def remove_group(self, name: str) -> None:
        if name not in self.groups:
            raise KeyError(f"There is no group named {name!r}.")
        del self.groups[name]
        if self.active_group == name:
            self.active_group = None
            self.set_selection([])
        self.groups_changed.emit()

    def rename_group(self, old: str, new: str) -> None:
        new = new.strip()
        if old not in self.groups:
            raise KeyError(f"There is no group named {old!r}.")
        if not new:
            raise ValueError("A group needs a name.")
        if new == old:
            return
        if new in self.groups:
            raise ValueError(f"A group named {new!r} already exists.")
        self.groups = {(new if k == old else k): v for k, v in self.groups.items()}
        if self.active_group == old:
            self.active_group = new
        self.groups_changed.emit()

    def clear_groups(self) -> None:
        """Forget every group and the selection (a new dataset)."""
        had_groups = bool(self.groups)
        self.groups = {}
        self.active_group = None
        if had_groups:
            self.groups_changed.emit()
        self.set_selection([])

    def group_centroid(self, name: str) -> np.ndarray:
        codes = self.codes
        idx = self.groups[name]
        if codes is None or not len(idx):
            raise ValueError(f"Group {name!r} has no codes.")
        return codes[idx].mean(0)

    def named_vectors(self) -> dict[str, np.ndarray]:
        """Pins as ``pin:name`` and group centroids as ``group:name``, for latent arithmetic."""
        named = {f"pin:{p.name}": p.z for p in self.pins}
        codes = self.codes
        if codes is not None:
            named.update({f"group:{g}": codes[idx].mean(0) for g, idx in self.groups.items() if len(idx)})
        return named

    def save_groups(self, path) -> Path:
        """Write the groups to a JSON file (names and data indices, in order)."""
        data = {
            "format": GROUPS_FORMAT,
            "format_version": GROUPS_FORMAT_VERSION,
            "num_points": self.document.num_points,
            "groups": [{"name": name, "indices": [int(i) for i in idx]} for name, idx in self.groups.items()],
        }
        return _write_json(Path(path), data)

    def load_groups(self, path, *, replace: bool = False) -> list[str]:
        """Read groups saved by :meth:`save_groups`; clashing names get a suffix.

        Raises
        ------
        ValueError
            If the file is not a groups file, or its indices do not fit the current dataset.
        """
        path = Path(path)
        data = _read_json(path, GROUPS_FORMAT, GROUPS_FORMAT_VERSION, "groups")
        n = self.document.num_points
        saved_n = data.get("num_points")
        if n and saved_n is not None and int(saved_n) != n:
            raise ValueError(f"{path.name} holds groups of a dataset of {int(saved_n)} points; this one has {n}.")
        loaded: list[tuple[str, np.ndarray]] = []
        for entry in data.get("groups", []):
            name = str(entry.get("name") or "").strip()
            try:
                idx = np.asarray(entry.get("indices", []), dtype=np.int64).reshape(-1)
            except (TypeError, ValueError):
                raise ValueError(f"{path.name}: group {name!r} has indices that are not whole numbers.") from None
            if not name:
                raise ValueError(f"{path.name}: a group has no name.")
            if idx.size and (idx.min() < 0 or (n and idx.max() >= n)):
                raise ValueError(f"{path.name}: group {name!r} refers to points outside the dataset.")
            loaded.append((name, np.unique(idx)))
        if replace:
            self.groups = {}
            self.active_group = None
            self.set_selection([])
        names = []
        for name, idx in loaded:
            name = self._unique_group_name(name)
            self.groups[name] = idx
            names.append(name)
        self.groups_changed.emit()
        return names


def _write_json(path: Path, data: dict) -> Path:
    """Write ``data`` atomically (a crash never leaves half a file); OutputError if it cannot be written."""
    return write_atomic(path, json.dumps(data, indent=1).encode("utf-8"))


def _read_json(path: Path, fmt: str, version: int, what: str) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path.name} is not a readable {what} file ({exc}).") from None
    if not isinstance(data, dict) or data.get("format") != fmt:
        raise ValueError(f"{path.name} is not a Latent Explorer {what} file.")
    if int(data.get("format_version", 0)) > version:
        raise ValueError(f"{path.name} was saved by a newer version of Latent Explorer.")
    return data
