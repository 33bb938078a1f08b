"""Compare two models side by side: two aligned maps of the same dataset, with linked hover.

Each side is the application's own map plot (:class:`~explorer.ui.map.view.LatentMapView`)
and decoder preview (:class:`~explorer.ui.map.decoder_view.DecoderView`) over one of the
two documents of :class:`~explorer.state.compare.CompareState`. Hovering a data point on
either map highlights it on both; the other map shows a cursor on it and its decoder
decodes that model's code of the point, so both decoders show their image of the same
input. Codes and layouts are computed by :class:`~explorer.jobs.compare.CompareJob` in a
worker.
"""

from __future__ import annotations

import numpy as np
from PySide6 import QtCore, QtWidgets

from explorer.jobs.compare import CompareJob
from explorer.state.compare import CompareState
from explorer.state.map import KIND_NAMES, KINDS
from explorer.ui.map.decoder_view import DecoderView
from explorer.ui.map.view import LatentMapView
from explorer.ui.qt_utils import Connections, MutedLabel


class CompareSide(QtWidgets.QWidget):
    """One model: a title, its map and its decoder preview."""

    def __init__(self, state, title: str, parent=None) -> None:
        super().__init__(parent)
        self.state = state
        self.title = QtWidgets.QLabel(title)
        self.title.setStyleSheet("font-weight: 600;")
        self.title.setSizePolicy(QtWidgets.QSizePolicy.Policy.Ignored, QtWidgets.QSizePolicy.Policy.Preferred)
        self.subtitle = MutedLabel("")
        self.subtitle.setSizePolicy(QtWidgets.QSizePolicy.Policy.Ignored, QtWidgets.QSizePolicy.Policy.Preferred)
        self.view = LatentMapView(state)
        self.view.pin_on_click = False    # clicks here do not edit the compared documents' pins
        self.view.animate = False
        self.decoder = DecoderView(state)
        self.decoder.setMinimumWidth(180)
        self.decoder.setMaximumWidth(260)
        body = QtWidgets.QHBoxLayout()
        body.setContentsMargins(0, 0, 0, 0)
        body.addWidget(self.view, 1)
        body.addWidget(self.decoder)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.title)
        layout.addWidget(self.subtitle)
        layout.addLayout(body, 1)

    def show_linked_point(self, index: int | None) -> None:
        """Put this map's cursor on data point ``index`` and decode this model's code of it."""
        xy, codes = self.state.map.xy, self.state.codes
        if index is None or xy is None or codes is None or not (0 <= index < len(xy)):
            self.view.cursor_item.hide()
            return
        self.view.cursor_item.setPos(float(xy[index, 0]), float(xy[index, 1]))
        self.view.cursor_item.show()
        self.decoder.show_code(codes[index])


