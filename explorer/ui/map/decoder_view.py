"""The live decoder preview: what the model draws at the point under the cursor.

Listens to ``state.map``: ``cursor_changed`` (decode the code, show it large),
``hovered_index_changed`` (the data point under the cursor: its original image, its
reconstruction, label and index) and ``nearest_changed`` (distance to the nearest data code,
so users see when they leave the data).

Decoding a 28×28 image costs tens of microseconds, so it runs synchronously in the slot;
``ImageItem.setImage`` with fixed levels keeps painting cheap.

"Posterior samples" shows, beside the reconstruction, :data:`POSTERIOR_SAMPLES` codes drawn
from the hovered point's posterior q(z|x) and decoded (``state.posterior_samples`` with
:data:`POSTERIOR_SEED`). Sampling runs the encoder — an ``iaf``'s flow, every ``hvae``
layer — so it stays off the hover path: a point's samples are computed once, after the
cursor has rested for :data:`SAMPLES_DELAY_MS`, and cached until the weights change.
"""

from __future__ import annotations

import math
import time

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets

from explorer.ui.qt_utils import Connections, MutedLabel, is_dark, to_qimage
from explorer.ui.theme import class_colors

ON_DATA, NEAR_DATA = 1.5, 4.0   # distance thresholds, in typical nearest-neighbour spacings
POSTERIOR_SAMPLES = 4           # images in the posterior-samples row
POSTERIOR_SEED = 0              # the same point always shows the same samples
SAMPLES_DELAY_MS = 30           # the cursor rests this long before samples are drawn
SAMPLES_CACHE = 512             # points whose samples are kept
DETAIL_INTERVAL_MS = 33         # the hovered point's box follows a moving cursor at most this often


def _to_display(image: np.ndarray) -> np.ndarray:
    """``C×H×W`` → ``H×W`` or ``H×W×3`` float32 (row-major for ImageItem)."""
    image = np.asarray(image, dtype=np.float32)
    if image.ndim == 2:
        return image
    if image.shape[0] == 1:
        return image[0]
    return np.ascontiguousarray(np.moveaxis(image[:3], 0, -1))


class ImagePane(QtWidgets.QWidget):
    """One image scaled to fit (aspect kept, square pixels), fixed [0, 1] levels.

    A plain widget that draws a ``QImage``: the decoder repaints its panes on every mouse
    move, and a pyqtgraph scene and view box around one small image cost about a
    millisecond a paint. ``square=True`` asks layouts for a square (height for width) so
    spare space goes below. ``paint_count`` and ``last_paint`` record the paints (latency
    measurements).
    """

    def __init__(self, parent=None, *, minimum: int = 64, square: bool = False):
        super().__init__(parent)
        self._square = square
        self.image: np.ndarray | None = None    # H×W or H×W×3 floats, as shown
        self._qimage: QtGui.QImage | None = None
        self.paint_count = 0
        self.last_paint = 0.0
        self.painted = None          # called after each paint (the decoder schedules its other views)
        self.setMinimumSize(minimum, minimum)
        self.setSizePolicy(QtWidgets.QSizePolicy.Policy.Expanding, QtWidgets.QSizePolicy.Policy.Expanding)
        self.setAttribute(QtCore.Qt.WidgetAttribute.WA_OpaquePaintEvent)   # the background is painted here

    def hasHeightForWidth(self) -> bool:
        return self._square

    def heightForWidth(self, width: int) -> int:
        return width

    # The sizes the pyqtgraph view this pane replaced asked layouts for: panels keep their proportions.
    def sizeHint(self) -> QtCore.QSize:
        return QtCore.QSize(600, 480)

    def minimumSizeHint(self) -> QtCore.QSize:
        return QtCore.QSize(68, 68)

    def set_image(self, image: np.ndarray | None) -> None:
        if image is None:
            self.image = self._qimage = None
        else:
            disp = _to_display(image)
            if not np.isfinite(disp).all():   # a diverged model: show its NaNs as black, not noise
                disp = np.nan_to_num(disp, nan=0.0, posinf=1.0, neginf=0.0)
            self.image = disp
            self._qimage = to_qimage(disp, channels_first=False)
        self.update()

    def image_rect(self) -> QtCore.QRectF:
        """Where the image is drawn: the largest rectangle of its aspect, centred."""
        if self._qimage is None:
            return QtCore.QRectF()
        w, h = self._qimage.width(), self._qimage.height()
        scale = min(self.width() / w, self.height() / h)
        return QtCore.QRectF((self.width() - w * scale) / 2, (self.height() - h * scale) / 2, w * scale, h * scale)

    def paintEvent(self, ev) -> None:  # noqa: N802 - Qt override
        painter = QtGui.QPainter(self)
        painter.fillRect(self.rect(), self.palette().color(QtGui.QPalette.ColorRole.Window))
        if self._qimage is not None:
            painter.drawImage(self.image_rect(), self._qimage)   # nearest neighbour: pixels stay sharp
        painter.end()
        self.paint_count += 1
        self.last_paint = time.perf_counter()
        if self.painted is not None:
            self.painted()


