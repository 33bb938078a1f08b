"""The Training panel's rows for the objective and for each model family's settings.

:class:`FamilyOptions` adds its rows to two of the panel's forms: the objective (ELBO,
IWAE, β-TCVAE) with its K, α and γ to the optimisation form, and the settings of
``hvae``, ``iaf``, ``vaegan`` and ``vqvae`` (:data:`vae_core.model_options.MODEL_OPTIONS`)
to the model form. Only the rows of the chosen model and objective are visible. Ranges come from
:data:`vae_core.training.LIMITS` and the option table, so the form, the library and the
command line accept the same values; the settings are checked as they are typed and the
reason a combination cannot be built is shown under them.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, QRegularExpression, QSignalBlocker, Qt, Signal
from PySide6.QtGui import QRegularExpressionValidator
from PySide6.QtWidgets import QCheckBox, QComboBox, QDoubleSpinBox, QFormLayout, QLabel, QLineEdit, QSpinBox, QWidget

from explorer.state.training import TrainingOptions

__all__ = ["FamilyOptions", "OBJECTIVE_TIPS"]

OBJECTIVE_TIPS = {
    "elbo": "Evidence lower bound: reconstruction + β·KL, one posterior sample per image (β-VAE when β ≠ 1).",
    "iwae": "Importance-weighted bound (Burda et al., 2016): K posterior samples per image give a tighter bound "
            "and a posterior that covers more of the data; costs K times the decoder work.",
    "tcvae": "β-TCVAE (Chen et al., 2018): splits the KL into index-code mutual information (α), total "
             "correlation (β) and dimension-wise KL (γ); a large β gives more disentangled codes. Needs a "
             "Gaussian posterior (not hvae or iaf).",
}
#: The TrainingOptions fields these rows own.
#: vqvae's rows: option name, label, decimals of a float (None: a whole number or a switch).
VQ_ROWS = (("codebook_size", "Code&book size:", None), ("commitment_weight", "Co&mmitment weight:", 3),
           ("ema", "EMA codebook:", None), ("ema_decay", "EMA &decay:", 5),
           ("dead_code_threshold", "Dead-code &restart below:", 3), ("prior_width", "Prior &width:", None),
           ("prior_layers", "Prior la&yers:", None), ("prior_heads", "Prior &heads:", None))
OWNED = ("objective", "samples", "alpha", "gamma", "flow_steps", "lower_dims", "map_layer", "gan_weight",
         "feature_weight", *(name for name, _label, _decimals in VQ_ROWS))
_LAYERS_PATTERN = r"^\s*\d{1,5}(\s*[, ]\s*\d{1,5})*\s*$"


def _value(widget: QWidget):
    return widget.isChecked() if isinstance(widget, QCheckBox) else widget.value()


def _tip(widget: QWidget, text: str) -> None:
    widget.setToolTip(text)
    widget.setStatusTip(text.split(". ")[0].rstrip(".") + ".")


class FamilyOptions(QObject):
    """Objective and model-family rows; reads and writes the matching :class:`TrainingOptions` fields.

    Signals
    -------
    changed()
        A value changed (the panel re-validates).
    """

    changed = Signal()

    def __init__(self, model_form: QFormLayout, objective_form: QFormLayout, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._model_form, self._objective_form = model_form, objective_form
        self._model = "mlp"
        self._problem = ""
        self._ready = False                      # ranges, items and tips come with the engine
        self._pending = TrainingOptions()        # what set_options asked for before then

        self.objective_combo = QComboBox()
        self.objective_combo.currentIndexChanged.connect(self._on_any_changed)
        objective_form.addRow("&Objective:", self.objective_combo)
        self.samples_spin = QSpinBox()
        objective_form.addRow("&K samples:", self.samples_spin)
        self.alpha_spin = self._weight_spin()
        objective_form.addRow("&α (mutual info):", self.alpha_spin)
        self.gamma_spin = self._weight_spin()
        objective_form.addRow("&γ (dimension KL):", self.gamma_spin)

        self.flow_steps_spin = QSpinBox()
        model_form.addRow("&Flow steps:", self.flow_steps_spin)
        self.lower_dims_edit = QLineEdit()
        self.lower_dims_edit.setValidator(QRegularExpressionValidator(QRegularExpression(_LAYERS_PATTERN)))
        model_form.addRow("Lower &layers:", self.lower_dims_edit)
        self.map_layer_combo = QComboBox()
        model_form.addRow("&Map shows:", self.map_layer_combo)
        self.gan_weight_spin = self._weight_spin()
        model_form.addRow("&Discriminator weight:", self.gan_weight_spin)
        self.feature_weight_spin = self._weight_spin()
        model_form.addRow("&Feature weight:", self.feature_weight_spin)
        self.vq_widgets: dict[str, QWidget] = {}
        for name, label, decimals in VQ_ROWS:
            if name == "ema":
                widget = QCheckBox("move entries by moving averages")
                widget.toggled.connect(self._on_any_changed)
            elif decimals is None:
                widget = QSpinBox()
            else:
                widget = QDoubleSpinBox()
                widget.setDecimals(decimals)
                widget.setSingleStep(10.0 ** -min(decimals, 2))
            if isinstance(widget, (QSpinBox, QDoubleSpinBox)):
                widget.valueChanged.connect(self._on_any_changed)
            self.vq_widgets[name] = widget
            model_form.addRow(label, widget)
        self.problem_label = QLabel()
        self.problem_label.setWordWrap(True)
        self.problem_label.setStyleSheet("color: #c0392b;")
        model_form.addRow("", self.problem_label)

        for spin in (self.samples_spin, self.alpha_spin, self.gamma_spin, self.flow_steps_spin,
                     self.gan_weight_spin, self.feature_weight_spin):
            spin.valueChanged.connect(self._on_any_changed)
        self.lower_dims_edit.textChanged.connect(self._on_lower_dims_changed)
        self.map_layer_combo.currentIndexChanged.connect(self._on_any_changed)
        self._rows = {  # widget -> the models (or objectives) that show it
            self.flow_steps_spin: ("model", ("iaf",)),
            self.lower_dims_edit: ("model", ("hvae",)),
            self.map_layer_combo: ("model", ("hvae",)),
            self.gan_weight_spin: ("model", ("vaegan",)),
            self.feature_weight_spin: ("model", ("vaegan",)),
            **{widget: ("model", ("vqvae",)) for widget in self.vq_widgets.values()},
            self.samples_spin: ("objective", ("iwae",)),
            self.alpha_spin: ("objective", ("tcvae",)),
            self.gamma_spin: ("objective", ("tcvae",)),
        }
        self._update_rows()

    def configure(self) -> None:
        """Take ranges, objectives and tooltips from the engine (imported by now) and show the values."""
        from vae_core.model_options import MODEL_OPTIONS
        from vae_core.objectives import OBJECTIVES
        from vae_core.training import LIMITS

        options = {o.name: o for o in MODEL_OPTIONS}
        with QSignalBlocker(self.objective_combo):
            self.objective_combo.clear()
            for name, text in OBJECTIVES.items():
                self.objective_combo.addItem(f"{name} — {text}", name)
                self.objective_combo.setItemData(self.objective_combo.count() - 1, OBJECTIVE_TIPS.get(name, text),
                                                 Qt.ItemDataRole.ToolTipRole)
        _tip(self.objective_combo, "What training minimizes. " + " ".join(OBJECTIVE_TIPS.values()))
        low, high = LIMITS["samples"]
        self.samples_spin.setRange(int(low), int(high))
        _tip(self.samples_spin, f"K, importance samples per image of the IWAE bound ({low} to {high}). K = 1 is the "
                                "ELBO; 5 or 50 are the usual choices; training costs K times more.")
        self.alpha_spin.setRange(*LIMITS["alpha"])
        _tip(self.alpha_spin, "α: weight of the index-code mutual information between the image and its code "
                              f"(1 keeps the ELBO's; {LIMITS['alpha'][0]:g} to {LIMITS['alpha'][1]:g}).")
        self.gamma_spin.setRange(*LIMITS["gamma"])
        _tip(self.gamma_spin, "γ: weight of the dimension-wise KL, which keeps each dimension close to the prior "
                              f"(1 keeps the ELBO's; {LIMITS['gamma'][0]:g} to {LIMITS['gamma'][1]:g}). β weights "
                              "the total correlation.")
        o = options["flow_steps"]
        self.flow_steps_spin.setRange(int(o.low), int(o.high))
        _tip(self.flow_steps_spin, f"{o.help} ({o.range_text})")
        o = options["lower_dims"]
        _tip(self.lower_dims_edit, f"{o.help} Each {o.range_text}, comma separated (e.g. 100 or 100, 50). Hidden "
                                   "sizes: one width per stochastic layer, or one for all.")
        _tip(self.map_layer_combo, options["map_layer"].help + " The map toolbar can change it later.")
        for name, spin in (("gan_weight", self.gan_weight_spin), ("feature_weight", self.feature_weight_spin)):
            o = options[name]
            spin.setRange(float(o.low), float(o.high))
            _tip(spin, f"{o.help} ({o.range_text})")
        for name, widget in self.vq_widgets.items():
            o = options[name]
            if o.kind == "int":
                widget.setRange(int(o.low), int(o.high))
            elif o.kind == "float":
                # A spin box has a closed range: an open low end starts one step above it.
                low = o.low + 10.0 ** -widget.decimals() if o.low_open else o.low
                widget.setRange(float(low), float(o.high))
            _tip(widget, f"{o.help} ({o.range_text})" if o.range_text else o.help)
        self._ready = True
        self.set_options(self._pending)

    @staticmethod
    def _weight_spin() -> QDoubleSpinBox:
        spin = QDoubleSpinBox()
        spin.setDecimals(3)
        spin.setSingleStep(0.1)
        return spin

    # -- values ------------------------------------------------------------------------------------
    @property
    def objective(self) -> str:
        return self.objective_combo.currentData() or "elbo"

    def lower_dims(self) -> tuple[int, ...]:
        return tuple(int(v) for v in self.lower_dims_edit.text().replace(",", " ").split() if v.strip())

    def values(self) -> dict:
        """The :class:`TrainingOptions` fields this widget owns."""
        if not self._ready:
            return {name: getattr(self._pending, name) for name in OWNED}
        return dict(objective=self.objective, samples=self.samples_spin.value(), alpha=self.alpha_spin.value(),
                    gamma=self.gamma_spin.value(), flow_steps=self.flow_steps_spin.value(),
                    lower_dims=self.lower_dims() or (100,), map_layer=self.map_layer_combo.currentData() or "top",
                    gan_weight=self.gan_weight_spin.value(), feature_weight=self.feature_weight_spin.value(),
                    **{name: _value(widget) for name, widget in self.vq_widgets.items()})

    def set_options(self, o: TrainingOptions) -> None:
        self._pending = o
        if not self._ready:
            return
        widgets = (self.objective_combo, self.samples_spin, self.alpha_spin, self.gamma_spin, self.flow_steps_spin,
                   self.lower_dims_edit, self.map_layer_combo, self.gan_weight_spin, self.feature_weight_spin,
                   *self.vq_widgets.values())
        blockers = [QSignalBlocker(w) for w in widgets]
        index = self.objective_combo.findData(o.objective)
        self.objective_combo.setCurrentIndex(max(0, index))
        self.samples_spin.setValue(o.samples)
        self.alpha_spin.setValue(o.alpha)
        self.gamma_spin.setValue(o.gamma)
        self.flow_steps_spin.setValue(o.flow_steps)
        self.lower_dims_edit.setText(", ".join(str(v) for v in o.lower_dims))
        self._fill_layers(o.map_layer)
        self.gan_weight_spin.setValue(o.gan_weight)
        self.feature_weight_spin.setValue(o.feature_weight)
        for name, widget in self.vq_widgets.items():
            if isinstance(widget, QCheckBox):
                widget.setChecked(bool(getattr(o, name)))
            else:
                widget.setValue(getattr(o, name))
        del blockers
        self._update_rows()

    def set_model(self, name: str) -> None:
        """Show the rows of model ``name``."""
        self._model = name
        self._update_rows()

    def set_editable(self, model_rows: bool, objective_rows: bool) -> None:
        for widget, (kind, _names) in self._rows.items():
            widget.setEnabled(model_rows if kind == "model" else objective_rows)
        self.objective_combo.setEnabled(objective_rows)

    def problem(self, options: TrainingOptions) -> str:
        """Why ``options`` cannot build a model (empty when they can); also shown under the rows."""
        from vae_core.errors import ConfigError
        from vae_core.model_options import family_config

        text = ""
        try:
            family_config(options.model, {**options.model_settings(), "latent_dim": options.latent_dim},
                          hidden=options.hidden if options.model == "hvae" else None)
        except ConfigError as exc:
            text = str(exc)
        self.problem_label.setText(text)
        self.problem_label.setVisible(bool(text))
        self._problem = text
        return text

    # -- internals -----------------------------------------------------------------------------------
    def _fill_layers(self, current: str | None = None) -> None:
        current = current or self.map_layer_combo.currentData() or "top"
        layers = len(self.lower_dims() or (100,)) + 1
        with QSignalBlocker(self.map_layer_combo):
            self.map_layer_combo.clear()
            self.map_layer_combo.addItem(f"Top layer (z{layers})", "top")
            for i in reversed(range(1, layers)):
                self.map_layer_combo.addItem(f"Layer z{i}" + (" (bottom)" if i == 1 else ""), str(i))
            self.map_layer_combo.addItem("All layers, concatenated", "all")
            index = self.map_layer_combo.findData(current)
            self.map_layer_combo.setCurrentIndex(max(0, index))

    def _on_lower_dims_changed(self, _text: str) -> None:
        self._fill_layers()
        self.changed.emit()

    def _on_any_changed(self, *_args) -> None:
        self._update_rows()
        self.changed.emit()

    def _update_rows(self) -> None:
        for widget, (kind, names) in self._rows.items():
            key = self._model if kind == "model" else self.objective
            form = self._model_form if kind == "model" else self._objective_form
            form.setRowVisible(widget, key in names)
        if not self._problem:
            self.problem_label.setVisible(False)
