"""The user's own image on the map: encoded, reconstructed, scored against the dataset (no Qt).

A dropped or pasted image goes through :func:`vae_core.data.image_to_input` (the model's
channels and size; inverted when its background is the opposite of the dataset's), then
:meth:`OwnImage.analyse` (pure, for a worker) encodes it, decodes its code, and estimates
its log-likelihood with the IWAE bound (``LIKELIHOOD_K`` samples). Its percentile is its
rank among the same bound computed for ``REFERENCE_IMAGES`` dataset images drawn with a
fixed seed (:meth:`OwnImage.reference_log_likelihoods`, computed once per set of weights):
a low percentile says the model finds the image unusual (out of distribution).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from psygnal import Signal

from explorer.state.lazy import LazyModule

data = LazyModule("vae_core.data")

LIKELIHOOD_K = 64          # importance samples of the IWAE bound (own image and references alike)
REFERENCE_IMAGES = 500     # dataset images the percentile is taken among
LIKELIHOOD_SEED = 0


@dataclass(frozen=True)
class OwnImageResult:
    """What the model makes of one image of the user's."""

    name: str
    image: np.ndarray                 # C×H×W as the model reads it
    code: np.ndarray                  # its map code (d)
    reconstruction: np.ndarray        # C×H×W, the code decoded
    log_likelihood: float | None      # IWAE bound on log p(x), nats (None: the model has no likelihood)
    percentile: float | None          # % of reference dataset images with a lower bound
    inverted: bool                    # the image was inverted to match the dataset's background
    label: int | None = None          # the class a conditional model was given
    xy: tuple[float, float] | None = None

    @property
    def summary(self) -> str:
        """One line for the status bar and the card."""
        if self.log_likelihood is None:
            return f"{self.name}: this model has no likelihood to score it with."
        text = f"log p(x) ≥ {self.log_likelihood:,.1f} nats"
        if self.percentile is not None:
            text += f", {self.percentile:.0f}th percentile of the dataset"
            if self.percentile < 1.0:
                text += " — unusual for this model (out of distribution)"
        return text


class OwnImage:
    """The one image of the user's shown on the map (see the module docstring)."""

    own_image_changed = Signal(object)     # OwnImageResult or None

    def __init__(self, map_state) -> None:
        self.map = map_state
        self.document = map_state.document
        self.result: OwnImageResult | None = None
        self.reference: np.ndarray | None = None     # log-likelihoods of the reference images
        map_state.layout_changed.connect(self._on_map_layout_changed)
        self.document.weights_changed.connect(self._on_document_model_changed)
        self.document.model_changed.connect(self._on_document_model_changed)
        self.document.dataset_changed.connect(self._on_document_model_changed)

    # -- pure parts (workers) ----------------------------------------------------------------
    def prepare(self, source) -> tuple[np.ndarray, bool]:
        """``source`` (a path or an array) as the model's input; and whether it was inverted."""
        model = self.document.model
        if model is None:
            raise ValueError("Open or train a model first: there is nothing to encode the image with.")
        images = self.document.images
        background = data.dataset_background(images) if images is not None and len(images) else None
        plain = data.image_to_input(source, model.image_shape)
        if background is None:
            return plain, False
        matched = data.image_to_input(source, model.image_shape, background=background)
        return matched, not np.array_equal(plain, matched)

    @staticmethod
    def analyse(model, image, *, name: str = "your image", inverted: bool = False, label: int | None = None,
                reference: np.ndarray | None = None) -> OwnImageResult:
        """Encode, reconstruct and score one ``C×H×W`` image (pure; may run in a worker)."""
        from vae_core.data import ImageDataset
        from vae_core.latent import decode, encode_dataset
        from vae_core.metrics import iwae_nll

        images = np.ascontiguousarray(image, dtype=np.float32)[None]
        labels = None
        if getattr(model, "conditional", False):
            labels = np.array([0 if label is None else int(label)], dtype=np.int64)
        mu, _ = encode_dataset(model, images, labels)
        recon = decode(model, mu, labels)[0]
        ll = percentile = None
        if OwnImage.can_score(model):
            ll = -float(iwae_nll(model, ImageDataset(images, labels), k=LIKELIHOOD_K, seed=LIKELIHOOD_SEED)
                        ["nll_per_image"][0])
            if reference is not None and len(reference):
                percentile = 100.0 * float(np.mean(np.asarray(reference) <= ll))
        return OwnImageResult(name, images[0], mu[0], recon, ll, percentile, inverted,
                              None if labels is None else int(labels[0]))

    @staticmethod
    def can_score(model) -> bool:
        from vae_core.adapter import limitation

        return (getattr(model, "stochastic_posterior", True) and limitation(model, "evaluate") is None)

    @staticmethod
    def reference_log_likelihoods(model, images, labels=None) -> np.ndarray:
        """IWAE bounds of ``REFERENCE_IMAGES`` seeded dataset images (pure; may run in a worker)."""
        from vae_core.data import ImageDataset
        from vae_core.metrics import iwae_nll

        n = len(images)
        pick = np.sort(np.random.default_rng(LIKELIHOOD_SEED).choice(n, min(n, REFERENCE_IMAGES), replace=False))
        subset = ImageDataset(np.ascontiguousarray(images[pick]),
                              None if labels is None or not model.conditional else labels[pick])
        return -iwae_nll(model, subset, k=LIKELIHOOD_K, seed=LIKELIHOOD_SEED)["nll_per_image"]

    # -- on the GUI thread -------------------------------------------------------------------
    def set_reference(self, log_likelihoods) -> None:
        self.reference = None if log_likelihoods is None else np.asarray(log_likelihoods, dtype=np.float64)
        if self.result is not None and self.result.log_likelihood is not None and self.reference is not None:
            pct = 100.0 * float(np.mean(self.reference <= self.result.log_likelihood))
            self.set_result(replace(self.result, percentile=pct))

    def set_result(self, result: OwnImageResult | None) -> None:
        """Show ``result`` on the map (placed with the current projection)."""
        if result is not None:
            result = replace(result, xy=self._place(result.code))
        self.result = result
        self.own_image_changed.emit(result)

    def load(self, source, *, name: str | None = None, label: int | None = None) -> OwnImageResult:
        """Prepare, analyse and show ``source`` synchronously (tests and scripts)."""
        image, inverted = self.prepare(source)
        model = self.document.model
        if self.reference is None and self.document.images is not None and self.can_score(model):
            self.reference = self.reference_log_likelihoods(model, self.document.images, self.document.labels)
        result = self.analyse(model, image, name=name or _name_of(source), inverted=inverted, label=label,
                              reference=self.reference)
        self.set_result(result)
        return self.result

    def clear(self) -> None:
        if self.result is not None:
            self.set_result(None)

    def _place(self, code) -> tuple[float, float] | None:
        if not self.map.ready:
            return None
        try:
            x, y = self.map.forward(code)
        except ValueError:   # a code of another size (the model changed meanwhile)
            return None
        return float(x), float(y)

    def _on_map_layout_changed(self, *args) -> None:
        if self.result is not None:
            self.set_result(self.result)

    def _on_document_model_changed(self, *args) -> None:
        # Its code, reconstruction and score belong to the old weights.
        self.reference = None
        self.clear()


def _name_of(source) -> str:
    from pathlib import Path

    if isinstance(source, (str, Path)):
        return Path(source).name
    return "pasted image"
