"""The latent map panel: projection switcher, tools, legend and the map plot.

``MapPanel(state)`` is the window's central widget. It owns a :class:`~explorer.jobs.layouts.MapJobs`
(projection fits in the background) and a :class:`~explorer.ui.map.view.LatentMapView`.
The codes it projects are the document's; the application's encoding job computes them
(``MapPanel(state, encoder=...)`` shows that job's progress in the panel too).

For the studio
--------------
* ``panel.show_path(codes)`` draws a path of latent codes (``T×d``) on the map;
  ``panel.set_path_frame(i)`` moves the current-frame marker; ``panel.clear_path()``.
  These are thin wrappers of ``state.map.set_path`` / ``set_path_frame``, which the studio
  state may call directly: the map redraws either way.
* ``state.map.point_picked`` (psygnal, also ``panel.point_picked``) fires on every click
  with a :class:`~explorer.state.map.PickedPoint` (code, map position, data index, label).
  A click also pins the point unless ``panel.pin_on_click`` is False or the studio routes
  clicks elsewhere (``state.studio.picking.target`` is set).
* Pins (``state.marks.pins``) and groups (``state.marks.groups``) are operands:
  ``state.marks.named_vectors()`` gives ``pin:name`` and ``group:name`` vectors.

Why this module is long (~720 lines): the panel's toolbar (projection, colour, overlays,
layers, tools) is kept in step with ``state.map`` and the open model in both directions; the
view, its items, the legend and the background jobs are modules of their own.
"""

from __future__ import annotations

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets
from superqt.utils import signals_blocked

from explorer.jobs.layouts import MapJobs
from explorer.state.map import KIND_NAMES, KINDS
from explorer.ui.map.vae_tools import install_vae_tools
from explorer.ui.map.view import LatentMapView
from explorer.ui.qt_utils import Connections, FlowLayout, ProgressBar, StatusLabel


def _swatch(rgb, size: int = 12) -> QtGui.QIcon:
    pm = QtGui.QPixmap(size, size)
    pm.fill(QtCore.Qt.GlobalColor.transparent)
    p = QtGui.QPainter(pm)
    p.setRenderHint(QtGui.QPainter.RenderHint.Antialiasing)
    p.setBrush(QtGui.QColor(*rgb))
    p.setPen(QtGui.QPen(QtGui.QColor(0, 0, 0, 120), 1))
    p.drawEllipse(1, 1, size - 2, size - 2)
    p.end()
    return QtGui.QIcon(pm)


