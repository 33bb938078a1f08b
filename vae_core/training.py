"""Training as a generator of progress reports.

``iter_training`` is the one training loop. It yields a :class:`TrainProgress` every
``yield_interval`` seconds and at the end of each epoch, so a caller can pause (stop
pulling), cancel (close the generator) and plot losses while training runs: the GUI
hands this generator to a worker thread, ``fit`` feeds it to callbacks, the CLI draws
a progress bar from it.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from typing import Any, Generator, Iterable

import torch
from torch import Tensor

from vae_core.data import DatasetSplits, to_unit_float
from vae_core.errors import ConfigError, NonFiniteLossError, ShapeMismatchError
from vae_core.metrics import evaluate
from vae_core.models.base import BaseVAE
from vae_core.ranges import real, whole
from vae_core.resources import check_memory
from vae_core.objectives import OBJECTIVES, ObjectiveStep, check_objective

KL_ANNEALING = ("none", "linear", "cyclical")
DEVICES = ("auto", "cpu", "cuda", "mps")
SEED_MAX = 2**32 - 1

#: Documented range of each numeric :class:`TrainConfig` field, ``(low, high)``; ints for
#: whole numbers. ``lr`` excludes its lower bound (it must be > 0).
LIMITS: dict[str, tuple] = {
    "epochs": (1, 100_000),
    "batch_size": (1, 1_000_000),
    "lr": (0.0, 10.0),
    "beta": (0.0, 1000.0),
    "warmup_epochs": (0.0, 100_000.0),
    "anneal_cycles": (1, 10_000),
    "seed": (0, SEED_MAX),
    "num_threads": (1, 1024),
    "yield_interval": (0.0, 3600.0),
    "eval_batch_size": (1, 1_000_000),
    "samples": (1, 100_000),
    "alpha": (0.0, 1000.0),
    "gamma": (0.0, 1000.0),
}


@dataclass
class TrainConfig:
    """Optimization settings (the model's own settings live in its config).

    Attributes
    ----------
    beta : float
        Weight of the KL term (β-VAE; 1 is the plain ELBO).
    kl_anneal : {"none", "linear", "cyclical"}
        KL warm-up against posterior collapse. ``linear`` raises the KL weight from 0 to
        ``beta`` over ``warmup_epochs``; ``cyclical`` repeats a ramp-then-hold schedule
        ``anneal_cycles`` times over training (Fu et al., 2019).
    num_threads : int or None
        torch intra-op threads while training. On a small CPU leave a core to the UI.
    yield_interval : float
        Seconds between step reports; bounds how late a pause or cancel takes effect.
    objective : {"elbo", "iwae", "tcvae"}
        What training minimizes (see :mod:`vae_core.objectives`); its named terms are
        reported in ``TrainProgress.losses`` and the history.
    samples : int
        K, the importance samples per image of ``iwae``.
    alpha, gamma : float
        ``tcvae``'s weights of the index-code mutual information and of the
        dimension-wise KL; ``beta`` weights its total correlation.
    """

    epochs: int = 10
    batch_size: int = 128
    lr: float = 1e-3
    beta: float = 1.0
    kl_anneal: str = "none"
    warmup_epochs: float = 0.0
    anneal_cycles: int = 4
    seed: int = 0
    device: str = "auto"
    num_threads: int | None = None
    yield_interval: float = 0.1
    eval_batch_size: int = 1000
    objective: str = "elbo"
    samples: int = 1
    alpha: float = 1.0
    gamma: float = 1.0

    def __post_init__(self) -> None:
        # Ranges are documented in LIMITS and in the CLI's --help; NaN is never in one
        # (a NaN beta trains into a NaN loss that would wrongly blame the learning rate).
        for name, (low, high) in LIMITS.items():
            value = getattr(self, name)
            if name == "num_threads" and value is None:
                continue
            if isinstance(low, int) and isinstance(high, int):
                setattr(self, name, whole(name, value, low, high))
            else:
                setattr(self, name, real(name, value, low, high, low_open=name == "lr"))
        if not isinstance(self.kl_anneal, str) or self.kl_anneal not in KL_ANNEALING:
            raise ConfigError(f"kl_anneal must be one of {', '.join(KL_ANNEALING)}, got {self.kl_anneal!r}.")
        if not isinstance(self.device, str) or self.device not in DEVICES:
            raise ConfigError(f"device must be one of {', '.join(DEVICES)}, got {self.device!r}.")
        if not isinstance(self.objective, str) or self.objective not in OBJECTIVES:
            raise ConfigError(f"objective must be one of {', '.join(OBJECTIVES)}, got {self.objective!r}.")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        if not isinstance(values, dict):
            raise ConfigError(f"A training config must be a mapping of names to values, not {type(values).__name__}.")
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})


@dataclass(frozen=True)
class TrainProgress:
    """One report from :func:`iter_training`.

    ``kind`` is ``"step"`` during an epoch and ``"epoch"`` once it ends. Only epoch reports
    carry the fields below; they are copies that other threads may use freely (never the
    live module or optimizer), and together they are what a caller needs to write a
    checkpoint that resumes exactly.

    Attributes
    ----------
    test : dict or None
        Test-set metrics of :func:`vae_core.metrics.evaluate` (``neg_elbo``, ``recon``,
        ``kl``, ``kl_per_dim``, ``active_units``); None without a test split.
    weights : dict of str to Tensor or None
        CPU copy of the model's ``state_dict``.
    optimizer_state : dict or None
        CPU copy of the Adam ``state_dict``, for ``save_checkpoint(optimizer_state=...)``.
    history_entry : dict or None
        This epoch's row of the training history (the list :func:`iter_training` returns
        and checkpoints store): ``epoch`` (1-based), ``step``, ``seconds``,
        ``images_per_sec``, ``train_<loss term>`` and ``test_<metric>``.
    """

    kind: str
    epoch: int
    epochs: int
    step: int
    steps_per_epoch: int
    total_steps: int
    images_per_sec: float
    elapsed: float
    losses: dict[str, float]
    kl_per_dim: tuple[float, ...] | None = None
    test: dict[str, Any] | None = None
    weights: dict[str, Tensor] | None = field(default=None, repr=False)
    optimizer_state: dict | None = field(default=None, repr=False)
    history_entry: dict | None = None

    @property
    def fraction(self) -> float:
        return self.step / max(1, self.total_steps)

    @property
    def eta(self) -> float:
        """Seconds left, estimated from the pace so far."""
        done = self.step
        return self.elapsed / done * (self.total_steps - done) if done else float("nan")


def resolve_device(device: str = "auto") -> torch.device:
    """Turn ``auto|cpu|cuda|mps`` into a torch device, with a clear error if absent."""
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("CUDA was requested but no CUDA GPU is available: use --device cpu or auto.")
    if device == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ConfigError("MPS was requested but this machine has no Apple GPU: use --device cpu or auto.")
    return torch.device(device)


def available_devices() -> list[str]:
    """Devices this machine can train on, best first (for pickers)."""
    found = ["cpu"]
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        found.insert(0, "mps")
    if torch.cuda.is_available():
        found.insert(0, "cuda")
    return found


def kl_weight(config: TrainConfig, step: int, steps_per_epoch: int, total_steps: int) -> float:
    """KL weight at optimizer ``step`` under ``config``'s annealing schedule."""
    if config.kl_anneal == "linear" and config.warmup_epochs > 0:
        return config.beta * min(1.0, step / (config.warmup_epochs * steps_per_epoch))
    if config.kl_anneal == "cyclical":
        period = max(1, total_steps / max(1, config.anneal_cycles))
        phase = (step % period) / period
        return config.beta * min(1.0, phase / 0.5)  # ramp during the first half, then hold
    return config.beta


