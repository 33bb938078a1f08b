"""The views of a model with a discrete code grid (``vqvae``), without Qt: one module per feature.

* :mod:`~explorer.state.vq.grid` — :func:`grid_model`, index grids of codes (shared helpers);
* :mod:`~explorer.state.vq.codebook` — every code's usage, its patch image, a 2-D map of the vectors;
* :mod:`~explorer.state.vq.editor` — the code grid editor: paint cells, decode live, pin, keyframe;
* :mod:`~explorer.state.vq.cells` — how many grid cells changed code since the last hover position;
* :mod:`~explorer.state.vq.sampling` — prior samples with temperature, and partial completion.

A model takes part when it has a code grid (``quantize``, ``decode_indices``, ``codebook``);
no module asks for the model's name. Each feature subscribes to the document's signals
itself.
"""

from __future__ import annotations

from explorer.state.vq.cells import CellChanges
from explorer.state.vq.codebook import Codebook
from explorer.state.vq.editor import CodeGridEditor
from explorer.state.vq.grid import grid_model
from explorer.state.vq.sampling import PriorSampling

__all__ = ["CellChanges", "Codebook", "CodeGridEditor", "PriorSampling", "VQState", "grid_model"]


class VQState:
    """The code-grid features of one document.

    Attributes
    ----------
    codebook, editor, cells, sampling
        One object per feature.
    """

    def __init__(self, document, marks, map_state, studio) -> None:
        self.codebook = Codebook(document)
        self.editor = CodeGridEditor(document, marks, map_state, studio.interpolation)
        self.cells = CellChanges(document, map_state)
        self.sampling = PriorSampling(document)
