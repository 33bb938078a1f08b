"""The application window: files, training, settings, closing, drag and drop.

Its docks and layout live in :mod:`explorer.ui.main_window_docks`, its menus, actions,
status bar and Export actions in :mod:`explorer.ui.main_window_menus` (two bases of
:class:`MainWindow`).

Other panels hook in through a few methods (see :class:`MainWindow`):

* :meth:`MainWindow.set_central_panel` — the central view (the latent map);
* :meth:`MainWindow.add_panel_dock` — a dockable panel, listed in View ▸ Panels with a
  shortcut and restored with the saved layout; :meth:`MainWindow.tab_docks` puts a
  feature's docks in tabs beside an existing panel;
* ``window.menus["File" | "Edit" | "View" | "Training" | "Export" | "Help"]`` — QMenus to
  add actions to (:meth:`MainWindow.add_menu_action` does it in one line);
* :meth:`MainWindow.run_task` — run a slow function in a worker thread with the busy
  indicator and a friendly error dialog; :meth:`MainWindow.show_error`.

Start-up happens in two steps so the window shows before torch has loaded:
``MainWindow(...)`` builds the frame, :meth:`MainWindow.start_engine` imports the engine,
fills the choices and installs the panels (``_install_panels``), then
:meth:`MainWindow.open_initial` loads the default model or the file given on the command
line in a worker.

Why this module is long (~850 lines): everything that needs the window itself ends here
(files, the planning and start of training runs, settings, closing, drag and drop), each a
few short methods over the same window state; what could stand alone already does (docks,
menus, dialogs, the Qt-free planning in :mod:`explorer.state.training`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Callable

from PySide6.QtCore import QByteArray, QSettings, QTimer, QUrl, Signal
from PySide6.QtGui import QAction, QDesktopServices, QIcon
from PySide6.QtWidgets import QDockWidget, QFileDialog, QMainWindow, QMenu, QWidget

from explorer.jobs.prefetch import Prefetcher
from explorer.jobs.training import Task, TrainingRunner
from explorer.jobs.priority import run_blas_on_calling_threads
from explorer.jobs.workers import favour_gui_thread
from explorer.state import ExplorerState, describe_model, read_adapted_model, read_checkpoint, same_dataset
from explorer.state.training import (TrainingOptions, TrainingProblem, dataset_display_name, load_for_run,
                                     prepare_run, training_config)
from explorer.ui.dialogs import ask_run_code, ask_save_changes, show_error
from explorer.ui.qt_utils import Deferred
from explorer.ui.main_window_docks import DockLayoutMixin
from explorer.ui.main_window_menus import EXPORT_MODEL_TIP, SAVE_AS_TIP, SAVE_TIP, MenuBarMixin
from explorer.ui.training.panel import train_tooltip

ORGANIZATION = "LatentExplorer"
APPLICATION = "Latent Explorer"
MAX_RECENT = 8
REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CHECKPOINT = REPO_ROOT / "assets" / "digits-mlp-2d"
DAMAGED_PARTS_TITLE = "Part of the checkpoint was damaged"
CHECKPOINT_FILTER = "Latent Explorer checkpoints (*.safetensors config.json)"
ADAPTER_FILTER = "Python adapter files (*.py)"
WEIGHTS_FILTER = "Weights (*.safetensors *.pt *.pth *.bin *.ckpt)"
TRUSTED_KEY = "adapters/trusted"    # SHA-256 of the adapter files the user allowed to run
MAX_TRUSTED = 200


def default_checkpoint() -> Path | None:
    """The pretrained model shipped in ``assets/`` (None if it is missing)."""
    path = Path(os.environ.get("LATENT_EXPLORER_DEFAULT_MODEL", DEFAULT_CHECKPOINT))
    return path if path.exists() else None


def is_checkpoint(path: Path) -> bool:
    return (path.is_dir() and (path / "config.json").is_file()) or (path.is_file() and path.suffix == ".safetensors")


def app_icon() -> QIcon:
    return QIcon(str(Path(__file__).resolve().parents[1] / "resources" / "icon.svg"))


class MainWindow(DockLayoutMixin, MenuBarMixin, QMainWindow):
    """Latent Explorer's main window around one :class:`ExplorerState`.

    Parameters
    ----------
    state : ExplorerState, optional
        The document; a new one by default.
    settings : QSettings, optional
        Where geometry, layout, data root and training options are remembered.
    start_engine : bool
        Import the engine and install the panels now (tests); the application passes
        ``False`` and calls :meth:`start_engine` once the window is on screen.

    Signals
    -------
    engine_started()
        The engine is loaded and the panels installed.
    initial_load_finished(bool)
        :meth:`open_initial` is done: True if what it had to open (the model, or only the
        dataset) opened, False after an error (shown to the user).
    """

    engine_started = Signal()
    initial_load_finished = Signal(bool)

    def __init__(self, state: ExplorerState | None = None, *, settings: QSettings | None = None,
                 start_engine: bool = True, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        favour_gui_thread()   # before any worker runs: the collector and the lock's switch interval
        self.state = state or ExplorerState()
        self.settings = settings or QSettings(ORGANIZATION, APPLICATION)
        self.menus: dict[str, QMenu] = {}
        self.docks: dict[str, QDockWidget] = {}
        self.actions: dict[str, QAction] = {}
        self.engine_ready = False
        self.central_panel: QWidget | None = None
        self._tasks: set[Task] = set()
        self.last_error: tuple[str, str, str] | None = None   # (title, text, details) of the last message
        self.last_exception: BaseException | None = None     # behind the last failed task, if one failed
        #: What was left out of the open checkpoint because it was damaged (Checkpoint.warnings).
        self.checkpoint_warnings: list[str] = []
        self._dock_shortcut = 1
        self._closing = False
        self.setObjectName("MainWindow")
        self.setWindowIcon(app_icon())
        self.setAcceptDrops(True)
        self.setDockOptions(QMainWindow.DockOption.AnimatedDocks | QMainWindow.DockOption.AllowTabbedDocks
                            | QMainWindow.DockOption.AllowNestedDocks)
        self._fit_to_screen()

        self.runner = TrainingRunner(self.state, self)
        self.encoder = None   # the EncodingJob, created with the engine (it imports torch)
        self.prefetcher = Prefetcher(self)
        self.runner.failed.connect(self._on_runner_failed)
        self.runner.finished.connect(self._on_runner_finished)

        self._build_menus()
        self._build_status_bar()
        self._build_panels()
        self._default_layout = self.saveState()
        geometry = self.settings.value("window/geometry")
        if isinstance(geometry, (QByteArray, bytes)):
            self.restoreGeometry(QByteArray(geometry))

        s = self.state
        s.dirty_changed.connect(self._update_title)
        s.checkpoint_path_changed.connect(self._update_title)
        s.model_changed.connect(self._on_state_model_changed)
        # Before any panel's own slot: a new model, dataset or set of codes redraws them all.
        for signal in (s.model_changed, s.dataset_changed, s.codes_changed, s.map.layout_changed):
            signal.connect(self._hold_repaints_for_change, priority=1000)
        s.weights_changed.connect(self._update_model_label)
        s.dataset_changed.connect(self._on_state_dataset_changed)
        s.training_status_changed.connect(self._on_state_training_status_changed)
        s.training_started.connect(self._on_state_training_started)
        s.message_posted.connect(self._on_state_message_posted)
        self._update_title()
        self._update_actions()
        self.statusBar().showMessage("Starting…")
        if start_engine:
            self.start_engine()

    # ==============================================================================================
    # Hooks for other panels (more in DockLayoutMixin and MenuBarMixin)
    # ==============================================================================================
    def run_task(self, label: str, func: Callable, *args, on_done: Callable | None = None,
                 error_title: str = "Something went wrong", doing: str = "Loading", progress: bool = False,
                 **kwargs) -> Task:
        """Run ``func(*args, **kwargs)`` in a worker thread with the busy indicator showing ``label``.

        ``on_done(result)`` runs on the GUI thread; an exception opens an error dialog
        titled ``error_title`` with the details available. With ``progress=True``, ``func``
        also gets ``progress(done, total)`` and the busy bar fills with it.
        """
        task = Task(func, *args, doing=doing, parent=self, progress=progress, **kwargs)
        task.label = label
        task.done_total = None
        self._tasks.add(task)
        task.progressed.connect(lambda done, total: self._on_task_progressed(task, done, total))

        def finished() -> None:
            self._tasks.discard(task)
            self._update_busy()
            self._update_actions()
            task.deleteLater()

        def done(result) -> None:
            finished()
            if on_done is not None and not self._closing:
                on_done(result)

        def failed(text: str, details: str) -> None:
            finished()
            self.last_exception = task.error
            if not self._closing:
                self.show_error(error_title, text, details)

        task.succeeded.connect(done)
        task.failed.connect(failed)
        task.start()
        self._update_busy()
        self._update_actions()
        return task

    @property
    def busy(self) -> bool:
        """Whether a loading task is running."""
        return bool(self._tasks)

    def show_error(self, title: str, text: str, details: str = "", *, level: str = "error"):
        """A message for people with the technical details behind "Details…" (non-blocking)."""
        self.statusBar().showMessage(text, 10_000)
        self.last_error = (title, text, details)
        return show_error(self, title, text, details, level=level)

    # ==============================================================================================
    # Engine start-up and the first model
    # ==============================================================================================
    def start_engine(self) -> None:
        """Import the engine (torch), fill the choices, install panels, restore the layout."""
        if self.engine_ready:
            return
        from vae_core import list_models
        from vae_core.data import DATASET_SPECS
        from vae_core.training import available_devices

        run_blas_on_calling_threads()   # numpy is imported now; see explorer.jobs.priority

        self.training_panel.set_choices(DATASET_SPECS, list_models(), available_devices())
        options = self._saved_options()
        self.training_panel.set_options(options)   # the data root goes to the state
        from explorer.jobs.encoding import EncodingJob

        # The codes belong to the application: encoded whichever panels are open.
        self.encoder = EncodingJob(self.state, self)
        self.encoder.message_posted.connect(self.state.post_message)
        self.initial_load_finished.connect(
            lambda _ok: self._prefetch_for_dataset(self.training_panel.current_dataset_spec() or ""))
        self._install_panels()
        self._arrange_docks()
        self._default_layout = self.saveState()  # what View ▸ Reset Layout goes back to
        layout = self.settings.value("window/state")
        if isinstance(layout, (QByteArray, bytes)):
            self.restoreState(QByteArray(layout))
        elif self.isVisible():  # dock sizes settle once the new docks are laid out
            QTimer.singleShot(0, self._arrange_docks)
        self.engine_ready = True
        self._update_actions()
        self.statusBar().showMessage("Ready", 3000)
        self.engine_started.emit()

    def _install_panels(self) -> None:
        """Install the panels of the other parts of the application.

        The latent map becomes the central view with ``self.set_central_panel(...)``;
        studio panels dock with ``self.add_panel_dock(title, widget, area, object_name)``.
        """
        from explorer.ui.experiments.docks import install_experiments
        from explorer.ui.map.panel import install_map
        from explorer.ui.studio.docks import install_studio
        from explorer.ui.vq import install_vq

        install_map(self)  # first: the studio looks for the map as the central panel
        install_studio(self)
        install_vq(self)
        install_experiments(self)

    def open_initial(self, checkpoint=None, *, dataset: str | None = None, data_root=None, model_file=None,
                     weights=None) -> None:
        """Open ``checkpoint`` (or the bundled example) in a worker; emit ``initial_load_finished``.

        ``dataset`` (a spec) selects the training dataset; with no checkpoint and a dataset
        other than the example's, only that dataset is loaded. ``model_file`` (with
        ``weights``) opens a model written elsewhere instead: given on the command line, it
        is the user's explicit choice to run that code, so nothing is asked.
        """
        if data_root:
            self.state.set_data_root(data_root)
        if dataset:
            self.training_panel.set_dataset_spec(dataset)
        if model_file:
            self.open_adapted_model(model_file, weights, dataset=dataset, initial=True)
            return
        path = Path(checkpoint) if checkpoint else None
        if path is None and dataset and not dataset.startswith("digits"):
            self._load_dataset_only(dataset)
            return
        path = path or default_checkpoint()
        if path is None:
            self._load_dataset_only(dataset or "digits")
            self.statusBar().showMessage("Train a model in the Training panel to begin.", 10_000)
            return
        self.open_checkpoint(path, initial=True, dataset=dataset)

    def _load_dataset_only(self, spec: str) -> None:
        from vae_core import load_dataset

        def done(data) -> None:
            self.state.set_dataset(data)
            self.initial_load_finished.emit(True)

        task = self.run_task(f"Loading {dataset_display_name(spec)}…", load_dataset, spec, self._data_root(),
                             on_done=done, error_title="Could not load the dataset", progress=True)
        task.failed.connect(lambda *_: self.initial_load_finished.emit(False))

    # ==============================================================================================
    # Files
    # ==============================================================================================
    def open_checkpoint_dialog(self) -> None:
        start = str(self.state.checkpoint_path.parent) if self.state.checkpoint_path else str(Path.home())
        path, _ = QFileDialog.getOpenFileName(
            self, "Open Checkpoint", start, f"{CHECKPOINT_FILTER};;All files (*)")
        if path:
            p = Path(path)
            self.open_checkpoint(p.parent if p.name == "config.json" else p)

    def open_model_code_dialog(self) -> None:
        """File ▸ Open Model Code…: an adapter file, its weights, then (asked once per file) run it."""
        start = str(self.settings.value("files/adapter_dir", "") or Path.home())
        path, _ = QFileDialog.getOpenFileName(self, "Open Model Code (an adapter file)", start,
                                              f"{ADAPTER_FILTER};;All files (*)")
        if not path:
            return
        self.settings.setValue("files/adapter_dir", str(Path(path).parent))
        weights, _ = QFileDialog.getOpenFileName(self, f"Choose the Weights for {Path(path).name}",
                                                 str(Path(path).parent), f"{WEIGHTS_FILTER};;All files (*)")
        if not weights:
            return
        if not self.allow_code(path):
            self.statusBar().showMessage(f"{Path(path).name} was not opened.", 5000)
            return
        self.open_adapted_model(path, weights)

    def allow_code(self, path) -> bool:
        """Whether ``path``'s code may run: asked once per file content, remembered by its SHA-256."""
        from vae_core.adapter import AdapterError, file_sha256

        try:
            sha = file_sha256(path)
        except AdapterError as exc:
            self.show_error("Could not open the model code", str(exc))
            return False
        trusted = self._trusted_hashes()
        if sha in trusted:
            return True
        if not ask_run_code(self, Path(path).resolve()):
            return False
        self.settings.setValue(TRUSTED_KEY, json.dumps([sha, *trusted][:MAX_TRUSTED]))
        return True

    def _trusted_hashes(self) -> list[str]:
        raw = self.settings.value(TRUSTED_KEY, "[]")
        try:
            items = json.loads(raw) if isinstance(raw, str) else []
        except ValueError:
            items = []
        return [h for h in items if isinstance(h, str)]

    def open_adapted_model(self, model_file, weights=None, *, dataset: str | None = None,
                           initial: bool = False) -> bool:
        """Open a model written elsewhere (its adapter runs) with a dataset it reads, in a worker.

        The dataset is ``dataset`` (a spec), else the Training panel's choice, resampled to the
        model's image size when needed. The caller has made sure the user wants the code run.
        """
        if not self._may_open_model(initial):
            return False
        spec = dataset or self.training_panel.current_dataset_spec() or None
        current, root = self.state.dataset, self._data_root()

        def done(result) -> None:
            model, data = result
            self.state.adopt_adapted_model(model, data)
            where = f" · {dataset_display_name(data.spec)}" if data is not None else ""
            self.statusBar().showMessage(f"Opened {model.name} from {Path(model_file).name}{where}", 6000)
            if initial:
                self.initial_load_finished.emit(True)

        task = self.run_task(f"Opening {Path(str(model_file)).name}…", read_adapted_model, model_file, weights,
                             spec=spec, data_root=root, current=current, on_done=done,
                             doing="Opening the model code", error_title="Could not open the model code")
        if initial:
            task.failed.connect(lambda *_: self.initial_load_finished.emit(False))
        return True

    def _may_open_model(self, initial: bool) -> bool:
        """Whether another model may replace the current one now (asks about unsaved training)."""
        if self.state.is_training:
            self.show_error("Training is running", "Stop training before opening another model.", level="info")
            return False
        if self.busy:
            self.statusBar().showMessage("Still loading; try again in a moment.", 4000)
            return False
        return initial or self._confirm_discard("opening another model")

    def open_default(self) -> None:
        path = default_checkpoint()
        if path is None:
            self.show_error("The bundled example is missing",
                            "The pretrained example model was not found in the assets folder. "
                            "Rebuild it with “make assets”.", level="warning")
            return
        self.open_checkpoint(path)

    def open_checkpoint(self, path, *, initial: bool = False, dataset: str | None = None) -> bool:
        """Open a checkpoint and its dataset in a worker; False if the user cancelled or training runs."""
        path = Path(path)
        if not self._may_open_model(initial):
            return False
        data = None
        if dataset:
            data = self.state.dataset if self.state.dataset is not None and same_dataset(self.state.dataset, dataset) else None

        def read():
            # dataset=SPEC on the command line: load it here (in the worker) unless already loaded.
            chosen = data
            if dataset and chosen is None:
                from vae_core import load_dataset

                chosen = load_dataset(dataset, self._data_root())
            return read_checkpoint(path, data_root=self._data_root(), dataset=chosen, current=self.state.dataset)

        def done(result) -> None:
            ckpt, loaded = result
            self.state.adopt_checkpoint(ckpt, loaded)
            if not initial or path != default_checkpoint():
                self._add_recent(path)
            name = self.state.display_name
            self.statusBar().showMessage(f"Opened {name}" + (f" · {dataset_display_name(loaded.spec)}" if loaded else ""), 6000)
            self.checkpoint_warnings = list(ckpt.warnings)
            if ckpt.warnings:
                self._show_checkpoint_warnings(name, ckpt.warnings)
            if initial:
                self.initial_load_finished.emit(True)

        task = self.run_task(f"Opening {path.name}…", read, on_done=done, doing="Opening the checkpoint",
                             error_title="Could not open the checkpoint")
        if initial:
            task.failed.connect(lambda *_: self.initial_load_finished.emit(False))
        return True

    def _show_checkpoint_warnings(self, name: str, warnings: list[str]) -> None:
        """Say which damaged parts of an opened checkpoint were left out (the model itself opened)."""
        from explorer.jobs.training import app_words

        notes = [app_words(note) for note in warnings]
        parts = "a damaged part of it was" if len(notes) == 1 else f"{len(notes)} damaged parts of it were"
        text = (f"“{name}” opened, but {parts} left out. Saving the model writes it without them.\n\n"
                + "\n".join(f"• {note}" for note in notes))
        self.show_error(DAMAGED_PARTS_TITLE, text, "\n".join(warnings), level="warning")
        # The dialog closes; the status bar keeps saying it for a while.
        self.state.post_message("warning", f"{name} opened without its damaged parts: {notes[0]}")

    def save(self) -> bool:
        """Save to the current checkpoint path (asks for one the first time). True if saved."""
        if self.state.model is None:
            self.statusBar().showMessage("There is no model to save yet.", 4000)
            return False
        path = self.state.checkpoint_path
        if path is None or self._is_bundled(path) or self.state.limitation("checkpoint") is not None:
            return self.save_as()
        return self._save_to(path)

    def save_as(self) -> bool:
        if self.state.model is None:
            self.statusBar().showMessage("There is no model to save yet.", 4000)
            return False
        reason = self.state.limitation("checkpoint")
        if reason is not None:
            self.show_error("This model is not saved here", reason, level="info")
            return False
        start_dir = Path(str(self.settings.value("files/last_dir", "")) or Path.home())
        name = self.state.display_name if self.state.checkpoint_path and not self._is_bundled(self.state.checkpoint_path) \
            else self._suggest_name()
        path, chosen_filter = QFileDialog.getSaveFileName(
            self, "Save Model As", str(start_dir / f"{name}.safetensors"),
            "Checkpoint file (*.safetensors);;Checkpoint folder (*)")
        if not path:
            return False
        p = Path(path)
        if "folder" not in chosen_filter and p.suffix != ".safetensors":
            p = p.with_suffix(".safetensors")
        if "folder" in chosen_filter and p.suffix == ".safetensors":
            p = p.with_suffix("")
        return self._save_to(p)

    def _save_to(self, path: Path) -> bool:
        try:
            saved = self.state.save_checkpoint(path)
        except Exception as exc:  # noqa: BLE001 - shown to the user
            from explorer.jobs.training import error_details, friendly_error

            self.show_error("Could not save the model", friendly_error(exc, "Saving"), error_details(exc))
            return False
        self.settings.setValue("files/last_dir", str(saved.parent))
        self._add_recent(saved)
        self.statusBar().showMessage(f"Saved {saved}", 6000)
        return True

    def _suggest_name(self) -> str:
        model, data = self.state.model, self.state.dataset
        if model is None:
            return "model"
        spec = (data.spec.partition(":")[0] if data else "model").replace("/", "-")
        return f"{spec}-{model.name}-{model.latent_dim}d"

    @staticmethod
    def _is_bundled(path: Path) -> bool:
        try:
            return Path(path).resolve().is_relative_to((REPO_ROOT / "assets").resolve())
        except OSError:
            return False

    def choose_image_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Choose a Folder of Images", str(Path.home()))
        if folder:
            self.use_dataset(f"folder:{folder}")

    def use_dataset(self, spec: str) -> None:
        """Select ``spec`` as the training dataset (it loads when training starts)."""
        if self.state.is_training:
            self.show_error("Training is running", "Stop training before choosing another dataset.", level="info")
            return
        self.training_panel.set_dataset_spec(spec)
        self.docks["training"].show()
        self.docks["training"].raise_()
        self.statusBar().showMessage(f"{dataset_display_name(spec)} selected for training: press Train (Ctrl+T).", 8000)

    # -- recent files ---------------------------------------------------------------------------
    def recent_files(self) -> list[str]:
        raw = self.settings.value("files/recent", "[]")
        try:
            items = json.loads(raw) if isinstance(raw, str) else list(raw or [])
        except (TypeError, ValueError):
            items = []
        return [str(p) for p in items if isinstance(p, str)]

    def _add_recent(self, path: Path) -> None:
        path = str(Path(path).resolve())
        items = [p for p in self.recent_files() if p != path]
        items.insert(0, path)
        self.settings.setValue("files/recent", json.dumps(items[:MAX_RECENT]))
        self._rebuild_recent_menu()

    def _rebuild_recent_menu(self) -> None:
        menu = self.menus["Recent"]
        menu.clear()
        items = self.recent_files()
        for i, path in enumerate(items):
            label = f"&{i + 1} {Path(path).name}" if i < 9 else Path(path).name
            action = menu.addAction(label)
            action.setToolTip(path)
            action.setStatusTip(path)
            action.triggered.connect(lambda _=False, p=path: self._open_recent(p))
        if items:
            menu.addSeparator()
        clear = menu.addAction("Clear Recent Files")
        clear.setEnabled(bool(items))
        clear.triggered.connect(self._clear_recent)

    def _open_recent(self, path: str) -> None:
        if not Path(path).exists():
            self.show_error("File not found", f"{path} no longer exists; it was removed from the recent files.",
                            level="warning")
            self.settings.setValue("files/recent", json.dumps([p for p in self.recent_files() if p != path]))
            self._rebuild_recent_menu()
            return
        self.open_checkpoint(path)

    def _clear_recent(self) -> None:
        self.settings.setValue("files/recent", "[]")
        self._rebuild_recent_menu()

    # ==============================================================================================
    # Training
    # ==============================================================================================
    def start_training(self, options: TrainingOptions | None = None) -> bool:
        """Train with ``options`` (default: the Training panel's). Data loads in a worker first if needed."""
        if not isinstance(options, TrainingOptions):
            options = self.training_panel.options()
        if not self.engine_ready or self.state.is_training or self.busy:
            return False
        self.state.set_data_root(options.data_root or None)
        self._save_options(options)
        if not options.continue_training and not self._confirm_discard("training a new model"):
            return False
        try:
            config = training_config(self.state, options)
        except TrainingProblem as problem:
            self._show_problem(problem)
            return False
        current = self.state.dataset
        same = current is not None and same_dataset(current, options.dataset)
        # Loading the data and making the model to train (a new one with the document's copy of
        # it, or the copy of the open one that a continued run trains) run in a worker: on the
        # GUI thread they were most of the longest pause of the window.
        if not same:
            label, title = f"Loading {dataset_display_name(options.dataset)}…", "Could not load the dataset"
        else:
            label, title = "Preparing the model…", "Could not prepare the model"
        self.run_task(label, load_for_run, options, config, self._data_root(), current=current,
                      model=self.state.model if options.continue_training else None,
                      on_done=lambda result: self._start_training_soon(*result, options, config),
                      error_title=title, progress=True)
        return True

    def _start_training_soon(self, data, new, options: TrainingOptions, config) -> None:
        if isinstance(new, TrainingProblem):
            self._show_problem(new)
            return
        # A task's result arrives as a posted event; the model switch it starts posts the
        # repaint of every panel. Run on a later turn, the switch and those repaints fall into
        # separate turns of the event loop, with the window's own timers served between them.
        def start() -> None:
            if not self._closing and not self.state.is_training:
                self._start_training_with(data, options, config, new)

        Deferred(start, self).start()

    def _start_training_with(self, data, options: TrainingOptions, config, new=None) -> None:
        try:
            run = prepare_run(self.state, options, data, config, new)
        except TrainingProblem as problem:
            self._show_problem(problem)
            return
        self.runner.start(run.model, run.data, run.config, history=run.history, optimizer_state=run.optimizer_state,
                          tensorboard_dir=run.tensorboard_dir)
        logged = f"; TensorBoard log in {run.tensorboard_dir}" if run.tensorboard_dir is not None else ""
        self.statusBar().showMessage(f"Training on {dataset_display_name(data.spec)}…{logged}", 6000)

    def _show_problem(self, problem: TrainingProblem) -> None:
        self.show_error(problem.title, str(problem), problem.details, level=problem.level)

    def _prefetch_for_dataset(self, spec: str) -> None:
        """Import what training on ``spec`` will import, in the background (see :mod:`explorer.jobs.prefetch`)."""
        from explorer.ui.training.panel import TORCHVISION_SPECS

        self.prefetcher.request(["torch._dynamo"] + (["torchvision.datasets"] if spec in TORCHVISION_SPECS else []))

    def toggle_pause(self) -> None:
        self.runner.toggle_pause()

    def stop_training(self) -> None:
        self.runner.stop()

    def _on_runner_failed(self, text: str, details: str) -> None:
        if not self._closing:
            self.show_error("Training stopped", text, details)

    def _on_runner_finished(self, outcome) -> None:
        epochs = self.state.epochs_trained
        if outcome.status == "completed":
            self.statusBar().showMessage(f"Training finished: {epochs} epochs. Save with Ctrl+S.", 10_000)
        elif outcome.status == "stopped":
            self.statusBar().showMessage("Training stopped; the model keeps its last finished epoch.", 10_000)

    # ==============================================================================================
    # Help
    # ==============================================================================================
    def open_documentation(self) -> None:
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(REPO_ROOT / "README.md")))

    # ==============================================================================================
    # State → window
    # ==============================================================================================
    def _update_title(self, *_args) -> None:
        name = self.state.display_name
        self.setWindowTitle(f"{name}[*] — Latent Explorer" if name else "Latent Explorer")
        self.setWindowModified(self.state.dirty)

    def _hold_repaints_for_change(self, *_args) -> None:
        if self.isVisible() and not self._closing:
            self.hold_repaints()

    def _on_state_model_changed(self, _model) -> None:
        self.checkpoint_warnings = []   # an opened checkpoint sets its own right after
        self._update_title()
        self._update_model_label()
        self._update_actions()

    def _update_model_label(self) -> None:
        model = self.state.model
        epochs = self.state.epochs_trained
        text = describe_model(model) if model is not None else "No model"
        if model is not None and (epochs or self.state.limitation("train") is None):
            text += f" · {epochs} epoch{'s' if epochs != 1 else ''}"
        self.model_label.setText(text)

    def _on_state_dataset_changed(self, data) -> None:
        if data is None:
            self.dataset_label.setText("")
            return
        shape = "×".join(str(s) for s in data.image_shape)
        self.dataset_label.setText(f"{dataset_display_name(data.spec)} · {len(data.train) + len(data.test):,} images · {shape}")
        if data.skipped:
            self.statusBar().showMessage(f"{data.skipped} files in the folder were skipped (not readable images).", 10_000)

    def _on_state_training_status_changed(self, _status: str) -> None:
        self._update_actions()

    def _on_state_training_started(self, _config) -> None:
        # Bring the live training views to the front of their tab groups (not out of hiding).
        for name in ("loss_curves", "latent_units", "reconstructions", "samples"):
            dock = self.docks.get(name)
            if dock is not None and not dock.isHidden() and self.tabifiedDockWidgets(dock):
                dock.raise_()

    def _on_state_message_posted(self, level: str, text: str) -> None:
        self.statusBar().showMessage(text, 10_000 if level != "info" else 5000)

    def _update_actions(self) -> None:
        status = self.state.training_status
        idle = status == "idle"
        ready = self.engine_ready and not self.busy
        a = self.actions
        a["pause"].setEnabled(status in ("running", "paused"))
        a["pause"].setText("&Resume" if status == "paused" else "&Pause")
        a["stop"].setEnabled(status in ("running", "paused"))
        for name in ("open", "open_default", "open_folder"):
            a[name].setEnabled(ready and idle)
        self.menus["Recent"].setEnabled(ready and idle)
        a["open_code"].setEnabled(ready and idle)
        has_model = self.state.model is not None
        cannot_save = self.state.limitation("checkpoint")
        for name, tip in (("save", SAVE_TIP), ("save_as", SAVE_AS_TIP)):
            a[name].setEnabled(has_model and cannot_save is None)
            a[name].setToolTip(cannot_save or tip)
            a[name].setStatusTip(cannot_save or tip)
        a["export_model"].setEnabled(has_model and ready and self.state.limitation("export") is None)
        a["export_model"].setToolTip(self.state.limitation("export") or EXPORT_MODEL_TIP)
        cannot_train = self.state.limitation("train")
        a["train"].setEnabled(ready and idle and cannot_train is None)
        a["train"].setToolTip(train_tooltip(cannot_train))
        self.training_panel.train_button.setEnabled(ready and idle and cannot_train is None)
        self.training_panel.train_button.setToolTip(train_tooltip(cannot_train))

    def _on_task_progressed(self, task: Task, done: int, total: int) -> None:
        if task in self._tasks:
            task.done_total = (done, total)
            self._update_busy()

    def _update_busy(self) -> None:
        busy = bool(self._tasks)
        self.busy_bar.setVisible(busy)
        self.busy_label.setVisible(busy)
        if busy:
            task = next(iter(self._tasks))
            progress = task.done_total if len(self._tasks) == 1 else None
            if progress is not None and progress[1] > 0:
                done, total = progress
                self.busy_bar.setRange(0, total)
                self.busy_bar.setValue(min(done, total))
                self.busy_label.setText(f"{task.label} {done:,} of {total:,}")
            else:
                self.busy_bar.setRange(0, 0)   # a task without progress: the moving bar
                self.busy_label.setText(task.label)

    # ==============================================================================================
    # Drag and drop
    # ==============================================================================================
    def dragEnterEvent(self, event) -> None:  # noqa: N802 - Qt override
        if self._dropped_path(event.mimeData()) is not None:
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event) -> None:  # noqa: N802
        path = self._dropped_path(event.mimeData())
        if path is None:
            event.ignore()
            return
        event.acceptProposedAction()
        # Let the drag finish before any dialog opens.
        QTimer.singleShot(0, lambda: self.open_path(path))

    @staticmethod
    def _dropped_path(mime) -> Path | None:
        if not mime.hasUrls():
            return None
        urls = [u for u in mime.urls() if u.isLocalFile()]
        return Path(urls[0].toLocalFile()) if len(urls) == 1 else None

    def open_path(self, path) -> None:
        """Open whatever ``path`` is: a checkpoint, a sweep folder, a folder of images or an .npz file."""
        from explorer.state.runs import is_runs_folder

        path = Path(path)
        if is_checkpoint(path):
            self.open_checkpoint(path)
        elif is_runs_folder(path):
            if self.engine_ready:   # the Runs panel is installed with the engine
                self.experiments.open_runs_folder(path)
        elif path.is_dir():
            self.use_dataset(f"folder:{path}")
        elif path.suffix.lower() == ".npz":
            self.use_dataset(f"npz:{path}")
        else:
            self.show_error("Cannot open this file",
                            f"{path.name} is neither a Latent Explorer checkpoint (.safetensors or a folder with "
                            "config.json), a folder of images nor a NumPy .npz file.", level="warning")

    # ==============================================================================================
    # Settings and closing
    # ==============================================================================================
    def _data_root(self) -> str | None:
        root = self.state.data_root
        return str(root) if root is not None else None

    def _saved_options(self) -> TrainingOptions:
        raw = self.settings.value("training/options", "")
        try:
            values = json.loads(raw) if isinstance(raw, str) and raw else {}
        except ValueError:
            values = {}
        options = TrainingOptions.from_dict(values)
        root = self.settings.value("data/root", "")
        if root and not options.data_root:
            options.data_root = str(root)
        options.continue_training = False
        return options

    def _save_options(self, options: TrainingOptions | None = None) -> None:
        options = options or self.training_panel.options()
        self.settings.setValue("training/options", json.dumps(options.to_dict()))
        self.settings.setValue("data/root", self._data_root() or "")
        self.settings.setValue("data/last_dataset", options.dataset)

    def save_settings(self) -> None:
        self.settings.setValue("window/geometry", self.saveGeometry())
        if self.engine_ready:
            self.settings.setValue("window/state", self.saveState())
            self._save_options()
        self.settings.sync()

    def _confirm_discard(self, doing: str) -> bool:
        """Ask to save unsaved training; True to go on (saved or discarded), False to cancel."""
        if not self.state.dirty or self.state.model is None:
            return True
        answer = ask_save_changes(self, self.state.display_name, doing)
        if answer == "save":
            return self.save()
        return answer == "discard"

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt override
        if not self._closing and not self._confirm_discard("quitting"):
            event.ignore()
            return
        self._closing = True
        if self.runner.running and not self.runner.wait(15_000):
            self.statusBar().showMessage("Waiting for training to stop…")
        from PySide6.QtCore import QThreadPool
        from superqt.utils import WorkerBase

        if self.encoder is not None:
            self.encoder.shutdown()
        for worker in list(WorkerBase._worker_set):  # other panels' jobs: ask them to stop too
            worker.quit()
        QThreadPool.globalInstance().waitForDone(10_000)  # a dataset still loading
        self.save_settings()
        event.accept()


