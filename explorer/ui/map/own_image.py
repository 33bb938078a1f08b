"""Your own image on the map: drop a file on the map or paste one (Ctrl+V).

The image is read, converted to the model's input, encoded and scored in a worker
(:class:`~explorer.jobs.training.Task` over :class:`explorer.state.own_image.OwnImage`), then
shown as a marker at its code's place on the map and in a card with its reconstruction,
its log-likelihood (IWAE bound) and its percentile among the dataset. A file that is not an
image gets an error dialog of one sentence.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

from explorer.jobs.training import Task
from explorer.state.own_image import OwnImage
from explorer.ui.dialogs import show_error
from explorer.ui.map.decoder_view import ImagePane
from explorer.ui.qt_utils import Connections, MutedLabel

MARKER_COLOR = "#e040fb"


def qimage_to_array(image: QtGui.QImage) -> np.ndarray:
    """A QImage as an ``H×W×4`` uint8 RGBA array (a copy)."""
    image = image.convertToFormat(QtGui.QImage.Format.Format_RGBA8888)
    h, w = image.height(), image.width()
    raw = np.frombuffer(image.constBits(), dtype=np.uint8, count=image.sizeInBytes())
    return raw.reshape(h, image.bytesPerLine())[:, : 4 * w].reshape(h, w, 4).copy()


def image_source(mime: QtCore.QMimeData):
    """What to read from dropped or pasted data: a local file path, an RGBA array, or None."""
    if mime is None:
        return None
    if mime.hasUrls():
        files = [u.toLocalFile() for u in mime.urls() if u.isLocalFile()]
        if len(files) == 1 and not Path(files[0]).is_dir() and not _is_model_file(files[0]):
            return Path(files[0])
    if mime.hasImage():
        image = mime.imageData()
        if isinstance(image, QtGui.QImage) and not image.isNull():
            return qimage_to_array(image)
    return None


def unique_pin_name(marks, base: str) -> str:
    """``base``, or ``base 2``, ``base 3``… : the first name no pin has yet."""
    taken = {p.name for p in marks.pins}
    name, n = base, 1
    while name in taken:
        n += 1
        name = f"{base} {n}"
    return name


def _is_model_file(path: str) -> bool:
    # Checkpoints, datasets and model code go to the window (File ▸ Open), not the map.
    return Path(path).suffix.lower() in (".safetensors", ".npz", ".py", ".json", ".pt", ".pth", ".onnx")


class OwnImageCard(QtWidgets.QFrame):
    """The dropped image, its reconstruction and its score, floating in the map's corner."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("own_image_card")
        self.setAutoFillBackground(True)
        self.setFrameShape(QtWidgets.QFrame.Shape.StyledPanel)
        self.title = QtWidgets.QLabel()
        self.title.setStyleSheet("font-weight: 600;")
        self.original = ImagePane(minimum=64)
        self.reconstruction = ImagePane(minimum=64)
        for pane in (self.original, self.reconstruction):
            pane.setFixedSize(72, 72)
        self.original.setToolTip("Your image as the model reads it")
        self.reconstruction.setToolTip("Its code decoded")
        self.score = QtWidgets.QLabel()
        self.score.setObjectName("own_image_score")
        self.score.setWordWrap(True)
        self.note = MutedLabel("")
        self.note.setWordWrap(True)
        self.pin_button = QtWidgets.QPushButton("Pin")
        self.pin_button.setToolTip("Pin this image's code (the studio can use it)")
        self.inpaint_button = QtWidgets.QPushButton("Inpaint…")
        self.inpaint_button.setToolTip("Erase part of this image and let the model fill it in")
        self.close_button = QtWidgets.QToolButton(text="×")
        self.close_button.setToolTip("Remove your image from the map")
        self.close_button.setAutoRaise(True)

        head = QtWidgets.QHBoxLayout()
        head.addWidget(self.title, 1)
        head.addWidget(self.close_button)
        pair = QtWidgets.QGridLayout()
        pair.addWidget(self.original, 0, 0)
        pair.addWidget(self.reconstruction, 0, 1)
        for col, text in ((0, "your image"), (1, "reconstruction")):
            cap = MutedLabel(text)
            cap.setAlignment(QtCore.Qt.AlignmentFlag.AlignHCenter)
            pair.addWidget(cap, 1, col)
        buttons = QtWidgets.QHBoxLayout()
        buttons.addWidget(self.pin_button)
        buttons.addWidget(self.inpaint_button)
        buttons.addStretch(1)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(8, 4, 8, 6)
        layout.setSpacing(3)
        layout.addLayout(head)
        layout.addLayout(pair)
        layout.addWidget(self.score)
        layout.addWidget(self.note)
        layout.addLayout(buttons)
        self.setFixedWidth(240)

    def show_result(self, result) -> None:
        self.title.setText(result.name if len(result.name) <= 28 else result.name[:27] + "…")
        self.title.setToolTip(result.name)
        self.original.set_image(result.image)
        self.reconstruction.set_image(result.reconstruction)
        self.score.setText(result.summary)
        notes = []
        if result.inverted:
            notes.append("Inverted to match the dataset's background.")
        if result.xy is None:
            notes.append("Not on the map yet: it has no projection.")
        self.note.setText(" ".join(notes))
        self.note.setVisible(bool(notes))
        self.adjustSize()


