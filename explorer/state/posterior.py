"""The posterior on the map: the hovered point's q(z|x) and the prior's holes (no Qt).

:class:`PosteriorCloud` turns the hovered data point's posterior into something to draw:
on a linear map (latent dims, PCA) the exact 1σ and 2σ ellipses of ``N(W μ + b, W Σ Wᵀ)``,
computed at once (microseconds); through UMAP, samples of q(z|x) pushed through the
projection, computed only when asked (:meth:`PosteriorCloud.show`, which the view calls once
the cursor rests), so the hover path never waits for them.

:class:`HolesOverlay` holds the prior-vs-aggregate-posterior map (:func:`vae_core.latent.holes_map`)
for the current projection and codes. :meth:`HolesOverlay.compute` is pure and runs in a
worker; its result comes back through :meth:`HolesOverlay.set_result`, which drops results
for codes or projections that are no longer shown.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from psygnal import Signal

from explorer.state.lazy import LazyModule

latent = LazyModule("vae_core.latent")

CLOUD_SAMPLES = 64          # samples of q(z|x) drawn through a non-linear projection
ELLIPSE_SIGMAS = (1.0, 2.0)
HOLES_RESOLUTION = 128      # cells per side of the holes grid
HOLES_COMPONENTS = 4000     # posteriors in the aggregate mixture (a seeded subset beyond this)
HOLES_CLIP = 8.0            # nats: log p − log q is clipped to ±this for the colour scale


@dataclass(frozen=True)
class CloudShape:
    """The hovered point's posterior on the map.

    ``outlines`` maps k → the k-σ ellipse (``M×2``) when the projection is linear (then
    ``centre`` and ``covariance`` are exact); ``samples`` (``n×2``) otherwise.
    """

    index: int
    centre: np.ndarray
    covariance: np.ndarray | None
    outlines: dict
    samples: np.ndarray | None

    @property
    def exact(self) -> bool:
        return self.covariance is not None


class PosteriorCloud:
    """The hovered data point's q(z|x) on the map (see the module docstring)."""

    enabled_changed = Signal(bool)
    cloud_changed = Signal(object)      # CloudShape or None

    def __init__(self, map_state) -> None:
        self.map = map_state
        self.document = map_state.document
        self.enabled = False
        self.shape: CloudShape | None = None
        map_state.hovered_index_changed.connect(self._on_map_hovered_index_changed)
        map_state.layout_changed.connect(self._on_map_layout_changed)
        self.document.codes_changed.connect(self._on_map_layout_changed)

    @property
    def available(self) -> str | None:
        """None when the cloud can be drawn, else why not (one sentence)."""
        if self.document.codes is None or not self.map.ready:
            return "The map has no codes yet."
        model = self.document.model
        if model is None or not getattr(model, "stochastic_posterior", True):
            return "This model's posterior is a single point."
        if self._gaussian() and self.document.logvar is None:
            return "This model's encoder gives no posterior widths."
        return None

    def _gaussian(self) -> bool:
        return bool(getattr(self.document.model, "gaussian_posterior", True))

    def is_immediate(self) -> bool:
        """True when the cloud is an exact ellipse, cheap enough for the hover path."""
        return self.map.ready and self._gaussian() and self.map.projection.linear_map() is not None

    def set_enabled(self, on: bool) -> None:
        on = bool(on)
        if on != self.enabled:
            self.enabled = on
            self.enabled_changed.emit(on)
            self._on_map_hovered_index_changed(self.map.hovered_index)

    def compute(self, index: int) -> CloudShape | None:
        """The shape of data point ``index``'s posterior on the current map (None if unavailable)."""
        if self.available is not None or not (0 <= index < len(self.document.codes)):
            return None
        projection = self.map.projection
        mu = self.document.codes[index]
        if not self._gaussian():
            # hvae / iaf: q(z|x) of the map code is not the encoder's Gaussian; draw from it.
            return CloudShape(index, projection.transform(mu), None, {},
                              projection.transform(self._model_samples(index)))
        logvar = self.document.logvar[index]
        if projection.linear_map() is not None:
            centre, cov = latent.posterior_ellipse(projection, mu, logvar)
            outlines = {k: latent.ellipse_outline(centre, cov, k) for k in ELLIPSE_SIGMAS}
            return CloudShape(index, centre, cov, outlines, None)
        samples = latent.posterior_cloud(projection, mu, logvar, CLOUD_SAMPLES, seed=index)
        return CloudShape(index, projection.transform(mu), None, {}, samples)

    def _model_samples(self, index: int) -> np.ndarray:
        import torch

        document = self.document
        x = torch.from_numpy(document.float_images(slice(index, index + 1)))
        y = None
        if document.model.conditional and document.labels is not None:
            y = torch.from_numpy(document.labels[index:index + 1])
        generator = torch.Generator().manual_seed(int(index))
        with torch.inference_mode():
            z = document.model.sample_posterior(x, CLOUD_SAMPLES, y, generator=generator)[:, 0]
        return z.numpy()

    def show(self, index: int | None) -> None:
        """Compute and show ``index``'s cloud now (the view calls this once the cursor rests)."""
        shape = None if index is None or not self.enabled else self.compute(int(index))
        if shape is not self.shape:
            self.shape = shape
            self.cloud_changed.emit(shape)

    def _on_map_hovered_index_changed(self, index) -> None:
        if not self.enabled or index is None:
            self.show(None)
        elif self.is_immediate():   # cheap and exact: on the hover path
            self.show(index)
        elif self.shape is not None and self.shape.index != index:
            self.show(None)      # the view asks for the sampled cloud when the cursor rests

    def _on_map_layout_changed(self, *args) -> None:
        index = self.shape.index if self.shape is not None else None
        self.show(index if index is not None and self.document.codes is not None
                  and index < len(self.document.codes) else None)


