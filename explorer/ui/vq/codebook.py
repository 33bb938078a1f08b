"""The Codebook panel: every code of a vqvae, its usage, what it draws, and a map of the vectors.

Top: the codebook vectors on their first two principal axes (``state.vq.codebook.layout``),
coloured by usage (log scale, viridis), dead codes as red crosses. Below: one tile per
code, the image decoded from a grid filled with it, captioned with its index and usage
(``dead`` when no cell of the data uses it). Clicking a tile or a point makes that code
the grid editor's brush. A codebook has at most a few thousand entries, so pyqtgraph's
``ScatterPlotItem`` draws it directly (the map's rasteriser is for 10⁴–10⁶ points).
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QTimer, Qt
from PySide6.QtWidgets import QLabel, QSplitter, QVBoxLayout, QWidget

from explorer.ui.image_grid import ImageGrid
from explorer.ui.qt_utils import Connections

__all__ = ["CodebookPanel", "MAX_TILES"]

#: Tiles drawn at most (the most used codes first beyond this).
MAX_TILES = 512
REFRESH_MS = 150


def _short(count: int) -> str:
    """``1834`` → ``1.8k`` (tile captions are narrow)."""
    count = int(count)
    return str(count) if count < 1000 else (f"{count / 1000:.1f}k" if count < 100_000 else f"{count // 1000}k")


class CodebookPanel(QWidget):
    """Usage summary, the map of code vectors and the code tiles."""

    def __init__(self, state, parent=None) -> None:
        super().__init__(parent)
        self.state = state
        self.codebook = state.vq.codebook
        self.tile_codes = np.zeros(0, dtype=np.int64)   # the code of each tile, in order
        self.refresh_count = 0
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.plot = pg.PlotWidget()
        self.plot.setMenuEnabled(False)
        self.plot.setLabel("bottom", "PC 1 of the code vectors")
        self.plot.setLabel("left", "PC 2")
        self.plot.setMinimumHeight(140)
        self.scatter = pg.ScatterPlotItem(size=9, pen=None, hoverable=True)
        self.dead_scatter = pg.ScatterPlotItem(size=10, symbol="x", pen=pg.mkPen("#e74c3c", width=2),
                                               brush=pg.mkBrush("#e74c3c"), hoverable=True)
        self.plot.addItem(self.scatter)
        self.plot.addItem(self.dead_scatter)
        self.scatter.sigClicked.connect(self._on_scatter_clicked)
        self.dead_scatter.sigClicked.connect(self._on_scatter_clicked)
        self.tiles = ImageGrid("What each code draws when it fills the grid",
                               placeholder="Train or open a vqvae to see its codebook.")
        self.tiles.setToolTip("Each tile decodes a grid filled with one code. Click a tile to paint with that code "
                              "in the code grid editor")
        self.tiles.tile_clicked.connect(self._on_tiles_tile_clicked)
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(self.plot)
        splitter.addWidget(self.tiles)
        splitter.setSizes([200, 300])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 4, 6, 4)
        layout.addWidget(self.summary)
        layout.addWidget(splitter, 1)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(REFRESH_MS)
        self._timer.timeout.connect(self.refresh)
        self._stale = True
        self._conn = Connections(self)
        self._conn.connect(self.codebook.codebook_changed, self._on_codebook_changed)
        self.refresh()

    def _on_codebook_changed(self) -> None:
        # Quantizing every cell of a 70,000-image dataset takes a few tenths of a second on
        # the GUI thread: done when the panel is on screen, not after every epoch behind a tab.
        self._stale = True
        if self.isVisible() and not self._timer.isActive():
            self._timer.start()

    def showEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().showEvent(event)
        if self._stale and not self._timer.isActive():
            self._timer.start()

    def refresh(self) -> None:
        """Redraw from ``state.vq.codebook`` (normally through the coalescing timer)."""
        self._timer.stop()
        self._stale = False
        book = self.codebook
        if not book.available:
            self.summary.setText("The codebook belongs to models with a discrete code grid (vqvae).")
            self.scatter.clear()
            self.dead_scatter.clear()
            self.tiles.clear("Train or open a vqvae to see its codebook.")
            self.tile_codes = np.zeros(0, dtype=np.int64)
            return
        size = book.size
        usage = book.usage()
        xy = book.layout()
        if usage is None:
            self.summary.setText(f"{size} codes · usage appears once the dataset is encoded.")
            usage_shown = np.zeros(size, dtype=np.int64)
        else:
            dead = int((usage == 0).sum())
            perplexity = book.perplexity()
            self.summary.setText(f"<b>{size}</b> codes · <b>{size - dead}</b> used · "
                                 f"<b style='color:#e74c3c'>{dead}</b> dead · perplexity "
                                 f"<b>{perplexity or 0:.1f}</b> (cells of all {len(self.state.codes)} images)")
            usage_shown = usage
        alive = usage_shown > 0
        level = np.log1p(usage_shown) / max(np.log1p(usage_shown).max(), 1e-9)
        colors = pg.colormap.get("viridis").map(level, mode="qcolor")
        codes = np.arange(size)
        self.scatter.setData(x=xy[alive, 0], y=xy[alive, 1], brush=[colors[i] for i in codes[alive]],
                             data=codes[alive], tip=self._tip)
        dead_codes = codes[~alive] if usage is not None else codes[:0]
        self.dead_scatter.setData(x=xy[dead_codes, 0], y=xy[dead_codes, 1], data=dead_codes, tip=self._tip)
        order = codes if size <= MAX_TILES else np.argsort(-usage_shown, kind="stable")[:MAX_TILES]
        images = book.patch_images()[order]
        captions = [f"{k}·{_short(usage_shown[k])}" if usage_shown[k] or usage is None else f"{k}·dead" for k in order]
        self.tile_codes = order
        # Twice as wide as tall: the dock is usually wider than the tiles' share of its height.
        self.tiles.set_images(images, columns=int(np.ceil(np.sqrt(2 * len(order)))), captions=captions)
        caption = "What each code draws when it fills the grid (index · cells using it)"
        if size > MAX_TILES:
            caption += f" · the {MAX_TILES} most used of {size}"
        self.tiles.set_caption(caption)
        self.refresh_count += 1

    def _tip(self, x, y, data) -> str:
        usage = self.codebook.usage()
        used = "unknown" if usage is None else ("dead" if usage[int(data)] == 0 else f"{usage[int(data)]} cells")
        return f"code {int(data)}: {used}"

    def _on_scatter_clicked(self, _item, points, *_args) -> None:
        if len(points):
            self.pick_code(int(points[0].data()))

    def _on_tiles_tile_clicked(self, index: int) -> None:
        if 0 <= index < len(self.tile_codes):
            self.pick_code(int(self.tile_codes[index]))

    def pick_code(self, code: int) -> None:
        """Make ``code`` the grid editor's brush."""
        self.state.vq.editor.set_brush(code)
        self.state.post_message("info", f"Brush: code {code}.")