def check_compatible(model: BaseVAE, data: DatasetSplits) -> None:
    """Raise :class:`ShapeMismatchError` if ``model`` cannot train on ``data``."""
    if tuple(model.image_shape) != tuple(data.image_shape):
        c, h, w = model.image_shape
        dc, dh, dw = data.image_shape
        raise ShapeMismatchError(
            f"The model reads {c}×{h}×{w} images but the dataset has {dc}×{dh}×{dw} images."
        )
    if model.conditional:
        if data.train.labels is None:
            raise ShapeMismatchError("A conditional model needs a labelled dataset.")
        if data.num_classes != model.num_classes:
            raise ShapeMismatchError(
                f"The model is conditioned on {model.num_classes} classes but the dataset has {data.num_classes}."
            )


def state_dict_copy(model: torch.nn.Module) -> dict[str, Tensor]:
    """A detached CPU copy of the weights, safe to hand to another thread."""
    module = getattr(model, "module", model)
    return {k: v.detach().to("cpu", copy=True) for k, v in module.state_dict().items()}


def optimizer_state_copy(optimizer: torch.optim.Optimizer) -> dict:
    """A CPU copy of ``optimizer.state_dict()``: Adam updates its tensors in place."""

    def copy(value):
        if isinstance(value, Tensor):
            return value.detach().to("cpu", copy=True)
        if isinstance(value, dict):
            return {k: copy(v) for k, v in value.items()}
        if isinstance(value, list):
            return [copy(v) for v in value]
        return value

    return copy(optimizer.state_dict())


