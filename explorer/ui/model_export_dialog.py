"""Export ▸ Model…: write the open model's encoder and decoder as ONNX and/or TorchScript.

The dialog copies the model on the GUI thread (training may replace the snapshot's weights
at any epoch) and hands the copy to a thread of its own, which runs
:func:`vae_core.model_export.export_onnx` / :func:`~vae_core.model_export.export_torchscript`
one format at a time and reports each step, so the window stays responsive while the
exporters trace the model (seconds for ONNX).
"""

from __future__ import annotations

import copy
import threading
from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import (QCheckBox, QDialog, QDialogButtonBox, QFileDialog, QFormLayout, QHBoxLayout, QLabel,
                               QLineEdit, QPushButton, QToolButton, QVBoxLayout, QWidget)

from explorer.jobs.priority import lower_thread_priority
from explorer.jobs.workers import keep_until
from explorer.ui.dialogs import show_error
from explorer.ui.qt_utils import ProgressBar

__all__ = ["ModelExportDialog", "FORMATS", "DEFAULT_EXPORT_DIR"]

#: format key → (label, files written)
FORMATS = {
    "onnx": ("ONNX", ("encoder.onnx", "decoder.onnx")),
    "torchscript": ("TorchScript", ("encoder.pt", "decoder.pt")),
}
DEFAULT_EXPORT_DIR = Path.home() / "latent-explorer" / "export"


def _export_steps(model, folder: Path, formats: list[str]):
    """Worker generator: yields ``(done, total, label)`` before each format; returns the manifest path."""
    from vae_core.model_export import export_onnx, export_torchscript

    writers = {"onnx": export_onnx, "torchscript": export_torchscript}
    manifest = None
    for i, key in enumerate(formats):
        yield i, len(formats), FORMATS[key][0]
        manifest = writers[key](model, folder)
    return manifest


class _ExportThread(QObject):
    """Runs :func:`_export_steps` on a new thread that ends with the export.

    Not a pooled worker: ``torch.export`` (behind the ONNX exporter) can leave dispatcher
    state on the thread that ran it, and a pooled thread would carry it into the next job
    (seen as a hang of a later model build on the meta device in the same thread).
    """

    yielded = Signal(object)
    returned = Signal(object)
    errored = Signal(object)
    finished = Signal()

    def __init__(self, model, folder: Path, formats: list[str]) -> None:
        super().__init__()
        self._args = (model, folder, formats)
        self._thread = threading.Thread(target=self._run, name="model-export", daemon=True)

    def start(self) -> None:
        self._thread.start()
        # The dialog drops this object on `finished`, emitted before the thread ends: keep it
        # until then so that it is destroyed on the GUI thread (see explorer.jobs.workers).
        keep_until(self, self._thread.is_alive)

    def _run(self) -> None:
        lower_thread_priority()
        try:
            steps = _export_steps(*self._args)
            try:
                while True:
                    self.yielded.emit(next(steps))
            except StopIteration as stop:
                self.returned.emit(stop.value)
        except Exception as exc:  # noqa: BLE001 - shown to the user by the dialog
            self.errored.emit(exc)
        finally:
            self.finished.emit()


