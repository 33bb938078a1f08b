"""Training options and the planning of a run (no Qt).

:class:`TrainingOptions` is what the Training panel's form says, as plain values (the
settings keep them between sessions). :func:`training_config` checks them and gives the
run's :class:`vae_core.TrainConfig`; :func:`prepare_run` decides what is trained on
the loaded data:

* *continue*: the open model, if it fits the data (:meth:`ExplorerState.compatible`), with
  its history and its optimizer state at this run's learning rate
  (:func:`with_learning_rate`: Adam would restore the old one);
* *new*: a model built for the data from the options (:func:`build_model_for`), made the
  document's model, with an empty history.

Problems are :class:`TrainingProblem` (a title and one sentence for people), so the window
only has to show them.
"""

from __future__ import annotations

import dataclasses
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vae_core import BaseVAE, DatasetSplits, TrainConfig

_DISPLAY = {
    "digits": "Digits (8×8, bundled)",
    "mnist": "MNIST",
    "fashion-mnist": "Fashion-MNIST",
    "kmnist": "KMNIST (Kuzushiji)",
    "cifar10": "CIFAR-10",
    "shapes": "Shapes (64×64)",
    "shapes:32": "Shapes (32×32)",
    "dsprites": "dSprites (737,280)",
}
def dataset_display_name(spec: str) -> str:
    """A short name for a dataset spec: ``"MNIST"``, ``"Images in cats"``, ``"faces.npz"``."""
    if spec in _DISPLAY:
        return _DISPLAY[spec]
    kind, _, arg = spec.partition(":")
    if kind == "folder" and arg:
        return f"Images in {Path(arg).name or arg}"
    if kind == "npz" and arg:
        return Path(arg).name
    if kind == "shapes" and arg:
        return f"Shapes ({arg}×{arg})"
    if kind == "dsprites" and arg:
        return f"dSprites ({int(arg):,})" if arg.isdigit() else f"dSprites ({arg})"
    return spec


@dataclass
class TrainingOptions:
    """Everything the form says, as plain values (saved in the settings between runs)."""

    dataset: str = "digits"
    data_root: str = ""
    continue_training: bool = False
    model: str = "mlp"
    latent_dim: int = 2
    hidden: tuple[int, ...] = (256, 128)
    likelihood: str = "auto"          # auto | bernoulli | gaussian
    epochs: int = 20
    batch_size: int = 64
    lr: float = 2e-3
    beta: float = 1.0
    kl_anneal: str = "none"
    warmup_epochs: float = 5.0
    seed: int = 0
    device: str = "auto"
    # The objective (TrainConfig.objective) and its settings; samples only serve iwae,
    # alpha and gamma only tcvae (beta weights tcvae's total correlation).
    objective: str = "elbo"
    samples: int = 5
    alpha: float = 1.0
    gamma: float = 1.0
    # Model family settings (vae_core.model_options); each applies to its own model only.
    flow_steps: int = 2
    lower_dims: tuple[int, ...] = (100,)
    map_layer: str = "top"
    gan_weight: float = 1.0
    feature_weight: float = 1.0
    codebook_size: int = 256
    commitment_weight: float = 0.25
    ema: bool = True
    ema_decay: float = 0.99
    dead_code_threshold: float = 1.0
    prior_width: int = 64
    prior_layers: int = 2
    prior_heads: int = 4
    tensorboard: bool = False         # also log the run for TensorBoard
    tensorboard_dir: str = ""         # where runs are logged ("" = DEFAULT_TENSORBOARD_DIR)

    def to_dict(self) -> dict:
        values = dataclasses.asdict(self)
        values["hidden"] = list(self.hidden)
        values["lower_dims"] = list(self.lower_dims)
        return values

    @classmethod
    def from_dict(cls, values: dict | None) -> "TrainingOptions":
        defaults = cls()
        if not isinstance(values, dict):
            return defaults
        clean = {}
        for f in dataclasses.fields(cls):
            if f.name not in values:
                continue
            value, default = values[f.name], getattr(defaults, f.name)
            try:
                if f.name in ("hidden", "lower_dims"):
                    value = tuple(int(v) for v in value)
                elif isinstance(default, bool):
                    value = value in (True, "true", "True", 1, "1")
                elif isinstance(default, int):
                    value = int(value)
                elif isinstance(default, float):
                    value = float(value)
                else:
                    value = str(value)
            except (TypeError, ValueError):
                continue
            clean[f.name] = value
        return dataclasses.replace(defaults, **clean)

    def model_settings(self) -> dict:
        """The chosen family settings of :attr:`model` (see :func:`vae_core.model_options.family_config`)."""
        from vae_core.model_options import options_for

        return {o.name: getattr(self, o.name) for o in options_for(self.model) if hasattr(self, o.name)}

    def train_config(self, **overrides):
        """The :class:`vae_core.TrainConfig` for these options."""
        from vae_core import TrainConfig

        values = dict(epochs=self.epochs, batch_size=self.batch_size, lr=self.lr, beta=self.beta,
                      kl_anneal=self.kl_anneal, warmup_epochs=self.warmup_epochs if self.kl_anneal == "linear" else 0.0,
                      seed=self.seed, device=self.device, objective=self.objective,
                      samples=self.samples if self.objective == "iwae" else 1,
                      alpha=self.alpha if self.objective == "tcvae" else 1.0,
                      gamma=self.gamma if self.objective == "tcvae" else 1.0)
        values.update(overrides)
        return TrainConfig(**values)


