"""Samples of a code-grid model's prior (no Qt): temperature, and completion of a kept top.

:meth:`PriorSampling.samples` draws index grids from the model's prior over grids
(``sample_codes``: the learned autoregressive prior once trained, uniform before) at
:attr:`temperature`; :meth:`PriorSampling.complete` keeps the top :attr:`rows_kept` rows of
a grid and lets the prior draw the rest (``complete_codes``).
"""

from __future__ import annotations

import numpy as np
from psygnal import Signal

from explorer.state.lazy import LazyModule
from explorer.state.vq.grid import decode_grids, grid_model

torch = LazyModule("torch")

#: Temperatures the window offers (the library accepts up to its TEMPERATURE_MAX).
TEMPERATURE_RANGE = (0.05, 5.0)


class PriorSampling:
    """Temperature, seed and kept rows of prior samples."""

    settings_changed = Signal()

    def __init__(self, document) -> None:
        self.document = document
        self.temperature = 1.0
        self.seed = 0
        self.rows_kept = 3

    @property
    def available(self) -> bool:
        return grid_model(self.document) is not None and hasattr(grid_model(self.document), "sample_codes")

    @property
    def prior_trained(self) -> bool:
        model = grid_model(self.document)
        return bool(model is not None and getattr(model, "prior_trained", False))

    def set_temperature(self, value: float) -> None:
        low, high = TEMPERATURE_RANGE
        value = float(value)
        if not low <= value <= high:
            raise ValueError(f"The temperature must be from {low:g} to {high:g} (got {value:g}).")
        if value != self.temperature:
            self.temperature = value
            self.settings_changed.emit()

    def set_seed(self, seed: int) -> None:
        seed = int(seed)
        if seed < 0:
            raise ValueError("The seed must be 0 or more.")
        if seed != self.seed:
            self.seed = seed
            self.settings_changed.emit()

    def set_rows_kept(self, rows: int) -> None:
        rows = int(rows)
        model = grid_model(self.document)
        top = model.grid_shape[0] if model is not None else rows
        if not 0 <= rows <= top:
            raise ValueError(f"Keep from 0 to {top} rows (got {rows}).")
        if rows != self.rows_kept:
            self.rows_kept = rows
            self.settings_changed.emit()

    def _model(self):
        model = grid_model(self.document)
        if model is None or not hasattr(model, "sample_codes"):
            raise ValueError("Prior samples need a model with a prior over code grids (vqvae).")
        return model

    def sample_grids(self, n: int) -> np.ndarray:
        """``n×rows×columns`` index grids from the prior."""
        with torch.inference_mode():
            return self._model().sample_codes(int(n), self.temperature, self.seed).numpy()

    def samples(self, n: int) -> np.ndarray:
        """``n×C×H×W`` decoded prior samples."""
        return decode_grids(self._model(), self.sample_grids(n))

    def complete_grids(self, grid, n: int) -> np.ndarray:
        """``n×rows×columns``: ``grid``'s top :attr:`rows_kept` rows, the rest drawn from the prior."""
        model = self._model()
        rows_kept = min(self.rows_kept, model.grid_shape[0])
        start = np.repeat(np.asarray(grid, dtype=np.int64)[None], int(n), axis=0)
        with torch.inference_mode():
            return model.complete_codes(torch.from_numpy(start), rows_kept, self.temperature, self.seed).numpy()

    def complete(self, grid, n: int) -> np.ndarray:
        """``n×C×H×W``: decoded completions of ``grid`` (see :meth:`complete_grids`)."""
        return decode_grids(self._model(), self.complete_grids(grid, n))
