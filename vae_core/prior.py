"""Fitting a VQ-VAE's prior over code grids, as a generator of progress reports.

A VQ-VAE is trained with a uniform prior over its code grids; afterwards
:func:`train_prior` encodes the dataset to index grids once and fits the model's
autoregressive prior (:class:`~vae_core.models.code_prior.CodePrior`) to them by maximum
likelihood, leaving the encoder, decoder and codebook alone. Like
:func:`~vae_core.training.iter_training` it yields a
:class:`~vae_core.training.TrainProgress` every ``yield_interval`` seconds and after each
epoch, so a caller can pause (stop pulling) or cancel (close the generator) between
reports. The prior lives inside the model (``model.prior`` and the ``prior_steps``
buffer), so :func:`~vae_core.checkpoint.save_checkpoint` stores it with the weights
(safetensors) and :func:`~vae_core.checkpoint.load_checkpoint` brings it back.

Reported numbers are nats per image: ``code_nll`` = −log p(k(x)) of the image's code grid
under the prior (``uniform_code_nll`` = rows·columns·log K is the same under the uniform
prior the VQ-VAE was trained with).
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from dataclasses import dataclass
from typing import Callable, Generator

import numpy as np
import torch
from torch import Tensor

from vae_core.data import DatasetSplits, to_unit_float
from vae_core.errors import ConfigError, NonFiniteLossError
from vae_core.models.base import BaseVAE
from vae_core.ranges import real, whole
from vae_core.training import (DEVICES, LIMITS, TrainProgress, check_compatible, optimizer_state_copy,
                               resolve_device, state_dict_copy)

__all__ = ["PriorConfig", "train_prior", "encode_code_grids"]


@dataclass
class PriorConfig:
    """Optimization settings of :func:`train_prior` (the prior's size is in the model config).

    Attributes
    ----------
    epochs, batch_size, lr, seed : as in :class:`~vae_core.training.TrainConfig`
    device : {"auto", "cpu", "cuda", "mps"}
    num_threads : int or None
        torch intra-op threads while training.
    yield_interval : float
        Seconds between step reports; bounds how late a pause or cancel takes effect.
    eval_batch_size : int
        Images encoded (and grids scored) at once.
    """

    epochs: int = 10
    batch_size: int = 64
    lr: float = 1e-3
    seed: int = 0
    device: str = "auto"
    num_threads: int | None = None
    yield_interval: float = 0.1
    eval_batch_size: int = 1000

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "seed", "eval_batch_size"):
            setattr(self, name, whole(name, getattr(self, name), *LIMITS[name]))
        if self.num_threads is not None:
            self.num_threads = whole("num_threads", self.num_threads, *LIMITS["num_threads"])
        self.lr = real("lr", self.lr, *LIMITS["lr"], low_open=True)
        self.yield_interval = real("yield_interval", self.yield_interval, *LIMITS["yield_interval"])
        if not isinstance(self.device, str) or self.device not in DEVICES:
            raise ConfigError(f"device must be one of {', '.join(DEVICES)}, got {self.device!r}.")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _vq_model(model_or_checkpoint) -> BaseVAE:
    from vae_core.checkpoint import Checkpoint, load_checkpoint

    source = model_or_checkpoint
    if isinstance(source, (str, os.PathLike)):
        source = load_checkpoint(source)
    if isinstance(source, Checkpoint):
        source = source.model
    if not isinstance(source, BaseVAE):
        raise ConfigError(f"train_prior needs a model, a checkpoint or its path, not a {type(source).__name__}.")
    if not hasattr(source, "prior") or not hasattr(source, "encode_indices"):
        raise ConfigError(f"The {source.name!r} model has no prior over codes to train; train_prior needs a vqvae model.")
    return source


@torch.no_grad()
def encode_code_grids(model, images, *, batch_size: int = 1000, device="cpu",
                      progress: Callable[[int, int], None] | None = None) -> Tensor:
    """The index grid of every image (``N×rows×columns`` int64, on ``device``).

    ``progress(done, total)`` is called after every batch; an exception it raises stops
    the encoding (cancel).
    """
    n = len(images)
    out = torch.empty((n, *model.grid_shape), dtype=torch.long, device=device)
    for start in range(0, n, batch_size):
        x = to_unit_float(torch.as_tensor(np.ascontiguousarray(images[start : start + batch_size])).to(device))
        out[start : start + x.shape[0]] = model.encode_indices(x)
        if progress is not None:
            progress(min(n, start + batch_size), n)
    return out


@torch.no_grad()
def _mean_nll(prior, grids: Tensor, batch_size: int) -> float:
    total = 0.0
    for start in range(0, len(grids), batch_size):
        total += float(prior.nll(grids[start : start + batch_size]).double().sum())
    return total / max(1, len(grids))


def train_prior(model_or_checkpoint, data: DatasetSplits, config: PriorConfig | None = None, *,
                progress: Callable[[int, int], None] | None = None,
                optimizer_state: dict | None = None) -> Generator[TrainProgress, None, list[dict]]:
    """Fit the prior of a VQ-VAE to the code grids of ``data.train``, yielding progress.

    Parameters
    ----------
    model_or_checkpoint : VQVAE, Checkpoint, str or path
        The model whose ``prior`` is trained in place (a checkpoint's model, or one loaded
        from a path). Nothing else of the model changes.
    data : DatasetSplits
        Images to encode; ``data.test`` (when not empty) gives the held-out ``code_nll``.
    config : PriorConfig, optional
    progress : callable, optional
        ``progress(done, total)`` in images while the dataset is encoded, before the
        first report (a few seconds for MNIST on a CPU).
    optimizer_state : dict, optional
        Adam state of the prior to continue from (``TrainProgress.optimizer_state``).

    Yields
    ------
    TrainProgress
        ``"step"`` reports with ``losses`` ``{"loss", "code_nll"}`` (train running means,
        nats per image) and an ``"epoch"`` report after each epoch with ``test``
        ``{"code_nll", "uniform_code_nll"}``, ``weights`` (a CPU copy of the whole model's
        state_dict, prior included), the prior's ``optimizer_state`` and ``history_entry``.

    Returns
    -------
    list of dict
        One row per epoch (``epoch``, ``step``, ``seconds``, ``train_code_nll``,
        ``test_code_nll``).

    Raises
    ------
    ConfigError
        For a model without a prior over codes.
    ShapeMismatchError
        If the model cannot read the dataset's images.
    NonFiniteLossError
        If the loss becomes NaN/inf; the prior's last good weights are restored first.
    """
    model = _vq_model(model_or_checkpoint)
    config = config or PriorConfig()
    check_compatible(model, data)
    device = resolve_device(config.device)
    previous_threads = torch.get_num_threads()
    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    prior = model.prior
    history: list[dict] = []
    try:
        model.to(device).eval()
        train_grids = encode_code_grids(model, data.train.images, batch_size=config.eval_batch_size, device=device,
                                        progress=progress)
        test_grids = (encode_code_grids(model, data.test.images, batch_size=config.eval_batch_size, device=device)
                      if len(data.test) else None)
        uniform = model.prior.length * math.log(model.num_codes)
        torch.manual_seed(config.seed)
        prior.requires_grad_(True)
        prior.train()
        optimizer = torch.optim.Adam(prior.parameters(), lr=config.lr)
        if optimizer_state:
            optimizer.load_state_dict(optimizer_state)
        n = len(train_grids)
        steps_per_epoch = math.ceil(n / config.batch_size)
        total_steps = config.epochs * steps_per_epoch
        shuffle = torch.Generator().manual_seed(config.seed)
        good = {k: v.detach().clone() for k, v in prior.state_dict().items()}
        start = time.perf_counter()
        step = 0
        for epoch in range(config.epochs):
            epoch_start = last_yield = time.perf_counter()
            order = torch.randperm(n, generator=shuffle).to(device)
            total, seen = 0.0, 0
            for b in range(steps_per_epoch):
                grids = train_grids[order[b * config.batch_size : (b + 1) * config.batch_size]]
                loss = prior.nll(grids).mean()
                if not torch.isfinite(loss):
                    prior.load_state_dict(good)
                    raise NonFiniteLossError(
                        f"The prior's loss became {loss.item()} at epoch {epoch + 1}, step {step + 1}. Training "
                        "stopped and the last good prior was kept; try a lower learning rate.")
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                model.prior_steps += 1
                step += 1
                total += float(loss.detach()) * grids.shape[0]
                seen += grids.shape[0]
                now = time.perf_counter()
                if now - last_yield >= config.yield_interval and b + 1 < steps_per_epoch:
                    last_yield = now
                    mean = total / seen
                    yield TrainProgress(kind="step", epoch=epoch, epochs=config.epochs, step=step,
                                        steps_per_epoch=steps_per_epoch, total_steps=total_steps,
                                        images_per_sec=seen / (now - epoch_start), elapsed=now - start,
                                        losses={"loss": mean, "code_nll": mean})
            prior.eval()
            test = None
            if test_grids is not None:
                test = {"code_nll": _mean_nll(prior, test_grids, config.eval_batch_size), "uniform_code_nll": uniform}
            prior.train()
            good = {k: v.detach().clone() for k, v in prior.state_dict().items()}
            now = time.perf_counter()
            mean = total / max(1, seen)
            entry = {"epoch": epoch + 1, "step": step, "seconds": round(now - start, 3), "train_code_nll": mean}
            if test:
                entry.update({f"test_{k}": v for k, v in test.items()})
            history.append(entry)
            yield TrainProgress(kind="epoch", epoch=epoch, epochs=config.epochs, step=step,
                                steps_per_epoch=steps_per_epoch, total_steps=total_steps,
                                images_per_sec=seen / max(1e-9, now - epoch_start), elapsed=now - start,
                                losses={"loss": mean, "code_nll": mean}, test=test,
                                weights=state_dict_copy(model), optimizer_state=optimizer_state_copy(optimizer),
                                history_entry=entry)
    finally:
        prior.requires_grad_(False)
        model.eval()
        if config.num_threads:
            torch.set_num_threads(previous_threads)
    return history
