"""Two models side by side on the same dataset (no Qt): aligned maps and a linked hover.

:class:`CompareState` holds two documents of their own, ``left`` (the model that was
current when the comparison started) and ``right`` (another checkpoint), both on the
main document's dataset, each with its own :class:`~explorer.state.map.MapState`, so the
ordinary map and decoder widgets draw them. The two layouts are aligned so that a data
point sits in about the same place on both maps (:func:`compute_layouts`): both use the
same projection kind and settings (for UMAP the same seed), and the right layout is then
rotated, reflected, scaled and shifted onto the left one by Procrustes over all the data
points, which correspond one to one. For ``dims`` this aligns too, unlike the main map:
two models' latent axes are arbitrary with respect to each other.

Linked hover: a data point hovered on either map becomes :attr:`CompareState.hovered_index`;
both maps highlight it and the other map's hovered index follows, so both decoders show
their own reconstruction of the same image.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from psygnal import Signal

from explorer.state.document import ExplorerState
from explorer.state.map import KINDS, MapState


@dataclass(frozen=True)
class CompareLayouts:
    """What :func:`compute_layouts` returns: codes and aligned layouts of both models."""

    left_codes: np.ndarray
    left_logvar: np.ndarray | None
    right_codes: np.ndarray
    right_logvar: np.ndarray | None
    left_projection: object
    left_xy: np.ndarray
    right_projection: object
    right_xy: np.ndarray
    kind: str


def compute_layouts(left_model, right_model, images, labels=None, *, kind: str = "pca", params: dict | None = None,
                    progress=None, should_stop=None, fitter=None) -> CompareLayouts:
    """Encode ``images`` with both models and lay them out aligned (pure; a worker may call it).

    Parameters
    ----------
    left_model, right_model
        Models with ``encode``; conditional ones get ``labels``.
    kind, params
        Projection of both maps (``dims``/``pca``/``umap``) and its settings; ``dims`` uses
        each model's first two dimensions unless ``params`` names others.
    progress, should_stop, fitter
        As for :meth:`explorer.state.map.MapState.compute_layout`.

    Raises
    ------
    ValueError
        For an unknown kind, or ``dims`` on a model with a one-dimensional latent space.
    """
    from vae_core.latent import encode_dataset

    if kind not in KINDS:
        raise ValueError(f"Unknown projection {kind!r}: use one of {', '.join(KINDS)}.")
    encoded = []
    for model in (left_model, right_model):
        if kind == "dims" and model.latent_dim < 2:
            raise ValueError("Latent dims need two latent dimensions; compare with PCA instead.")
        y = labels if getattr(model, "conditional", False) else None
        encoded.append(encode_dataset(model, images, y, should_stop=should_stop))
    (left_codes, left_logvar), (right_codes, right_logvar) = encoded
    params = dict(params or ({"i": 0, "j": 1} if kind == "dims" else {}))
    left_projection, left_xy = MapState.compute_layout(left_codes, kind, params, progress=progress,
                                                       should_stop=should_stop, fitter=fitter)
    right_projection, _ = MapState.compute_layout(right_codes, kind, params, progress=progress,
                                                  should_stop=should_stop, fitter=fitter)
    right_projection.align_with(left_xy, right_codes)
    right_xy = np.ascontiguousarray(right_projection.transform(right_codes), dtype=np.float32)
    return CompareLayouts(left_codes, left_logvar, right_codes, right_logvar, left_projection, left_xy,
                          right_projection, right_xy, kind)


class CompareState:
    """The comparison: two documents on one dataset, their aligned maps and the shared hover."""

    models_changed = Signal()               # new models or dataset (layouts follow)
    hovered_index_changed = Signal(object)  # data index hovered on either map, or None
    kind_changed = Signal(str)

    def __init__(self) -> None:
        self.left = ExplorerState()
        self.right = ExplorerState()
        self.kind = "pca"
        self.hovered_index: int | None = None
        self.hovered_side: str | None = None     # "left" or "right": where the cursor is
        self._linking = False
        self.left.map.hovered_index_changed.connect(self._on_left_map_hovered_index_changed)
        self.right.map.hovered_index_changed.connect(self._on_right_map_hovered_index_changed)

    @property
    def ready(self) -> bool:
        """Both models and the dataset are set."""
        return self.left.model is not None and self.right.model is not None and self.left.dataset is not None

    def side(self, name: str) -> ExplorerState:
        return {"left": self.left, "right": self.right}[name]

    def set_models(self, left_model, right_model, dataset, *, left_path=None, right_path=None) -> None:
        """Compare ``left_model`` with ``right_model`` on ``dataset`` (snapshots are kept)."""
        for side, model, path in ((self.left, left_model, left_path), (self.right, right_model, right_path)):
            if side.dataset is not dataset:
                side.set_dataset(dataset)
            side.set_model(model, path=path)
        self.set_hovered_index(None)
        self.models_changed.emit()

    def set_kind(self, kind: str) -> None:
        if kind not in KINDS:
            raise ValueError(f"Unknown projection {kind!r}: use one of {', '.join(KINDS)}.")
        if kind != self.kind:
            self.kind = kind
            self.kind_changed.emit(kind)

    def default_kind(self) -> str:
        """``dims`` when both models have 2-D latent spaces (their maps are the spaces), else PCA."""
        if self.ready and self.left.model.latent_dim == 2 and self.right.model.latent_dim == 2:
            return "dims"
        return "pca"

    def compute(self, *, progress=None, should_stop=None, fitter=None) -> CompareLayouts:
        """:func:`compute_layouts` for the current models (tests and scripts; the view uses a job)."""
        if not self.ready:
            raise ValueError("Choose two models and a dataset to compare first.")
        return compute_layouts(self.left.model, self.right.model, self.left.images, self.left.labels, kind=self.kind,
                               progress=progress, should_stop=should_stop, fitter=fitter)

    def apply(self, layouts: CompareLayouts) -> None:
        """Show computed codes and layouts on both maps (GUI thread)."""
        from explorer.state.document import code_stats

        for side, codes, logvar, projection, xy in (
                (self.left, layouts.left_codes, layouts.left_logvar, layouts.left_projection, layouts.left_xy),
                (self.right, layouts.right_codes, layouts.right_logvar, layouts.right_projection, layouts.right_xy)):
            side.set_codes(codes, logvar, code_stats(codes, logvar))
            side.map.set_projection(projection, xy)
        self.set_kind(layouts.kind)

    def update(self) -> CompareLayouts:
        """Compute and apply synchronously (tests and scripts)."""
        layouts = self.compute()
        self.apply(layouts)
        return layouts

    # -- the linked hover -------------------------------------------------------------------------
    def set_hovered_index(self, index, side: str | None = None) -> None:
        """Make data point ``index`` the hovered one on both maps (None: none)."""
        index = None if index is None else int(index)
        if self._linking:
            return
        self._linking = True
        try:
            self.hovered_side = side if index is not None else None
            for name, state in (("left", self.left), ("right", self.right)):
                if name != side:
                    state.map.set_hovered_index(index)
                state.map.set_highlight([] if index is None else [index])
            if index != self.hovered_index:
                self.hovered_index = index
                self.hovered_index_changed.emit(index)
        finally:
            self._linking = False

    def _on_left_map_hovered_index_changed(self, index) -> None:
        self.set_hovered_index(index, "left")

    def _on_right_map_hovered_index_changed(self, index) -> None:
        self.set_hovered_index(index, "right")