#: Where the Training panel logs TensorBoard runs unless told otherwise.
DEFAULT_TENSORBOARD_DIR = Path.home() / "latent-explorer" / "tensorboard"


def tensorboard_run_dir(options: TrainingOptions, data: DatasetSplits, model_name: str, when=None) -> Path | None:
    """The folder of this run's TensorBoard log, or None when logging is off.

    Each run gets its own subfolder (``mnist-conv-20240131-142501``) of the chosen folder,
    so ``tensorboard --logdir <folder>`` lists the runs side by side.
    """
    if not options.tensorboard:
        return None
    import datetime

    when = when or datetime.datetime.now()
    root = Path(options.tensorboard_dir).expanduser() if options.tensorboard_dir else DEFAULT_TENSORBOARD_DIR
    dataset = data.spec.partition(":")[0]
    return root / f"{dataset}-{model_name}-{when:%Y%m%d-%H%M%S}"


class TrainingProblem(ValueError):
    """Why a run cannot start: ``title``, one sentence (``str(problem)``), a ``level``
    (``info``/``warning``/``error``) and technical ``details`` (possibly empty)."""

    def __init__(self, title: str, text: str, *, level: str = "warning", details: str = "") -> None:
        super().__init__(text)
        self.title = title
        self.level = level
        self.details = details


@dataclass
class TrainingRun:
    """What a training worker is given: its own ``model`` copy, the data, the config, and
    the history and optimizer state it continues from."""

    model: BaseVAE
    data: DatasetSplits
    config: TrainConfig
    history: list[dict]
    optimizer_state: dict | None
    tensorboard_dir: Path | None = None


def training_config(document, options: TrainingOptions) -> TrainConfig:
    """The run's :class:`vae_core.TrainConfig` for ``options``, checked against the document.

    Raises
    ------
    TrainingProblem
        Continuing without a model, or settings the engine refuses.
    """
    if options.continue_training and document.model is None:
        raise TrainingProblem("No model to continue", "Open a checkpoint first, or choose “New model”.", level="info")
    reason = document.limitation("train")
    if reason is not None:
        raise TrainingProblem("This model is not trained here", reason, level="info")
    try:
        return options.train_config()
    except ValueError as exc:
        raise TrainingProblem("Check the training settings", str(exc)) from None


@dataclass
class NewModel:
    """A new run's model, built and checked ahead of :func:`prepare_run` (in a worker thread).

    ``model`` is the copy that trains; ``snapshot`` the eval-mode copy the document takes as
    its own (:func:`explorer.state.document.eval_copy`), so neither is copied on the GUI thread.
    """

    model: BaseVAE
    snapshot: BaseVAE


def build_new_model(data: DatasetSplits, options: TrainingOptions, config: TrainConfig) -> NewModel:
    """The model a new run of ``options`` trains on ``data``, checked against ``config``'s objective.

    Safe in a worker thread. It draws the initial weights from torch's global generator,
    seeded by ``options.seed`` and restored afterwards; the window calls it only while no run
    trains (training is the one job that draws from that generator; the others have their own).

    Raises
    ------
    TrainingProblem
        The model cannot be built for ``data``, or cannot train with the objective.
    """
    from explorer.state.document import eval_copy
    from vae_core.objectives import check_objective

    try:
        model = build_model_for(data, options.model, latent_dim=options.latent_dim, hidden=options.hidden or None,
                                likelihood=None if options.likelihood == "auto" else options.likelihood,
                                seed=options.seed, settings=options.model_settings())
    except ValueError as exc:
        details = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)).rstrip()
        raise TrainingProblem("Cannot build this model", str(exc), details=details) from None
    try:
        check_objective(model, config.objective, config.samples)
    except ValueError as exc:
        raise TrainingProblem("This model cannot train with this objective", str(exc)) from None
    return NewModel(model, eval_copy(model))


@dataclass(frozen=True)
class ContinuedModel:
    """A continued run's trainable copy of ``source``, the document's model, made in a worker.

    :func:`prepare_run` uses it only while ``source`` is still the document's model.
    """

    source: BaseVAE
    model: BaseVAE


