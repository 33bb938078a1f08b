"""Application state without Qt: what the window shows, as evented Python objects.

Widgets write user input into these objects and listen to their psygnal signals;
tests drive them with no window at all. Three parts:

* :class:`ExplorerState` — the dataset, the model snapshot the GUI decodes with,
  its codes, the checkpoint path and unsaved changes, training status.
* ``state.map`` (:class:`explorer.map_state.MapState`) — projection, cursor, pins,
  selection groups.
* ``state.studio`` (:class:`explorer.studio_state.StudioState`) — keyframes,
  interpolation settings, arithmetic, the current animation.

Threading rule: the model held here is an eval-mode CPU *snapshot*. Training runs on
its own module in a worker thread and only sends weight copies back
(:meth:`ExplorerState.apply_weights`), so decoding under the cursor never touches
a module that is being trained.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import torch
from psygnal import Signal

from vae_core import BaseVAE, DatasetSplits, load_checkpoint, load_dataset, save_checkpoint
from vae_core.latent import decode as decode_codes
from vae_core.latent import encode_dataset
from vae_core.training import ShapeMismatchError, TrainProgress, check_compatible

TRAINING_STATES = ("idle", "running", "paused", "stopping")


class ExplorerState:
    """The document: one dataset, one model snapshot, their codes and history."""

    dataset_changed = Signal(object)       # DatasetSplits | None
    model_changed = Signal(object)         # a different model (architecture or checkpoint)
    weights_changed = Signal()             # same model, new weights (after an epoch)
    codes_changed = Signal()               # self.codes recomputed
    dirty_changed = Signal(bool)           # unsaved trained weights
    checkpoint_path_changed = Signal(object)
    history_changed = Signal()
    training_status_changed = Signal(str)  # one of TRAINING_STATES
    training_progress = Signal(object)     # TrainProgress
    message = Signal(str, str)             # level ("info" | "warning" | "error"), text

    def __init__(self) -> None:
        from explorer.map_state import MapState
        from explorer.studio_state import StudioState

        self.dataset: DatasetSplits | None = None
        self.model: BaseVAE | None = None
        self.checkpoint_path: Path | None = None
        self.history: list[dict] = []
        self.train_config: dict | None = None
        self.optimizer_state: dict | None = None
        self.dirty = False
        self.training_status = "idle"
        self.last_progress: TrainProgress | None = None
        self.codes: np.ndarray | None = None     # N×d posterior means of dataset.all()
        self.logvar: np.ndarray | None = None
        self._all = None
        self.map = MapState(self)
        self.studio = StudioState(self)

    # -- dataset -----------------------------------------------------------------------------
    def set_dataset(self, data: DatasetSplits | None) -> None:
        self.dataset = data
        self._all = None
        self.codes = self.logvar = None
        self.dataset_changed.emit(data)

    def load_dataset(self, spec: str, data_root=None, **options) -> DatasetSplits:
        data = load_dataset(spec, data_root, **options)
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
        return None if self.all_data is None else self.all_data.images

    @property
    def labels(self) -> np.ndarray | None:
        return None if self.all_data is None else self.all_data.labels

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.dataset.class_names if self.dataset is not None else ()

    # -- model -------------------------------------------------------------------------------
    def set_model(self, model: BaseVAE | None, *, history=None, path=None, train_config=None,
                  optimizer_state=None, dirty=False) -> None:
        """Make ``model`` current (a CPU eval copy is kept; the caller keeps its own)."""
        self.model = _snapshot(model) if model is not None else None
        self.history = list(history or [])
        self.train_config = train_config
        self.optimizer_state = optimizer_state
        self.codes = self.logvar = None
        self._set_path(path)
        self._set_dirty(dirty)
        self.model_changed.emit(self.model)
        self.history_changed.emit()

    def compatible(self, model: BaseVAE | None = None) -> str | None:
        """None if the model fits the dataset, else a sentence saying why not."""
        model = model or self.model
        if model is None or self.dataset is None:
            return None
        try:
            check_compatible(model, self.dataset)
        except ShapeMismatchError as exc:
            return str(exc)
        return None

    def apply_weights(self, weights: dict, *, history=None, optimizer_state=None) -> None:
        """Load a weight snapshot from training into the GUI's model copy."""
        if self.model is None:
            return
        self.model.load_state_dict(weights)
        self.model.eval()
        if history is not None:
            self.history = list(history)
            self.history_changed.emit()
        if optimizer_state is not None:
            self.optimizer_state = optimizer_state
        self._set_dirty(True)
        self.weights_changed.emit()

    def open_checkpoint(self, path, *, data_root=None, dataset: DatasetSplits | None = None) -> None:
        """Load a checkpoint and (unless given) the dataset it was trained on."""
        ckpt = load_checkpoint(path)
        data = dataset
        if data is None and ckpt.dataset and ckpt.dataset.get("spec"):
            options = {k: v for k, v in (ckpt.dataset.get("options") or {}).items()
                       if k in ("image_size", "channels", "seed", "test_fraction")}
            data = load_dataset(ckpt.dataset["spec"], data_root, **options)
        if data is not None:
            check_compatible(ckpt.model, data)
            if data is not self.dataset:
                self.set_dataset(data)
        self.set_model(ckpt.model, history=ckpt.history, path=ckpt.path, train_config=ckpt.train_config,
                       optimizer_state=ckpt.optimizer_state, dirty=False)

    def save_checkpoint(self, path=None, *, extra_files=None) -> Path:
        path = Path(path or self.checkpoint_path)
        if self.model is None:
            raise ValueError("There is no model to save.")
        saved = save_checkpoint(path, self.model, dataset=self.dataset, history=self.history,
                                train_config=self.train_config, optimizer_state=self.optimizer_state,
                                extra_files=extra_files)
        self._set_path(saved)
        self._set_dirty(False)
        return saved

    def _set_path(self, path) -> None:
        path = Path(path) if path is not None else None
        if path != self.checkpoint_path:
            self.checkpoint_path = path
            self.checkpoint_path_changed.emit(path)

    def _set_dirty(self, dirty: bool) -> None:
        if dirty != self.dirty:
            self.dirty = dirty
            self.dirty_changed.emit(dirty)

    # -- codes and decoding --------------------------------------------------------------------
    def encode(self, *, progress=None, should_stop=None) -> np.ndarray:
        """Encode the whole dataset with the current snapshot; sets ``codes``."""
        if self.model is None or self.dataset is None:
            raise ValueError("Load a dataset and a model first.")
        mu, logvar = encode_dataset(self.model, self.images, self.labels, progress=progress,
                                    should_stop=should_stop)
        self.set_codes(mu, logvar)
        return mu

    def set_codes(self, mu: np.ndarray, logvar: np.ndarray | None = None) -> None:
        self.codes, self.logvar = mu, logvar
        self.codes_changed.emit()

    def decode(self, z, labels=None) -> np.ndarray:
        """Decode codes (``d`` or ``N×d``) to ``N×C×H×W`` images in [0, 1] with the snapshot."""
        z = np.atleast_2d(np.asarray(z, dtype=np.float32))
        if self.model is None:
            raise ValueError("There is no model to decode with.")
        if self.model.conditional and labels is None:
            labels = np.full(len(z), self.studio.decode_label, dtype=np.int64)
        return decode_codes(self.model, z, labels)

    @property
    def kl_per_dim(self) -> np.ndarray | None:
        """Per-dimension KL of the latest evaluation (test set), for sorting dimensions."""
        for entry in reversed(self.history):
            if entry.get("test_kl_per_dim"):
                return np.asarray(entry["test_kl_per_dim"], dtype=np.float64)
        return None

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


def _snapshot(model: BaseVAE) -> BaseVAE:
    """An independent eval-mode CPU copy of ``model``."""
    clone = copy.deepcopy(model).to("cpu").eval()
    for p in clone.parameters():
        p.requires_grad_(False)
    return clone