def _distributed() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def iter_training(
    model: BaseVAE,
    data: DatasetSplits,
    config: TrainConfig,
    *,
    history: list[dict] | None = None,
    optimizer_state: dict | None = None,
) -> Generator[TrainProgress, None, list[dict]]:
    """Train ``model`` on ``data.train``, yielding progress; return the epoch history.

    Parameters
    ----------
    history : list of dict, optional
        History of earlier training (e.g. from a checkpoint): epochs continue from it.
    optimizer_state : dict, optional
        Adam state to resume from.

    Yields
    ------
    TrainProgress
        ``"step"`` reports at most every ``config.yield_interval`` seconds and one
        ``"epoch"`` report after each epoch's test evaluation.

    Raises
    ------
    NonFiniteLossError
        If the loss becomes NaN/inf; the weights of the last completed epoch (or the
        starting weights) are restored first.
    ShapeMismatchError
        If the model does not fit the dataset.
    """
    check_compatible(model, data)
    n_values = sum(p.numel() for p in model.parameters())
    # Weights, gradients and Adam's two moments, float32 each.
    check_memory(16 * n_values, f"Training a model with {n_values:,} parameters",
                 "choose a smaller model or image size")
    check_objective(model, config.objective, config.samples)
    device = resolve_device(config.device)
    rank, world = _distributed()
    previous_threads = torch.get_num_threads()
    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    history = list(history or [])
    first_epoch = len(history)
    try:
        torch.manual_seed(config.seed + first_epoch)
        model.to(device).train()
        net = ObjectiveStep(model, config.objective, samples=config.samples, alpha=config.alpha,
                            gamma=config.gamma, dataset_size=len(data.train))
        if world > 1:
            from torch.nn.parallel import DistributedDataParallel

            net = DistributedDataParallel(net, device_ids=[device.index] if device.type == "cuda" else None)
        # Models with adversarial parts (vaegan) run their own alternating updates.
        custom_step = getattr(model, "train_step", None)
        optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
        if optimizer_state:
            optimizer.load_state_dict(optimizer_state)

        # The stored pixels (uint8 for 8-bit data: a quarter of float32's memory, also on a
        # GPU); each batch is gathered, then converted by the one rule, to_unit_float.
        stored = data.train.images
        images = torch.from_numpy(stored if stored.flags.writeable else stored.copy())
        labels = torch.from_numpy(data.train.labels) if data.train.labels is not None else None
        if device.type != "cpu":
            images = images.to(device)
            labels = labels.to(device) if labels is not None else None
        n = images.shape[0]
        per_rank = n // world if world > 1 else n
        steps_per_epoch = math.ceil(per_rank / config.batch_size)
        shuffle = torch.Generator().manual_seed(config.seed)
        good_weights = state_dict_copy(model)
        start = time.perf_counter()
        step = 0

        for epoch in range(config.epochs):
            epoch_start = time.perf_counter()
            order = torch.randperm(n, generator=shuffle)
            if world > 1:  # every rank draws the same permutation and takes its share
                order = order[rank : per_rank * world : world]
            sums: dict[str, Tensor] = {}  # every scalar term the objective names
            binarizer = (torch.Generator(device=device).manual_seed(binarization_seed(config.seed, first_epoch + epoch))
                         if data.train.binarize else None)
            kl_dims = torch.zeros(model.latent_dim, dtype=torch.float64)
            seen = 0
            last_yield = time.perf_counter()
            for b in range(steps_per_epoch):
                idx = order[b * config.batch_size : (b + 1) * config.batch_size]
                if device.type != "cpu":
                    idx = idx.to(device)
                # index_select, not images[idx]: 13 µs against 220 µs for a batch of 128
                # MNIST images on one CPU thread (advanced indexing takes a generic path).
                x = to_unit_float(torch.index_select(images, 0, idx))
                y = torch.index_select(labels, 0, idx) if labels is not None else None
                if binarizer is not None:  # dynamic binarization: a fresh binary image every epoch
                    x = torch.bernoulli(x, generator=binarizer)
                beta = kl_weight(config, first_epoch * steps_per_epoch + step, steps_per_epoch,
                                 (first_epoch + config.epochs) * steps_per_epoch) if config.kl_anneal != "none" else config.beta

                def check_finite(loss: Tensor) -> None:
                    if not torch.isfinite(loss):
                        model.load_state_dict(good_weights)
                        raise NonFiniteLossError(
                            f"The loss became {loss.detach().item()} at epoch {first_epoch + epoch + 1}, step {step + 1}. "
                            "Training stopped and the last good weights were kept; try a lower learning rate."
                        )

                if custom_step is not None:
                    terms = custom_step(x, y, optimizer, lambda: net(x, y, beta), check_finite)
                else:
                    terms = net(x, y, beta)
                    check_finite(terms["loss"])
                    optimizer.zero_grad(set_to_none=True)
                    terms["loss"].backward()
                    optimizer.step()
                step += 1
                bs = x.shape[0]
                seen += bs
                for name, value in terms.items():
                    if name != "kl_per_dim" and value.dim() == 0:
                        sums[name] = sums.get(name, 0.0) + value.detach().double().cpu() * bs
                kl_dims += terms["kl_per_dim"].detach().double().cpu() * bs
                now = time.perf_counter()
                if now - last_yield >= config.yield_interval and b + 1 < steps_per_epoch:
                    last_yield = now
                    yield _progress("step", first_epoch + epoch, first_epoch + config.epochs, first_epoch * steps_per_epoch + step,
                                    steps_per_epoch, (first_epoch + config.epochs) * steps_per_epoch,
                                    seen * world / (now - epoch_start), now - start, sums, kl_dims, seen, beta)

            train_seconds = time.perf_counter() - epoch_start
            model.eval()
            test = evaluate(model, data.test, batch_size=config.eval_batch_size, device=device) if len(data.test) else None
            model.train()
            now = time.perf_counter()
            good_weights = state_dict_copy(model)
            report = _progress("epoch", first_epoch + epoch, first_epoch + config.epochs, first_epoch * steps_per_epoch + step,
                               steps_per_epoch, (first_epoch + config.epochs) * steps_per_epoch,
                               seen * world / train_seconds, now - start, sums, kl_dims, seen, beta,
                               test=test, weights=good_weights)
            report = dataclasses.replace(report, history_entry=_history_entry(report),
                                         optimizer_state=optimizer_state_copy(optimizer))
            history.append(report.history_entry)
            yield report
    finally:
        model.eval()
        if config.num_threads:
            torch.set_num_threads(previous_threads)
    return history