class HolesOverlay:
    """Where the prior has mass and the encoded data has none (see the module docstring)."""

    enabled_changed = Signal(bool)
    holes_changed = Signal(object)      # vae_core.latent.HolesMap or None (stale: compute again)

    def __init__(self, map_state) -> None:
        self.map = map_state
        self.document = map_state.document
        self.enabled = False
        self.result = None
        self._key = None
        map_state.projection_changed.connect(self._on_inputs_changed)
        map_state.layout_changed.connect(self._on_inputs_changed)
        self.document.codes_changed.connect(self._on_inputs_changed)

    @property
    def available(self) -> str | None:
        """None when the overlay can be computed, else why not (one sentence)."""
        if self.document.codes is None or not self.map.ready or self.map.xy is None:
            return "The map has no codes yet."
        if self.document.logvar is None:
            return "This model's encoder gives no posterior widths, so there is no aggregate posterior."
        if not getattr(self.document.model, "gaussian_posterior", True):
            return ("This model's posterior is not the encoder's Gaussian, so a mixture of those Gaussians would "
                    "not be its aggregate posterior.")
        return None

    def set_enabled(self, on: bool) -> None:
        on = bool(on)
        if on != self.enabled:
            self.enabled = on
            self.enabled_changed.emit(on)

    def key(self):
        """Identifies the inputs a result was computed for (projection and codes objects)."""
        return (id(self.map.projection), id(self.document.codes), id(self.map.xy))

    def extent(self) -> tuple[float, float, float, float]:
        """The grid's extent: the data's and (for a linear map) the prior's 3σ box, padded."""
        xy = self.map.xy[np.isfinite(self.map.xy).all(1)]
        lo, hi = np.percentile(xy, 0.1, axis=0), np.percentile(xy, 99.9, axis=0)
        linear = self.map.projection.linear_map()
        if linear is not None:
            w, b = linear
            spread = 3.0 * np.sqrt(np.diag(w @ w.T))
            lo, hi = np.minimum(lo, b - spread), np.maximum(hi, b + spread)
        pad = 0.2 * np.maximum(hi - lo, 1e-6)
        lo, hi = lo - pad, hi + pad
        return float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1])

    def request(self):
        """``(key, arguments)`` for :meth:`compute` with the current map, or None when unavailable."""
        if self.available is not None:
            return None
        return self.key(), (self.map.projection, self.document.codes, self.document.logvar, self.extent())

    @staticmethod
    def compute(projection, codes, logvar, extent):
        """The holes map for these inputs (pure; runs in a worker)."""
        return latent.holes_map(projection, codes, logvar, extent, HOLES_RESOLUTION,
                                max_components=HOLES_COMPONENTS, seed=0, clip=HOLES_CLIP)

    def set_result(self, key, result) -> bool:
        """Show ``result`` if it was computed for the current inputs; False if it is stale."""
        if key != self.key():
            return False
        self.result, self._key = result, key
        self.holes_changed.emit(result)
        return True

    def _on_inputs_changed(self, *args) -> None:
        if self.result is not None and self._key != self.key():
            self.result = self._key = None
            self.holes_changed.emit(None)
        elif self.result is None:
            self.holes_changed.emit(None)
