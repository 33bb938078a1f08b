"""The Training panel: choose data, model and optimisation settings; train, pause, stop; watch progress.

The panel is a view: :meth:`TrainingPanel.options` reads the form into a
:class:`TrainingOptions`, the buttons emit :attr:`train_requested`,
:attr:`pause_requested` and :attr:`stop_requested`, and the main window does the work
(loading data in a worker, building or copying the model, starting the run). The panel
follows ``state.training_status`` for its buttons and ``state.training_progressed`` for the
progress bar. The data root field mirrors ``state.data_root`` (the one place it is kept).

Why this module is long (~770 lines): it is one form with a field per option of every model
family and objective, each validated as it is typed and explained in its tooltip; the
families' own fields are in :mod:`explorer.ui.training.family_options` and the options are a
plain dataclass (:class:`TrainingOptions`), so what remains is the form's layout and its rules.
"""

from __future__ import annotations

import dataclasses
import math
import os
from contextlib import ExitStack, contextmanager
from pathlib import Path

from PySide6.QtCore import QRegularExpression, Qt, Signal
from PySide6.QtGui import QRegularExpressionValidator
from PySide6.QtWidgets import (QButtonGroup, QCheckBox, QComboBox, QDoubleSpinBox, QFileDialog, QFormLayout, QFrame,
                               QGroupBox, QHBoxLayout, QLabel, QLineEdit, QPushButton,
                               QRadioButton, QScrollArea, QSizePolicy, QSpinBox, QStyle, QToolButton,
                               QVBoxLayout, QWidget)
from superqt import QLargeIntSpinBox
from superqt.utils import signals_blocked

from explorer.state.training import TrainingOptions, dataset_display_name
from explorer.ui.qt_utils import ProgressBar
from explorer.ui.training.family_options import OWNED as FAMILY_FIELDS
from explorer.ui.training.family_options import FamilyOptions

__all__ = ["TrainingOptions", "TrainingPanel", "format_duration", "dataset_display_name"]

LATENT_TIP = ("Size of the latent code z. 2 gives a map you can read directly; more dimensions reconstruct better "
              "and are mapped with PCA or UMAP")
MODEL_DEFAULT_HIDDEN = {"mlp": "400", "conv": "256", "cvae": "400"}
MODEL_DESCRIPTIONS = {
    "mlp": "Fully-connected encoder and decoder: fast, the classic VAE.",
    "conv": "Convolutional encoder and decoder: better on photos and larger images.",
    "cvae": "Conditioned on the class label: decode one style as every class (labelled data only).",
}
FOLDER_ITEM = "folder:PATH"
NPZ_ITEM = "npz:PATH"
TORCHVISION_SPECS = ("mnist", "fashion-mnist", "kmnist", "cifar10")


CONTINUE_TIP = "Train the open model further, keeping its weights, optimizer state and history"
TRAIN_TIP = "Start training with these settings (Ctrl+T)"


def train_tooltip(cannot_train: str | None) -> str:
    """The Train button's tooltip: what it does, or why the open model cannot be trained here."""
    if cannot_train is None:
        return TRAIN_TIP
    return f"{cannot_train} To train a model here, open a checkpoint or the bundled example first (File menu)."


def format_duration(seconds: float) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "–"
    seconds = int(round(max(0.0, seconds)))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def _tip(widget: QWidget, text: str) -> QWidget:
    widget.setToolTip(text)
    widget.setStatusTip(text.split(". ")[0].rstrip(".") + ".")
    return widget