def _progress(kind, epoch, epochs, step, steps_per_epoch, total_steps, ips, elapsed, sums, kl_dims, seen, beta, *, test=None, weights=None):
    losses = {name: float(total) / max(1, seen) for name, total in sums.items()}
    losses["beta"] = float(beta)
    return TrainProgress(
        kind=kind, epoch=epoch, epochs=epochs, step=step, steps_per_epoch=steps_per_epoch, total_steps=total_steps,
        images_per_sec=float(ips), elapsed=float(elapsed),
        losses=losses,
        kl_per_dim=tuple((kl_dims / max(1, seen)).tolist()), test=test, weights=weights,
    )


def binarization_seed(seed: int, epoch: int) -> int:
    """Seed of the Bernoulli draws that binarize the training images in ``epoch`` (0-based).

    Derived from the run's seed and the epoch number, so a resumed run draws the same
    images as an uninterrupted one and every epoch sees new ones.
    """
    return (int(seed) * 1_000_003 + int(epoch) + 1) % (2**63 - 1)


def _history_entry(report: TrainProgress) -> dict:
    # The row an epoch adds to history.json; callers read it as TrainProgress.history_entry.
    entry = {"epoch": report.epoch + 1, "step": report.step, "seconds": round(report.elapsed, 3),
             "images_per_sec": round(report.images_per_sec, 1)}
    entry.update({f"train_{k}": v for k, v in report.losses.items()})
    if report.test:
        entry.update({f"test_{k}": v for k, v in report.test.items() if k != "kl_per_dim"})
        entry["test_kl_per_dim"] = report.test.get("kl_per_dim")
    return entry


class Callback:
    """Base class for :func:`fit` callbacks; override the hooks you need."""

    def on_step(self, progress: TrainProgress) -> None: ...

    def on_epoch_end(self, progress: TrainProgress) -> None: ...

    def should_stop(self) -> bool:
        return False


def fit(model: BaseVAE, data: DatasetSplits, config: TrainConfig, callbacks: Iterable[Callback] = (), **kwargs) -> list[dict]:
    """Run :func:`iter_training` to the end (or until a callback asks to stop)."""
    callbacks = list(callbacks)
    gen = iter_training(model, data, config, **kwargs)
    history: list[dict] = list(kwargs.get("history") or [])
    try:
        while True:
            try:
                report = next(gen)
            except StopIteration as done:
                return done.value
            for cb in callbacks:
                (cb.on_epoch_end if report.kind == "epoch" else cb.on_step)(report)
            if report.kind == "epoch":
                history.append(report.history_entry)
            if any(cb.should_stop() for cb in callbacks):
                return history
    finally:
        gen.close()
