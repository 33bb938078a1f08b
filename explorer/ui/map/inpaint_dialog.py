"""The inpainting editor: erase part of an image with the mouse, let the model fill it in.

The mathematics is :func:`vae_core.latent.iter_inpaint` (iterated encode/decode with the
observed pixels clamped, or optimising the code under the observed pixels); it runs in a
superqt ``GeneratorWorker`` and every step it yields is shown as it arrives (the slider
steps back through them). Observed pixels are never changed. "Pin result" encodes the
filled image and pins its code (:mod:`explorer.state.marks`).
"""

from __future__ import annotations

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets
from superqt.utils import GeneratorWorker

from explorer.jobs.workers import start_worker
from explorer.ui.map.decoder_view import ImagePane
from explorer.ui.map.own_image import unique_pin_name
from explorer.ui.qt_utils import MutedLabel, to_qimage

METHODS = (("iterate", "Iterate encode → decode"), ("optimize", "Optimise z under the kept pixels"))
ERASED_COLOR = QtGui.QColor(214, 40, 110, 215)   # nearly opaque: erased pixels are gone for the model
FILMSTRIP = 8                                     # steps shown side by side under the panes


class BrushCanvas(QtWidgets.QWidget):
    """An image drawn large; dragging with the left button erases a disc, the right button restores.

    ``observed`` is the ``H×W`` boolean mask (True: kept). ``mask_changed`` fires after every stroke.
    """

    mask_changed = QtCore.Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("inpaint_canvas")
        self.setMinimumSize(220, 220)
        self.setSizePolicy(QtWidgets.QSizePolicy.Policy.Expanding, QtWidgets.QSizePolicy.Policy.Expanding)
        self.setMouseTracking(True)
        self.setCursor(QtCore.Qt.CursorShape.CrossCursor)
        self.image: np.ndarray | None = None      # C×H×W
        self.observed: np.ndarray | None = None   # H×W bool
        self.brush = 2.0                          # radius in image pixels
        self._qimage = None
        self._hover: QtCore.QPointF | None = None

    def set_image(self, image: np.ndarray) -> None:
        self.image = np.asarray(image, dtype=np.float32)
        self.observed = np.ones(self.image.shape[1:], dtype=bool)
        self._qimage = to_qimage(self.image, channels_first=True)
        self.update()
        self.mask_changed.emit()

    def set_observed(self, observed) -> None:
        self.observed = np.asarray(observed, dtype=bool).copy()
        self.update()
        self.mask_changed.emit()

    def reset(self) -> None:
        if self.image is not None:
            self.set_observed(np.ones(self.image.shape[1:], dtype=bool))

    def _target(self) -> QtCore.QRectF:
        h, w = self.image.shape[1:]
        side = min(self.width() / w, self.height() / h)
        return QtCore.QRectF((self.width() - w * side) / 2, (self.height() - h * side) / 2, w * side, h * side)

    def image_position(self, pos: QtCore.QPointF) -> tuple[float, float]:
        """Widget position → (column, row) in image pixels (pixel centres at .5)."""
        t = self._target()
        h, w = self.image.shape[1:]
        return (pos.x() - t.left()) / t.width() * w, (pos.y() - t.top()) / t.height() * h

    def widget_position(self, column: float, row: float) -> QtCore.QPointF:
        """Image pixel (column, row) centre → widget position."""
        t = self._target()
        h, w = self.image.shape[1:]
        return QtCore.QPointF(t.left() + (column + 0.5) * t.width() / w, t.top() + (row + 0.5) * t.height() / h)

    def paint_at(self, pos: QtCore.QPointF, keep: bool = False) -> None:
        if self.image is None:
            return
        cx, cy = self.image_position(pos)
        h, w = self.observed.shape
        rows, cols = np.mgrid[0:h, 0:w]
        disc = (cols + 0.5 - cx) ** 2 + (rows + 0.5 - cy) ** 2 <= self.brush ** 2
        if disc.any():
            self.observed[disc] = keep
            self.update()

    def mousePressEvent(self, ev) -> None:
        if ev.button() in (QtCore.Qt.MouseButton.LeftButton, QtCore.Qt.MouseButton.RightButton):
            self.paint_at(ev.position(), keep=ev.button() == QtCore.Qt.MouseButton.RightButton)

    def mouseMoveEvent(self, ev) -> None:
        self._hover = ev.position()
        if ev.buttons() & QtCore.Qt.MouseButton.LeftButton:
            self.paint_at(ev.position())
        elif ev.buttons() & QtCore.Qt.MouseButton.RightButton:
            self.paint_at(ev.position(), keep=True)
        self.update()

    def mouseReleaseEvent(self, ev) -> None:
        self.mask_changed.emit()

    def leaveEvent(self, ev) -> None:
        self._hover = None
        self.update()

    def paintEvent(self, ev) -> None:
        p = QtGui.QPainter(self)
        p.fillRect(self.rect(), self.palette().color(QtGui.QPalette.ColorRole.Base))
        if self.image is None:
            p.end()
            return
        t = self._target()
        p.drawImage(t, self._qimage)
        h, w = self.observed.shape
        overlay = np.zeros((h, w, 4), dtype=np.uint8)
        overlay[~self.observed] = (ERASED_COLOR.red(), ERASED_COLOR.green(), ERASED_COLOR.blue(), ERASED_COLOR.alpha())
        q = QtGui.QImage(overlay.data, w, h, 4 * w, QtGui.QImage.Format.Format_RGBA8888)
        p.drawImage(t, q)
        p.setPen(QtGui.QPen(self.palette().color(QtGui.QPalette.ColorRole.Mid), 1))
        p.drawRect(t)
        if self._hover is not None:
            r = self.brush * t.width() / w
            p.setRenderHint(QtGui.QPainter.RenderHint.Antialiasing)
            p.setPen(QtGui.QPen(QtGui.QColor(255, 255, 255), 1.5))
            p.drawEllipse(self._hover, r, r)
            p.setPen(QtGui.QPen(QtGui.QColor(0, 0, 0), 1.0, QtCore.Qt.PenStyle.DotLine))
            p.drawEllipse(self._hover, r, r)
        p.end()


