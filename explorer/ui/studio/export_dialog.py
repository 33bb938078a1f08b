"""Export the studio's animation: GIF, MP4, animated WebP/PNG, PNG strip or grid.

The dialog writes :func:`vae_core.export.export_animation` of the player's decoded
frames with the player's ping-pong, fps and loop settings (editing them here edits the
player too), so the file holds exactly the frames the player steps through, enlarged
with nearest-neighbour pixels. Writing runs in a worker thread with a progress bar and
can be cancelled.

Also here: copying the frame on screen to the clipboard and saving it as an image.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, QSettings, Qt, Signal
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (QButtonGroup, QCheckBox, QComboBox, QDialog, QDialogButtonBox, QDoubleSpinBox,
                               QFileDialog, QFormLayout, QHBoxLayout, QLabel, QLineEdit,
                               QPushButton, QRadioButton, QSpinBox, QVBoxLayout, QWidget)
from superqt.utils import FunctionWorker, signals_blocked

from explorer.jobs.training import error_details, friendly_error
from explorer.jobs.workers import start_worker
from explorer.ui.qt_utils import Connections, ProgressBar, to_qimage, to_uint8_hwc
from explorer.ui.studio.common import ImageView
from vae_core.export import FPS_MAX, MAX_SIDE, UPSCALE_MAX

#: (key, label, extension, grid?) — what the format menu offers.
FORMATS = (
    ("gif", "GIF (animated)", ".gif"),
    ("mp4", "MP4 video (H.264)", ".mp4"),
    ("webp", "WebP (animated, lossless)", ".webp"),
    ("apng", "PNG (animated, APNG)", ".apng"),
    ("strip", "PNG strip (all frames in a row)", ".png"),
    ("grid", "PNG grid (all frames in rows)", ".png"),
)
FORMAT_EXTENSION = {key: ext for key, _, ext in FORMATS}
FILE_FILTERS = {
    "gif": "GIF images (*.gif)", "mp4": "MP4 videos (*.mp4)", "webp": "WebP images (*.webp)",
    "apng": "Animated PNG (*.apng)", "strip": "PNG images (*.png)", "grid": "PNG images (*.png)",
}


def default_upscale(height: int, width: int, target: int = 256) -> int:
    """The integer enlargement that brings the longer side to at least ``target`` pixels."""
    return max(1, math.ceil(target / max(1, height, width)))


def enlarge(frame: np.ndarray, factor: int) -> np.ndarray:
    """Nearest-neighbour integer enlargement of one ``H×W[×C]`` frame (as exports do)."""
    if factor <= 1:
        return frame
    return np.ascontiguousarray(frame.repeat(factor, axis=0).repeat(factor, axis=1))


def copy_frame_to_clipboard(frame: np.ndarray, upscale: int | None = None) -> None:
    """Put one frame (``uint8`` ``H×W[×C]``) on the clipboard, enlarged crisply."""
    frame = to_uint8_hwc(frame)
    factor = default_upscale(*frame.shape[:2]) if upscale is None else int(upscale)
    QGuiApplication.clipboard().setImage(to_qimage(enlarge(frame, factor)))


def save_frame(frame: np.ndarray, path, upscale: int | None = None) -> Path:
    """Save one frame as an image (format from the extension; PNG keeps it lossless)."""
    from PIL import Image

    frame = to_uint8_hwc(frame)
    factor = default_upscale(*frame.shape[:2]) if upscale is None else int(upscale)
    big = enlarge(frame, factor)
    path = Path(path)
    if not path.suffix:
        path = path.with_suffix(".png")
    image = Image.fromarray(big[..., 0] if big.shape[-1] == 1 else big)
    if path.suffix.lower() in (".jpg", ".jpeg") and image.mode not in ("L", "RGB"):
        image = image.convert("RGB")
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return path


class _Cancelled(Exception):
    pass


class ExportJob(QObject):
    """Writes frames in a pool thread; progress, success and failure come back as signals."""

    progressed = Signal(int, int)
    finished = Signal(object)        # Path
    failed = Signal(str, str)        # text, details
    cancelled = Signal()

    def __init__(self, frames: np.ndarray, path, options: dict, parent=None) -> None:
        super().__init__(parent)
        self._cancel = False
        self.worker = FunctionWorker(self._run, np.array(frames, copy=True), Path(path), dict(options))
        self.worker.returned.connect(self.finished)
        self.worker.errored.connect(self._on_worker_errored)

    def start(self) -> "ExportJob":
        start_worker(self.worker)
        return self

    def cancel(self) -> None:
        self._cancel = True

    @property
    def is_running(self) -> bool:
        return self.worker.is_running

    def _run(self, frames, path, options):
        from vae_core.export import export_animation

        def progress(done, total):
            if self._cancel:
                raise _Cancelled()
            self.progressed.emit(int(done), int(total))   # queued to the GUI thread

        return export_animation(frames, path, progress=progress, **options)

    def _on_worker_errored(self, exc: Exception) -> None:
        if isinstance(exc, _Cancelled):
            self.cancelled.emit()
            return
        self.failed.emit(friendly_error(exc, "Exporting"), error_details(exc))


class ExportDialog(QDialog):
    """Options, preview and progress for exporting ``state.studio``'s animation."""

    exported = Signal(object)        # Path of the written file

    def __init__(self, state, parent=None) -> None:
        super().__init__(parent)
        self._conn = Connections(self)
        self.setWindowTitle("Export Animation")
        self.state = state
        self.studio = state.studio
        self.job: ExportJob | None = None
        self.last_path: Path | None = None
        settings = QSettings()

        self.what = QLabel()
        self.what.setWordWrap(True)
        self.format_combo = QComboBox()
        for key, text, _ in FORMATS:
            self.format_combo.addItem(text, key)
        self.upscale_radio = QRadioButton("Enlarge")
        self.size_radio = QRadioButton("Size")
        self._size_group = QButtonGroup(self)
        self._size_group.addButton(self.upscale_radio)
        self._size_group.addButton(self.size_radio)
        # Ranges are the library's (vae_core.export): a field never holds a value the export refuses.
        self.upscale_spin = QSpinBox()
        self.upscale_spin.setRange(1, UPSCALE_MAX)
        self.upscale_spin.setPrefix("×")
        self.upscale_spin.setToolTip("Every pixel becomes an N×N block (crisp, no blur)")
        self.width_spin = QSpinBox()
        self.width_spin.setRange(8, MAX_SIDE[".png"])   # narrowed to the chosen format's limit
        self.width_spin.setSuffix(" px")
        self.height_spin = QSpinBox()
        self.height_spin.setRange(8, MAX_SIDE[".png"])
        self.height_spin.setSuffix(" px")
        self.keep_aspect = QCheckBox("Keep aspect")
        self.keep_aspect.setChecked(True)
        self.fps_spin = QDoubleSpinBox()
        self.fps_spin.setRange(0.5, min(60.0, FPS_MAX))   # the player's range (within the export's)
        self.fps_spin.setDecimals(1)
        self.fps_spin.setSuffix(" fps")
        self.loop_check = QCheckBox("Loop")
        self.loop_check.setToolTip("Repeat forever (GIF, WebP, APNG); MP4 players decide for themselves")
        self.pingpong_check = QCheckBox("Ping-pong")
        self.pingpong_check.setToolTip("Forward then backward, as the player shows it")
        self.captions_check = QCheckBox("Captions")
        self.captions_check.setToolTip("Write each frame's caption (keyframe names, values) under it")
        self.columns_spin = QSpinBox()
        self.columns_spin.setRange(1, 256)
        self.columns_spin.setToolTip("Frames per row of the PNG grid")
        self.gap_spin = QSpinBox()
        self.gap_spin.setRange(0, 32)
        self.gap_spin.setSuffix(" px gap")
        self.path_edit = QLineEdit()
        self.browse_button = QPushButton("Browse…")
        self.preview = ImageView(placeholder="Nothing to export yet.", minimum=150)
        self.preview.setToolTip("The current frame exactly as it will be written")
        self.info = QLabel()
        self.info.setWordWrap(True)
        self.progress = ProgressBar()
        self.progress.setRange(0, 100)
        self.progress.setValue(0)
        self.progress.setTextVisible(True)
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.buttons = QDialogButtonBox()
        self.export_button = self.buttons.addButton("Export", QDialogButtonBox.ButtonRole.AcceptRole)
        self.cancel_button = self.buttons.addButton("Cancel", QDialogButtonBox.ButtonRole.RejectRole)
        self.close_button = self.buttons.addButton(QDialogButtonBox.StandardButton.Close)

        size_row = QHBoxLayout()
        size_row.addWidget(self.upscale_radio)
        size_row.addWidget(self.upscale_spin)
        size_row.addSpacing(12)
        size_row.addWidget(self.size_radio)
        size_row.addWidget(self.width_spin)
        size_row.addWidget(QLabel("×"))
        size_row.addWidget(self.height_spin)
        size_row.addWidget(self.keep_aspect)
        size_row.addStretch(1)
        timing = QHBoxLayout()
        for w in (self.fps_spin, self.loop_check, self.pingpong_check, self.captions_check):
            timing.addWidget(w)
        timing.addStretch(1)
        grid_row = QHBoxLayout()
        grid_row.addWidget(self.columns_spin)
        grid_row.addWidget(self.gap_spin)
        grid_row.addStretch(1)
        self.grid_row_widget = QWidget()
        self.grid_row_widget.setLayout(grid_row)
        grid_row.setContentsMargins(0, 0, 0, 0)
        path_row = QHBoxLayout()
        path_row.addWidget(self.path_edit, 1)
        path_row.addWidget(self.browse_button)
        form = QFormLayout()
        form.addRow("Format", self.format_combo)
        form.addRow("Size", size_row)
        form.addRow("Timing", timing)
        form.addRow("Grid columns", self.grid_row_widget)
        form.addRow("File", path_row)
        self._form = form
        body = QHBoxLayout()
        body.addLayout(form, 3)
        right = QVBoxLayout()
        right.addWidget(self.preview, 1)
        right.addWidget(self.info)
        body.addLayout(right, 2)
        layout = QVBoxLayout(self)
        layout.addWidget(self.what)
        layout.addLayout(body, 1)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addWidget(self.buttons)

        # defaults: last used format and folder; size from the frames
        fmt = str(settings.value("export/format", "gif"))
        self.format_combo.setCurrentIndex(max(0, self.format_combo.findData(fmt)))
        self._folder = Path(str(settings.value("export/folder", str(Path.home()))))
        self.upscale_radio.setChecked(True)
        self.captions_check.setChecked(settings.value("export/captions", False) in (True, "true"))

        self.format_combo.currentIndexChanged.connect(self._on_format_changed)
        self.upscale_radio.toggled.connect(self._update_preview)
        self.upscale_spin.valueChanged.connect(self._on_upscale_changed)
        self.width_spin.valueChanged.connect(self._on_width_changed)
        self.height_spin.valueChanged.connect(self._on_height_changed)
        self.fps_spin.valueChanged.connect(self.studio.player.set_fps)
        self.loop_check.toggled.connect(self.studio.player.set_loop)
        self.pingpong_check.toggled.connect(self.studio.player.set_pingpong)
        self.captions_check.toggled.connect(self._update_preview)
        self.columns_spin.valueChanged.connect(self._update_preview)
        self.gap_spin.valueChanged.connect(self._update_preview)
        self.browse_button.clicked.connect(self._on_browse)
        self.export_button.clicked.connect(self.start_export)
        self.cancel_button.clicked.connect(self._on_cancel)
        self.close_button.clicked.connect(self.reject)
        self._conn.connect(self.studio.player.frames_changed, self._on_studio_frames_changed)
        self._conn.connect(self.studio.player.playback_changed, self._on_studio_playback_changed)
        self._conn.connect(self.studio.player.current_frame_changed, self._update_preview)

        self._on_studio_frames_changed()
        self._on_studio_playback_changed()
        self._on_format_changed()
        self._set_running(False)

    # -- options ---------------------------------------------------------------------------------------
    @property
    def format_key(self) -> str:
        return self.format_combo.currentData()

    def set_format(self, key: str) -> None:
        self.format_combo.setCurrentIndex(self.format_combo.findData(key))

    def set_path(self, path) -> None:
        self.path_edit.setText(str(path))

    def frame_shape(self) -> tuple[int, int]:
        frames = self.studio.player.frames
        if frames is None:
            return (1, 1)
        return int(frames.shape[-2]), int(frames.shape[-1])

    def size_options(self) -> dict:
        """``upscale`` or ``size`` for prepare_frames/export_animation."""
        if self.size_radio.isChecked():
            return {"size": (self.width_spin.value(), self.height_spin.value())}
        return {"upscale": self.upscale_spin.value()}

    def options(self) -> dict:
        """Keyword arguments for :func:`vae_core.export.export_animation`."""
        options = self.studio.player.export_options(**self.size_options())
        if self.captions_check.isChecked():
            options["captions"] = list(self.studio.player.captions)
        if self.format_key == "grid":
            options["grid_columns"] = self.columns_spin.value()
            options["gap"] = self.gap_spin.value()
        elif self.format_key == "strip":
            options["grid_columns"] = None
            options["gap"] = self.gap_spin.value()
        return options

    def output_path(self) -> Path:
        text = self.path_edit.text().strip()
        ext = FORMAT_EXTENSION[self.format_key]
        path = Path(text).expanduser() if text else self._folder / f"animation{ext}"
        if path.suffix.lower() != ext:
            path = path.with_suffix(ext)
        return path

    def _on_format_changed(self, *_) -> None:
        key = self.format_key
        self.grid_row_widget.setEnabled(key in ("grid", "strip"))
        self.columns_spin.setEnabled(key == "grid")
        animated = key not in ("grid", "strip")
        self.fps_spin.setEnabled(animated)
        self.loop_check.setEnabled(key in ("gif", "webp", "apng"))
        text = self.path_edit.text().strip()
        ext = FORMAT_EXTENSION[key]
        self.width_spin.setMaximum(MAX_SIDE[ext])
        self.height_spin.setMaximum(MAX_SIDE[ext])
        if text:
            self.path_edit.setText(str(Path(text).with_suffix(ext)))
        else:
            self.path_edit.setText(str(self._folder / f"{self._default_stem()}{ext}"))
        self._update_preview()

    def _default_stem(self) -> str:
        kind = self.studio.player.animation_kind or "animation"
        return {"interpolation": "interpolation", "arithmetic": "arithmetic", "attribute": "attribute",
                "labels": "labels", "traversal": "traversal"}.get(kind, "animation")

    def _on_upscale_changed(self, factor: int) -> None:
        h, w = self.frame_shape()
        with signals_blocked(self.width_spin), signals_blocked(self.height_spin):
            self.width_spin.setValue(w * factor)
            self.height_spin.setValue(h * factor)
        self.upscale_radio.setChecked(True)
        self._update_preview()

    def _on_width_changed(self, w: int) -> None:
        if self.keep_aspect.isChecked():
            h, fw = self.frame_shape()
            with signals_blocked(self.height_spin):
                self.height_spin.setValue(max(1, round(w * h / fw)))
        self.size_radio.setChecked(True)
        self._update_preview()

    def _on_height_changed(self, h: int) -> None:
        if self.keep_aspect.isChecked():
            fh, w = self.frame_shape()
            with signals_blocked(self.width_spin):
                self.width_spin.setValue(max(1, round(h * w / fh)))
        self.size_radio.setChecked(True)
        self._update_preview()

    def _on_browse(self) -> None:
        key = self.format_key
        path, _ = QFileDialog.getSaveFileName(self, "Export Animation", str(self.output_path()), FILE_FILTERS[key])
        if path:
            self.path_edit.setText(path)
            self._on_format_changed()

    # -- state → widgets ---------------------------------------------------------------------------------
    def _on_studio_frames_changed(self) -> None:
        s = self.studio
        h, w = self.frame_shape()
        with signals_blocked(self.upscale_spin):
            if self.upscale_spin.value() <= 1:
                self.upscale_spin.setValue(default_upscale(h, w))
        with signals_blocked(self.width_spin), signals_blocked(self.height_spin):
            if not self.size_radio.isChecked():
                self.width_spin.setValue(w * self.upscale_spin.value())
                self.height_spin.setValue(h * self.upscale_spin.value())
        with signals_blocked(self.columns_spin):
            self.columns_spin.setValue(max(1, min(12, s.player.sequence_length or 1)))
        self.what.setText(f"<b>{s.player.animation_title}</b>" if s.player.frame_count else
                          "There is no animation to export: build an interpolation or animate an edit first.")
        self._update_preview()

    def _on_studio_playback_changed(self) -> None:
        s = self.studio
        with signals_blocked(self.fps_spin):
            self.fps_spin.setValue(s.player.fps)
        with signals_blocked(self.loop_check):
            self.loop_check.setChecked(s.player.loop)
        with signals_blocked(self.pingpong_check):
            self.pingpong_check.setChecked(s.player.pingpong)
        self._update_preview()

    def preview_frames(self) -> np.ndarray:
        """All frames as the chosen options write them (what the file will hold)."""
        opts = self.size_options()
        return self.studio.player.display_frames(captions=self.captions_check.isChecked(), **opts)

    def _update_preview(self, *_) -> None:
        s = self.studio
        if not s.player.frame_count:
            self.preview.set_image(None)
            self.info.setText("")
            self.export_button.setEnabled(False)
            return
        try:
            from vae_core.export import prepare_frames

            # Only the frame on screen is prepared here: cheap, and identical to its
            # counterpart in the full export (prepare_frames works frame by frame).
            i = s.player.current_index
            caption = [s.player.captions[i]] if self.captions_check.isChecked() else None
            frame = prepare_frames(s.player.frames[i:i + 1], captions=caption, **self.size_options())[0]
        except ValueError as exc:
            self.preview.set_image(None)
            self.info.setText(str(exc))
            self.export_button.setEnabled(False)
            return
        self.preview.set_image(frame)
        n = s.player.sequence_length
        h, w = frame.shape[:2]
        key = self.format_key
        if key in ("grid", "strip"):
            cols = self.columns_spin.value() if key == "grid" else n
            cols = max(1, min(cols, n))
            rows = math.ceil(n / cols)
            gap = self.gap_spin.value()
            text = (f"{n} frames in {rows} row{'s' if rows > 1 else ''} of {cols}: "
                    f"{cols * w + (cols - 1) * gap}×{rows * h + (rows - 1) * gap} px")
        else:
            text = f"{n} frames of {w}×{h} px, {n / s.player.fps:.1f} s at {s.player.fps:g} fps"
            if s.player.pingpong:
                text += ", ping-pong"
            if key == "mp4" and (w % 2 or h % 2):
                text += " (MP4 pads odd sides by one pixel)"
        self.info.setText(text)
        self.export_button.setEnabled(self.job is None)

    # -- running ---------------------------------------------------------------------------------------------
    def start_export(self) -> ExportJob | None:
        """Start writing the file; returns the job (None when there is nothing to export)."""
        s = self.studio
        if s.player.frames is None or self.job is not None:
            return None
        path = self.output_path()
        self.path_edit.setText(str(path))
        settings = QSettings()
        settings.setValue("export/format", self.format_key)
        settings.setValue("export/folder", str(path.parent))
        settings.setValue("export/captions", self.captions_check.isChecked())
        self.job = ExportJob(s.player.frames, path, self.options(), parent=self)
        self.job.progressed.connect(self._on_job_progressed)
        self.job.finished.connect(self._on_job_finished)
        self.job.failed.connect(self._on_job_failed)
        self.job.cancelled.connect(self._on_job_cancelled)
        self.progress.setValue(0)
        self.status.setStyleSheet("")
        self.status.setText(f"Writing {path.name}…")
        self._set_running(True)
        return self.job.start()

    def _set_running(self, running: bool) -> None:
        for w in (self.format_combo, self.upscale_radio, self.size_radio, self.upscale_spin, self.width_spin,
                  self.height_spin, self.keep_aspect, self.fps_spin, self.loop_check, self.pingpong_check,
                  self.captions_check, self.columns_spin, self.gap_spin, self.path_edit, self.browse_button):
            w.setEnabled(not running)
        if not running:
            self._on_format_changed_enabled()
        self.export_button.setEnabled(not running and self.studio.player.frame_count > 0)
        self.cancel_button.setVisible(running)
        self.close_button.setEnabled(not running)

    def _on_format_changed_enabled(self) -> None:
        key = self.format_key
        self.columns_spin.setEnabled(key == "grid")
        self.gap_spin.setEnabled(key in ("grid", "strip"))
        self.fps_spin.setEnabled(key not in ("grid", "strip"))
        self.loop_check.setEnabled(key in ("gif", "webp", "apng"))

    def _on_job_progressed(self, done: int, total: int) -> None:
        self.progress.setValue(round(100 * done / max(1, total)))

    def _on_job_finished(self, path) -> None:
        self.job = None
        self.last_path = Path(path)
        self.progress.setValue(100)
        size = self.last_path.stat().st_size if self.last_path.exists() else 0
        self.status.setText(f"Saved {self.last_path} ({size / 1024:.0f} KB).")
        self._set_running(False)
        self.state.post_message("info", f"Exported {self.last_path.name}.")
        self.exported.emit(self.last_path)

    def _on_job_failed(self, text: str, details: str) -> None:
        self.job = None
        self.progress.setValue(0)
        self.status.setStyleSheet("color: #d32f2f;")
        self.status.setText(text)
        self.status.setToolTip(details)
        self._set_running(False)

    def _on_job_cancelled(self) -> None:
        self.job = None
        self.progress.setValue(0)
        self.status.setText("Export cancelled; nothing was written.")
        self._set_running(False)

    def _on_cancel(self) -> None:
        if self.job is not None:
            self.job.cancel()

    def reject(self) -> None:
        if self.job is not None:      # closing waits for nothing: cancel, then close on its signal
            self.job.cancel()
            return
        super().reject()

    def done(self, result: int) -> None:
        if self.job is not None:
            self.job.cancel()
            return
        super().done(result)
