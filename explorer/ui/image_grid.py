"""A grid of small images with a caption: reconstructions, prior samples, frames, neighbours.

Reusable by any panel::

    grid = ImageGrid("Samples from the prior")
    grid.set_images(images, columns=8)                       # N×C×H×W floats in [0, 1]
    grid.set_images(images, columns=8, captions=["3", ...])  # a caption under each tile
    grid.set_images(pairs, columns=8, row_labels=["Original", "Reconstruction"])
    grid.tile_clicked.connect(lambda index: ...)

Tiles are drawn with nearest-neighbour scaling when enlarged at least twice, so 8×8 digits
stay crisp on high-DPI screens, and smooth scaling otherwise.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QEvent, QPoint, QRect, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QImage, QPainter, QPalette
from PySide6.QtWidgets import QFileDialog, QLabel, QMenu, QSizePolicy, QVBoxLayout, QWidget

from explorer.ui.qt_utils import to_qimage, to_uint8

__all__ = ["ImageGrid", "to_uint8_tiles", "mosaic", "tile_images"]


def to_uint8_tiles(images: np.ndarray) -> np.ndarray:
    """``N×C×H×W`` floats in [0, 1] (or uint8) → ``N×H×W×C`` uint8, C in {1, 3}."""
    images = np.asarray(images)
    if images.ndim == 3:  # N×H×W
        images = images[:, None]
    if images.ndim != 4:
        raise ValueError(f"Expected N×C×H×W images, got an array of shape {images.shape}.")
    images = to_uint8(images)
    channels = images.shape[1]
    if channels == 1 or channels == 3:
        pass
    elif channels == 4:
        images = images[:, :3]
    else:
        images = images[:, :1]
    return np.ascontiguousarray(images.transpose(0, 2, 3, 1))


def mosaic(images: np.ndarray, columns: int, gap: int = 1, fill: int = 255) -> np.ndarray:
    """Tile ``N×C×H×W`` images into one ``H'×W'×C`` uint8 array (for saving a grid as PNG)."""
    tiles = to_uint8_tiles(images)
    n, h, w, c = tiles.shape
    columns = max(1, min(int(columns), n)) if n else 1
    rows = -(-n // columns) if n else 0
    out = np.full((rows * (h + gap) + gap, columns * (w + gap) + gap, c), fill, dtype=np.uint8)
    for i in range(n):
        r, col = divmod(i, columns)
        y, x = gap + r * (h + gap), gap + col * (w + gap)
        out[y:y + h, x:x + w] = tiles[i]
    return out


def tile_images(images: np.ndarray, rows: int, cols: int, gap: int = 0, fill: float = 0.0) -> np.ndarray:
    """``N×C×H×W`` images → one ``H'×W'`` (gray) or ``H'×W'×3`` (RGB) row-major mosaic."""
    n, c, h, w = images.shape
    out = np.full((c, rows * (h + gap) - gap, cols * (w + gap) - gap), fill, dtype=np.float32)
    for k in range(min(n, rows * cols)):
        r, q = divmod(k, cols)
        out[:, r * (h + gap):r * (h + gap) + h, q * (w + gap):q * (w + gap) + w] = images[k]
    return out[0] if c == 1 else np.moveaxis(out[:3], 0, -1)


# ---------------------------------------------------------------------------------------


class _Canvas(QWidget):
    """Paints the tiles; the enclosing :class:`ImageGrid` holds the data."""

    def __init__(self, grid: "ImageGrid") -> None:
        super().__init__(grid)
        self._grid = grid
        self.setMouseTracking(True)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(80, 60)

    def sizeHint(self) -> QSize:
        return QSize(320, 200)

    # Layout: a label column on the left (if any), then columns × rows square-ish cells.
    def layout_cells(self) -> tuple[list[QRect], int, int, int]:
        g = self._grid
        n = len(g._qimages)
        if not n:
            return [], 0, 0, 0
        columns = g._columns
        rows = -(-n // columns)
        fm = self.fontMetrics()
        label_w = (max(fm.horizontalAdvance(t) for t in g._row_labels) + 10) if g._row_labels else 0
        caption_h = fm.height() + 2 if g._captions else 0
        gap = 3
        tile_h_px, tile_w_px = g._tile_shape
        avail_w = max(1, self.width() - label_w - gap * (columns + 1))
        avail_h = max(1, self.height() - gap * (rows + 1) - caption_h * rows)
        scale = min(avail_w / (columns * tile_w_px), avail_h / (rows * tile_h_px))
        if scale >= 2:
            scale = float(int(scale))  # whole-number zoom keeps every source pixel the same size
        tw, th = max(1, int(tile_w_px * scale)), max(1, int(tile_h_px * scale))
        if g._captions and tw + 6 < max(fm.horizontalAdvance(c) for c in g._captions):
            caption_h = 0  # captions that do not fit are left to the tooltips
        row_h = max(th, fm.height()) if g._row_labels else th
        total_w = label_w + columns * tw + gap * (columns + 1)
        total_h = rows * (row_h + caption_h) + gap * (rows + 1)
        x0 = max(0, (self.width() - total_w) // 2) + label_w
        y0 = max(0, min((self.height() - total_h) // 2, 6))  # near the caption, not floating mid-way
        cells = []
        for i in range(n):
            r, c = divmod(i, columns)
            top = y0 + gap + r * (row_h + caption_h + gap) + (row_h - th) // 2
            cells.append(QRect(x0 + gap + c * (tw + gap), top, tw, th))
        return cells, label_w, caption_h, int(scale)

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt override
        g = self._grid
        painter = QPainter(self)
        pal = self.palette()
        if not g._qimages:
            painter.setPen(pal.color(QPalette.ColorGroup.Disabled, QPalette.ColorRole.WindowText))
            painter.drawText(self.rect().adjusted(8, 8, -8, -8), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                             g._placeholder)
            return
        cells, label_w, caption_h, scale = self.layout_cells()
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, scale < 2)
        fm = self.fontMetrics()
        show_captions = bool(g._captions) and caption_h > 0
        frame = QColor(pal.color(QPalette.ColorRole.Mid))
        hover = pal.color(QPalette.ColorRole.Highlight)
        for i, (rect, image) in enumerate(zip(cells, g._qimages)):
            painter.drawImage(rect, image)
            painter.setPen(hover if i == g._hovered else frame)
            painter.drawRect(rect.adjusted(0, 0, -1, -1))
            if show_captions:
                painter.setPen(pal.color(QPalette.ColorRole.WindowText))
                painter.drawText(QRect(rect.left() - 2, rect.bottom() + 1, rect.width() + 4, caption_h),
                                 Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop,
                                 self.fontMetrics().elidedText(g._captions[i], Qt.TextElideMode.ElideRight,
                                                               rect.width() + 4))
        if g._row_labels:
            painter.setPen(pal.color(QPalette.ColorRole.WindowText))
            columns = g._columns
            for r, text in enumerate(g._row_labels):
                first = r * columns
                if first >= len(cells):
                    break
                rect = cells[first]
                h = max(rect.height(), fm.height())  # never clip the label of a short row
                painter.drawText(QRectF(rect.left() - label_w - 3, rect.center().y() - h / 2, label_w - 4, h),
                                 Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, text)

    def index_at(self, pos: QPoint) -> int | None:
        cells, *_ = self.layout_cells()
        for i, rect in enumerate(cells):
            if rect.contains(pos):
                return i
        return None

    def mouseMoveEvent(self, event) -> None:  # noqa: N802
        index = self.index_at(event.position().toPoint())
        if index != self._grid._hovered:
            self._grid._hovered = index
            self.setToolTip(self._grid._tooltip(index))
            self.update()
        super().mouseMoveEvent(event)

    def leaveEvent(self, event) -> None:  # noqa: N802
        if self._grid._hovered is not None:
            self._grid._hovered = None
            self.update()
        super().leaveEvent(event)

    def mouseReleaseEvent(self, event) -> None:  # noqa: N802
        if event.button() == Qt.MouseButton.LeftButton:
            index = self.index_at(event.position().toPoint())
            if index is not None:
                self._grid.tile_clicked.emit(index)
        super().mouseReleaseEvent(event)


class ImageGrid(QWidget):
    """A captioned grid of images.

    Parameters
    ----------
    caption : str
        Text shown above the grid (``set_caption`` changes it).
    placeholder : str
        Text shown while there are no images.

    Signals
    -------
    tile_clicked(int)
        Index of the image clicked.
    """

    tile_clicked = Signal(int)

    def __init__(self, caption: str = "", parent: QWidget | None = None, *, placeholder: str = "No images yet.") -> None:
        super().__init__(parent)
        self._images: np.ndarray | None = None
        self._qimages: list[QImage] = []
        self._columns = 1
        self._captions: list[str] | None = None
        self._row_labels: list[str] | None = None
        self._tile_shape = (1, 1)
        self._hovered: int | None = None
        self._placeholder = placeholder
        self._caption = QLabel(caption)
        self._caption.setWordWrap(True)
        font = QFont(self._caption.font())
        font.setBold(True)
        self._caption.setFont(font)
        self._caption.setVisible(bool(caption))
        self._canvas = _Canvas(self)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 4, 6, 4)
        layout.setSpacing(2)
        layout.addWidget(self._caption)
        layout.addWidget(self._canvas, 1)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.customContextMenuRequested.connect(self._on_context_menu)

    # -- API ----------------------------------------------------------------------------------
    def set_images(self, images: np.ndarray, columns: int | None = None, captions=None, *, row_labels=None) -> None:
        """Show ``images`` (``N×C×H×W`` floats in [0, 1] or uint8) in ``columns`` columns.

        Parameters
        ----------
        columns : int, optional
            Tiles per row; default: a near-square grid.
        captions : sequence of str, optional
            One caption per image, drawn under its tile and shown as its tooltip.
        row_labels : sequence of str, optional
            A label at the left of each row (e.g. "Original", "Reconstruction").
        """
        tiles = to_uint8_tiles(images)
        n = len(tiles)
        if captions is not None:
            captions = [str(c) for c in captions]
            if len(captions) != n:
                raise ValueError(f"Got {len(captions)} captions for {n} images.")
        self._images = np.asarray(images)
        self._columns = max(1, min(int(columns), n)) if columns and n else max(1, int(np.ceil(np.sqrt(n))))
        self._captions = captions
        self._row_labels = [str(t) for t in row_labels] if row_labels else None
        self._tile_shape = tiles.shape[1:3] if n else (1, 1)
        self._qimages = [to_qimage(t, channels_first=False) for t in tiles]
        self._hovered = None
        self._canvas.setToolTip("")
        self._canvas.update()

    def clear(self, placeholder: str | None = None) -> None:
        """Remove the images; show ``placeholder`` (or the current one) instead."""
        if placeholder is not None:
            self._placeholder = placeholder
        self._images = None
        self._qimages = []
        self._captions = self._row_labels = None
        self._canvas.update()

    def set_caption(self, text: str) -> None:
        self._caption.setText(text)
        self._caption.setVisible(bool(text))

    def caption(self) -> str:
        return self._caption.text()

    def set_placeholder(self, text: str) -> None:
        self._placeholder = text
        if not self._qimages:
            self._canvas.update()

    @property
    def images(self) -> np.ndarray | None:
        """The images last given to :meth:`set_images` (None when cleared)."""
        return self._images

    @property
    def columns(self) -> int:
        return self._columns

    def count(self) -> int:
        return len(self._qimages)

    def to_array(self) -> np.ndarray | None:
        """The grid as one ``H×W×C`` uint8 image (white gaps), or None when empty."""
        if self._images is None or not len(self._images):
            return None
        return mosaic(self._images, self._columns)

    def save_png(self, path) -> None:
        import imageio.v3 as iio

        array = self.to_array()
        if array is None:
            raise ValueError("The grid is empty.")
        iio.imwrite(path, array[..., 0] if array.shape[-1] == 1 else array)

    # -- internals ------------------------------------------------------------------------------
    def _tooltip(self, index: int | None) -> str:
        if index is None:
            return ""
        if self._captions:
            return self._captions[index]
        if self._row_labels:
            row = index // self._columns
            if row < len(self._row_labels):
                return f"{self._row_labels[row]} {index % self._columns + 1}"
        return f"Image {index + 1}"

    def _on_context_menu(self, pos) -> None:
        if not self._qimages:
            return
        menu = QMenu(self)
        action = menu.addAction("Save Grid as PNG…")
        action.setStatusTip("Save these images as one PNG file")
        chosen = menu.exec(self.mapToGlobal(pos))
        if chosen is action:
            path, _ = QFileDialog.getSaveFileName(self, "Save Grid as PNG", "grid.png", "PNG images (*.png)")
            if path:
                self.save_png(path)

    def changeEvent(self, event) -> None:  # noqa: N802
        if event.type() in (QEvent.Type.PaletteChange, QEvent.Type.StyleChange):
            self._canvas.update()
        super().changeEvent(event)
