"""The document (no Qt): the open model, its dataset, their codes, saving and opening.

Widgets write user input into these objects and listen to their psygnal signals;
tests drive them with no window at all. :class:`ExplorerState` holds

* the dataset, the model snapshot the GUI decodes with, its history and optimizer state,
  the checkpoint path and unsaved changes, the data root, training status;
* the dataset's codes (posterior means and log-variances of ``dataset.all()``) and their
  per-dimension statistics, set by whoever encoded them (:meth:`ExplorerState.set_codes`;
  in the application the encoding job of :mod:`explorer.jobs.encoding`, started by the
  main window whichever panels are open);

and composes the parts that depend on it:

* ``state.marks`` (:class:`explorer.state.marks.Marks`) — pins, groups, selection;
* ``state.map`` (:class:`explorer.state.map.MapState`) — projection, layout, cursor;
* ``state.studio`` (:class:`explorer.state.studio.StudioState`) — one object per feature.

Each part subscribes to the document's signals itself. Saving writes the map's projection,
the pins and the groups beside the weights (:data:`MAP_FILES`); opening restores them.

Threading rule: the model held here is an eval-mode CPU *snapshot*. Training runs on
its own module in a worker thread and only sends weight copies back
(:meth:`ExplorerState.apply_weights`), so decoding under the cursor never touches
a module that is being trained. :meth:`ExplorerState.trainable_copy` gives the
worker its own module; :func:`read_checkpoint` is a
pure function a worker thread may call, the ``set_*``/``adopt_*`` methods run on
the GUI thread.

The engine (``vae_core``, hence torch) is imported on first use rather than at
import time, so the application window can appear before torch has loaded.

Why this module is a little over 700 lines: saving and opening (checkpoints with the map's
files beside them) stay with the document they write and restore; the parts it composes
(marks, map, studio, measures) are modules of their own.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from psygnal import Signal

from explorer.state.files import write_atomic

if TYPE_CHECKING:
    from vae_core import BaseVAE, Checkpoint, DatasetSplits
    from vae_core.training import TrainProgress

TRAINING_STATES = ("idle", "running", "paused", "stopping")
TRAINING_OUTCOMES = ("completed", "stopped", "failed")
DATASET_OPTION_KEYS = ("image_size", "channels", "seed", "test_fraction")

class ExplorerState:
    """The document: one dataset, one model snapshot, their codes and history."""

    dataset_changed = Signal(object)       # DatasetSplits | None
    model_changed = Signal(object)         # a different model (architecture or checkpoint)
    weights_changed = Signal()             # same model, new weights (after an epoch) or new decoding
    codes_changed = Signal()               # self.codes recomputed
    dirty_changed = Signal(bool)           # unsaved trained weights
    checkpoint_path_changed = Signal(object)
    data_root_changed = Signal(object)     # Path | None
    history_changed = Signal()
    training_status_changed = Signal(str)  # one of TRAINING_STATES
    training_progressed = Signal(object)   # TrainProgress
    training_started = Signal(object)      # the run's TrainConfig
    training_finished = Signal(str)        # one of TRAINING_OUTCOMES
    message_posted = Signal(str, str)      # level ("info" | "warning" | "error"), text

    def __init__(self) -> None:
        from explorer.state.map import MapState
        from explorer.state.marks import Marks
        from explorer.state.measures import MeasuresState
        from explorer.state.studio import StudioState
        from explorer.state.vq import VQState

        self.dataset: DatasetSplits | None = None
        self.model: BaseVAE | None = None
        self.checkpoint_path: Path | None = None
        self.data_root: Path | None = None       # where torchvision datasets live (None: core default)
        self.history: list[dict] = []
        self.train_config: dict | None = None
        self.optimizer_state: dict | None = None
        self.dirty = False
        self.training_status = "idle"
        self.last_progress: TrainProgress | None = None
        self.codes: np.ndarray | None = None     # N×d posterior means of dataset.all()
        # Bumped whenever the encoder may map images elsewhere; a change of decoding only
        # (an hvae's lower-layer noise) keeps it, so the codes need not be encoded again.
        self.encoder_revision = 0
        self.logvar: np.ndarray | None = None
        self._code_stats: dict[str, np.ndarray] = {}
        self._all = None
        self._present_labels: tuple[int, ...] | None = None
        self.marks = Marks(self)
        self.map = MapState(self, self.marks)
        self.studio = StudioState(self, self.marks, self.map)
        self.vq = VQState(self, self.marks, self.map, self.studio)
        self.measures = MeasuresState(self)

    def post_message(self, level: str, text: str) -> None:
        """Tell the user something (the status bar shows it): ``info``, ``warning`` or ``error``."""
        self.message_posted.emit(level, text)

    def set_data_root(self, root) -> None:
        """Where torchvision datasets live (None: the engine's default folder)."""
        root = Path(root) if root not in (None, "") else None
        if root != self.data_root:
            self.data_root = root
            self.data_root_changed.emit(root)

    # -- dataset -----------------------------------------------------------------------------
    def set_dataset(self, data: DatasetSplits | None) -> None:
        self.dataset = data
        self._all = None
        self._present_labels = None
        self._forget_codes()
        self.dataset_changed.emit(data)

    def load_dataset(self, spec: str, data_root=None, **options) -> DatasetSplits:
        from vae_core import load_dataset

        data = load_dataset(spec, data_root if data_root is not None else self.data_root, **options)
        self.set_dataset(data)
        return data

    @property
    def all_data(self):
        """``dataset.all()`` (train then test), cached: map indices refer to this order."""
        if self._all is None and self.dataset is not None:
            self._all = self.dataset.all()
        return self._all

    @property
    def images(self) -> np.ndarray | None:
        """The stored pixels of ``all_data`` (``uint8`` or float32; see
        :class:`vae_core.ImageDataset`). To look at them, use :meth:`float_images`."""
        return None if self.all_data is None else self.all_data.images

    def float_images(self, index) -> np.ndarray:
        """Images ``index`` (int, slice or index array) of ``all_data`` as float32 in [0, 1]."""
        if self.all_data is None:
            raise ValueError("Load a dataset first.")
        return self.all_data.floats(index)

    @property
    def labels(self) -> np.ndarray | None:
        return None if self.all_data is None else self.all_data.labels

    @property
    def present_labels(self) -> tuple[int, ...]:
        """The distinct labels of the dataset, sorted (empty when unlabeled).

        Kept per dataset: views refresh their class lists whenever new codes arrive, and
        sorting 70,000 labels each time would hold the GUI thread for nothing.
        """
        if self._present_labels is None:
            labels = self.labels
            self._present_labels = () if labels is None else tuple(int(y) for y in np.unique(labels))
        return self._present_labels

    @property
    def num_points(self) -> int:
        """Points of ``dataset.all()`` (0 without a dataset)."""
        return 0 if self.dataset is None else len(self.dataset.train) + len(self.dataset.test)

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.dataset.class_names if self.dataset is not None else ()

    # -- model -------------------------------------------------------------------------------
    def set_model(self, model: BaseVAE | None, *, history=None, path=None, train_config=None,
                  optimizer_state=None, dirty=False, own=False) -> None:
        """Make ``model`` current (a CPU eval copy is kept; the caller keeps its own).

        ``own=True``: ``model`` is already such a copy (:func:`eval_copy`, made e.g. in a
        worker thread) and nobody else holds it; the document takes it as it is.
        """
        if own and model is not None and (model.training or any(p.requires_grad for p in model.parameters())):
            raise ValueError("set_model(own=True) takes an eval_copy(), not a model that trains.")
        self.model = (model if own else eval_copy(model)) if model is not None else None
        self.encoder_revision += 1
        self.history = list(history or [])
        self.train_config = train_config
        self.optimizer_state = optimizer_state
        self._forget_codes()
        self._set_path(path)
        self._set_dirty(dirty)
        self.model_changed.emit(self.model)
        self.history_changed.emit()

    def limitation(self, capability: str) -> str | None:
        """Why the open model cannot do ``capability`` (one sentence), or None when it can.

        Capabilities are those of :data:`vae_core.adapter.CAPABILITIES` (``train``,
        ``checkpoint``, ``logvar``, ``evaluate``, ...): a model written elsewhere and opened
        through an adapter may lack some; ours lack none. Widgets disable what this
        names and show the sentence as the tooltip.
        """
        if self.model is None:
            return None
        from vae_core.adapter import limitation

        return limitation(self.model, capability)

    def adopt_adapted_model(self, model: BaseVAE, data: DatasetSplits | None = None) -> None:
        """Make a model opened through an adapter (:func:`read_adapted_model`) current."""
        if data is not None and data is not self.dataset:
            self.set_dataset(data)
        self.set_model(model, path=None, dirty=False)

    def compatible(self, model: BaseVAE | None = None, dataset: DatasetSplits | None = None) -> str | None:
        """None if the model fits the dataset, else a sentence saying why not."""
        from vae_core.training import ShapeMismatchError, check_compatible

        model = model or self.model
        dataset = dataset or self.dataset
        if model is None or dataset is None:
            return None
        try:
            check_compatible(model, dataset)
        except ShapeMismatchError as exc:
            return str(exc)
        return None

    def set_map_code(self, choice: str) -> None:
        """Show another of the model's codes on the map (an ``hvae`` layer, or all layers).

        The snapshot's code changes, not its weights: ``model_changed`` tells every view
        (the encoding job encodes the dataset again, the map fits a new layout) and the
        history stays. Pins that came from data points follow them into the new code.

        Raises
        ------
        ValueError
            Without a model, or for a choice the model does not offer.
        """
        if self.model is None:
            raise ValueError("There is no model whose map code could change.")
        if choice == self.model.map_code_choice:
            return
        self.model.set_map_code(choice)
        self.encoder_revision += 1
        self._forget_codes()
        self.model_changed.emit(self.model)

    def set_lower_noise(self, seed: int | None) -> None:
        """Decode with the layers below the map code sampled from fixed noise (``seed``) or at
        their means (None): an ``hvae`` whose map shows a layer above the bottom.

        Only decoding changes, so ``weights_changed`` tells the views to decode again while
        the codes (and the map) stay.

        Raises
        ------
        ValueError
            Without a model, or when its map code has no layers below it.
        """
        if self.model is None:
            raise ValueError("There is no model to decode with.")
        if seed == self.model.lower_noise_seed:
            return
        self.model.set_lower_noise(seed)
        self.weights_changed.emit()

    def trainable_copy(self) -> BaseVAE:
        """A fresh, trainable copy of the current model for a training worker.

        The snapshot itself is never trained: the GUI keeps decoding with it while the
        copy learns in another thread.
        """
        if self.model is None:
            raise ValueError("There is no model to train.")
        return trainable_copy(self.model)

    def apply_weights(self, weights: dict, *, history=None, optimizer_state=None) -> None:
        """Load a weight snapshot from training into the GUI's model copy."""
        if self.model is None:
            return
        self.model.load_state_dict(weights)
        self.model.eval()
        self.encoder_revision += 1
        if history is not None:
            self.history = list(history)
            self.history_changed.emit()
        if optimizer_state is not None:
            self.optimizer_state = optimizer_state
        self._set_dirty(True)
        self.weights_changed.emit()

    def open_checkpoint(self, path, *, data_root=None, dataset: DatasetSplits | None = None) -> None:
        """Load a checkpoint and (unless given) the dataset it was trained on."""
        ckpt, data = read_checkpoint(path, data_root=data_root if data_root is not None else self.data_root,
                                     dataset=dataset, current=self.dataset)
        self.adopt_checkpoint(ckpt, data)

    def adopt_checkpoint(self, ckpt: Checkpoint, data: DatasetSplits | None = None) -> None:
        """Make a checkpoint read by :func:`read_checkpoint` (possibly in a worker) current."""
        if data is not None and data is not self.dataset:
            self.set_dataset(data)
        self.set_model(ckpt.model, history=ckpt.history, path=ckpt.path, train_config=ckpt.train_config,
                       optimizer_state=ckpt.optimizer_state, dirty=False)
        self._restore_map(ckpt.path)

    def _restore_map(self, path) -> None:
        """Bring back the map (projection, pins, groups) saved with a checkpoint, if any."""
        if path is None:
            return
        projection_file, pins_file, groups_file = map_files(path)
        if projection_file.is_file():
            from vae_core.projection import load_projection

            try:
                self.map.restore_projection(load_projection(projection_file))
            except (ValueError, OSError) as exc:
                self.post_message("warning", f"The saved map could not be restored ({exc}); it is computed anew.")
        if pins_file.is_file():
            try:
                self.marks.load_pins(pins_file, replace=True)
            except (ValueError, OSError) as exc:
                self.post_message("warning", f"The saved pins could not be restored ({exc}).")
        if groups_file.is_file():
            try:
                self.marks.load_groups(groups_file, replace=True)
            except (ValueError, OSError) as exc:
                self.post_message("warning", f"The saved groups could not be restored ({exc}).")

    def save_checkpoint(self, path=None, *, extra_files=None) -> Path:
        """Save the model with its map (projection, pins, groups) to ``path`` or the current path.

        Raises
        ------
        vae_core.errors.OutputError
            When a file cannot be written (read-only folder, disk full); the files
            already at the path stay as they were, and the document keeps its path.
        """
        from vae_core import save_checkpoint

        if path is None and self.checkpoint_path is None:
            raise ValueError("Choose where to save the model first.")
        path = Path(path or self.checkpoint_path)
        if self.model is None:
            raise ValueError("There is no model to save.")
        map_extra = self._map_files_content()
        folder = path.suffix != ".safetensors"
        extra = dict(extra_files or {})
        if folder:
            extra.update(map_extra)
        saved = save_checkpoint(path, self.model, dataset=self.dataset, history=self.history,
                                train_config=self.train_config, optimizer_state=self.optimizer_state,
                                extra_files=extra)
        if not folder:  # a single-file checkpoint keeps its map in sidecar files beside it
            for target, (name, data) in zip(map_files(saved), ((n, map_extra.get(n)) for n in MAP_FILES)):
                if data is not None:
                    write_atomic(target, data)
                    continue
                try:
                    target.unlink(missing_ok=True)
                except OSError as exc:
                    from vae_core.resources import output_error

                    raise output_error(target, exc) from None
        self._set_path(saved)
        self._set_dirty(False)
        return saved

    def _map_files_content(self) -> dict[str, bytes]:
        """The map's projection, pins and groups as checkpoint files, so reopening shows the same map."""
        import tempfile

        files: dict[str, bytes] = {}
        projection = self.map.projection
        with tempfile.TemporaryDirectory() as tmp:
            if projection is not None and getattr(projection, "fitted", False):
                from vae_core.projection import save_projection

                files[MAP_FILES[0]] = save_projection(Path(tmp) / MAP_FILES[0], projection).read_bytes()
            if self.marks.pins:
                files[MAP_FILES[1]] = self.marks.save_pins(Path(tmp) / MAP_FILES[1]).read_bytes()
            if self.marks.groups:
                files[MAP_FILES[2]] = self.marks.save_groups(Path(tmp) / MAP_FILES[2]).read_bytes()
        return files

    def _set_path(self, path) -> None:
        path = Path(path) if path is not None else None
        if path != self.checkpoint_path:
            self.checkpoint_path = path
            self.checkpoint_path_changed.emit(path)

    def _set_dirty(self, dirty: bool) -> None:
        if dirty != self.dirty:
            self.dirty = dirty
            self.dirty_changed.emit(dirty)

    @property
    def display_name(self) -> str:
        """The checkpoint's file name, or "Untitled" for a model never saved."""
        if self.checkpoint_path is None:
            if self.model is not None and self.limitation("checkpoint") is not None:
                return self.model.name   # opened from an adapter: its NAME
            return "Untitled" if self.model is not None else ""
        name = self.checkpoint_path.name
        return name[: -len(".safetensors")] if name.endswith(".safetensors") else name

    # -- codes and decoding --------------------------------------------------------------------
    def encode(self, *, progress=None, should_stop=None) -> np.ndarray:
        """Encode the whole dataset with the current snapshot; sets ``codes``."""
        from vae_core.latent import encode_dataset

        if self.model is None or self.dataset is None:
            raise ValueError("Load a dataset and a model first.")
        mu, logvar = encode_dataset(self.model, self.images, self.labels, progress=progress,
                                    should_stop=should_stop)
        self.set_codes(mu, logvar)
        return mu

    def set_codes(self, mu: np.ndarray, logvar: np.ndarray | None = None, stats: dict | None = None) -> None:
        """Make ``mu`` (and ``logvar``) the codes of ``dataset.all()``; emits ``codes_changed``.

        Parameters
        ----------
        stats : dict, optional
            Per-dimension statistics of these codes as :func:`code_stats` computes them,
            when the caller computed them already (the encoding job does, off the GUI
            thread); missing ones are computed on first use.
        """
        stats = dict(stats or {})
        if logvar is not None and self.limitation("logvar") is not None:
            # The encoder gives only μ: its NaN "widths" are unknown, not numbers to average.
            logvar = None
            stats.pop("kl", None)
        self.codes, self.logvar = mu, logvar
        self._code_stats = stats
        self.codes_changed.emit()

    def _forget_codes(self) -> None:
        self.codes = self.logvar = None
        self._code_stats = {}

    def code_stat(self, name: str) -> np.ndarray | None:
        """A per-dimension statistic of the codes: ``mean``, ``std``, ``var`` or ``kl``.

        Computed once per set of codes and cached: every caption, slider range and row
        order of the studio asks for these, and reducing all N codes on each call made an
        epoch's refresh cost hundreds of milliseconds. None without codes (or, for ``kl``,
        without log-variances). A copy is returned.
        """
        if name not in CODE_STATS:
            raise KeyError(f"Unknown code statistic {name!r}: use one of {', '.join(CODE_STATS)}.")
        if self.codes is None or (name == "kl" and self.logvar is None):
            return None
        if name not in self._code_stats:
            self._code_stats[name] = CODE_STATS[name](self.codes, self.logvar)
        return self._code_stats[name].copy()

    def decode(self, z, labels=None) -> np.ndarray:
        """Decode codes (``d`` or ``N×d``) to ``N×C×H×W`` images in [0, 1] with the snapshot."""
        from vae_core.latent import decode as decode_codes

        z = np.atleast_2d(np.asarray(z, dtype=np.float32))
        if self.model is None:
            raise ValueError("There is no model to decode with.")
        if self.model.conditional and labels is None:   # the studio's label, used by every view
            labels = np.full(len(z), self.studio.decode_label, dtype=np.int64)
        return decode_codes(self.model, z, labels)

    def reconstruct(self, images: np.ndarray, labels: np.ndarray | None = None) -> np.ndarray:
        """Decode the posterior means of ``images`` with the snapshot (``N×C×H×W`` in [0, 1])."""
        from vae_core.latent import decode as decode_codes
        from vae_core.latent import encode_dataset

        if self.model is None:
            raise ValueError("There is no model to reconstruct with.")
        mu, _ = encode_dataset(self.model, images, labels)
        return decode_codes(self.model, mu, labels if self.model.conditional else None)

    def sample(self, n: int, *, seed: int | None = 0, labels=None) -> np.ndarray:
        """Decode ``n`` draws from the prior (seeded, so successive epochs are comparable).

        A conditional model decodes draw ``i`` as class ``i mod num_classes`` unless
        ``labels`` are given.
        """
        from vae_core.latent import decode as decode_codes
        from vae_core.latent import sample_prior

        if self.model is None:
            raise ValueError("There is no model to sample from.")
        z = sample_prior(n, self.model.latent_dim, seed=seed)
        if self.model.conditional and labels is None:
            labels = np.arange(n, dtype=np.int64) % self.model.num_classes
        return decode_codes(self.model, z, labels if self.model.conditional else None)

    def posterior_samples(self, index: int, n: int, *, seed: int = 0) -> np.ndarray:
        """Decode ``n`` samples of q(z|x) of data point ``index`` (``n×C×H×W`` in [0, 1]).

        The samples are the model's :meth:`~vae_core.BaseVAE.sample_posterior` of the map
        code, drawn from a generator seeded with ``seed``, so the same point shows the same
        samples; for an ``iaf`` they show its non-Gaussian posterior.
        """
        import torch

        if self.model is None or self.images is None:
            raise ValueError("Load a dataset and a model first.")
        x = self.all_data.batch(slice(index, index + 1))
        labels = self.labels[index : index + 1] if self.model.conditional and self.labels is not None else None
        y = torch.from_numpy(labels) if labels is not None else None
        generator = torch.Generator().manual_seed(int(seed))
        with torch.inference_mode():
            z = self.model.sample_posterior(x, int(n), y, generator=generator)[:, 0]
        return self.decode(z.numpy(), None if labels is None else np.repeat(labels, n))

    @property
    def kl_per_dim(self) -> np.ndarray | None:
        """Per-dimension KL of the latest evaluation (test set), for sorting dimensions.

        None when it was measured for another map code than the one shown (an ``hvae``
        whose map switched layers: its history holds the layer it trained with).
        """
        for entry in reversed(self.history):
            if entry.get("test_kl_per_dim"):
                kl = np.asarray(entry["test_kl_per_dim"], dtype=np.float64)
                return kl if self.model is None or len(kl) == self.model.latent_dim else None
        return None

    @property
    def kl_of_another_code(self) -> bool:
        """Whether the history's per-dimension KL belongs to another map code than the shown one."""
        return self.kl_per_dim is None and any(entry.get("test_kl_per_dim") for entry in self.history)

    # -- training status -------------------------------------------------------------------------
    def set_training_status(self, status: str) -> None:
        if status not in TRAINING_STATES:
            raise ValueError(status)
        if status != self.training_status:
            self.training_status = status
            self.training_status_changed.emit(status)

    @property
    def is_training(self) -> bool:
        return self.training_status != "idle"

    def record_progress(self, progress: TrainProgress) -> None:
        """Remember a training report and tell the widgets (GUI thread)."""
        self.last_progress = progress
        self.training_progressed.emit(progress)

    def begin_training(self, config) -> None:
        """Mark a run as started with ``config`` (a ``TrainConfig``); widgets reset live plots."""
        self.train_config = config.to_dict() if hasattr(config, "to_dict") else dict(config)
        self.last_progress = None
        self.set_training_status("running")
        self.training_started.emit(config)

    def end_training(self, outcome: str) -> None:
        """Mark the run as over: ``completed``, ``stopped`` or ``failed``."""
        if outcome not in TRAINING_OUTCOMES:
            raise ValueError(outcome)
        self.set_training_status("idle")
        self.training_finished.emit(outcome)

    @property
    def epochs_trained(self) -> int:
        return int(self.history[-1].get("epoch", len(self.history))) if self.history else 0


# -- pure helpers (no state, safe in a worker thread) ----------------------------------------------
def read_checkpoint(path, *, data_root=None, dataset: DatasetSplits | None = None,
                    current: DatasetSplits | None = None) -> tuple[Checkpoint, DatasetSplits | None]:
    """Load a checkpoint and the dataset it was trained on; check that they fit.

    ``dataset`` is used as given; otherwise ``current`` is reused when it is the
    checkpoint's dataset (same spec and options) and the data is loaded otherwise.

    Raises
    ------
    vae_core.CheckpointError, vae_core.DatasetError, vae_core.training.ShapeMismatchError
    """
    from vae_core import load_checkpoint, load_dataset
    from vae_core.training import check_compatible

    ckpt = load_checkpoint(path)
    data = dataset
    if data is None and ckpt.dataset and ckpt.dataset.get("spec"):
        spec = ckpt.dataset["spec"]
        options = {k: v for k, v in (ckpt.dataset.get("options") or {}).items() if k in DATASET_OPTION_KEYS}
        if current is not None and same_dataset(current, spec, options):
            data = current
        else:
            data = load_dataset(spec, data_root, **options)
    if data is not None:
        check_compatible(ckpt.model, data)
    return ckpt, data


def read_adapted_model(model_file, weights=None, *, spec: str | None = None, data_root=None,
                       current: DatasetSplits | None = None) -> tuple[BaseVAE, DatasetSplits | None]:
    """Open a model written elsewhere through its adapter, with a dataset it can read.

    Runs the adapter's code: the caller has asked the user first (a worker thread may call
    this). The dataset is ``current`` when it is ``spec``'s (or no ``spec`` is given) and
    has the model's image shape; otherwise ``spec`` (default: ``current``'s) is loaded,
    resampled to the model's image size when its own differs.

    Raises
    ------
    vae_core.errors.AdapterError, vae_core.DatasetError
        The adapter, its weights or the dataset do not work (one sentence each).
    """
    from vae_core import load_dataset
    from vae_core.adapter import check_dataset, load_adapted_model, load_adapter

    shape = tuple(load_adapter(model_file).config.image_shape)
    spec = spec or (current.spec if current is not None else None)
    data = None
    if current is not None and tuple(current.image_shape) == shape and (spec is None or same_dataset(current, spec)):
        data = current
    elif spec:
        options = {}
        if current is not None and same_dataset(current, spec):
            options = {k: v for k, v in (current.options or {}).items() if k in DATASET_OPTION_KEYS}
        data = current if current is not None and same_dataset(current, spec) else load_dataset(spec, data_root)
        if tuple(data.image_shape[1:]) != shape[1:] and shape[1] == shape[2]:
            data = load_dataset(spec, data_root, **{**options, "image_size": shape[1]})
    model = load_adapted_model(model_file, weights, dataset_shape=None if data is None else data.image_shape)
    if data is not None:
        check_dataset(model, data)
    return model, data


#: Side files of a checkpoint: inside a folder as named, beside a single file as ``NAME.<name>``.
MAP_FILES = ("projection.safetensors", "pins.json", "groups.json")


def map_files(checkpoint_path) -> tuple[Path, ...]:
    """Where the map's projection, pins and groups live for a checkpoint: inside a folder, beside a file."""
    path = Path(checkpoint_path)
    if path.suffix == ".safetensors":
        return tuple(path.with_name(f"{path.stem}.{name}") for name in MAP_FILES)
    return tuple(path / name for name in MAP_FILES)


def same_dataset(data: DatasetSplits, spec: str, options: dict | None = None) -> bool:
    """Whether ``data`` is what ``load_dataset(spec, **options)`` would give."""
    from vae_core.data import parse_spec

    try:
        if parse_spec(data.spec) != parse_spec(spec):
            return False
    except ValueError:
        return False
    ours = data.options or {}
    return all(ours.get(k) == v for k, v in (options or {}).items() if k in DATASET_OPTION_KEYS and v is not None)


def describe_model(model: BaseVAE | None) -> str:
    """One line such as ``mlp · 2-D latent · hidden 256-128 · Bernoulli``."""
    if model is None:
        return "No model"
    config = model.config
    parts = [model.name, f"{model.latent_dim}-D latent"]
    hidden = getattr(config, "hidden", None)
    if isinstance(hidden, (tuple, list)) and hidden:
        parts.append("hidden " + "-".join(str(h) for h in hidden))
    elif isinstance(hidden, int):
        parts.append(f"width {hidden}")
    if model.conditional:
        parts.append(f"{model.num_classes} classes")
    parts.append(config.likelihood.capitalize() if config.likelihood else "likelihood not given")
    source = getattr(config, "source", "")   # an adapter's file or module
    if source:
        parts.append(f"from {Path(source).name}")
    return " · ".join(parts)


def _posterior_kl(codes: np.ndarray, logvar: np.ndarray) -> np.ndarray:
    """Mean per-dimension KL(q(z|x) ‖ N(0, I)) over the rows of ``codes``/``logvar``."""
    lv = logvar.astype(np.float64)
    kl = 0.5 * (codes.astype(np.float64) ** 2 + np.exp(lv) - lv - 1.0)
    return kl.mean(axis=0)


#: Per-dimension statistics of a set of codes (``N×d`` means, their ``N×d`` log-variances).
CODE_STATS = {
    "mean": lambda mu, _lv: mu.mean(axis=0).astype(np.float64),
    "std": lambda mu, _lv: mu.std(axis=0).astype(np.float64),
    "var": lambda mu, _lv: mu.var(axis=0),
    "kl": _posterior_kl,
}


def code_stats(mu: np.ndarray, logvar: np.ndarray | None) -> dict[str, np.ndarray]:
    """Every statistic of :data:`CODE_STATS` for fresh codes (safe in a worker thread)."""
    if mu is None or not len(mu):
        return {}
    return {name: compute(mu, logvar) for name, compute in CODE_STATS.items()
            if name != "kl" or logvar is not None}


def trainable_copy(model: BaseVAE) -> BaseVAE:
    """An independent copy of ``model`` in training mode with gradients (safe in a worker thread)."""
    clone = copy.deepcopy(model)
    for p in clone.parameters():
        p.requires_grad_(True)
    return clone.train()


def eval_copy(model: BaseVAE) -> BaseVAE:
    """An independent eval-mode CPU copy of ``model`` without gradients: what the document holds."""
    clone = copy.deepcopy(model).to("cpu").eval()
    for p in clone.parameters():
        p.requires_grad_(False)
    return clone