class CompareView(QtWidgets.QWidget):
    """The comparison of the current model (left) with another checkpoint (right).

    Signals
    -------
    checkpoint_requested()
        *Choose Checkpoint…* was pressed (the window asks for a file).
    current_requested()
        *Use Current Model* was pressed (the window puts its current model on the left).
    """

    checkpoint_requested = QtCore.Signal()
    current_requested = QtCore.Signal()

    def __init__(self, compare: CompareState | None = None, parent=None) -> None:
        super().__init__(parent)
        self.compare = compare or CompareState()
        self.job = CompareJob(self.compare, self)
        self.left = CompareSide(self.compare.left, "Current model")
        self.right = CompareSide(self.compare.right, "Compared with")
        self.kind_combo = QtWidgets.QComboBox()
        for kind in KINDS:
            self.kind_combo.addItem(KIND_NAMES[kind], kind)
        self.kind_combo.setToolTip("Projection of both maps; the right map is rotated, reflected and scaled onto the "
                                   "left one (Procrustes over all data points), so a point sits in about the same "
                                   "place on both")
        self.kind_combo.currentIndexChanged.connect(self._on_kind_combo_changed)
        self.current_button = QtWidgets.QPushButton("Use Current Model")
        self.current_button.setToolTip("Put the window's current model on the left")
        self.current_button.clicked.connect(self.current_requested)
        self.choose_button = QtWidgets.QPushButton("Choose Checkpoint…")
        self.choose_button.setToolTip("Choose the checkpoint to compare with (it must read this dataset)")
        self.choose_button.clicked.connect(self.checkpoint_requested)
        self.status = MutedLabel("Choose a checkpoint to compare the current model with.")
        self.status.setSizePolicy(QtWidgets.QSizePolicy.Policy.Ignored, QtWidgets.QSizePolicy.Policy.Preferred)
        bar = QtWidgets.QHBoxLayout()
        bar.addWidget(self.current_button)
        bar.addWidget(self.choose_button)
        bar.addWidget(QtWidgets.QLabel("Projection"))
        bar.addWidget(self.kind_combo)
        bar.addWidget(self.status, 1)
        sides = QtWidgets.QSplitter(QtCore.Qt.Orientation.Horizontal)
        sides.addWidget(self.left)
        sides.addWidget(self.right)
        sides.setChildrenCollapsible(False)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(6, 4, 6, 4)
        layout.addLayout(bar)
        layout.addWidget(sides, 1)

        self._connections = Connections(self)
        c = self.compare
        self._connections.connect(c.models_changed, self._on_compare_models_changed)
        self._connections.connect(c.kind_changed, self._on_compare_kind_changed)
        self._connections.connect(c.hovered_index_changed, self._on_compare_hovered_index_changed)
        self.job.busy_changed.connect(self._on_job_busy_changed)
        self.job.applied.connect(self._on_job_applied)
        self.job.message_posted.connect(lambda _level, text: self.status.setText(text))
        self._on_compare_kind_changed(c.kind)

    def compare_models(self, left_model, right_model, dataset, *, left_path=None, right_path=None) -> None:
        """Show ``left_model`` and ``right_model`` on ``dataset`` (layouts follow in a worker)."""
        self.compare.set_models(left_model, right_model, dataset, left_path=left_path, right_path=right_path)
        self.compare.set_kind(self.compare.default_kind())
        self.job.request()

    # -- state -> widgets -------------------------------------------------------------------------
    def _on_compare_models_changed(self) -> None:
        from explorer.state import describe_model

        for side, state, role in ((self.left, self.compare.left, "Current model"),
                                  (self.right, self.compare.right, "Compared with")):
            side.title.setText(f"{role}: {state.display_name}")
            side.subtitle.setText(describe_model(state.model))
            side.subtitle.setToolTip(str(state.checkpoint_path or ""))

    def _on_compare_kind_changed(self, kind: str) -> None:
        with QtCore.QSignalBlocker(self.kind_combo):
            self.kind_combo.setCurrentIndex(max(0, self.kind_combo.findData(kind)))

    def _on_compare_hovered_index_changed(self, index) -> None:
        hovered = self.compare.hovered_side
        for name, side in (("left", self.left), ("right", self.right)):
            if name != hovered:
                side.show_linked_point(index)

    def _on_job_busy_changed(self, busy: bool) -> None:
        if busy:
            self.status.setText(f"Encoding and projecting both models ({KIND_NAMES[self.compare.kind]})…")
        elif self.compare.left.map.xy is not None:
            self.status.setText("Hover a data point on either map: both show it, and both decoders draw it.")

    def _on_job_applied(self) -> None:
        # The right map is rotated onto the left one: its axes are no longer its own.
        plot = self.right.view.plot_item
        plot.setLabel("bottom", "x, aligned to the left map")
        plot.setLabel("left", "y, aligned to the left map")

    # -- widgets -> state -------------------------------------------------------------------------
    def _on_kind_combo_changed(self, _index: int) -> None:
        kind = self.kind_combo.currentData()
        if kind and kind != self.compare.kind:
            self.compare.set_kind(kind)
            self.job.request()

    def linked_images(self) -> tuple[np.ndarray | None, np.ndarray | None]:
        """The reconstructions both decoders show for the hovered point (tests, scripts)."""
        return self.left.decoder.reconstruction.image, self.right.decoder.reconstruction.image

    def sizeHint(self) -> QtCore.QSize:
        return QtCore.QSize(1200, 620)
