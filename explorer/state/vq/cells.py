"""How many cells of the code grid changed since the last hover position (no Qt).

Hovering the map of a ``vqvae`` inverse-projects to its continuous pre-quantization
space; the decoder snaps each cell to the nearest codebook entry, so the image changes in
jumps. :class:`CellChanges` quantizes each new cursor code and counts the cells whose
entry differs from the previous position's.
"""

from __future__ import annotations

import numpy as np
from psygnal import Signal

from explorer.state.vq.grid import grid_model, index_grids


class CellChanges:
    """The hovered code's index grid and the cells that changed since the previous one.

    Attributes
    ----------
    grid : np.ndarray or None
        ``rows×columns`` indices of the code under the cursor.
    changed : int or None
        Cells whose index differs from the previous position's (None for the first one).
    """

    cells_changed = Signal()

    def __init__(self, document, map_state) -> None:
        self.document = document
        self.grid: np.ndarray | None = None
        self.changed: int | None = None
        map_state.cursor_changed.connect(self._on_map_cursor_changed)
        document.model_changed.connect(self._on_document_model_changed)
        document.weights_changed.connect(self._on_document_weights_changed)

    @property
    def cells(self) -> int:
        return 0 if self.grid is None else int(self.grid.size)

    def update(self, z) -> None:
        """Quantize code ``z`` (or None: the cursor left) and count the changed cells."""
        model = grid_model(self.document)
        if model is None or z is None or np.asarray(z).shape != (int(model.latent_dim),):
            if self.grid is not None or self.changed is not None:
                self.grid, self.changed = None, None
                self.cells_changed.emit()
            return
        grid = index_grids(model, z)[0]
        self.changed = None if self.grid is None else int((grid != self.grid).sum())
        self.grid = grid
        self.cells_changed.emit()

    def _on_map_cursor_changed(self, z) -> None:
        if z is None:  # keep the last grid: the next position compares with it
            return
        self.update(z)

    def _on_document_model_changed(self, _model) -> None:
        self.update(None)

    def _on_document_weights_changed(self) -> None:
        self.grid, self.changed = None, None  # another codebook: earlier indices mean other entries