class OwnImageOverlay(QtCore.QObject):
    """Drop/paste handling, the marker on the map and the card (see the module docstring)."""

    analysed = QtCore.Signal(object)    # OwnImageResult, once shown (tests, scripts)
    failed = QtCore.Signal(str)

    def __init__(self, state, view, parent=None):
        super().__init__(parent or view)
        self.state = state
        self.own = state.map.own_image
        self.view = view
        self.task: Task | None = None
        self.last_error: str | None = None
        self.inpaint_requested = None    # set by the installer: callable(image, label, name)

        self.marker = pg.ScatterPlotItem(size=20, symbol="d", pen=pg.mkPen("#1b1b1b", width=1.5),
                                         brush=pg.mkBrush(MARKER_COLOR))
        self.marker.setZValue(45)
        self.marker.hide()
        view.vb.addItem(self.marker, ignoreBounds=True)
        self.label = pg.TextItem("", color=MARKER_COLOR, anchor=(-0.12, 1.15), fill=pg.mkBrush(0, 0, 0, 150))
        self.label.setZValue(46)
        self.label.hide()
        view.vb.addItem(self.label, ignoreBounds=True)
        self.card = OwnImageCard(view)
        self.card.hide()
        self.card.close_button.clicked.connect(self.own.clear)
        self.card.pin_button.clicked.connect(self.pin)
        self.card.inpaint_button.clicked.connect(self._on_card_inpaint_clicked)

        view.setAcceptDrops(True)
        view.viewport().setAcceptDrops(True)
        view.viewport().installEventFilter(self)
        view.installEventFilter(self)
        self._connections = Connections(self)
        self._connections.connect(self.own.own_image_changed, self._on_own_image_changed)

    # -- input --------------------------------------------------------------------------------------
    def eventFilter(self, obj, ev) -> bool:
        kind = ev.type()
        if obj is self.view and kind == QtCore.QEvent.Type.Resize:
            self._place_card()
            return False
        if kind in (QtCore.QEvent.Type.DragEnter, QtCore.QEvent.Type.DragMove):
            if image_source(ev.mimeData()) is not None:
                ev.acceptProposedAction()
                return True
            return False
        if kind == QtCore.QEvent.Type.Drop:
            source = image_source(ev.mimeData())
            if source is None:
                return False
            ev.acceptProposedAction()
            # Let the drag finish before any dialog can open.
            QtCore.QTimer.singleShot(0, lambda: self.open(source))
            return True
        return False

    def paste(self) -> bool:
        """Ctrl+V: an image (or an image file) on the clipboard; False when there is none."""
        source = image_source(QtWidgets.QApplication.clipboard().mimeData())
        if source is None:
            self._fail("The clipboard holds no image: copy an image or an image file first.")
            return False
        self.open(source)
        return True

    def open(self, source, *, name: str | None = None) -> None:
        """Read, encode and score ``source`` (a path or an array) in a worker, then show it."""
        if self.state.model is None:
            self._fail("Open or train a model first: there is nothing to encode the image with.")
            return
        if self.task is not None:
            return
        name = name or (Path(source).name if isinstance(source, (str, Path)) else "pasted image")
        own, model = self.own, self.state.model
        images, labels = self.state.images, self.state.labels
        reference = own.reference
        label = int(self.state.studio.decode_label) if getattr(model, "conditional", False) else None

        def work():
            image, inverted = own.prepare(source)
            ref = reference
            if ref is None and images is not None and OwnImage.can_score(model):
                ref = OwnImage.reference_log_likelihoods(model, images, labels)
            return ref, OwnImage.analyse(model, image, name=name, inverted=inverted, label=label, reference=ref)

        self.state.post_message("info", f"Encoding {name}…")
        task = Task(work, doing="Reading your image", parent=self)
        task.succeeded.connect(lambda out, model=model: self._on_task_succeeded(model, out))
        task.failed.connect(lambda text, details, task=task: self._on_task_failed(task, text, details))
        self.task = task.start()

    def _on_task_succeeded(self, model, out) -> None:
        self.task = None
        if model is not self.state.model:
            return   # another model arrived meanwhile; its codes live elsewhere
        reference, result = out
        self.own.reference = reference
        self.own.set_result(result)
        self.state.post_message("info", f"{result.name}: {result.summary}")
        self.analysed.emit(self.own.result)

    def _on_task_failed(self, task, text, details) -> None:
        self.task = None
        exc = task.error
        from vae_core.errors import DatasetError

        if isinstance(exc, (DatasetError, ValueError)) and str(exc):
            self._fail(str(exc))   # the library's own sentence: the file, and why
        else:
            self._fail(text, details)

    def _fail(self, text: str, details: str = "") -> None:
        self.last_error = text
        show_error(self.view.window(), "Cannot use this image", text, details, level="warning")
        self.failed.emit(text)

    def wait(self, seconds: float = 60.0) -> bool:
        """Process events until the image is analysed (tests, scripts)."""
        deadline = QtCore.QDeadlineTimer(int(seconds * 1000))
        while self.task is not None and not deadline.hasExpired():
            QtCore.QCoreApplication.processEvents(QtCore.QEventLoop.ProcessEventsFlag.AllEvents, 50)
            QtCore.QThread.msleep(5)
        return self.task is None

    # -- output -------------------------------------------------------------------------------------
    def _on_own_image_changed(self, result) -> None:
        if result is None:
            self.marker.hide()
            self.label.hide()
            self.card.hide()
            return
        if result.xy is not None:
            self.marker.setData(pos=[result.xy])
            self.marker.show()
            self.label.setText("your image")
            self.label.setPos(*result.xy)
            self.label.show()
        else:
            self.marker.hide()
            self.label.hide()
        self.card.show_result(result)
        self.card.show()
        self.card.raise_()
        self._place_card()

    def _place_card(self) -> None:
        vb_rect = self.view.mapFromScene(self.view.vb.sceneBoundingRect()).boundingRect()
        self.card.adjustSize()
        self.card.move(vb_rect.left() + 8, vb_rect.bottom() - self.card.height() - 8)

    def pin(self) -> None:
        result = self.own.result
        if result is not None:
            base = Path(result.name).stem[:24] or "your image"
            self.state.marks.add_pin(result.code, name=unique_pin_name(self.state.marks, base), label=result.label)

    def _on_card_inpaint_clicked(self) -> None:
        result = self.own.result
        if result is not None and self.inpaint_requested is not None:
            self.inpaint_requested(result.image, result.label, result.name)