def load_for_run(options: TrainingOptions, config: TrainConfig, data_root=None, *, current: DatasetSplits | None = None,
                 progress=None, model: BaseVAE | None = None
                 ) -> tuple[DatasetSplits, NewModel | ContinuedModel | TrainingProblem | None]:
    """What a run needs that is slow to make, for a worker thread: the data and the model to train.

    The data is ``current`` when it is the dataset ``options`` ask for, else it is loaded. The
    second item is the built model of a new run (:func:`build_new_model`) or the
    :class:`TrainingProblem` that prevented it; for a run that continues ``model`` (the
    document's), a :class:`ContinuedModel` with its trainable copy; None when a continued run
    was given no model.

    Raises
    ------
    Exception
        Whatever :func:`vae_core.load_dataset` raises for data it cannot load.
    """
    from explorer.state.document import same_dataset

    if current is not None and same_dataset(current, options.dataset):
        data = current
    else:
        from vae_core import load_dataset

        data = load_dataset(options.dataset, data_root, progress=progress)
    if options.continue_training:
        from explorer.state.document import trainable_copy

        return data, None if model is None else ContinuedModel(model, trainable_copy(model))
    try:
        return data, build_new_model(data, options, config)
    except TrainingProblem as problem:
        return data, problem


def prepare_run(document, options: TrainingOptions, data: DatasetSplits, config: TrainConfig,
                new: NewModel | ContinuedModel | None = None) -> TrainingRun:
    """Make ``data`` (and for a new run, the new model) the document's; return the run.

    ``new``: the model to train when it was made ahead (:func:`load_for_run`): a new run's
    :class:`NewModel`, or a continued run's :class:`ContinuedModel` (used while its source is
    still the document's model). Otherwise it is made here. Nothing in the document changes
    when a :class:`TrainingProblem` is raised.

    Raises
    ------
    TrainingProblem
        The open model does not fit ``data`` (continue), or the model cannot be built (new).
    """
    from vae_core.objectives import check_objective

    if options.continue_training:
        try:
            check_objective(document.model, config.objective, config.samples)
        except ValueError as exc:
            raise TrainingProblem("This model cannot train with this objective", str(exc)) from None
        problem = document.compatible(document.model, data)
        if problem:
            raise TrainingProblem("This model cannot train on this dataset",
                                  f"{problem} Choose “New model” to train one for {dataset_display_name(data.spec)}, "
                                  "or pick the dataset the model was trained on.")
        if data is not document.dataset:
            document.set_dataset(data)
        ahead = isinstance(new, ContinuedModel) and new.source is document.model
        return TrainingRun(new.model if ahead else document.trainable_copy(), data, config, list(document.history),
                           with_learning_rate(document.optimizer_state, config.lr),
                           tensorboard_run_dir(options, data, document.model.name))
    if not isinstance(new, NewModel):
        new = build_new_model(data, options, config)
    if data is not document.dataset:
        document.set_dataset(data)
    document.set_model(new.snapshot, own=True, dirty=False)
    return TrainingRun(new.model.train(), data, config, [], None,
                       tensorboard_run_dir(options, data, new.model.name))


def with_learning_rate(optimizer_state: dict | None, lr: float) -> dict | None:
    """The saved Adam state with the learning rate of this run (Adam restores the old one otherwise)."""
    if not optimizer_state:
        return optimizer_state
    groups = [dict(g, lr=lr) for g in optimizer_state.get("param_groups", [])]
    return {"state": optimizer_state.get("state", {}), "param_groups": groups}


def build_model_for(data: DatasetSplits, name: str, *, latent_dim: int, hidden=None,
                    likelihood: str | None = None, seed: int = 0, settings: dict | None = None) -> BaseVAE:
    """A new model ``name`` shaped for ``data``, its initial weights drawn from ``seed``.

    Parameters
    ----------
    hidden : sequence of int, optional
        Hidden sizes: the layers of ``mlp``/``cvae``; for ``conv`` the first number is the
        width of the fully-connected layer. ``None`` keeps the model's default.
    likelihood : {"bernoulli", "gaussian"}, optional
        Decoder likelihood; ``None`` takes the dataset's suggestion.
    settings : dict, optional
        The model family's settings (``flow_steps``, ``lower_dims``, ``map_layer``,
        ``gan_weight``, ...), checked by :func:`vae_core.model_options.family_config`;
        settings of other families are ignored.

    Raises
    ------
    vae_core.training.ShapeMismatchError
        If a conditional model is asked for on unlabelled data.
    """
    import torch

    from vae_core import build_model, model_config_class
    from vae_core.model_options import family_config
    from vae_core.training import ShapeMismatchError

    config: dict = {"image_shape": tuple(data.image_shape), "latent_dim": int(latent_dim),
                    "likelihood": likelihood or data.likelihood}
    if name == "cvae":
        if data.num_classes < 2:
            raise ShapeMismatchError(f"A conditional VAE needs a labelled dataset; {data.spec} has no labels.")
        config["num_classes"] = data.num_classes
    # vqvae has no fully-connected layers: the panel's hidden sizes do not apply to it.
    takes_hidden = "hidden" in {f.name for f in dataclasses.fields(model_config_class(name))}
    if hidden and takes_hidden:
        hidden = tuple(int(h) for h in hidden)
        # conv and vaegan take one fully-connected width; the others a size per layer.
        single = isinstance(getattr(model_config_class(name)(), "hidden", None), int)
        config["hidden"] = hidden[0] if single else hidden
    config.update(family_config(name, {**(settings or {}), "latent_dim": int(latent_dim)},
                                hidden=hidden if name == "hvae" else None))
    # Seed the initial weights without disturbing the caller's random stream.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        return build_model(name, **config)