class TrainingPanel(QWidget):
    """Form + controls + live progress of a training run.

    Signals
    -------
    train_requested(TrainingOptions)
    pause_requested()
        Pause, or resume when paused.
    stop_requested()
    dataset_changed(str)
        The user picked another dataset spec.
    """

    train_requested = Signal(object)
    pause_requested = Signal()
    stop_requested = Signal()
    dataset_changed = Signal(str)

    def __init__(self, state, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self._new_model_options = TrainingOptions()   # the form's own values while "continue" shows the model's
        self._run_start_step: int | None = None
        self._run_start_epoch = 0
        self._engine_ready = False
        self._build()
        state.training_status_changed.connect(self._on_state_training_status_changed)
        state.training_progressed.connect(self._on_state_training_progressed)
        state.data_root_changed.connect(self._on_state_data_root_changed)
        state.training_started.connect(self._on_state_training_started)
        state.training_finished.connect(self._on_state_training_finished)
        state.model_changed.connect(self._on_state_model_changed)
        state.dataset_changed.connect(self._on_state_dataset_changed)
        self._update_enabled()

    # -- construction ---------------------------------------------------------------------------------
    def _build(self) -> None:
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.setSpacing(0)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setMinimumHeight(60)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        body = QWidget()
        scroll.setWidget(body)
        outer.addWidget(scroll, 1)
        layout = QVBoxLayout(body)
        layout.setContentsMargins(8, 8, 8, 8)
        layout.setSpacing(8)

        # Data
        data_box = QGroupBox("Data")
        form = QFormLayout(data_box)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.dataset_combo = _tip(QComboBox(), "The images to train on. Digits ships with the app and works "
                                               "offline; MNIST, Fashion-MNIST, KMNIST and CIFAR-10 are read from the "
                                               "data root (or downloaded there when online); pick a folder of your "
                                               "own images or a NumPy .npz file with the last two entries.")
        self.dataset_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.dataset_combo.setMinimumContentsLength(12)
        self.dataset_combo.activated.connect(self._on_dataset_combo_activated)
        form.addRow("&Dataset:", self.dataset_combo)
        self.dataset_info = QLabel()
        self.dataset_info.setWordWrap(True)
        self.dataset_info.setEnabled(False)  # greyed: a description, not a control
        form.addRow("", self.dataset_info)
        root_row = QHBoxLayout()
        root_row.setSpacing(4)
        self.data_root_edit = _tip(QLineEdit(), "Folder where MNIST, Fashion-MNIST, KMNIST and CIFAR-10 are stored "
                                                "(each in its torchvision layout, e.g. MNIST/raw). Remembered between runs.")
        self.data_root_edit.setPlaceholderText("default: ~/.cache/latent-explorer/data")
        self.data_root_edit.setClearButtonEnabled(True)
        self.data_root_button = _tip(QToolButton(), "Choose the data root folder")
        self.data_root_button.setText("…")
        self.data_root_button.clicked.connect(self._browse_data_root)
        self.data_root_edit.textChanged.connect(self._on_data_root_edit_text_changed)
        root_row.addWidget(self.data_root_edit, 1)
        root_row.addWidget(self.data_root_button)
        self.data_root_label = QLabel("Data root:")
        self.data_root_label.setBuddy(self.data_root_edit)
        form.addRow(self.data_root_label, root_row)
        layout.addWidget(data_box)

        # Model
        model_box = QGroupBox("Model")
        form = QFormLayout(model_box)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        start_row = QVBoxLayout()
        start_row.setSpacing(2)
        self.new_radio = _tip(QRadioButton("&New model"), "Train a new model from scratch with the settings below")
        self.continue_radio = _tip(QRadioButton("&Continue the current model"), CONTINUE_TIP)
        self.new_radio.setChecked(True)
        self._start_group = QButtonGroup(self)
        self._start_group.addButton(self.new_radio)
        self._start_group.addButton(self.continue_radio)
        self.continue_radio.toggled.connect(self._on_continue_toggled)
        start_row.addWidget(self.new_radio)
        start_row.addWidget(self.continue_radio)
        form.addRow("Start from:", start_row)
        self.model_combo = _tip(QComboBox(), "Architecture: mlp (fully connected), conv (convolutional) or "
                                             "cvae (conditioned on the class label)")
        self.model_combo.currentTextChanged.connect(self._on_model_combo_changed)
        form.addRow("&Architecture:", self.model_combo)
        self.latent_spin = _tip(QSpinBox(), LATENT_TIP)
        self.latent_spin.setRange(1, 512)
        form.addRow("&Latent dimensions:", self.latent_spin)
        self.hidden_edit = _tip(QLineEdit(), "Hidden layer sizes, comma separated (e.g. 256, 128). For conv, the "
                                             "width of the fully-connected layer")
        self.hidden_edit.setValidator(QRegularExpressionValidator(QRegularExpression(r"^\s*\d{1,5}(\s*[, ]\s*\d{1,5})*\s*$")))
        form.addRow("&Hidden sizes:", self.hidden_edit)
        self.likelihood_combo = _tip(QComboBox(), "Decoder distribution: Bernoulli suits near-binary images such as "
                                                  "digits, Gaussian suits photographs. Auto follows the dataset")
        for text, value in (("Auto (from the dataset)", "auto"), ("Bernoulli", "bernoulli"), ("Gaussian", "gaussian")):
            self.likelihood_combo.addItem(text, value)
        form.addRow("Li&kelihood:", self.likelihood_combo)
        self.model_info = QLabel()
        self.model_info.setWordWrap(True)
        self.model_info.setEnabled(False)
        form.addRow("", self.model_info)
        model_form = form
        self._model_form = form
        layout.addWidget(model_box)

        # Optimisation
        opt_box = QGroupBox("Optimisation")
        form = QFormLayout(opt_box)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        # Numeric ranges come from vae_core.training.LIMITS once the engine is loaded (_apply_limits).
        self.epochs_spin = _tip(QSpinBox(), "Passes over the training images in this run")
        form.addRow("&Epochs:", self.epochs_spin)
        self.batch_spin = _tip(QSpinBox(), "Images per optimizer step")
        self.batch_spin.setSingleStep(16)
        form.addRow("&Batch size:", self.batch_spin)
        self.lr_spin = _tip(QDoubleSpinBox(), "Adam learning rate. Lower it if the loss jumps or becomes NaN")
        self.lr_spin.setDecimals(5)
        self.lr_spin.setSingleStep(5e-4)
        form.addRow("Learning &rate:", self.lr_spin)
        self.beta_spin = _tip(QDoubleSpinBox(), "β: weight of the KL term. 1 is the plain ELBO; above 1 encourages "
                                                "disentangled codes at the cost of blurrier reconstructions")
        self.beta_spin.setDecimals(2)
        self.beta_spin.setSingleStep(0.25)
        form.addRow("&β (KL weight):", self.beta_spin)
        warm_row = QHBoxLayout()
        warm_row.setSpacing(4)
        self.anneal_combo = _tip(QComboBox(), "KL warm-up against posterior collapse: linear raises the KL weight "
                                              "from 0 to β over the given epochs; cyclical repeats a ramp 4 times")
        for text, value in (("None", "none"), ("Linear", "linear"), ("Cyclical", "cyclical")):
            self.anneal_combo.addItem(text, value)
        self.anneal_combo.currentIndexChanged.connect(self._update_enabled)
        self.warmup_spin = _tip(QDoubleSpinBox(), "Epochs of linear KL warm-up")
        self.warmup_spin.setDecimals(1)
        self.warmup_spin.setSuffix(" epochs")
        warm_row.addWidget(self.anneal_combo, 1)
        warm_row.addWidget(self.warmup_spin, 1)
        form.addRow("KL warm-up:", warm_row)
        # QSpinBox stops at 2**31 - 1; a seed may be any 32-bit unsigned number.
        self.seed_spin = _tip(QLargeIntSpinBox(), "Random seed for the initial weights and the batch order: the same "
                                                  "seed and settings train the same model")
        form.addRow("&Seed:", self.seed_spin)
        self.device_combo = _tip(QComboBox(), "Where to train: the devices found on this machine. The window "
                                              "always decodes on the CPU")
        form.addRow("De&vice:", self.device_combo)
        # The objective with its K, α, γ, and the chosen family's settings in the model form.
        self.family = FamilyOptions(model_form, form, self)
        self.family.changed.connect(self._on_form_changed)
        self.hidden_edit.textChanged.connect(self._on_form_changed)
        self.latent_spin.valueChanged.connect(self._on_form_changed)
        layout.addWidget(opt_box)
        layout.addWidget(self._build_logging_box())

        layout.addStretch(1)

        # Controls: always visible below the scrolling form.
        controls = QFrame()
        controls.setFrameShape(QFrame.Shape.NoFrame)
        # The form scrolls; the buttons and the progress never shrink below their text.
        controls.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)
        layout = QVBoxLayout(controls)
        layout.setContentsMargins(8, 6, 8, 8)
        layout.setSpacing(6)
        outer.addWidget(controls)
        buttons = QHBoxLayout()
        buttons.setSpacing(6)
        style = self.style()
        self.train_button = _tip(QPushButton("Train"), TRAIN_TIP)
        self.train_button.setIcon(style.standardIcon(QStyle.StandardPixmap.SP_MediaPlay))
        self.train_button.setDefault(True)
        self.train_button.clicked.connect(self._on_train_clicked)
        self.pause_button = _tip(QPushButton("Pause"), "Pause training; press again to resume (Ctrl+P)")
        # Made once: looking icons up in the theme can take a while, not something to do on every pause.
        self._play_icon = style.standardIcon(QStyle.StandardPixmap.SP_MediaPlay)
        self._pause_icon = style.standardIcon(QStyle.StandardPixmap.SP_MediaPause)
        self.pause_button.setIcon(self._pause_icon)
        self.pause_button.clicked.connect(self.pause_requested)
        self.stop_button = _tip(QPushButton("Stop"), "Stop training; the model keeps its last finished epoch "
                                                     "(Ctrl+Shift+T)")
        self.stop_button.setIcon(style.standardIcon(QStyle.StandardPixmap.SP_MediaStop))
        self.stop_button.clicked.connect(self.stop_requested)
        for b in (self.train_button, self.pause_button, self.stop_button):
            b.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
            buttons.addWidget(b)
        layout.addLayout(buttons)

        self.progress_bar = _tip(ProgressBar(), "Progress of this training run")
        self.progress_bar.setRange(0, 1000)
        self.progress_bar.setValue(0)
        self.progress_bar.setTextVisible(True)
        self.progress_bar.setFormat("Not training")
        layout.addWidget(self.progress_bar)
        self.progress_label = QLabel(" ")
        self.progress_label.setToolTip("Epoch, optimizer step, speed and estimated time left")
        self.loss_label = QLabel(" ")
        self.loss_label.setToolTip("Running means over this epoch's batches, and the last test evaluation (nats per image)")
        for label in (self.progress_label, self.loss_label):
            label.setWordWrap(True)
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            layout.addWidget(label)
        self._scroll = scroll
        self._body = body
        self._controls = controls

        self._restore_form(TrainingOptions())

    def _build_logging_box(self) -> QGroupBox:
        from explorer.state.training import DEFAULT_TENSORBOARD_DIR

        box = QGroupBox("Logging")
        form = QFormLayout(box)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.tensorboard_check = _tip(QCheckBox("Log to &TensorBoard"),
                                      "Also write the losses, test metrics, per-dimension KL, reconstructions and "
                                      "prior samples of each run as TensorBoard event files, one subfolder per run. "
                                      "View them with: tensorboard --logdir FOLDER")
        self.tensorboard_check.toggled.connect(self._update_enabled)
        form.addRow(self.tensorboard_check)
        row = QHBoxLayout()
        row.setSpacing(4)
        self.tensorboard_edit = _tip(QLineEdit(), "Folder for the TensorBoard runs (each run gets its own subfolder). "
                                                  "Remembered between runs.")
        self.tensorboard_edit.setPlaceholderText(f"default: {DEFAULT_TENSORBOARD_DIR}")
        self.tensorboard_edit.setClearButtonEnabled(True)
        self.tensorboard_button = _tip(QToolButton(), "Choose the TensorBoard folder")
        self.tensorboard_button.setText("…")
        self.tensorboard_button.clicked.connect(self._browse_tensorboard_dir)
        row.addWidget(self.tensorboard_edit, 1)
        row.addWidget(self.tensorboard_button)
        form.addRow("Log folder:", row)
        return box

    def _browse_tensorboard_dir(self) -> None:
        start = self.tensorboard_edit.text() or str(Path.home())
        folder = QFileDialog.getExistingDirectory(self, "Choose the TensorBoard Folder", start)
        if folder:
            self.tensorboard_edit.setText(folder)

    def sizeHint(self):  # noqa: N802 - Qt override: the whole form without scrolling, if there is room
        hint = super().sizeHint()
        hint.setHeight(self._body.sizeHint().height() + self._controls.sizeHint().height() + 4)
        return hint

    def minimumSizeHint(self):  # noqa: N802 - Qt override: never clip the form horizontally
        hint = super().minimumSizeHint()
        width = self._body.minimumSizeHint().width() + self._scroll.verticalScrollBar().sizeHint().width() + 4
        hint.setWidth(max(hint.width(), width))
        return hint

    # -- engine choices (filled once vae_core is imported) ---------------------------------------------------
    def set_choices(self, dataset_specs, models, devices) -> None:
        """Fill the combos: ``dataset_specs`` as ``[(spec, description)]``, model names, device names."""
        current = self.options()
        self._apply_limits()
        with _blocked(self.dataset_combo, self.model_combo, self.device_combo):
            self.dataset_combo.clear()
            for spec, description in dataset_specs:
                if spec == FOLDER_ITEM:
                    self.dataset_combo.addItem("Image folder…", FOLDER_ITEM)
                elif spec == NPZ_ITEM:
                    self.dataset_combo.addItem("NumPy .npz file…", NPZ_ITEM)
                else:
                    self.dataset_combo.addItem(dataset_display_name(spec), spec)
                self.dataset_combo.setItemData(self.dataset_combo.count() - 1, description, Qt.ItemDataRole.ToolTipRole)
            self.model_combo.clear()
            for name in models:
                self.model_combo.addItem(name)
                self.model_combo.setItemData(self.model_combo.count() - 1, _model_description(name),
                                             Qt.ItemDataRole.ToolTipRole)
            self.device_combo.clear()
            best = devices[0] if devices else "cpu"
            self.device_combo.addItem(f"Auto ({_device_name(best)})", "auto")
            for name in devices:
                self.device_combo.addItem(_device_name(name), name)
        self._descriptions = dict(dataset_specs)
        self.family.configure()
        self._engine_ready = True
        self._restore_form(current)
        self._update_enabled()

    def _apply_limits(self) -> None:
        """Give the numeric fields the library's ranges, so the form never holds a value it refuses."""
        from vae_core.training import LIMITS

        for spin, name in ((self.epochs_spin, "epochs"), (self.batch_spin, "batch_size"), (self.lr_spin, "lr"),
                           (self.beta_spin, "beta"), (self.warmup_spin, "warmup_epochs"), (self.seed_spin, "seed")):
            low, high = LIMITS[name]
            if name == "lr":  # lr > 0: the smallest step the field shows
                low = 10.0 ** -self.lr_spin.decimals()
            spin.setRange(low, high)

    # -- options ------------------------------------------------------------------------------------------
    def options(self) -> TrainingOptions:
        """The form's values."""
        hidden = tuple(int(v) for v in self.hidden_edit.text().replace(",", " ").split() if v.strip())
        return TrainingOptions(
            dataset=self.current_dataset_spec() or "digits",
            data_root=str(self.state.data_root) if self.state.data_root is not None else "",
            continue_training=self.continue_radio.isChecked(),
            model=self.model_combo.currentText() or "mlp",
            latent_dim=self.latent_spin.value(),
            hidden=hidden,
            likelihood=self.likelihood_combo.currentData() or "auto",
            epochs=self.epochs_spin.value(),
            batch_size=self.batch_spin.value(),
            lr=self.lr_spin.value(),
            beta=self.beta_spin.value(),
            kl_anneal=self.anneal_combo.currentData() or "none",
            warmup_epochs=self.warmup_spin.value(),
            seed=self.seed_spin.value(),
            device=self.device_combo.currentData() or "auto",
            **self.family.values(),
            tensorboard=self.tensorboard_check.isChecked(),
            tensorboard_dir=self.tensorboard_edit.text().strip(),
        )

    def set_options(self, options: TrainingOptions | dict) -> None:
        """Fill the form (e.g. from the settings of the previous session)."""
        if isinstance(options, dict):
            options = TrainingOptions.from_dict(options)
        self._restore_form(options)
        self._update_enabled()

    def _restore_form(self, o: TrainingOptions) -> None:
        self.set_dataset_spec(o.dataset)
        self.state.set_data_root(o.data_root or None)
        _select(self.model_combo, o.model, by_text=True)
        self.latent_spin.setValue(o.latent_dim)
        self.hidden_edit.setText(", ".join(str(h) for h in o.hidden))
        _select(self.likelihood_combo, o.likelihood)
        self.epochs_spin.setValue(o.epochs)
        self.batch_spin.setValue(o.batch_size)
        self.lr_spin.setValue(o.lr)
        self.beta_spin.setValue(o.beta)
        _select(self.anneal_combo, o.kl_anneal)
        self.warmup_spin.setValue(o.warmup_epochs)
        self.seed_spin.setValue(o.seed)
        _select(self.device_combo, o.device)
        self.family.set_options(o)
        self.family.set_model(self.model_combo.currentText() or o.model)
        self.tensorboard_check.setChecked(o.tensorboard)
        self.tensorboard_edit.setText(o.tensorboard_dir)
        can_continue = self.state.model is not None and self.state.limitation("train") is None
        self.continue_radio.setChecked(bool(o.continue_training and can_continue))
        if not self.continue_radio.isChecked():
            self.new_radio.setChecked(True)
        self._update_model_rows(self.model_combo.currentText())
        self._update_model_info()

    # -- dataset combo ------------------------------------------------------------------------------------------
    def current_dataset_spec(self) -> str | None:
        spec = self.dataset_combo.currentData()
        return None if spec in (FOLDER_ITEM, NPZ_ITEM) else spec

    def set_dataset_spec(self, spec: str) -> None:
        """Select ``spec`` in the combo, adding an entry for a folder or .npz path."""
        if not spec:
            return
        index = self.dataset_combo.findData(spec)
        if index < 0:
            kind = spec.partition(":")[0]
            if kind not in ("folder", "npz", "shapes", "dsprites") and not self._engine_ready:
                # Choices not filled yet: keep the spec so options() still reports it.
                self.dataset_combo.addItem(dataset_display_name(spec), spec)
                index = self.dataset_combo.count() - 1
            else:
                at = self.dataset_combo.findData(FOLDER_ITEM)
                at = at if at >= 0 else self.dataset_combo.count()
                self.dataset_combo.insertItem(at, dataset_display_name(spec), spec)
                self.dataset_combo.setItemData(at, spec.partition(":")[2] or spec, Qt.ItemDataRole.ToolTipRole)
                index = at
        with _blocked(self.dataset_combo):
            self.dataset_combo.setCurrentIndex(index)
        self._last_dataset_index = index
        self._update_dataset_info()

    def _on_dataset_combo_activated(self, index: int) -> None:
        spec = self.dataset_combo.itemData(index)
        if spec == FOLDER_ITEM:
            folder = QFileDialog.getExistingDirectory(self, "Choose a Folder of Images", str(Path.home()))
            if not folder:
                self._revert_dataset_combo()
                return
            spec = f"folder:{folder}"
        elif spec == NPZ_ITEM:
            path, _ = QFileDialog.getOpenFileName(self, "Choose a NumPy .npz File", str(Path.home()),
                                                  "NumPy archives (*.npz)")
            if not path:
                self._revert_dataset_combo()
                return
            spec = f"npz:{path}"
        self.set_dataset_spec(spec)
        self._update_enabled()
        self.dataset_changed.emit(spec)

    def _revert_dataset_combo(self) -> None:
        with _blocked(self.dataset_combo):
            self.dataset_combo.setCurrentIndex(getattr(self, "_last_dataset_index", 0))

    def _update_dataset_info(self) -> None:
        spec = self.current_dataset_spec() or ""
        descriptions = getattr(self, "_descriptions", {})
        kind = spec.partition(":")[0]
        text = descriptions.get(spec) or descriptions.get(f"{kind}:PATH") or ""
        if kind in ("folder", "npz"):
            text = spec.partition(":")[2]
        data = self.state.dataset
        if data is not None and spec and _same_spec(data.spec, spec):
            text = (f"{len(data.train):,} training and {len(data.test):,} test images, "
                    f"{'×'.join(str(s) for s in data.image_shape)}" + (f", {data.num_classes} classes" if data.num_classes else ""))
        self.dataset_info.setText(text)
        torchvision = spec in TORCHVISION_SPECS
        self.data_root_edit.setEnabled(torchvision and not self.state.is_training)
        self.data_root_button.setEnabled(torchvision and not self.state.is_training)
        self.data_root_label.setEnabled(torchvision)

    def _browse_data_root(self) -> None:
        start = self.data_root_edit.text() or str(Path.home())
        folder = QFileDialog.getExistingDirectory(self, "Choose the Data Root", start)
        if folder:
            self.state.set_data_root(folder)

    def _on_data_root_edit_text_changed(self, text: str) -> None:
        self.state.set_data_root(text.strip() or None)

    def _on_state_data_root_changed(self, root) -> None:
        text = self.data_root_edit.text().strip()
        if (Path(text) if text else None) != root:   # "/data/" while typing is still /data: leave it
            with signals_blocked(self.data_root_edit):
                self.data_root_edit.setText(str(root) if root is not None else "")

    # -- model fields -------------------------------------------------------------------------------------------
    def _on_model_combo_changed(self, name: str) -> None:
        text = self.hidden_edit.text().replace(" ", "")
        if text in {v.replace(" ", "") for v in MODEL_DEFAULT_HIDDEN.values()} | {""}:
            self.hidden_edit.setText(MODEL_DEFAULT_HIDDEN.get(name, text))
        self.family.set_model(name)
        self._update_model_rows(name)
        self._update_model_info()
        self._on_form_changed()

    def _update_model_rows(self, name: str) -> None:
        """Hidden sizes only for models with fully-connected layers; a vqvae's latent size is one code vector's."""
        if not self._engine_ready or not name:
            return
        from vae_core import model_config_class

        try:
            fields = {f.name for f in dataclasses.fields(model_config_class(name))}
        except (KeyError, ValueError):
            return
        self._model_form.setRowVisible(self.hidden_edit, "hidden" in fields)
        label = self._model_form.labelForField(self.latent_spin)
        if name == "vqvae":
            label.setText("&Code vector size:")
            self.latent_spin.setToolTip("D, the size of one codebook vector; each of the grid's cells holds one, so "
                                        "the map code has rows × columns × D numbers")
        else:
            label.setText("&Latent dimensions:")
            self.latent_spin.setToolTip(LATENT_TIP)

    def _on_continue_toggled(self, checked: bool) -> None:
        if checked:
            self._new_model_options = self.options()
            self._show_current_model_architecture()
        else:
            o = self._new_model_options
            _select(self.model_combo, o.model, by_text=True)
            self.latent_spin.setValue(o.latent_dim)
            self.hidden_edit.setText(", ".join(str(h) for h in o.hidden))
            _select(self.likelihood_combo, o.likelihood)
            # The model's settings come back; the objective stays as chosen meanwhile.
            objective = {k: v for k, v in self.family.values().items() if k in ("objective", "samples", "alpha", "gamma")}
            self.family.set_options(dataclasses.replace(o, **objective))
        self._update_enabled()
        self._update_model_info()

    def _show_current_model_architecture(self) -> None:
        model = self.state.model
        if model is None:
            return
        config = model.config
        _select(self.model_combo, model.name, by_text=True)
        # The form's field is the config's (a vqvae's map code is its grid × this).
        self.latent_spin.setValue(getattr(config, "latent_dim", model.latent_dim))
        hidden = getattr(config, "hidden", ())
        hidden = (hidden,) if isinstance(hidden, int) else tuple(hidden)
        self.hidden_edit.setText(", ".join(str(h) for h in hidden))
        _select(self.likelihood_combo, config.likelihood)
        settings = {name: getattr(config, name) for name in FAMILY_FIELDS if hasattr(config, name)}
        self.family.set_options(dataclasses.replace(self.options(), **settings))
        self.family.set_model(model.name)
        self._update_model_rows(model.name)

    def _update_model_info(self) -> None:
        if self.continue_radio.isChecked() and self.state.model is not None:
            from explorer.state import describe_model

            epochs = self.state.epochs_trained
            trained = f"trained for {epochs} epoch{'s' if epochs != 1 else ''}" if epochs else "not trained yet"
            self.model_info.setText(f"{describe_model(self.state.model)}; {trained}.")
        elif self._engine_ready:
            self.model_info.setText(_model_description(self.model_combo.currentText()))

    def _on_form_changed(self, *_args) -> None:
        # Family settings are checked as they are typed; the reason shows under them.
        if self._engine_ready and not self.continue_radio.isChecked():
            self.family.problem(self.options())
        self._update_enabled()

    # -- buttons ------------------------------------------------------------------------------------------------
    def _on_train_clicked(self) -> None:
        if self.state.is_training or not self._engine_ready:
            return
        self.train_requested.emit(self.options())

    def _update_enabled(self, *_args) -> None:
        status = self.state.training_status
        idle = status == "idle"
        ready = self._engine_ready
        form_enabled = idle and ready
        cont = self.continue_radio.isChecked()
        for w in (self.dataset_combo, self.new_radio, self.epochs_spin, self.batch_spin, self.lr_spin, self.beta_spin,
                  self.anneal_combo, self.seed_spin, self.device_combo):
            w.setEnabled(form_enabled)
        cannot_train = self.state.limitation("train")
        self.continue_radio.setEnabled(form_enabled and self.state.model is not None and cannot_train is None)
        for w in (self.model_combo, self.latent_spin, self.hidden_edit, self.likelihood_combo):
            w.setEnabled(form_enabled and not cont)
        self.warmup_spin.setEnabled(form_enabled and self.anneal_combo.currentData() == "linear")
        self.family.set_editable(form_enabled and not cont, form_enabled)
        problem = bool(self.family.problem_label.text()) and not cont
        self.tensorboard_check.setEnabled(form_enabled)
        for w in (self.tensorboard_edit, self.tensorboard_button):
            w.setEnabled(form_enabled and self.tensorboard_check.isChecked())
        self.train_button.setEnabled(form_enabled and cannot_train is None and not problem)
        self.train_button.setToolTip(train_tooltip(cannot_train))
        self.continue_radio.setToolTip(cannot_train or CONTINUE_TIP)
        self.train_button.setText("Train" if not cont else "Continue")
        self.pause_button.setEnabled(status in ("running", "paused"))
        self.pause_button.setText("Resume" if status == "paused" else "Pause")
        self.pause_button.setIcon(self._play_icon if status == "paused" else self._pause_icon)
        self.stop_button.setEnabled(status in ("running", "paused"))
        self._update_dataset_info()

    # -- state events ------------------------------------------------------------------------------------------------
    def _on_state_training_status_changed(self, status: str) -> None:
        self._update_enabled()
        if status == "paused":
            self.progress_bar.setFormat("Paused · %p%")
        elif status == "stopping":
            self.progress_bar.setFormat("Stopping…")

    def _on_state_training_started(self, config) -> None:
        self._run_start_epoch = self.state.epochs_trained
        self._run_start_step = None
        self.progress_bar.setValue(0)
        self.progress_bar.setFormat("Starting…")
        self.progress_label.setText(f"Training for {config.epochs} epoch{'s' if config.epochs != 1 else ''} "
                                    f"on {self.state.dataset.spec if self.state.dataset else 'the dataset'}…")
        self.loss_label.setText(" ")

    def _on_state_training_progressed(self, p) -> None:
        if self._run_start_step is None:
            self._run_start_step = self._run_start_epoch * p.steps_per_epoch
        run_total = max(1, p.total_steps - self._run_start_step)
        run_done = max(0, p.step - self._run_start_step)
        fraction = min(1.0, run_done / run_total)
        self.progress_bar.setValue(int(round(fraction * 1000)))
        if self.state.training_status == "running":
            self.progress_bar.setFormat(f"Epoch {p.epoch + 1} of {p.epochs} · %p%")
        eta = p.elapsed / run_done * (run_total - run_done) if run_done else float("nan")
        step_in_epoch = p.step - p.epoch * p.steps_per_epoch
        self.progress_label.setText(
            f"Epoch {p.epoch + 1}/{p.epochs} · step {step_in_epoch:,}/{p.steps_per_epoch:,} · "
            f"{p.images_per_sec:,.0f} img/s · elapsed {format_duration(p.elapsed)} · ETA {format_duration(eta)}")
        losses = p.losses
        text = f"loss {losses['loss']:.2f} · recon {losses['recon']:.2f} · KL {losses['kl']:.2f}"
        if p.kind == "epoch" and p.test:
            text += f" · test −ELBO {p.test['neg_elbo']:.2f}"
        elif self.state.history and "test_neg_elbo" in self.state.history[-1]:
            text += f" · test −ELBO {self.state.history[-1]['test_neg_elbo']:.2f}"
        if losses.get("beta") is not None and self.state.train_config and self.state.train_config.get("kl_anneal") != "none":
            text += f" · KL weight {losses['beta']:.2f}"
        self.loss_label.setText(text)

    def _on_state_training_finished(self, outcome: str) -> None:
        epochs = self.state.epochs_trained
        self.progress_label.setText(self._summary())
        if outcome == "completed":
            self.progress_bar.setValue(1000)
            self.progress_bar.setFormat(f"Done · {epochs} epoch{'s' if epochs != 1 else ''} trained")
        elif outcome == "stopped":
            self.progress_bar.setFormat(f"Stopped · the model keeps epoch {epochs}" if epochs else
                                        "Stopped before the first epoch ended")
        else:
            self.progress_bar.setFormat("Failed · see the message")
        self._update_enabled()
        self._update_model_info()

    def _summary(self) -> str:
        """What the current model has been through, for the idle panel."""
        history = self.state.history
        if self.state.model is None:
            return " "
        reason = self.state.limitation("train")
        if reason is not None:
            return reason
        if not history:
            return "This model has not been trained yet."
        last = history[-1]
        epochs = self.state.epochs_trained
        text = f"Trained for {epochs} epoch{'s' if epochs != 1 else ''}"
        if "test_neg_elbo" in last:
            text += f" · test −ELBO {last['test_neg_elbo']:.2f} nats"
        if "test_active_units" in last:
            # Counted over the code the model trained with (an hvae's map may show another layer).
            units = len(last.get("test_kl_per_dim") or ()) or self.state.model.latent_dim
            text += f" · {last['test_active_units']} of {units} units active (their posterior means vary)"
        return text + "."

    def _on_state_model_changed(self, model) -> None:
        if not self.state.is_training:
            self.progress_bar.setValue(0)
            self.progress_bar.setFormat("Not training")
            self.progress_label.setText(self._summary())
            self.loss_label.setText(" ")
        if (model is None or self.state.limitation("train")) and self.continue_radio.isChecked():
            self.new_radio.setChecked(True)
        elif self.continue_radio.isChecked() and not self.state.is_training:
            self._show_current_model_architecture()
        self._update_enabled()
        self._update_model_info()

    def _on_state_dataset_changed(self, data) -> None:
        if data is not None and not self.state.is_training:
            self.set_dataset_spec(data.spec)
        self._update_dataset_info()


