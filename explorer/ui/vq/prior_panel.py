"""The Code Prior panel: train a vqvae's prior over code grids, sample it, complete a grid.

**Train prior** fits the autoregressive prior (:func:`vae_core.prior.train_prior`) on the
loaded dataset in a background worker (:class:`~explorer.jobs.prior.PriorRunner`) with a
progress bar and Cancel; each epoch's weights go into the document, so the Samples view
shows the learned prior's samples and Save writes the prior into the checkpoint.
Temperature (shared with the Samples view) and the rows kept belong to
``state.vq.sampling``; **Complete** keeps the top rows of the grid editor's image and lets
the prior draw the rest.
"""

from __future__ import annotations

from PySide6.QtWidgets import (QDoubleSpinBox, QFormLayout, QHBoxLayout, QLabel, QPushButton, QSpinBox,
                               QVBoxLayout, QWidget)

from explorer.jobs.prior import PriorRunner
from explorer.state.vq.sampling import TEMPERATURE_RANGE
from explorer.ui.image_grid import ImageGrid
from explorer.ui.qt_utils import Connections, MutedLabel, ProgressBar

__all__ = ["PriorPanel", "COMPLETIONS"]

COMPLETIONS = 8   # completions drawn per click


class PriorPanel(QWidget):
    """Train-prior controls, sampling settings and completions of the edited grid."""

    def __init__(self, state, parent=None) -> None:
        super().__init__(parent)
        self.state = state
        self.sampling = state.vq.sampling
        self.runner = PriorRunner(state, self)
        self.info = QLabel()
        self.info.setWordWrap(True)
        self.epochs_spin = QSpinBox()
        self.epochs_spin.setRange(1, 1000)
        self.epochs_spin.setValue(5)
        self.epochs_spin.setToolTip("Passes over the dataset's code grids")
        self.train_button = QPushButton("Train prior")
        self.train_button.setToolTip("Fit the autoregressive prior over code grids to the loaded dataset's codes "
                                     "(in the background); Save then stores it in the checkpoint")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.progress = ProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setTextVisible(False)
        self.progress_label = MutedLabel("")
        self.temperature_spin = QDoubleSpinBox()
        self.temperature_spin.setRange(*TEMPERATURE_RANGE)
        self.temperature_spin.setSingleStep(0.1)
        self.temperature_spin.setDecimals(2)
        self.temperature_spin.setToolTip("Divides the prior's logits: below 1 gives likelier, plainer grids; above 1 "
                                         "more varied ones. The Samples view uses it")
        self.seed_spin = QSpinBox()
        self.seed_spin.setRange(0, 2**31 - 1)
        self.seed_spin.setToolTip("Seed of the samples and completions")
        self.rows_spin = QSpinBox()
        self.rows_spin.setToolTip("Rows of the grid editor's image kept; the prior draws the rows below")
        self.complete_button = QPushButton("Complete the editor's image")
        self.complete_button.setToolTip(f"Keep the top rows of the code grid editor's grid and draw the rest "
                                        f"{COMPLETIONS} times from the prior")
        self.completions = ImageGrid("Completions", placeholder="Open an image in the code grid editor, then "
                                                                "complete it.")

        train_row = QHBoxLayout()
        train_row.addWidget(QLabel("Epochs:"))
        train_row.addWidget(self.epochs_spin)
        train_row.addWidget(self.train_button, 1)
        train_row.addWidget(self.cancel_button)
        form = QFormLayout()
        form.addRow("Temperature:", self.temperature_spin)
        form.addRow("Seed:", self.seed_spin)
        form.addRow("Keep top rows:", self.rows_spin)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 4, 6, 4)
        layout.addWidget(self.info)
        layout.addLayout(train_row)
        layout.addWidget(self.progress)
        layout.addWidget(self.progress_label)
        layout.addLayout(form)
        layout.addWidget(self.complete_button)
        layout.addWidget(self.completions, 1)

        self.train_button.clicked.connect(self.train_prior)
        self.cancel_button.clicked.connect(self.runner.stop)
        self.runner.progressed.connect(self._on_runner_progressed)
        self.runner.finished.connect(self._on_runner_finished)
        self.temperature_spin.valueChanged.connect(self.sampling.set_temperature)
        self.seed_spin.valueChanged.connect(self.sampling.set_seed)
        self.rows_spin.valueChanged.connect(self._on_rows_spin_changed)
        self.complete_button.clicked.connect(self.complete)
        self._conn = Connections(self)
        for signal in (state.model_changed, state.weights_changed, state.dataset_changed,
                       state.training_status_changed, state.vq.editor.grid_changed, self.sampling.settings_changed):
            self._conn.connect(signal, self._update)
        self._update()

    # -- commands ---------------------------------------------------------------------------------
    def train_prior(self) -> None:
        """Start fitting the prior (the button)."""
        from vae_core.prior import PriorConfig

        try:
            self.runner.start(PriorConfig(epochs=self.epochs_spin.value(), batch_size=64, lr=1e-3))
        except (ValueError, RuntimeError) as exc:
            self.state.post_message("warning", str(exc))
            return
        self.progress.setValue(0)
        self.progress_label.setText("Encoding the dataset's code grids…")
        self._update()

    def complete(self) -> None:
        """Complete the editor's grid from the kept rows (the button)."""
        editor = self.state.vq.editor
        if editor.grid is None:
            self.state.post_message("info", "Open an image in the code grid editor first.")
            return
        images = self.sampling.complete(editor.grid, COMPLETIONS)
        self.completions.set_images(images, columns=4)
        kept = min(self.sampling.rows_kept, editor.grid.shape[0])
        self.completions.set_caption(f"{editor.source}: top {kept} rows kept, the rest from the "
                                     f"{'learned' if self.sampling.prior_trained else 'uniform'} prior · "
                                     f"temperature {self.sampling.temperature:g}")

    # -- slots ------------------------------------------------------------------------------------------
    def _on_runner_progressed(self, fraction: float, text: str) -> None:
        self.progress.setValue(int(round(fraction * 1000)))
        self.progress_label.setText(text)

    def _on_runner_finished(self, status: str, text: str, _details: str) -> None:
        if status == "completed":
            self.progress.setValue(1000)
            self.progress_label.setText(self.progress_label.text() + " · done; save to keep it in the checkpoint")
        elif status == "stopped":
            self.progress_label.setText(f"Cancelled after {self.runner.epochs_applied} epoch"
                                        f"{'s' if self.runner.epochs_applied != 1 else ''} (kept)")
        else:
            self.progress_label.setText(text)
        self._update()

    def _on_rows_spin_changed(self, rows: int) -> None:
        if self.sampling.available:
            self.sampling.set_rows_kept(rows)

    def _update(self, *_args) -> None:
        available = self.sampling.available
        model = self.state.model
        running = self.runner.running
        if not available:
            self.info.setText("A prior over code grids belongs to models with a discrete code grid (vqvae).")
        else:
            rows, cols = model.grid_shape
            prior = ("<b>learned</b>" if self.sampling.prior_trained
                     else "<b>uniform</b> (train it to sample images that look like the data)")
            self.info.setText(f"Prior over {rows}×{cols} grids of {model.num_codes} codes: {prior}.")
            self.rows_spin.blockSignals(True)
            self.rows_spin.setRange(0, rows)
            self.rows_spin.setValue(min(self.sampling.rows_kept, rows))
            self.rows_spin.blockSignals(False)
        idle = not running and not self.state.is_training
        self.train_button.setEnabled(available and idle and self.state.dataset is not None)
        self.cancel_button.setEnabled(running)
        self.epochs_spin.setEnabled(not running)
        for w in (self.temperature_spin, self.seed_spin, self.rows_spin):
            w.setEnabled(available)
        self.complete_button.setEnabled(available and self.state.vq.editor.grid is not None)
        for spin, value in ((self.temperature_spin, self.sampling.temperature), (self.seed_spin, self.sampling.seed)):
            spin.blockSignals(True)
            spin.setValue(value)
            spin.blockSignals(False)