def _inpaint_steps(model, image, observed, steps, method, label):
    """Worker generator: the library's steps, or one ``Exception`` item when it fails.

    superqt's GeneratorWorker takes a ``RuntimeError`` for "the worker was deleted" and
    drops it, so errors travel as items instead.
    """
    from vae_core.latent import iter_inpaint

    try:
        yield from iter_inpaint(model, image, observed, steps=steps, method=method, label=label)
    except Exception as exc:  # noqa: BLE001 - shown to the user in the dialog
        yield exc


class InpaintDialog(QtWidgets.QDialog):
    """Erase, fill, step through, pin (see the module docstring)."""

    step_arrived = QtCore.Signal(int)    # after each step arrives (tests, scripts)
    run_finished = QtCore.Signal()

    def __init__(self, state, image, *, label: int | None = None, name: str = "image", parent=None):
        super().__init__(parent)
        self.setObjectName("inpaint_dialog")
        self.setWindowTitle(f"Inpaint — {name}")
        self.state = state
        self.name = name
        self.label = label
        self.steps: list = []           # InpaintStep, as they arrive
        self.worker: GeneratorWorker | None = None

        self.canvas = BrushCanvas()
        self.canvas.set_image(image)
        h, w = self.canvas.image.shape[1:]
        self.canvas.brush = max(1.0, max(h, w) / 10)
        self.result_pane = ImagePane(minimum=220)
        self.result_pane.setObjectName("inpaint_result")
        self.result_pane.setToolTip("The image with the erased pixels filled by the model")

        self.brush_spin = QtWidgets.QDoubleSpinBox()
        self.brush_spin.setRange(0.5, max(h, w) / 2)
        self.brush_spin.setSingleStep(0.5)
        self.brush_spin.setValue(self.canvas.brush)
        self.brush_spin.setSuffix(" px")
        self.brush_spin.setToolTip("Brush radius in image pixels")
        self.brush_spin.valueChanged.connect(lambda v: setattr(self.canvas, "brush", float(v)))
        self.method_combo = QtWidgets.QComboBox()
        for key, text in METHODS:
            self.method_combo.addItem(text, key)
        self.method_combo.setToolTip("Iterate: encode the image, decode its code, put the kept pixels back, repeat. "
                                     "Optimise: climb log p(kept pixels | z) + log p(z) over the code z.")
        self.steps_spin = QtWidgets.QSpinBox()
        self.steps_spin.setRange(1, 500)
        self.steps_spin.setValue(30)
        self.steps_spin.setToolTip("Steps of the method")
        self.erase_half = QtWidgets.QPushButton("Erase bottom half")
        self.erase_half.setToolTip("A quick test: erase the lower half of the image")
        self.erase_half.clicked.connect(self._erase_bottom_half)
        self.reset_button = QtWidgets.QPushButton("Reset mask")
        self.reset_button.clicked.connect(self.canvas.reset)
        self.fill_button = QtWidgets.QPushButton("Fill")
        self.fill_button.setObjectName("inpaint_fill")
        self.fill_button.setDefault(True)
        self.fill_button.clicked.connect(self.run)
        self.stop_button = QtWidgets.QPushButton("Stop")
        self.stop_button.clicked.connect(self.stop)
        self.stop_button.setEnabled(False)
        self.pin_button = QtWidgets.QPushButton("Pin result")
        self.pin_button.setObjectName("inpaint_pin")
        self.pin_button.setToolTip("Encode the filled image and pin its code on the map")
        self.pin_button.setEnabled(False)
        self.pin_button.clicked.connect(self.pin_result)
        self.step_slider = QtWidgets.QSlider(QtCore.Qt.Orientation.Horizontal)
        self.step_slider.setRange(0, 0)
        self.step_slider.valueChanged.connect(self._show_step)
        self.step_label = MutedLabel("Erase pixels on the left (left button; right button restores), then Fill.")
        self.step_label.setWordWrap(True)
        self.erased_label = MutedLabel("")

        controls = QtWidgets.QFormLayout()
        controls.addRow("Brush", self.brush_spin)
        controls.addRow("Method", self.method_combo)
        controls.addRow("Steps", self.steps_spin)
        panes = QtWidgets.QGridLayout()
        panes.addWidget(self.canvas, 0, 0)
        panes.addWidget(self.result_pane, 0, 1)
        for col, text in ((0, "erase here"), (1, "filled by the model")):
            cap = MutedLabel(text)
            cap.setAlignment(QtCore.Qt.AlignmentFlag.AlignHCenter)
            panes.addWidget(cap, 1, col)
        panes.addWidget(self.erased_label, 2, 0)
        panes.addWidget(self.step_slider, 2, 1)
        panes.setColumnStretch(0, 1)
        panes.setColumnStretch(1, 1)
        self.filmstrip = QtWidgets.QWidget()
        strip = QtWidgets.QHBoxLayout(self.filmstrip)
        strip.setContentsMargins(0, 0, 0, 0)
        strip.setSpacing(4)
        self.film_panes: list[ImagePane] = []
        self.film_captions: list[QtWidgets.QLabel] = []
        for _ in range(FILMSTRIP):
            cell = QtWidgets.QVBoxLayout()
            cell.setSpacing(0)
            pane = ImagePane(minimum=40)
            pane.setMaximumSize(72, 72)
            caption = MutedLabel("")
            caption.setAlignment(QtCore.Qt.AlignmentFlag.AlignHCenter)
            cell.addWidget(pane)
            cell.addWidget(caption)
            strip.addLayout(cell)
            self.film_panes.append(pane)
            self.film_captions.append(caption)
        strip.addStretch(1)
        buttons = QtWidgets.QHBoxLayout()
        for b in (self.erase_half, self.reset_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        for b in (self.fill_button, self.stop_button, self.pin_button):
            buttons.addWidget(b)
        layout = QtWidgets.QVBoxLayout(self)
        layout.addLayout(panes, 1)
        layout.addWidget(self.filmstrip)
        layout.addLayout(controls)
        layout.addWidget(self.step_label)
        layout.addLayout(buttons)
        self.canvas.mask_changed.connect(self._on_canvas_mask_changed)
        self._on_canvas_mask_changed()
        self.resize(700, 640)

    # -- mask -----------------------------------------------------------------------------------------
    def _erase_bottom_half(self) -> None:
        observed = np.ones_like(self.canvas.observed)
        observed[observed.shape[0] // 2:] = False
        self.canvas.set_observed(observed)

    def _on_canvas_mask_changed(self) -> None:
        erased = int((~self.canvas.observed).sum())
        self.erased_label.setText(f"{erased:,} of {self.canvas.observed.size:,} pixels erased")

    # -- running --------------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.worker is not None

    def run(self) -> None:
        """Fill the erased pixels with the chosen method, showing each step as it comes."""
        if self.running or self.state.model is None:
            return
        if self.canvas.observed.all():
            self.step_label.setText("Nothing is erased: drag over the image on the left first.")
            return
        self.steps = []
        self._update_filmstrip()
        self.step_slider.setRange(0, 0)
        self.pin_button.setEnabled(False)
        worker = GeneratorWorker(_inpaint_steps, self.state.model, self.canvas.image.copy(),
                                 self.canvas.observed.copy(), int(self.steps_spin.value()),
                                 self.method_combo.currentData(), self.label)
        worker.yielded.connect(self._on_worker_yielded)
        worker.finished.connect(self._on_worker_finished)
        self.worker = worker
        self.fill_button.setEnabled(False)
        self.stop_button.setEnabled(True)
        start_worker(worker)

    def stop(self) -> None:
        if self.worker is not None:
            self.worker.quit()

    def _on_worker_yielded(self, item) -> None:
        if isinstance(item, Exception):
            self.step_label.setText(str(item) or type(item).__name__)
            return
        self.steps.append(item)
        at_end = self.step_slider.value() == self.step_slider.maximum()
        self.step_slider.setMaximum(len(self.steps) - 1)
        if at_end:
            self.step_slider.setValue(len(self.steps) - 1)
            self._show_step(len(self.steps) - 1)
        self._update_filmstrip()
        self.step_arrived.emit(len(self.steps))

    def _update_filmstrip(self) -> None:
        """Evenly spaced steps so far, the first and the latest included."""
        n = len(self.steps)
        picks = np.unique(np.linspace(0, n - 1, min(n, FILMSTRIP)).round().astype(int)) if n else []
        for k, (pane, caption) in enumerate(zip(self.film_panes, self.film_captions)):
            if k < len(picks):
                pane.set_image(self.steps[picks[k]].image)
                caption.setText(f"step {self.steps[picks[k]].step}")
            else:
                pane.set_image(None)
                caption.setText("")

    def _on_worker_finished(self) -> None:
        self.worker = None
        self.fill_button.setEnabled(True)
        self.stop_button.setEnabled(False)
        self.pin_button.setEnabled(bool(self.steps))
        self.run_finished.emit()

    def _show_step(self, i: int) -> None:
        if not (0 <= i < len(self.steps)):
            return
        step = self.steps[i]
        self.result_pane.set_image(step.image)
        missing = ~self.canvas.observed
        change = ""
        if i > 0:
            delta = np.abs(step.image - self.steps[i - 1].image)[:, missing].mean()
            change = f" · mean change of the filled pixels {delta:.4f}"
        self.step_label.setText(f"Step {step.step} of {len(self.steps) - 1}{change}")

    @property
    def result(self) -> np.ndarray | None:
        """The image of the step shown (``C×H×W``), None before a run."""
        i = self.step_slider.value()
        return self.steps[i].image if 0 <= i < len(self.steps) else None

    def pin_result(self) -> None:
        """Encode the shown filled image and pin its code."""
        from vae_core.latent import encode_dataset

        image = self.result
        if image is None or self.state.model is None:
            return
        labels = None if self.label is None or not self.state.model.conditional else np.array([self.label])
        mu, _ = encode_dataset(self.state.model, image[None], labels)
        name = unique_pin_name(self.state.marks, f"inpainted {self.name}"[:28])
        self.state.marks.add_pin(mu[0], name=name, label=self.label)
        self.step_label.setText(f"Pinned as {name}.")

    def done(self, result: int) -> None:
        self.stop()
        if self.worker is not None:
            self.worker.finished.disconnect(self._on_worker_finished)
        super().done(result)