class DecoderView(QtWidgets.QWidget):
    """Large live preview of the decoded cursor position, plus the hovered data point."""

    def __init__(self, state, parent=None):
        super().__init__(parent)
        self.state = state
        self.map = state.map
        self.preview_image: np.ndarray | None = None    # C×H×W, the last decoded cursor image
        self.decode_count = 0
        self.last_decode_ms = 0.0

        self.preview = ImagePane(minimum=72, square=True)   # scales down on short screens
        self.preview.setObjectName("decoder_preview")
        policy = QtWidgets.QSizePolicy(QtWidgets.QSizePolicy.Policy.Expanding, QtWidgets.QSizePolicy.Policy.Preferred)
        policy.setHeightForWidth(True)
        self.preview.setSizePolicy(policy)
        self.title = QtWidgets.QLabel("Move the mouse over the map")
        self.title.setObjectName("decoder_title")
        self.title.setStyleSheet("font-weight: 600;")
        self.coords = MutedLabel("")
        # Fixed heights: text that changes on every mouse move must not re-layout the window.
        self.coords.setSizePolicy(QtWidgets.QSizePolicy.Policy.Ignored, QtWidgets.QSizePolicy.Policy.Fixed)
        self.distance = QtWidgets.QLabel("Distance to nearest data: –")
        self.distance.setObjectName("decoder_distance")
        self.distance.setTextFormat(QtCore.Qt.TextFormat.RichText)
        self.distance.setWordWrap(True)
        self.distance.setFixedHeight(2 * self.distance.fontMetrics().lineSpacing() + 10)
        self.distance.setSizePolicy(QtWidgets.QSizePolicy.Policy.Ignored, QtWidgets.QSizePolicy.Policy.Fixed)
        self.title.setSizePolicy(QtWidgets.QSizePolicy.Policy.Ignored, QtWidgets.QSizePolicy.Policy.Fixed)

        self.original = ImagePane(minimum=40)
        self.reconstruction = ImagePane(minimum=40)
        self.original.setToolTip("The data point's image")
        self.reconstruction.setToolTip("What the model makes of it (its code decoded)")
        self.hover_caption = QtWidgets.QLabel("Hover a data point to compare it with its reconstruction")
        self.hover_caption.setWordWrap(True)
        self.hover_caption.setTextFormat(QtCore.Qt.TextFormat.RichText)
        self.hover_caption.setAlignment(QtCore.Qt.AlignmentFlag.AlignLeft | QtCore.Qt.AlignmentFlag.AlignTop)
        self.hover_caption.setSizePolicy(QtWidgets.QSizePolicy.Policy.Ignored, QtWidgets.QSizePolicy.Policy.Ignored)

        for pane in (self.original, self.reconstruction):
            pane.setMaximumSize(72, 72)   # the live preview above gets the space
        pair = QtWidgets.QGridLayout()
        pair.setContentsMargins(0, 0, 0, 0)
        pair.setHorizontalSpacing(6)
        pair.setVerticalSpacing(1)
        pair.addWidget(self.original, 0, 0)
        pair.addWidget(self.reconstruction, 0, 1)
        for col, text in ((0, "original"), (1, "reconstruction")):
            cap = MutedLabel(text)
            cap.setAlignment(QtCore.Qt.AlignmentFlag.AlignHCenter)
            pair.addWidget(cap, 1, col)
        pair.addWidget(self.hover_caption, 0, 2, 2, 1)
        pair.setColumnStretch(2, 1)

        self.hover_box = QtWidgets.QGroupBox("Data point under the cursor")
        hb = QtWidgets.QVBoxLayout(self.hover_box)
        hb.setContentsMargins(6, 4, 6, 4)
        hb.addLayout(pair)
        self.samples_toggle = QtWidgets.QCheckBox("Posterior samples")
        self.samples_toggle.setToolTip(
            f"Decode {POSTERIOR_SAMPLES} codes drawn from the hovered point's posterior q(z|x) beside its "
            "reconstruction (which decodes the posterior mean): how much the model hesitates about this image. "
            "A flow posterior (iaf) can be non-Gaussian here.")
        self.samples_toggle.toggled.connect(self._on_samples_toggled)
        hb.addWidget(self.samples_toggle)
        self.samples_row = QtWidgets.QWidget()
        sr = QtWidgets.QHBoxLayout(self.samples_row)
        sr.setContentsMargins(0, 0, 0, 0)
        sr.setSpacing(4)
        self.sample_panes = []
        for _ in range(POSTERIOR_SAMPLES):
            pane = ImagePane(minimum=32)
            pane.setMaximumSize(56, 56)
            pane.setToolTip("A code drawn from q(z|x) of the hovered point, decoded")
            self.sample_panes.append(pane)
            sr.addWidget(pane)
        sr.addStretch(1)
        self.samples_row.setVisible(False)
        hb.addWidget(self.samples_row)
        from explorer.ui.map.pixel_samples import PixelSamplesBox   # it builds on ImagePane, defined here

        self.pixel_samples = PixelSamplesBox(state, self)
        hb.addWidget(self.pixel_samples)
        self.samples_index: int | None = None          # the point whose samples are shown
        self._samples_cache: dict[int, np.ndarray] = {}
        self._samples_timer = QtCore.QTimer(self)
        self._samples_timer.setSingleShot(True)
        self._samples_timer.setInterval(SAMPLES_DELAY_MS)
        self._samples_timer.timeout.connect(self._show_samples)

        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(6, 4, 6, 4)
        layout.setSpacing(3)
        layout.addWidget(self.title)
        layout.addWidget(self.preview)
        layout.addWidget(self.distance)
        layout.addWidget(self.coords)
        # A code-grid model (vqvae) snaps each cell: say how many cells the last move changed.
        self.cells_label = MutedLabel("")
        self.cells_label.setObjectName("decoder_cells")
        self.cells_label.setSizePolicy(QtWidgets.QSizePolicy.Policy.Ignored, QtWidgets.QSizePolicy.Policy.Fixed)
        self.cells_label.setToolTip("Each cell of the code grid snaps to its nearest codebook entry: the image "
                                    "changes in jumps when the cursor crosses a boundary between entries")
        self.cells_label.setVisible(False)
        layout.addWidget(self.cells_label)
        layout.addWidget(self.hover_box)
        layout.addStretch(1)

        self._connections = Connections(self)
        for signal, slot in ((self.map.cursor_changed, self._on_cursor_changed),
                             (self.map.hovered_index_changed, self._on_hovered_index_changed),
                             (self.map.nearest_changed, self._on_nearest_changed),
                             (state.weights_changed, self._on_weights_changed),
                             (state.model_changed, self._on_weights_changed),
                             (state.dataset_changed, self._on_dataset_changed),
                             (state.vq.cells.cells_changed, self._on_cells_changed)):
            self._connections.connect(signal, slot)
        self._last_z = None
        # The hovered point's original, reconstruction and caption cost a decode and two
        # repaints: shown at once for a new point, then at most every DETAIL_INTERVAL_MS while
        # the cursor sweeps across points, so they never delay the image under the cursor.
        self._detail_timer = QtCore.QTimer(self)
        self._detail_timer.setSingleShot(True)
        self._detail_timer.setInterval(DETAIL_INTERVAL_MS)
        self._detail_timer.timeout.connect(self._flush_hovered_detail)
        self._detail_pending = False
        self._detail_due = False     # the first change of a sweep: shown right after the image under the cursor
        self._after_paint = QtCore.QTimer(self)
        self._after_paint.setSingleShot(True)
        self._after_paint.setInterval(0)
        self._after_paint.timeout.connect(self._flush_after_paint)
        self.preview.painted = self._on_preview_painted
        self._nearest = None
        self._text_timer = QtCore.QTimer(self)
        self._text_timer.setSingleShot(True)
        self._text_timer.setInterval(40)
        self._text_timer.timeout.connect(self._update_coords)

    # -- slots --------------------------------------------------------------------------------------
    def _on_cells_changed(self) -> None:
        cells = self.state.vq.cells
        self.cells_label.setVisible(cells.grid is not None)
        if cells.grid is None:
            return
        if cells.changed is None:
            self.cells_label.setText(f"Code grid: {cells.cells} cells")
        else:
            self.cells_label.setText(f"{cells.changed} of {cells.cells} grid cells changed code since the last "
                                     "position")

    def _on_cursor_changed(self, z) -> None:
        if z is None:
            if self.preview_image is not None:
                self.title.setText("Cursor left the map — last decoded point")
            return
        self.show_code(z)
        # The text line follows at most every 40 ms: typesetting it on every mouse move
        # costs more than decoding the image.
        if not self._text_timer.isActive():
            self._text_timer.start()

    def _update_coords(self) -> None:
        self._show_nearest(self._nearest)
        xy, z = self.map.cursor_xy, self.map.cursor_z
        if xy is None or z is None:
            return
        zs = ", ".join(f"{v:+.2f}" for v in np.asarray(z)[:8])
        more = " …" if len(z) > 8 else ""
        self.coords.setText(f"map ({xy[0]:.3g}, {xy[1]:.3g})  ·  z = [{zs}{more}]")
        self.coords.setToolTip("z = [" + ", ".join(f"{v:+.4f}" for v in np.asarray(z)) + "]")

    def show_code(self, z) -> None:
        """Decode ``z`` and show it in the large preview."""
        if self.state.model is None:
            return
        t0 = time.perf_counter()
        try:
            image = self.state.decode(z)[0]
        except (ValueError, RuntimeError) as exc:  # e.g. a model of another latent size mid-switch
            self.title.setText(f"Cannot decode: {exc}")
            return
        self.preview_image = image
        self.preview.set_image(image)
        self._last_z = np.asarray(z, dtype=np.float32).copy()
        self.decode_count += 1
        self.last_decode_ms = (time.perf_counter() - t0) * 1e3
        label_note = ""
        model = self.state.model
        if getattr(model, "conditional", False):
            names = self.state.class_names
            lab = self.state.studio.decode_label
            label_note = f" (decoded as {names[lab] if lab < len(names) else lab})"
        title = "Decoded at the cursor" + label_note
        if self.title.text() != title:
            self.title.setText(title)

    def _on_nearest_changed(self, nearest) -> None:
        # With the coordinates, at most every 40 ms: an answer comes for nearly every mouse
        # move, and laying out this rich-text line each time cost more than the decode.
        self._nearest = nearest
        if not self._text_timer.isActive():
            self._text_timer.start()

    def _show_nearest(self, nearest) -> None:
        if nearest is None or not len(nearest.distances):
            self.distance.setText("Distance to nearest data: –")
            return
        d = nearest.distance
        spacing = self.map.known_data_spacing()   # computed by the query thread, never here
        if spacing and math.isfinite(d):
            ratio = d / spacing
            if ratio <= ON_DATA:
                color, verdict = "#4caf50", "on the data"
            elif ratio <= NEAR_DATA:
                color, verdict = "#ffb300", "near the data"
            else:
                color, verdict = "#ef5350", "off the data — the decoder is extrapolating"
            self.distance.setText(
                f"<span style='color:{color}'>●</span> Distance to nearest data: "
                f"<b>{d:.3g}</b> ({ratio:.1f}× typical spacing) — {verdict}")
        else:
            self.distance.setText(f"Distance to nearest data: <b>{d:.3g}</b>")

    def _on_hovered_index_changed(self, index) -> None:
        # The image under the cursor comes first: the box follows once it is on screen (or
        # after DETAIL_INTERVAL_MS if nothing is painted), then at most every interval.
        self._detail_pending = True
        if not self._detail_timer.isActive():
            self._detail_due = True
            self._detail_timer.start()

    def _on_preview_painted(self) -> None:
        if self._detail_due:
            self._after_paint.start()   # after this frame reaches the screen, not inside its paint

    def _flush_after_paint(self) -> None:
        if self._detail_due and self._detail_pending:
            self._detail_due = self._detail_pending = False
            self._show_hovered_detail(self.map.hovered_index)

    def _flush_hovered_detail(self) -> None:
        self._detail_due = False
        if self._detail_pending:
            self._detail_pending = False
            self._show_hovered_detail(self.map.hovered_index)
            self._detail_timer.start()

    def _show_hovered_detail(self, index) -> None:
        if index is None:
            self.hover_box.setTitle("Data point under the cursor")
            return
        images = self.state.images
        if images is None or not (0 <= index < len(images)):
            return
        self.original.set_image(self.state.float_images(index))
        codes = self.state.codes
        labels = self.state.labels
        label = int(labels[index]) if labels is not None else None
        if codes is not None and index < len(codes) and self.state.model is not None:
            try:
                recon = self.state.decode(codes[index], None if label is None else np.array([label]))[0]
                self.reconstruction.set_image(recon)
            except (ValueError, RuntimeError):
                self.reconstruction.set_image(None)
        names = self.state.class_names
        if label is not None:
            color = class_colors(max(len(names), label + 1), is_dark(self.palette()))[label]
            name = names[label] if label < len(names) else str(label)
            text = (f"<b>#{index:,}</b><br>label <span style='color:rgb{color}'>■</span> <b>{label}</b>"
                    + (f" ({name})" if name != str(label) else ""))
        else:
            text = f"<b>#{index:,}</b><br>unlabeled"
        split = "train" if self.state.dataset is not None and index < len(self.state.dataset.train) else "test"
        self.hover_caption.setText(f"{text}<br>{split} set")
        self.hover_box.setTitle(f"Data point #{index:,}")
        if self.samples_toggle.isChecked():
            if index in self._samples_cache:
                self._show_samples()
            else:   # off the hover path: drawn once the cursor rests
                self._samples_timer.start()

    # -- posterior samples -------------------------------------------------------------------------
    def _on_samples_toggled(self, on: bool) -> None:
        self.samples_row.setVisible(on)
        if on:
            self._show_samples()

    def _show_samples(self) -> None:
        index = self.map.hovered_index
        if index is None or self.state.model is None or self.state.images is None:
            return
        images = self._samples_cache.get(index)
        if images is None:
            try:
                images = self.state.posterior_samples(index, POSTERIOR_SAMPLES, seed=POSTERIOR_SEED)
            except (ValueError, RuntimeError):
                return
            if len(self._samples_cache) >= SAMPLES_CACHE:
                self._samples_cache.pop(next(iter(self._samples_cache)))
            self._samples_cache[index] = images
        for pane, image in zip(self.sample_panes, images):
            pane.set_image(image)
        self.samples_index = index

    def _forget_samples(self) -> None:
        self._samples_cache.clear()
        self._samples_timer.stop()
        self.samples_index = None
        for pane in self.sample_panes:
            pane.set_image(None)

    def _on_weights_changed(self, *args) -> None:
        self._forget_samples()
        if self._last_z is not None and self.state.model is not None:
            if len(self._last_z) == getattr(self.state.model, "latent_dim", len(self._last_z)):
                self.show_code(self._last_z)
            else:
                self._last_z = None

    def _on_dataset_changed(self, *args) -> None:
        self._forget_samples()
        self.original.set_image(None)
        self.reconstruction.set_image(None)
        self.hover_caption.setText("Hover a data point to compare it with its reconstruction")

    # -- sizing -------------------------------------------------------------------------------------
    def sizeHint(self) -> QtCore.QSize:
        return QtCore.QSize(300, 520)