# -- helpers ----------------------------------------------------------------------------------------------------
def _model_description(name: str) -> str:
    """One line about model ``name``: ours for the classic three, the model's own for the others."""
    if name in MODEL_DESCRIPTIONS:
        return MODEL_DESCRIPTIONS[name]
    from vae_core.registry import model_description

    try:
        return model_description(name) + "."
    except ValueError:
        return ""


def _device_name(device: str) -> str:
    return {"cpu": "CPU", "cuda": "CUDA GPU", "mps": "Apple GPU (MPS)"}.get(device, device)


def _select(combo: QComboBox, value, *, by_text: bool = False) -> None:
    index = combo.findText(str(value)) if by_text else combo.findData(value)
    if index >= 0:
        combo.setCurrentIndex(index)
    elif by_text and combo.count() == 0:
        combo.addItem(str(value))


def _same_spec(a: str, b: str) -> bool:
    def norm(spec: str) -> str:
        kind, sep, arg = spec.partition(":")
        if kind in ("folder", "npz") and arg:
            return f"{kind}:{os.path.abspath(os.path.expanduser(arg))}"
        return spec.lower()

    return norm(a) == norm(b)


@contextmanager
def _blocked(*widgets):
    """``with _blocked(*widgets):`` — no signals from them while the code inside changes them."""
    with ExitStack() as stack:
        for widget in widgets:
            stack.enter_context(signals_blocked(widget))
        yield
