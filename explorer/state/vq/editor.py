"""The code grid editor (no Qt): an image's grid of codebook indices, painted cell by cell.

A source (a data point, a pin, a map click, a sample's grid) gives the original grid;
:meth:`CodeGridEditor.paint` sets cells to the brush's entry and the edited grid is
decoded at once with ``decode_indices``, so the image follows every stroke. The edited
grid's flat code (its entries' vectors) can be pinned (:class:`~explorer.state.marks.Marks`)
or added to the studio's interpolation as a keyframe; a snapped interpolation passes
through it exactly.
"""

from __future__ import annotations

import numpy as np
from psygnal import Signal

from explorer.state.vq.grid import codes_from_grid, decode_grids, grid_model, index_grids


class CodeGridEditor:
    """The grid being edited, its original and the brush.

    Attributes
    ----------
    source : str
        What the grid came from (``"#12"``, ``"pin P1"``, ``"sample 3"``), empty when none.
    original, grid : np.ndarray or None
        ``rows×columns`` int64: the source's grid and the edited one.
    brush : int
        The codebook entry :meth:`paint` writes.
    image : np.ndarray or None
        ``C×H×W`` decode of :attr:`grid`.
    """

    grid_changed = Signal()     # the source or a cell changed (image re-decoded)
    brush_changed = Signal(int)

    def __init__(self, document, marks, map_state, interpolation) -> None:
        self.document = document
        self.marks = marks
        self.interpolation = interpolation
        self.source = ""
        self.source_index: int | None = None
        self.original: np.ndarray | None = None
        self.grid: np.ndarray | None = None
        self.image: np.ndarray | None = None
        self.brush = 0
        self.decode_count = 0
        map_state.point_picked.connect(self._on_map_point_picked)
        document.model_changed.connect(self._on_document_model_changed)
        document.weights_changed.connect(self._on_document_weights_changed)

    @property
    def available(self) -> bool:
        return grid_model(self.document) is not None

    def _model(self):
        model = grid_model(self.document)
        if model is None:
            raise ValueError("The code grid editor needs a model with a discrete code grid (vqvae).")
        return model

    # -- sources -------------------------------------------------------------------------------
    def set_grid(self, grid, source: str, *, index: int | None = None) -> None:
        """Edit ``grid`` (``rows×columns`` indices), remembering where it came from."""
        model = self._model()
        grid = np.array(grid, dtype=np.int64)
        if grid.shape != tuple(model.grid_shape):
            raise ValueError(f"A grid of this model is {model.grid_shape[0]}×{model.grid_shape[1]}, "
                             f"got {'×'.join(map(str, grid.shape))}.")
        if grid.size and (grid.min() < 0 or grid.max() >= model.num_codes):
            raise ValueError(f"Codebook indices go from 0 to {model.num_codes - 1}.")
        self.original, self.grid = grid.copy(), grid
        self.source, self.source_index = source, index
        self._decode()

    def set_code(self, z, source: str, *, index: int | None = None) -> None:
        """Edit the grid of a flat code (each vector snapped to its nearest entry)."""
        self.set_grid(index_grids(self._model(), z)[0], source, index=index)

    def set_index(self, index: int) -> None:
        """Edit data point ``index``'s grid (from the document's codes)."""
        codes = self.document.codes
        if codes is None:
            raise ValueError("Encode the dataset first.")
        index = int(index)
        if not 0 <= index < len(codes):
            raise ValueError(f"There is no data point #{index}.")
        self.set_code(codes[index], f"#{index}", index=index)

    def set_pin(self, pin) -> None:
        self.set_code(pin.z, f"pin {pin.name}")

    def clear(self) -> None:
        if self.grid is None and not self.source:
            return
        self.source, self.source_index = "", None
        self.original = self.grid = self.image = None
        self.grid_changed.emit()

    # -- editing -------------------------------------------------------------------------------
    def set_brush(self, code: int) -> None:
        model = self._model()
        code = int(code)
        if not 0 <= code < model.num_codes:
            raise ValueError(f"Codebook indices go from 0 to {model.num_codes - 1} (got {code}).")
        if code != self.brush:
            self.brush = code
            self.brush_changed.emit(code)

    def paint(self, cells, code: int | None = None) -> int:
        """Set ``cells`` (``(row, column)`` pairs) to ``code`` (default: the brush); cells changed."""
        if self.grid is None:
            raise ValueError("Pick an image first: a data point, a pin or a sample.")
        code = self.brush if code is None else int(code)
        if not 0 <= code < self._model().num_codes:
            raise ValueError(f"Codebook indices go from 0 to {self._model().num_codes - 1} (got {code}).")
        rows, cols = self.grid.shape
        changed = 0
        for r, c in cells:
            r, c = int(r), int(c)
            if 0 <= r < rows and 0 <= c < cols and self.grid[r, c] != code:
                self.grid[r, c] = code
                changed += 1
        if changed:
            self._decode()
        return changed

    def reset(self) -> None:
        """Back to the source's grid."""
        if self.original is not None and not np.array_equal(self.grid, self.original):
            self.grid = self.original.copy()
            self._decode()

    @property
    def edited_cells(self) -> int:
        if self.grid is None:
            return 0
        return int((self.grid != self.original).sum())

    def code(self) -> np.ndarray:
        """The edited grid's flat code (its entries' vectors), ``d`` float32."""
        if self.grid is None:
            raise ValueError("Pick an image first: a data point, a pin or a sample.")
        return codes_from_grid(self._model(), self.grid)

    def _name(self) -> str:
        return f"{self.source} edited" if self.edited_cells else self.source

    def pin(self, name: str | None = None):
        """Pin the edited grid's code (a :class:`~explorer.state.marks.Pin`)."""
        return self.marks.add_pin(self.code(), name=name)

    def add_keyframe(self):
        """Add the edited grid's code to the studio's interpolation keyframes."""
        return self.interpolation.add_code_keyframe(self.code(), name=self._name())

    def _decode(self) -> None:
        self.image = decode_grids(self._model(), self.grid)[0]
        self.decode_count += 1
        self.grid_changed.emit()

    # -- the document ------------------------------------------------------------------------------
    def _on_map_point_picked(self, picked) -> None:
        if not self.available:
            return
        if picked.index is not None:
            self.set_index(picked.index)
        else:
            self.set_code(picked.z, f"map ({picked.xy[0]:.2f}, {picked.xy[1]:.2f})")

    def _on_document_model_changed(self, _model) -> None:
        self.clear()

    def _on_document_weights_changed(self) -> None:
        if self.grid is not None and self.available:
            self._decode()  # the same indices, the new codebook and decoder