class ModelExportDialog(QDialog):
    """Choose the format(s) and the folder, export off the GUI thread, say where the files went.

    Signals
    -------
    exported(list)
        The files written (paths), once every chosen format is done.
    failed(str)
        The one-sentence reason an export failed (an error dialog shows it too).
    """

    exported = Signal(list)
    failed = Signal(str)

    def __init__(self, state, settings=None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.settings = settings
        self.worker = None
        self.written: list[Path] = []
        self.setWindowTitle("Export Model")
        model = state.model
        intro = QLabel(f"Write the encoder and the decoder of <b>{model.name}</b> ({model.latent_dim}-D latent) as "
                       "files other programs load, each with a dynamic batch axis and a manifest.json that names "
                       "their inputs and outputs.")
        intro.setWordWrap(True)
        self.onnx_check = QCheckBox("&ONNX (encoder.onnx, decoder.onnx)")
        self.onnx_check.setToolTip("For onnxruntime and other ONNX runtimes (needs the onnx package)")
        self.torchscript_check = QCheckBox("&TorchScript (encoder.pt, decoder.pt)")
        self.torchscript_check.setToolTip("For torch.jit.load in Python or libtorch in C++")
        chosen = str(self._setting("export/model_formats", "onnx,torchscript")).split(",")
        self.onnx_check.setChecked("onnx" in chosen)
        self.torchscript_check.setChecked("torchscript" in chosen)
        self.folder_edit = QLineEdit(str(self._setting("export/model_dir", "") or DEFAULT_EXPORT_DIR / _suggest(state)))
        self.folder_edit.setToolTip("The folder the files go to (created if missing; files of the same name are "
                                    "replaced)")
        browse = QToolButton()
        browse.setText("…")
        browse.setToolTip("Choose the folder")
        browse.clicked.connect(self._browse)
        folder_row = QHBoxLayout()
        folder_row.addWidget(self.folder_edit, 1)
        folder_row.addWidget(browse)
        form = QFormLayout()
        form.addRow("Formats:", self.onnx_check)
        form.addRow("", self.torchscript_check)
        form.addRow("&Folder:", folder_row)
        self.progress = ProgressBar()
        self.progress.setTextVisible(True)
        self.progress.setFormat("")
        self.progress.setValue(0)
        self.status = QLabel(" ")
        self.status.setWordWrap(True)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.export_button = QPushButton("&Export")
        self.export_button.setDefault(True)
        self.buttons.addButton(self.export_button, QDialogButtonBox.ButtonRole.ActionRole)
        self.export_button.clicked.connect(self.start)
        self.buttons.rejected.connect(self.reject)
        for check in (self.onnx_check, self.torchscript_check):
            check.toggled.connect(self._update_enabled)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addLayout(form)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addWidget(self.buttons)
        self.resize(560, self.sizeHint().height())
        self._update_enabled()

    def _setting(self, key: str, default):
        return self.settings.value(key, default) if self.settings is not None else default

    def formats(self) -> list[str]:
        """The chosen format keys, in :data:`FORMATS` order."""
        checks = {"onnx": self.onnx_check, "torchscript": self.torchscript_check}
        return [key for key in FORMATS if checks[key].isChecked()]

    @property
    def running(self) -> bool:
        return self.worker is not None

    def _update_enabled(self, *_args) -> None:
        self.export_button.setEnabled(bool(self.formats()) and not self.running)
        self.export_button.setToolTip("" if self.formats() else "Choose at least one format")

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Export the Model to", self.folder_edit.text() or str(Path.home()))
        if folder:
            self.folder_edit.setText(folder)

    def start(self) -> None:
        """Export the chosen formats into the folder in a worker thread."""
        formats, text = self.formats(), self.folder_edit.text().strip()
        if not formats or self.running or self.state.model is None:
            return
        if not text:
            self.status.setText("Choose a folder to export to.")
            return
        folder = Path(text).expanduser()
        if self.settings is not None:
            self.settings.setValue("export/model_formats", ",".join(formats))
            self.settings.setValue("export/model_dir", str(folder))
        model = copy.deepcopy(self.state.model)   # training may load new weights into the snapshot meanwhile
        self.written = []
        self.progress.setRange(0, len(formats))
        self.progress.setValue(0)
        self.worker = _ExportThread(model, folder, formats)
        self.worker.yielded.connect(self._on_worker_yielded)
        self.worker.returned.connect(lambda _manifest: self._on_worker_returned(folder, formats))
        self.worker.errored.connect(self._on_worker_errored)
        self.worker.finished.connect(self._on_worker_finished)
        self._update_enabled()
        self.worker.start()

    def _on_worker_yielded(self, step) -> None:
        done, total, label = step
        self.progress.setValue(done)
        self.progress.setFormat(f"{done} of {total}")
        self.status.setText(f"Writing {label}…")

    def _on_worker_returned(self, folder: Path, formats: list[str]) -> None:
        self.written = [folder / name for key in formats for name in FORMATS[key][1]] + [folder / "manifest.json"]
        self.progress.setValue(self.progress.maximum())
        self.progress.setFormat("Done")
        names = ", ".join(p.name for p in self.written)
        self.status.setText(f"Wrote {names} to {folder}")
        self.state.post_message("info", f"Exported the model to {folder}.")
        self.exported.emit(list(self.written))

    def _on_worker_errored(self, exc: Exception) -> None:
        import traceback

        from vae_core.errors import CheckpointError, ModelExportError

        text = str(exc) if isinstance(exc, (ModelExportError, CheckpointError, OSError)) else \
            f"Exporting failed unexpectedly ({type(exc).__name__}: {exc})."
        self.progress.setFormat("Failed")
        self.status.setText(text)
        show_error(self, "Could not export the model", text,
                   "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))
        self.failed.emit(text)

    def _on_worker_finished(self) -> None:
        self.worker = None
        self._update_enabled()

    def reject(self) -> None:
        if self.running:   # tracing cannot be interrupted; the dialog closes when it is done
            self.status.setText("Finishing the export before closing…")
            self.worker.finished.connect(super().reject)
            return
        super().reject()


def _suggest(state) -> str:
    model, data = state.model, state.dataset
    spec = (data.spec.partition(":")[0] if data else "model").replace("/", "-")
    return f"{spec}-{model.name}-{model.latent_dim}d"
