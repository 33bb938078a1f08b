"""Reconstructions and prior samples of the current model, refreshed after every epoch.

Both views decode with ``state.model`` — the GUI's snapshot — on the GUI thread: a few
dozen images through a small decoder take milliseconds. They never touch the module
being trained. Refreshes are coalesced, so fast epochs (digits trains ~10 per second)
cost at most one redraw every 200 ms.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QWidget

from explorer.ui.image_grid import ImageGrid

__all__ = ["LatentGridView", "ReconstructionView", "SampleView", "pick_examples"]

MIN_REFRESH_MS = 200


def pick_examples(labels: np.ndarray | None, n: int, num_classes: int = 0) -> np.ndarray:
    """Indices of ``n`` fixed test images: the first of each class when labelled, else evenly spaced."""
    if labels is not None and 2 <= num_classes <= 12:
        picks = []
        for c in range(num_classes):
            where = np.flatnonzero(labels == c)
            if len(where):
                picks.append(int(where[0]))
        if picks:
            return np.asarray(picks[:n], dtype=np.int64)
    total = len(labels) if labels is not None else n
    return np.linspace(0, max(0, total - 1), num=min(n, total), dtype=np.int64)


class _ModelView(ImageGrid):
    """An :class:`ImageGrid` that redraws itself from ``state`` when the model changes."""

    def __init__(self, state, caption: str, placeholder: str, parent: QWidget | None = None) -> None:
        super().__init__(caption, parent, placeholder=placeholder)
        self.state = state
        self.refresh_count = 0
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(MIN_REFRESH_MS)
        self._timer.timeout.connect(self.refresh)
        state.model_changed.connect(self._on_state_changed)
        state.weights_changed.connect(self._on_state_changed)
        state.dataset_changed.connect(self._on_state_changed)

    def _on_state_changed(self, *_args) -> None:
        if not self._timer.isActive():
            self._timer.start()

    def refresh(self) -> None:
        """Decode now (normally called through the coalescing timer)."""
        self._timer.stop()
        state = self.state
        if state.model is None:
            self.clear("Open a checkpoint or train a model to see its images here.")
            return
        if state.dataset is not None and state.compatible() is not None:
            self.clear(f"The model does not fit this dataset: {state.compatible()}")
            return
        try:
            self._draw()
        except Exception as exc:  # noqa: BLE001 - a preview must never take the window down
            self.clear(f"Could not decode: {exc}")
            return
        self.refresh_count += 1

    def _draw(self) -> None:
        raise NotImplementedError


class ReconstructionView(_ModelView):
    """Test images (top row) and their reconstructions (bottom row)."""

    def __init__(self, state, parent: QWidget | None = None, *, count: int = 10) -> None:
        super().__init__(state, "Test images and their reconstructions",
                         "Reconstructions of test images appear here once a model is loaded.", parent)
        self.n_examples = count
        self.setToolTip("Top: test images the model never trained on. Bottom: what the model makes of them "
                        "(decoded from the mean of the encoding). Refreshed after every epoch.")

    def _draw(self) -> None:
        data = self.state.dataset
        if data is None:
            self.clear("Load a dataset to see reconstructions.")
            return
        split = data.test if len(data.test) else data.train
        idx = pick_examples(split.labels, self.n_examples, data.num_classes)
        originals = split.floats(idx)
        labels = split.labels[idx] if split.labels is not None else None
        recon = self.state.reconstruct(originals, labels)
        captions = None
        if labels is not None and data.class_names:
            names = [data.class_names[int(c)] for c in labels]
            captions = names + names
        self.set_images(np.concatenate([originals, recon]), columns=len(idx), captions=captions,
                        row_labels=["Original", "Reconstruction"])
        epochs = self.state.epochs_trained
        self.set_caption(f"Test images and their reconstructions · epoch {epochs}" if epochs else
                         "Test images and their reconstructions")


class SampleView(_ModelView):
    """Images decoded from fixed draws of the prior N(0, I): the same codes every epoch."""

    def __init__(self, state, parent: QWidget | None = None, *, rows: int = 4, columns: int = 8, seed: int = 0) -> None:
        super().__init__(state, "Samples from the prior",
                         "Samples from the model appear here once a model is loaded.", parent)
        self.rows, self.sample_columns, self.seed = rows, columns, seed
        self.setToolTip("Images decoded from random codes z ~ N(0, I). The codes stay the same from epoch to "
                        "epoch, so you can watch each sample take shape. Right-click to save the grid.")

    def _draw(self) -> None:
        from vae_core.latent import sample_prior

        model = self.state.model
        captions = None
        if model.conditional:
            # One row per code, one column per class: the same style decoded as every class.
            classes = model.num_classes
            z = np.repeat(sample_prior(self.rows, model.latent_dim, seed=self.seed), classes, axis=0)
            labels = np.tile(np.arange(classes, dtype=np.int64), self.rows)
            images = self.state.decode(z, labels)
            names = self.state.class_names or tuple(str(c) for c in range(classes))
            captions = [names[int(c)] if int(c) < len(names) else str(int(c)) for c in labels]
            columns = classes
        else:
            images = self.state.sample(self.rows * self.sample_columns, seed=self.seed)
            columns = self.sample_columns
        self.set_images(images, columns=columns, captions=captions)
        epochs = self.state.epochs_trained
        kind = "as every class" if model.conditional else "from the prior"
        self.set_caption(f"Samples {kind} · epoch {epochs}" if epochs else f"Samples {kind}")


class LatentGridView(_ModelView):
    """The decoder's view of latent space: images decoded on a regular grid of codes.

    For a 2-D latent space this is the whole learned manifold, z₁ across and z₂ down
    (the classic picture of Kingma & Welling). With more dimensions the grid sweeps the
    two most informative ones (highest KL) and holds the others at the prior mean 0.
    """

    def __init__(self, state, parent: QWidget | None = None, *, steps: int = 15, span: float = 2.5) -> None:
        super().__init__(state, "Latent space",
                         "Open a checkpoint (Ctrl+O) or train a model in the Training panel (Ctrl+T): "
                         "its latent space appears here.", parent)
        self.steps, self.span = steps, span
        self.dims: tuple[int, int] | None = None
        self.setToolTip("Each tile is decoded from one latent code on a regular grid: move along a row or a "
                        "column to see what the model learned to vary.")

    def _draw(self) -> None:
        from vae_core.latent import traversal_dims

        model = self.state.model
        d = model.latent_dim
        values = np.linspace(-self.span, self.span, self.steps, dtype=np.float32)
        if d == 1:
            z = values[:, None]
            self.dims = (0, 0)
            columns = self.steps
            axis_text = f"z₀ from {-self.span:g} to {self.span:g}"
        else:
            order = traversal_dims(d, self.state.kl_per_dim) if d > 2 else np.arange(2)
            a, b = (int(order[0]), int(order[1]))
            self.dims = (a, b)
            z = np.zeros((self.steps * self.steps, d), dtype=np.float32)
            grid_y, grid_x = np.meshgrid(values[::-1], values, indexing="ij")  # z_b grows upwards
            z[:, a] = grid_x.ravel()
            z[:, b] = grid_y.ravel()
            columns = self.steps
            rest = " (other dimensions at 0)" if d > 2 else ""
            axis_text = f"z{a} → across, z{b} ↑ up, each from {-self.span:g} to {self.span:g}{rest}"
        images = self.state.decode(z)
        self.set_images(images, columns=columns)
        epochs = self.state.epochs_trained
        name = self.state.display_name
        head = f"Latent space of {name}" if name else "Latent space"
        self.set_caption(f"{head} · {axis_text}" + (f" · epoch {epochs}" if epochs else ""))