class ClassLegend(QtWidgets.QWidget):
    """One toggle per class (click hides/shows it on the map); double-click shows only it."""

    def __init__(self, state, colors_fn, parent=None):
        super().__init__(parent)
        self.state = state
        self.map = state.map
        self._colors_fn = colors_fn
        self.buttons: list[QtWidgets.QToolButton] = []
        self._layout = QtWidgets.QVBoxLayout(self)
        self._layout.setContentsMargins(2, 2, 2, 2)
        self._layout.setSpacing(1)
        self.title = QtWidgets.QLabel("Classes")
        self.title.setStyleSheet("font-weight: 600;")
        self._layout.addWidget(self.title)
        self._box = QtWidgets.QVBoxLayout()
        self._box.setSpacing(0)
        self._layout.addLayout(self._box)
        row = QtWidgets.QHBoxLayout()
        self.all_button = QtWidgets.QToolButton(text="All")
        self.all_button.setToolTip("Show every class")
        self.all_button.clicked.connect(lambda: self.map.set_hidden_labels(()))
        self.none_button = QtWidgets.QToolButton(text="None")
        self.none_button.setToolTip("Hide every class")
        self.none_button.clicked.connect(self._hide_all)
        row.addWidget(self.all_button)
        row.addWidget(self.none_button)
        self._layout.addLayout(row)
        self._layout.addStretch(1)
        self.rebuild()

    def rebuild(self) -> None:
        for b in self.buttons:
            b.deleteLater()
        self.buttons = []
        labels = self.state.labels
        names = self.state.class_names
        visible = labels is not None
        self.setVisible(visible)
        if not visible:
            return
        colors = self._colors_fn()
        counts = np.bincount(labels, minlength=len(colors))
        for k, rgb in enumerate(colors):
            name = names[k] if k < len(names) else str(k)
            b = QtWidgets.QToolButton()
            b.setText(name if len(name) <= 14 else name[:13] + "…")
            b.setIcon(_swatch(rgb))
            b.setCheckable(True)
            b.setChecked(k not in self.map.hidden_labels)
            b.setAutoRaise(True)
            b.setToolButtonStyle(QtCore.Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
            b.setToolTip(f"{name}: {int(counts[k]) if k < len(counts) else 0:,} points — click to hide/show")
            b.setSizePolicy(QtWidgets.QSizePolicy.Policy.Expanding, QtWidgets.QSizePolicy.Policy.Fixed)
            b.toggled.connect(lambda on, k=k: self.map.set_label_visible(k, on))
            self._box.addWidget(b)
            self.buttons.append(b)

    def sync(self, *args) -> None:
        for k, b in enumerate(self.buttons):
            with signals_blocked(b):
                b.setChecked(k not in self.map.hidden_labels)

    def _hide_all(self) -> None:
        self.map.set_hidden_labels(range(len(self.buttons)))


class MapPanel(QtWidgets.QWidget):
    """Toolbar + class legend + the latent map (see the module docstring for the hooks)."""

    def __init__(self, state, parent=None, *, jobs: MapJobs | None = None, encoder=None):
        super().__init__(parent)
        self.setObjectName("map_panel")
        self.state = state
        self.map = state.map
        self.marks = state.marks
        self.encoder = encoder          # the application's EncodingJob: its progress shows here too
        self._noise_seed = 0            # the hvae lower layers' current draw ("↻" takes the next)
        self.jobs = jobs or MapJobs(state)
        if jobs is None:
            # The jobs hold a thread and listen to the state, which may outlive this panel.
            own = self.jobs
            self.destroyed.connect(lambda *_: _close_jobs(own))
        self.view = LatentMapView(state)
        self.neighbours_k = 8
        self._dims_picked = False

        self._build_toolbar()
        self.vae_tools = install_vae_tools(self)    # posterior, holes, your image, inpainting
        self.legend = ClassLegend(state, lambda: self.view.colors)
        self.legend.setFixedWidth(104)
        self.status = StatusLabel("")
        self.status.setObjectName("map_status")

        self.body = body = QtWidgets.QHBoxLayout()   # the map, then keys beside it (legend, colour bar)
        body.setContentsMargins(0, 0, 0, 0)
        body.setSpacing(2)
        body.addWidget(self.view, 1)
        body.addWidget(self.legend)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 2)
        layout.setSpacing(3)
        layout.addWidget(self.bar1)
        layout.addWidget(self.bar2)
        layout.addLayout(body, 1)
        # The jobs' progress shares the status line: shown in a toolbar, it wrapped the
        # toolbar onto another row and the map changed size (and redrew) at every encode.
        footer = QtWidgets.QHBoxLayout()
        footer.setContentsMargins(0, 0, 0, 0)
        footer.addWidget(self.status, 1)
        footer.addWidget(self.progress)
        footer.addWidget(self.cancel_button)
        self.footer = QtWidgets.QWidget()
        self.footer.setLayout(footer)
        self.footer.setMinimumHeight(max(self.progress.sizeHint().height(), self.cancel_button.sizeHint().height()))
        layout.addWidget(self.footer)

        self.jobs.busy_changed.connect(self._on_busy_changed)
        self.jobs.progressed.connect(self._on_progress)
        self.jobs.message_posted.connect(self._on_message)
        if encoder is not None:   # its messages reach the state from the window; shown here too
            encoder.busy_changed.connect(self._on_busy_changed)
            encoder.progressed.connect(self._on_progress)
            encoder.message_posted.connect(self._on_encoder_message_posted)
        self.view.status_posted.connect(self.show_status)

        self._query_z = None
        self._query_timer = QtCore.QTimer(self)
        self._query_timer.setSingleShot(True)
        self._query_timer.setInterval(0)
        self._query_timer.timeout.connect(self._ask_nearest)
        self._connections = Connections(self)
        m = self.map
        pairs = [(m.settings_changed, self._sync_controls),
                 (m.projection_changed, self._on_projection_changed),
                 (m.cursor_changed, self._on_cursor_changed),
                 (m.nearest_changed, self._on_nearest_changed),
                 (m.hidden_labels_changed, self.legend.sync),
                 (m.layout_changed, self._update_status),
                 (m.filter_changed, self._update_status),
                 (m.selection_changed, self._on_selection_changed),
                 (state.dataset_changed, self._on_dataset_changed),
                 (state.model_changed, self._on_model_changed),
                 (state.codes_changed, self._sync_controls)]
        for signal, slot in pairs:
            self._connections.connect(signal, slot)
        escape = QtGui.QShortcut(QtGui.QKeySequence(QtCore.Qt.Key.Key_Escape), self)
        escape.setContext(QtCore.Qt.ShortcutContext.WidgetWithChildrenShortcut)
        escape.activated.connect(self.clear_marks)
        self._on_busy_changed(False)
        self._sync_code_choices()
        self._sync_controls()
        self._update_status()

    def clear_marks(self) -> None:
        """Esc: drop the selection and the highlighted neighbours, back to the Pan tool."""
        self.marks.select_group(None)
        self.map.set_highlight([])
        self.set_tool("pan")

    # -- toolbar -----------------------------------------------------------------------------------
    def _build_toolbar(self) -> None:
        self.bar1 = QtWidgets.QWidget()
        # Both toolbars wrap onto more rows when the panel is narrow (see FlowLayout).
        row = FlowLayout(self.bar1)
        row.addWidget(QtWidgets.QLabel("Projection"))
        self.kind_combo = QtWidgets.QComboBox()
        self.kind_combo.setObjectName("projection_combo")
        for kind in KINDS:
            self.kind_combo.addItem(KIND_NAMES[kind], kind)
        self.kind_combo.setToolTip("Two latent dimensions, the best linear plane (PCA), or UMAP (slow to fit)")
        self.kind_combo.currentIndexChanged.connect(self._on_kind_picked)
        row.addWidget(self.kind_combo)
        # Which of the model's codes the map shows: only models with several (hvae layers).
        self.code_box = QtWidgets.QWidget()
        cl = QtWidgets.QHBoxLayout(self.code_box)
        cl.setContentsMargins(0, 0, 0, 0)
        cl.setSpacing(4)
        cl.addWidget(QtWidgets.QLabel("Code"))
        self.code_combo = QtWidgets.QComboBox()
        self.code_combo.setObjectName("map_code_combo")
        self.code_combo.setToolTip("Which code the map shows: a hierarchical model's top layer, one of its lower "
                                   "layers, or all layers concatenated. Decoding a layer runs the generative "
                                   "path down from it with the layers below at their means (or sampled: see the "
                                   "checkbox beside). Changing it encodes "
                                   "the dataset again.")
        self.code_combo.activated.connect(self._on_code_picked)
        cl.addWidget(self.code_combo)
        self.lower_noise_check = QtWidgets.QCheckBox("Sample lower layers")
        self.lower_noise_check.setObjectName("lower_noise_check")
        self.lower_noise_check.setToolTip("Decode with the layers below the map code drawn from their conditional "
                                          "priors (one fixed draw, so decoding stays smooth) instead of at their "
                                          "means: the detail a hierarchical model leaves to its lower layers.")
        self.lower_noise_check.toggled.connect(self._on_lower_noise_toggled)
        cl.addWidget(self.lower_noise_check)
        self.redraw_noise = QtWidgets.QToolButton(text="↻")
        self.redraw_noise.setObjectName("redraw_noise")
        self.redraw_noise.setToolTip("Another draw of the lower layers' noise")
        self.redraw_noise.clicked.connect(self._on_redraw_noise)
        cl.addWidget(self.redraw_noise)
        row.addWidget(self.code_box)

        self.dims_box = QtWidgets.QWidget()
        dl = QtWidgets.QHBoxLayout(self.dims_box)
        dl.setContentsMargins(0, 0, 0, 0)
        self.dim_x = QtWidgets.QComboBox()
        self.dim_y = QtWidgets.QComboBox()
        self.dim_x.setObjectName("dim_x")
        self.dim_y.setObjectName("dim_y")
        dl.addWidget(QtWidgets.QLabel("x"))
        dl.addWidget(self.dim_x)
        dl.addWidget(QtWidgets.QLabel("y"))
        dl.addWidget(self.dim_y)
        self.swap_dims = QtWidgets.QToolButton(text="⇄")
        self.swap_dims.setToolTip("Swap the two dimensions")
        self.swap_dims.clicked.connect(lambda: self._pick_dims(self.map.dims[1], self.map.dims[0]))
        dl.addWidget(self.swap_dims)
        self.dim_x.activated.connect(lambda _: self._pick_dims(self.dim_x.currentData(), self.map.dims[1]))
        self.dim_y.activated.connect(lambda _: self._pick_dims(self.map.dims[0], self.dim_y.currentData()))
        row.addWidget(self.dims_box)

        self.umap_box = QtWidgets.QWidget()
        ul = QtWidgets.QHBoxLayout(self.umap_box)
        ul.setContentsMargins(0, 0, 0, 0)
        self.n_neighbors = QtWidgets.QSpinBox()
        self.n_neighbors.setRange(2, 200)
        self.n_neighbors.setToolTip("UMAP n_neighbors: larger values keep more global structure")
        self.min_dist = QtWidgets.QDoubleSpinBox()
        self.min_dist.setRange(0.0, 1.0)
        self.min_dist.setSingleStep(0.05)
        self.min_dist.setDecimals(2)
        self.min_dist.setToolTip("UMAP min_dist: how tightly points may pack")
        self.max_fit = QtWidgets.QSpinBox()
        self.max_fit.setRange(500, 2_000_000)
        self.max_fit.setSingleStep(5000)
        self.max_fit.setGroupSeparatorShown(True)
        self.max_fit.setToolTip("UMAP is fitted on at most this many codes (a seeded random subset); the others "
                                "are placed from their nearest fitted neighbours. Larger is slower.")
        ul.addWidget(QtWidgets.QLabel("neighbours"))
        ul.addWidget(self.n_neighbors)
        ul.addWidget(QtWidgets.QLabel("min dist"))
        ul.addWidget(self.min_dist)
        ul.addWidget(QtWidgets.QLabel("fit on"))
        ul.addWidget(self.max_fit)
        self.refit_button = QtWidgets.QPushButton("Refit")
        self.refit_button.setToolTip("Fit UMAP again on the current codes with these settings")
        self.refit_button.clicked.connect(self._on_refit)
        ul.addWidget(self.refit_button)
        row.addWidget(self.umap_box)

        self.progress = ProgressBar()
        self.progress.setObjectName("map_progress")
        self.progress.setRange(0, 1000)
        self.progress.setTextVisible(True)
        self.progress.setFixedWidth(120)
        self.cancel_button = QtWidgets.QPushButton("Cancel")
        self.cancel_button.setObjectName("map_cancel")
        self.cancel_button.clicked.connect(self._cancel_jobs)

        self.bar2 = QtWidgets.QWidget()
        row2 = FlowLayout(self.bar2)
        self.tool_buttons = {}
        for tool, text, tip in (("pan", "Pan", "Drag to pan, wheel to zoom, click to pin"),
                                ("rect", "Rectangle", "Drag a rectangle to make a group (Shift adds)"),
                                ("lasso", "Lasso", "Draw around points to make a group (Shift adds)")):
            b = QtWidgets.QToolButton(text=text)
            b.setCheckable(True)
            b.setToolTip(tip)
            b.setAutoExclusive(True)
            b.setChecked(tool == "pan")
            b.toggled.connect(lambda on, tool=tool: on and self.set_tool(tool))
            row2.addWidget(b)
            self.tool_buttons[tool] = b
        row2.addWidget(_vline())

        self.backdrop_check = QtWidgets.QCheckBox("Decoded backdrop")
        self.backdrop_check.setObjectName("backdrop_check")
        self.backdrop_check.setToolTip("Tile decoded images of a grid over the visible area behind the points")
        self.backdrop_check.toggled.connect(self.view.set_backdrop_enabled)
        self.backdrop_k = QtWidgets.QSpinBox()
        self.backdrop_k.setRange(4, 40)
        self.backdrop_k.setValue(self.view.backdrop_grid)
        self.backdrop_k.setSuffix(" ×")
        self.backdrop_k.setToolTip("Backdrop grid size (k×k decoded images)")
        self.backdrop_k.valueChanged.connect(self.view.set_backdrop_grid)
        self.thumbs_check = QtWidgets.QCheckBox("Thumbnails")
        self.thumbs_check.setObjectName("thumbnails_check")
        self.thumbs_check.setToolTip("Draw the data images at their points when zoomed in")
        self.thumbs_check.toggled.connect(self.view.set_thumbnails_enabled)
        self.neighbours_check = QtWidgets.QCheckBox("Neighbours")
        self.neighbours_check.setObjectName("neighbours_check")
        self.neighbours_check.setToolTip("Highlight the nearest data points (in latent space) of the cursor")
        self.neighbours_check.toggled.connect(self._on_neighbours_toggled)
        self.neighbours_spin = QtWidgets.QSpinBox()
        self.neighbours_spin.setRange(1, 64)
        self.neighbours_spin.setValue(self.neighbours_k)
        self.neighbours_spin.valueChanged.connect(self._on_neighbours_k)
        for w in (self.backdrop_check, self.backdrop_k, self.thumbs_check, self.neighbours_check, self.neighbours_spin):
            row2.addWidget(w)
        self.reset_button = QtWidgets.QToolButton(text="Fit view")
        self.reset_button.setToolTip("Frame all points")
        self.reset_button.clicked.connect(self.view.reset_view)
        row2.addWidget(self.reset_button)
        self.export_button = QtWidgets.QToolButton(text="Export")
        self.export_button.setPopupMode(QtWidgets.QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QtWidgets.QMenu(self.export_button)
        menu.addAction("Map as PNG image…", lambda: self._export_dialog("png"))
        menu.addAction("Map as SVG vector…", lambda: self._export_dialog("svg"))
        menu.addAction("Coordinates and labels as CSV…", lambda: self._export_dialog("csv"))
        self.export_button.setMenu(menu)
        row2.addWidget(self.export_button)

    # -- controls <-> state ------------------------------------------------------------------------
    def _sync_controls(self, *args) -> None:
        m = self.map
        with signals_blocked(self.kind_combo):
            self.kind_combo.setCurrentIndex(KINDS.index(m.kind))
        d = self.state.codes.shape[1] if self.state.codes is not None else (
            getattr(self.state.model, "latent_dim", 0) if self.state.model is not None else 0)
        kl = self.state.kl_per_dim
        for combo, value in ((self.dim_x, m.dims[0]), (self.dim_y, m.dims[1])):
            with signals_blocked(combo):
                combo.clear()
                for i in range(d):
                    text = f"z{i}" + (f"  (KL {kl[i]:.2f})" if kl is not None and i < len(kl) else "")
                    combo.addItem(text, i)
                if 0 <= value < d:
                    combo.setCurrentIndex(value)
        with signals_blocked(self.n_neighbors), signals_blocked(self.min_dist), signals_blocked(self.max_fit):
            self.n_neighbors.setValue(int(m.umap_params.get("n_neighbors", 15)))
            self.min_dist.setValue(float(m.umap_params.get("min_dist", 0.1)))
            self.max_fit.setValue(int(m.umap_params.get("max_fit", 20_000)))
        self.dims_box.setVisible(m.kind == "dims")
        self.umap_box.setVisible(m.kind == "umap")

    def _on_kind_picked(self, index: int) -> None:
        kind = self.kind_combo.itemData(index)
        self.set_projection(kind)

    def set_projection(self, kind: str) -> None:
        """Switch the map to ``dims``, ``pca`` or ``umap`` (fits in the background)."""
        if kind == "dims" and self.state.codes is not None and self.state.codes.shape[1] < 2:
            self.show_status("Two latent dimensions are needed for this view.")
            return
        if kind == "umap":
            self._store_umap_params()
        if kind == "dims" and not self._dims_picked:
            self._default_dims()
        self.map.set_kind(kind)
        self._sync_controls()
        self.jobs.switch_projection(kind)

    def _default_dims(self) -> None:
        """The two most informative dimensions (highest KL), until the user picks others."""
        kl = self.state.kl_per_dim
        codes = self.state.codes
        if kl is None or codes is None or len(kl) != codes.shape[1] or len(kl) < 2:
            return
        top = np.argsort(kl)[::-1][:2]
        self.map.set_dims(int(min(top)), int(max(top)))

    def _pick_dims(self, i, j) -> None:
        if i is None or j is None:
            return
        self._dims_picked = True
        if i == j:
            d = self.dim_x.count()
            j = (i + 1) % d if d else j
        self.map.set_dims(i, j)
        self._sync_controls()
        self.jobs.switch_projection("dims")

    def _store_umap_params(self) -> None:
        self.map.set_umap_params(n_neighbors=self.n_neighbors.value(), min_dist=round(self.min_dist.value(), 4),
                                 max_fit=self.max_fit.value())

    def _on_refit(self) -> None:
        self._store_umap_params()
        self.jobs.switch_projection("umap", refit=True)

    def set_tool(self, tool: str) -> None:
        """``pan`` (drag pans, click pins), ``rect`` or ``lasso`` (drag makes a group)."""
        self.view.set_tool(tool)
        b = self.tool_buttons[tool]
        if not b.isChecked():
            b.setChecked(True)

    # -- neighbours ----------------------------------------------------------------------------------
    def _on_neighbours_toggled(self, on: bool) -> None:
        if on:
            if self.map.cursor_z is not None:
                self.jobs.query_nearest(self.map.cursor_z, self.neighbours_k)
        else:
            self.map.set_highlight([])

    def _on_neighbours_k(self, k: int) -> None:
        self.neighbours_k = int(k)
        self.view.neighbours_k = int(k)
        if self.neighbours_check.isChecked() and self.map.cursor_z is not None:
            self.jobs.query_nearest(self.map.cursor_z, self.neighbours_k)

    def _on_cursor_changed(self, z) -> None:
        # Asked on the next turn, after the decoder has drawn the image under the cursor: the
        # query thread's Python work would otherwise take the interpreter lock from that
        # decode each time torch lets go of it.
        self._query_z = z
        if z is not None and not self._query_timer.isActive():
            self._query_timer.start()

    def _ask_nearest(self) -> None:
        z = self._query_z
        if z is not None:
            self.jobs.query_nearest(z, self.neighbours_k if self.neighbours_check.isChecked() else 1)

    def _on_nearest_changed(self, nearest) -> None:
        if self.neighbours_check.isChecked() and nearest is not None and self.map.cursor_z is not None:
            self.map.set_highlight(nearest.indices)

    def show_neighbours(self, z, k: int | None = None) -> np.ndarray:
        """Highlight the ``k`` data points nearest to code ``z`` (e.g. a pin's); returns them."""
        result = self.map.query_nearest(z, k or self.neighbours_k)
        idx = result.indices if result is not None else np.zeros(0, np.int64)
        with signals_blocked(self.neighbours_check):
            self.neighbours_check.setChecked(False)
        self.map.set_highlight(idx)
        return idx

    # -- studio hooks --------------------------------------------------------------------------------
    @property
    def point_picked(self):
        """psygnal signal: a :class:`~explorer.state.map.PickedPoint` per click on the map."""
        return self.map.point_picked

    @property
    def pin_on_click(self) -> bool:
        return self.view.pin_on_click

    @pin_on_click.setter
    def pin_on_click(self, on: bool) -> None:
        self.view.pin_on_click = bool(on)

    def show_path(self, codes, frame: int | None = None) -> None:
        """Draw latent ``codes`` (``T×d``) as a path on the map (forward-projected)."""
        self.map.set_path(codes)
        if frame is not None:
            self.map.set_path_frame(frame)

    def set_path_frame(self, frame: int) -> None:
        self.map.set_path_frame(frame)

    def clear_path(self) -> None:
        self.map.set_path(None)

    # -- export --------------------------------------------------------------------------------------
    def export(self, path) -> None:
        """Export by extension: ``.png`` / ``.svg`` (the plot) or ``.csv`` (coordinates and labels)."""
        path = str(path)
        if path.lower().endswith(".csv"):
            self.map.export_csv(path)
        else:
            self.view.export_image(path)
        self.show_status(f"Saved {path}")

    def _export_dialog(self, kind: str) -> None:
        filters = {"png": "PNG image (*.png)", "svg": "SVG vector image (*.svg)", "csv": "CSV table (*.csv)"}
        path, _ = QtWidgets.QFileDialog.getSaveFileName(self, "Export the latent map", f"latent-map.{kind}",
                                                        filters[kind])
        if not path:
            return
        if not path.lower().endswith("." + kind):
            path += "." + kind
        try:
            self.export(path)
        except (OSError, ValueError) as exc:
            from explorer.jobs.training import friendly_error

            QtWidgets.QMessageBox.warning(self, "Export failed", friendly_error(exc, "Exporting the map"))

    # -- status --------------------------------------------------------------------------------------
    def _on_busy_changed(self, _busy: bool) -> None:
        busy = self.jobs.busy or (self.encoder is not None and self.encoder.busy)
        self.progress.setVisible(busy)
        self.cancel_button.setVisible(busy)
        if not busy:
            self._update_status()

    def _on_progress(self, text: str, fraction: float) -> None:
        if fraction < 0:
            self.progress.setRange(0, 0)
        else:
            self.progress.setRange(0, 1000)
            self.progress.setValue(int(fraction * 1000))
        # The words go to the status line beside the bar; the bar shows how far.
        self.progress.setFormat("%p%" if fraction >= 0 else "")
        if text:
            self.status.setText(text)

    def _on_message(self, level: str, text: str) -> None:
        self.show_status(text)
        self.state.post_message(level, text)

    def _on_encoder_message_posted(self, _level: str, text: str) -> None:
        self.show_status(text)

    def _cancel_jobs(self) -> None:
        self.jobs.cancel()
        if self.encoder is not None:
            self.encoder.cancel()

    def show_status(self, text: str) -> None:
        self.status.setText(text)

    def _on_selection_changed(self, indices) -> None:
        if not len(indices):
            self._update_status()
        elif self.marks.active_group is not None:
            self.show_status(f"Group {self.marks.active_group}: {len(indices):,} points selected.")

    def _on_projection_changed(self, projection) -> None:
        self._sync_controls()
        self._update_status()

    def _on_dataset_changed(self, *args) -> None:
        self.legend.rebuild()
        self._update_status()

    def _on_model_changed(self, *args) -> None:
        self._sync_code_choices()
        self._sync_controls()

    def _sync_code_choices(self) -> None:
        model = self.state.model
        choices = model.map_code_choices() if model is not None else {}
        with signals_blocked(self.code_combo):
            self.code_combo.clear()
            for value, label in choices.items():
                self.code_combo.addItem(label, value)
            self.code_combo.setCurrentIndex(max(0, self.code_combo.findData(model.map_code_choice if model else None)))
        self.code_box.setVisible(len(choices) > 1)
        self._sync_lower_noise()

    def _sync_lower_noise(self) -> None:
        model = self.state.model
        has_lower = model is not None and model.lower_layers > 0
        with signals_blocked(self.lower_noise_check):
            self.lower_noise_check.setChecked(has_lower and model.lower_noise_seed is not None)
        self.lower_noise_check.setVisible(has_lower)
        self.redraw_noise.setVisible(has_lower)
        self.redraw_noise.setEnabled(self.lower_noise_check.isChecked())

    def _on_code_picked(self, index: int) -> None:
        choice = self.code_combo.itemData(index)
        if choice is not None and self.state.model is not None:
            self.state.set_map_code(choice)

    def _on_lower_noise_toggled(self, on: bool) -> None:
        if self.state.model is not None and self.state.model.lower_layers:
            self.state.set_lower_noise(self._noise_seed if on else None)
        self._sync_lower_noise()

    def _on_redraw_noise(self) -> None:
        self._noise_seed += 1
        if self.lower_noise_check.isChecked():
            self.state.set_lower_noise(self._noise_seed)

    def _update_status(self, *args) -> None:
        n = self.map.num_points
        proj = self.map.projection
        if not n or proj is None:
            self.status.setText("")
            return
        text = f"{n:,} points · {proj.name}"
        if self.map.filter_mask is not None and len(self.map.filter_mask) == n:
            text = f"{int(self.map.filter_mask.sum()):,} of {n:,} points in the filter · {proj.name}"
        if proj.kind == "pca" and getattr(proj, "explained_variance_ratio", None) is not None:
            text += f" ({proj.explained_variance_ratio.sum():.0%} of the variance)"
        text += " · move the mouse to decode, click to pin, drag with Rectangle/Lasso to make a group"
        self.status.setText(text)

    def changeEvent(self, ev) -> None:
        if ev.type() == QtCore.QEvent.Type.PaletteChange:
            QtCore.QTimer.singleShot(0, self.legend.rebuild)   # after the map picked its colours
        super().changeEvent(ev)

    def sizeHint(self) -> QtCore.QSize:
        return QtCore.QSize(900, 700)


def _close_jobs(jobs: MapJobs) -> None:
    try:
        jobs.shutdown(wait_ms=0)
        jobs.deleteLater()
    except RuntimeError:  # already gone (interpreter shutdown deletes objects in any order)
        pass


def _vline() -> QtWidgets.QFrame:
    line = QtWidgets.QFrame()
    line.setFrameShape(QtWidgets.QFrame.Shape.VLine)
    line.setFrameShadow(QtWidgets.QFrame.Shadow.Sunken)
    return line


class MapDocks(QtCore.QObject):
    """The map's pieces inside a :class:`~explorer.ui.main_window.MainWindow` (see :func:`install_map`)."""

    def __init__(self, window) -> None:
        super().__init__(window)
        from explorer.ui.map.decoder_view import DecoderView
        from explorer.ui.map.groups import GroupsPanel
        from explorer.ui.map.pins import PinGallery

        self.window = window
        state = window.state
        self.panel = MapPanel(state, encoder=window.encoder)
        window.set_central_panel(self.panel)
        self.decoder = DecoderView(state)
        self.pins = PinGallery(state)
        self.groups = GroupsPanel(state)
        left = QtCore.Qt.DockWidgetArea.LeftDockWidgetArea
        bottom = QtCore.Qt.DockWidgetArea.BottomDockWidgetArea
        add = window.add_panel_dock
        self.docks = {
            "decoder": add("Decoder", self.decoder, left, "map_decoder",
                           tip="The image decoded under the cursor, the hovered data point and the distance to the data"),
            "pins": add("Pins", self.pins, bottom, "map_pins",
                        tip="Points pinned on the map: names, codes, save/load, keyframes"),
            "groups": add("Groups", self.groups, bottom, "map_groups",
                          tip="Rectangle and lasso selections: their images and centroids"),
        }
        d = self.docks
        # Left column: training, then the decoder preview taking the remaining height.
        # Bottom row: the loss curves, the latent units, then pins and groups in tabs.
        training = window.docks.get("training")
        if training is not None:
            window.splitDockWidget(training, d["decoder"], QtCore.Qt.Orientation.Vertical)
            # The training form scrolls; the live preview is what the eye follows.
            window.resizeDocks([training, d["decoder"]], [420, 560], QtCore.Qt.Orientation.Vertical)
        units = window.docks.get("latent_units")
        if units is not None:
            window.splitDockWidget(units, d["pins"], QtCore.Qt.Orientation.Horizontal)
        window.tabifyDockWidget(d["pins"], d["groups"])
        d["pins"].raise_()
        self.groups.table.itemSelectionChanged.connect(lambda: d["groups"].raise_())
        state.marks.groups_changed.connect(self._on_groups_changed)

        w = window
        w.add_menu_action("Export", "Latent &Map as Image…", lambda: self.panel._export_dialog("png"),
                          name="export_map_png", tip="Save the latent map as a PNG image")
        w.add_menu_action("Export", "Latent Map as &SVG…", lambda: self.panel._export_dialog("svg"),
                          name="export_map_svg", tip="Save the latent map as an SVG vector image")
        w.add_menu_action("Export", "Map &Coordinates as CSV…", lambda: self.panel._export_dialog("csv"),
                          name="export_map_csv", tip="Save the 2D coordinates, labels and groups of every point")
        w.add_menu_action("File", "Load &Pins…", self.pins._load_dialog, name="load_pins",
                          tip="Add pins saved earlier (JSON)")
        w.add_menu_action("File", "Save P&ins…", self.pins._save_dialog, name="save_pins",
                          tip="Save the pins to a JSON file")
        w.add_menu_action("View", "&Fit Map", self.panel.view.reset_view, shortcut="Ctrl+0", name="fit_map",
                          tip="Frame all points of the latent map")
        self.backdrop_action = w.add_menu_action(
            "View", "Decoded &Backdrop", self.panel.backdrop_check.toggle, shortcut="Ctrl+B",
            name="map_backdrop", tip="Tile decoded images behind the points of the map")
        self.backdrop_action.setCheckable(True)
        self.panel.backdrop_check.toggled.connect(self.backdrop_action.setChecked)
        for kind, key in (("dims", "Ctrl+Alt+1"), ("pca", "Ctrl+Alt+2"), ("umap", "Ctrl+Alt+3")):
            w.add_menu_action("View", f"Map Projection: {KIND_NAMES[kind]}", lambda _=False, k=kind:
                              self.panel.set_projection(k), shortcut=key, name=f"map_{kind}",
                              tip=f"Show the latent map as {KIND_NAMES[kind]}")

        from explorer.ui.map.measure_docks import install_measures

        install_measures(self)

    def _on_groups_changed(self) -> None:
        if self.window.state.marks.groups:
            self.docks["groups"].raise_()


def install_map(window) -> MapDocks:
    """Make the latent map the window's central view and dock its decoder, pins and groups."""
    window.map_docks = MapDocks(window)
    return window.map_docks
