"""Training reports written where people watch training: TensorBoard event files.

:class:`TensorBoardLogger` consumes the :class:`~vae_core.training.TrainProgress` reports of
``iter_training`` (or serves as a ``fit`` callback) and writes, against the global optimizer
step:

=============================  ============  ==================================================
tag                            when          what
=============================  ============  ==================================================
``train/loss|recon|kl|beta``   every report  running means of the epoch so far (nats/image)
``speed/images_per_sec``       every report  training throughput
``test/<metric>``              every epoch   ``neg_elbo``, ``recon``, ``kl``, ``active_units``, ...
``train_kl_per_dim/z00``...    every epoch   KL of each latent dimension on the training batches
``test_kl_per_dim/z00``...     every epoch   the same on the test set
``reconstructions``            every epoch   originals (top row) over their reconstructions
``samples``                    every epoch   decodes of fixed prior draws, the same every epoch
``model`` (text)               at start      the model's name and config
=============================  ============  ==================================================

Images are decoded with the epoch's weight snapshot (``TrainProgress.weights``) loaded into
the logger's own copy of the model, never with the module being trained, so the logger may
run on any thread.

``torch.utils.tensorboard.SummaryWriter`` writes the files: it ships with torch and needs
only the ``tensorboard`` package, which also provides the viewer.
"""

from __future__ import annotations

import json
import math

import torch

from vae_core.models.base import BaseVAE
from vae_core.registry import build_model
from vae_core.training import Callback, TrainProgress


class TensorBoardLogger(Callback):
    """Write training progress to a TensorBoard log folder.

    Parameters
    ----------
    log_dir : str or path-like
        Run folder (``tensorboard --logdir`` its parent to compare runs).
    model : BaseVAE, optional
        The model being trained; only its architecture and config are used (weights come
        from each epoch's snapshot). Without it no images are written.
    examples : ImageDataset, optional
        Images to reconstruct every epoch (the first ``num_examples``), typically the
        test split. Without it no reconstructions are written.
    num_examples : int
        Reconstructions per epoch.
    num_samples : int
        Prior samples per epoch.
    seed : int
        Seeds the prior draws, fixed for the whole run so that epochs are comparable.
    flush_secs : float
        How often buffered step scalars reach the disk; epoch reports are flushed at once.

    Examples
    --------
    >>> logger = TensorBoardLogger("runs/mlp", model, data.test)      # doctest: +SKIP
    >>> for report in iter_training(model, data, config):               # doctest: +SKIP
    ...     logger.log_progress(report)
    >>> logger.close()                                                  # doctest: +SKIP
    """

    def __init__(self, log_dir, model: BaseVAE | None = None, examples=None, *, num_examples: int = 8,
                 num_samples: int = 16, seed: int = 0, flush_secs: float = 5.0) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise ImportError("TensorBoard logging needs the tensorboard package: "
                              "pip install 'latent-explorer[tensorboard]'.") from None
        self.writer = SummaryWriter(log_dir=str(log_dir), flush_secs=flush_secs)
        self.log_dir = self.writer.log_dir
        self._snapshot = None
        self._examples = None
        self._example_labels = None
        self._prior = None
        self._prior_labels = None
        if model is not None:
            self._snapshot = _architecture_copy(model)
            generator = torch.Generator().manual_seed(seed)
            self._prior = torch.randn(num_samples, model.latent_dim, generator=generator)
            if model.conditional:
                self._prior_labels = torch.arange(num_samples) % model.num_classes
            if examples is not None and len(examples) and num_examples > 0:
                self._examples = examples.batch(slice(0, num_examples))
                if model.conditional and examples.labels is not None:
                    self._example_labels = torch.from_numpy(examples.labels[:num_examples]).long()
                elif model.conditional:
                    self._examples = None  # a conditional model cannot reconstruct unlabelled images
            config = json.dumps(model.config.to_dict(), indent=2, default=str)
            self.writer.add_text("model", f"**{model.name}**, {model.latent_dim}-D latent\n\n```\n{config}\n```")

    # -- reports ---------------------------------------------------------------------------------
    def log_progress(self, progress: TrainProgress) -> None:
        """Write one report: scalars always; per-dimension KL, test metrics and images at epoch ends."""
        step = int(progress.step)
        for key, value in progress.losses.items():
            self._scalar(f"train/{key}", value, step)
        self._scalar("speed/images_per_sec", progress.images_per_sec, step)
        if progress.kind != "epoch":
            return
        if progress.kl_per_dim is not None:
            self._per_dim("train_kl_per_dim", progress.kl_per_dim, step)
        for key, value in (progress.test or {}).items():
            if key == "kl_per_dim":
                self._per_dim("test_kl_per_dim", value, step)
            elif isinstance(value, (int, float)) and not isinstance(value, bool):
                self._scalar(f"test/{key}", value, step)
        if progress.weights is not None and self._snapshot is not None:
            recon, samples = self.epoch_images(progress.weights)
            if recon is not None:
                self.writer.add_image("reconstructions", recon, step)
            self.writer.add_image("samples", samples, step)
        self.writer.flush()

    def epoch_images(self, weights: dict) -> tuple[torch.Tensor | None, torch.Tensor]:
        """The two image grids for a weight snapshot, ``3×H×W`` float in [0, 1].

        Returns ``(reconstructions, samples)``; reconstructions are ``None`` without
        examples. The originals are the top row, their reconstructions (decoded μ) below.
        """
        from torchvision.utils import make_grid

        model = self._snapshot
        model.load_state_dict(weights)
        with torch.inference_mode():
            samples = model.decode(self._prior, self._prior_labels).clamp(0, 1)
            recon = None
            if self._examples is not None:
                mu, _ = model.encode(self._examples, self._example_labels)
                decoded = model.decode(mu, self._example_labels).clamp(0, 1)
                recon = make_grid(torch.cat([self._examples, decoded]), nrow=len(self._examples), padding=2)
        rows = max(1, round(math.sqrt(len(samples))))
        return recon, make_grid(samples, nrow=math.ceil(len(samples) / rows), padding=2)

    # -- fit() callback ------------------------------------------------------------------------
    def on_step(self, progress: TrainProgress) -> None:
        self.log_progress(progress)

    def on_epoch_end(self, progress: TrainProgress) -> None:
        self.log_progress(progress)

    # -- lifetime --------------------------------------------------------------------------------
    def close(self) -> None:
        """Flush and close the event file."""
        self.writer.close()

    def __enter__(self) -> "TensorBoardLogger":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _scalar(self, tag: str, value, step: int) -> None:
        value = float(value)
        if math.isfinite(value):  # TensorBoard draws NaN as a gap at best; skip it honestly
            self.writer.add_scalar(tag, value, step)

    def _per_dim(self, group: str, values, step: int) -> None:
        width = max(2, len(str(len(values) - 1)))
        for i, value in enumerate(values):
            self._scalar(f"{group}/z{i:0{width}d}", value, step)


def _architecture_copy(model: BaseVAE) -> BaseVAE:
    """A fresh CPU model of the same architecture (built from the registry, not deep-copied,
    so the live module's optimizer and device buffers are never touched)."""
    copy = build_model(model.name, **model.config.to_dict())
    return copy.eval()


__all__ = ["TensorBoardLogger"]
