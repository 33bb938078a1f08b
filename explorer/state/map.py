"""State of the latent map: projection, 2D layout, cursor, nearest codes, drawn paths (no Qt).

The map shows every code of ``document.codes`` (the encoded ``dataset.all()``) as a point
``xy[i]`` of a 2D projection (:mod:`vae_core.projection`). Any map position goes back to a
latent code through ``projection.inverse``: that is what the cursor decodes, what a click
pins, and what the decoded backdrop tiles.

Everything here is plain NumPy and psygnal so tests and other panels can drive the map
without a window. The slow part (fitting a projection) is a pure function
(:meth:`MapState.compute_layout`) that :mod:`explorer.jobs.layouts` runs in a thread; its
results come back through :meth:`MapState.set_projection`. The codes come from the
document (``document.codes``), set there by whoever encoded the dataset.

Pins, groups and the selection are the document's :class:`explorer.state.marks.Marks`,
shared with the studio; the map draws them and edits them (a click pins, a lasso makes a
group). The studio can also draw a path of codes on the map (:meth:`MapState.set_path`) and
listen to :attr:`MapState.point_picked` to take keyframes from clicks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from psygnal import Signal

from explorer.state.marks import Marks, Pin
from explorer.state.own_image import OwnImage
from explorer.state.posterior import HolesOverlay, PosteriorCloud

KINDS = ("dims", "pca", "umap")
KIND_NAMES = {"dims": "Latent dims", "pca": "PCA", "umap": "UMAP"}


@dataclass(frozen=True)
class PickedPoint:
    """What a click on the map picked (see :attr:`MapState.point_picked`)."""

    z: np.ndarray                 # latent code (inverse projection of xy, or the data code)
    xy: tuple[float, float]       # map position
    index: int | None             # data point under the cursor, if any
    label: int | None             # its label, if any


@dataclass(frozen=True)
class Nearest:
    """Nearest data codes of a query code (latent-space Euclidean distance)."""

    z: np.ndarray
    indices: np.ndarray           # k indices into document.codes, nearest first
    distances: np.ndarray         # k distances

    @property
    def distance(self) -> float:
        return float(self.distances[0]) if len(self.distances) else math.nan


class MapState:
    """The map's document: what is projected, where the points are, what the user marked.

    Signals are emitted from the GUI thread only; workers hand their results to the
    setters.
    """

    projection_changed = Signal(object)    # the projection object (vae_core.projection)
    layout_changed = Signal()              # self.xy changed (N×2)
    cursor_changed = Signal(object)        # latent code under the cursor (d,) or None
    hovered_index_changed = Signal(object) # data index under the cursor or None
    settings_changed = Signal()            # kind / dims / umap_params edited
    nearest_changed = Signal(object)       # Nearest for the cursor, or None
    highlight_changed = Signal(object)     # np.ndarray of highlighted data indices
    hidden_labels_changed = Signal(object) # frozenset of labels not drawn
    path_changed = Signal()                # path_codes / path_xy set or cleared
    path_frame_changed = Signal(int)       # current frame marker on the path (-1: none)
    point_picked = Signal(object)          # PickedPoint, on every click on the map
    filter_changed = Signal(object)        # mask of points inside the measures filter, or None

    def __init__(self, document, marks: Marks | None = None) -> None:
        self.document = document
        self.marks = marks if marks is not None else Marks(document)
        self.projection = None
        self.xy: np.ndarray | None = None
        self.cursor_z: np.ndarray | None = None
        self.cursor_xy: tuple[float, float] | None = None
        self.hovered_index: int | None = None
        # projection settings (what the switcher shows)
        self.kind = "pca"
        self.dims = (0, 1)
        # UMAP is fitted on a subset of up to max_fit codes (exact neighbours, no pynndescent
        # compile); the other codes are placed from their nearest fitted neighbours.
        self.umap_params = {"n_neighbors": 15, "min_dist": 0.1, "max_fit": 20_000}
        # cursor neighbourhood and highlights
        self.nearest: Nearest | None = None
        self.highlight = np.zeros(0, dtype=np.int64)
        self.hidden_labels: frozenset[int] = frozenset()
        # Points inside the filter of document.measures (None: no filter); outside ones are
        # dimmed, or hidden with hide_filtered, and never selected.
        self.filter_mask: np.ndarray | None = None
        self.hide_filtered = False
        # a path of codes drawn by the studio
        self.path_codes: np.ndarray | None = None
        self.path_xy: np.ndarray | None = None
        self.path_frame = -1
        self._neighbor_index = None
        self._data_spacing: float | None = None
        self._restored = None
        document.codes_changed.connect(self._on_document_codes_changed)
        document.dataset_changed.connect(self._on_document_dataset_changed)
        # What only a VAE map shows: the hovered point's q(z|x), the prior's holes, the user's image.
        self.posterior = PosteriorCloud(self)
        self.holes = HolesOverlay(self)
        self.own_image = OwnImage(self)

    # -- data helpers ------------------------------------------------------------------------
    @property
    def codes(self) -> np.ndarray | None:
        return self.document.codes

    @property
    def labels(self) -> np.ndarray | None:
        return self.document.labels

    @property
    def num_points(self) -> int:
        return 0 if self.xy is None else len(self.xy)

    def _on_document_codes_changed(self) -> None:
        self._neighbor_index = None
        self._data_spacing = None

    def _on_document_dataset_changed(self, _data) -> None:
        self.clear()

    # -- the marks, as the map view reads them ---------------------------------------------------
    # The marks are ``document.marks``; these forward to them for the map view, which reads
    # everything it draws through ``state.map``.
    @property
    def pins(self) -> list[Pin]:
        return self.marks.pins

    @property
    def pins_changed(self):
        return self.marks.pins_changed

    @property
    def selection(self) -> np.ndarray:
        return self.marks.selection

    @property
    def selection_changed(self):
        return self.marks.selection_changed

    def add_pin(self, z, **kwargs) -> Pin:
        return self.marks.add_pin(z, **kwargs)

    def add_group(self, indices, name: str | None = None, *, select: bool = True) -> str:
        return self.marks.add_group(indices, name, select=select)

    def select_group(self, name: str | None) -> None:
        self.marks.select_group(name)

    # -- projection settings and layouts -------------------------------------------------------
    def default_kind(self) -> str:
        """``dims`` for a 2D latent space (the map *is* the space), else ``pca``."""
        codes = self.codes
        return "dims" if codes is not None and codes.shape[1] == 2 else "pca"

    def set_kind(self, kind: str) -> None:
        if kind not in KINDS:
            raise ValueError(f"Unknown projection {kind!r}: use one of {', '.join(KINDS)}.")
        if kind != self.kind:
            self.kind = kind
            self.settings_changed.emit()

    def set_dims(self, i: int, j: int) -> None:
        i, j = int(i), int(j)
        if i == j or min(i, j) < 0:
            raise ValueError("Pick two different latent dimensions.")
        if (i, j) != self.dims:
            self.dims = (i, j)
            self.settings_changed.emit()

    def set_umap_params(self, **params) -> None:
        unknown = set(params) - {"n_neighbors", "min_dist", "n_epochs", "seed", "max_fit", "metric",
                                  "intermediate_interval"}
        if unknown:
            raise ValueError(f"Unknown UMAP settings: {', '.join(sorted(unknown))}.")
        merged = {**self.umap_params, **params}
        if merged != self.umap_params:
            self.umap_params = merged
            self.settings_changed.emit()

    def projection_params(self, kind: str | None = None) -> dict:
        kind = kind or self.kind
        if kind == "dims":
            return {"i": self.dims[0], "j": self.dims[1]}
        if kind == "umap":
            return dict(self.umap_params)
        return {}

    @staticmethod
    def compute_layout(codes, kind: str, params: dict | None = None, *, previous=None, previous_xy=None,
                       align: bool = False, keep_umap_layout: bool = False, progress=None, should_stop=None,
                       fitter=None, intermediate=None):
        """Fit a projection to ``codes`` and lay them out; pure, safe to call in a worker.

        Parameters
        ----------
        codes
            ``N×d`` codes.
        kind, params
            Projection kind (``dims``/``pca``/``umap``) and its constructor arguments.
        previous, previous_xy
            The projection and layout shown so far (same points, same order).
        align
            Rotate/scale/translate the new layout onto ``previous_xy`` (Procrustes) so points
            do not jump; ignored for ``dims`` (its axes are latent dimensions).
        keep_umap_layout
            With a fitted UMAP ``previous`` of the same size and settings, keep its 2D layout
            and only re-attach the new codes (instant; used after each training epoch). The
            inverse then decodes with the current codes.
        progress, should_stop
            Passed to ``Projection.fit`` (``should_stop`` raises ``Cancelled``).
        fitter
            ``fitter(projection, codes, progress=, should_stop=, intermediate=)`` returning the
            fitted projection, instead of ``projection.fit`` (e.g. :mod:`explorer.jobs.umap_fit`
            fits UMAP in another process).
        intermediate
            ``intermediate(projection, xy)``, called (in this thread) with each layout of a
            UMAP fit while it is being optimised: a fitted provisional projection (aligned like
            the result, its inverse built) and its ``N×2`` float32 positions, so a view can show
            the points gliding into place. Not called for dims, PCA or a kept layout.

        Returns
        -------
        projection, xy : (vae_core.projection.Projection, np.ndarray)
            The fitted projection and ``N×2`` float32 positions.
        """
        from vae_core.projection import Projection, make_projection

        codes = np.ascontiguousarray(codes, dtype=np.float32)
        params = dict(params or {})
        if (keep_umap_layout and kind == "umap" and previous is not None and previous.kind == "umap"
                and previous.fitted and previous.embedding is not None
                and len(previous.embedding) == len(codes) and previous.latent_dim == codes.shape[1]):
            meta, arrays = previous.state()
            arrays = dict(arrays, codes=codes)
            proj = Projection.from_state(meta, arrays)
        else:
            proj = make_projection(kind, **params)
            align = (align and kind != "dims" and previous_xy is not None and len(previous_xy) == len(codes)
                     and np.isfinite(previous_xy).all())
            watch, template = None, proj
            if intermediate is not None and kind == "umap":
                def watch(raw):
                    shown = template.with_layout(codes, raw)
                    if align:
                        shown.align_with(previous_xy, codes)
                    _ = shown.knn_inverse   # built here, not on the GUI thread's first hover
                    intermediate(shown, np.ascontiguousarray(shown.transform(codes), dtype=np.float32))
            if fitter is not None:
                proj = fitter(proj, codes, progress=progress, should_stop=should_stop, intermediate=watch)
            else:
                proj.fit(codes, progress=progress, should_stop=should_stop, intermediate=watch)
            if align:
                proj.align_with(previous_xy, codes)
        xy = np.ascontiguousarray(proj.transform(codes), dtype=np.float32)
        if proj.kind == "umap":
            _ = proj.knn_inverse   # build the k-d tree here (a worker), not on the first hover
        return proj, xy

    def fit(self, kind: str | None = None, *, align: bool = False, progress=None, should_stop=None):
        """Fit synchronously with the current settings and show the result (tests, scripts)."""
        if self.codes is None:
            raise ValueError("Encode the dataset first: there are no codes to project.")
        kind = kind or self.kind
        self.set_kind(kind)
        proj, xy = self.compute_layout(self.codes, kind, self.projection_params(kind), previous=self.projection,
                                       previous_xy=self.xy, align=align, progress=progress,
                                       should_stop=should_stop)
        self.set_projection(proj, xy)
        return proj

    def set_projection(self, projection, xy=None) -> None:
        """Show ``projection``; ``xy`` defaults to ``projection.transform(document.codes)``."""
        if xy is None and projection is not None and self.codes is not None:
            xy = projection.transform(self.codes)
        self.projection = projection
        if projection is not None and projection.kind in KINDS and projection.kind != self.kind:
            self.kind = projection.kind
            self.settings_changed.emit()
        if projection is not None and projection.kind == "dims" and (projection.i, projection.j) != self.dims:
            self.dims = (projection.i, projection.j)
            self.settings_changed.emit()
        self.projection_changed.emit(projection)
        self.set_layout(xy)

    def restore_projection(self, projection) -> None:
        """Use ``projection`` (saved with a checkpoint) for the next codes instead of fitting anew."""
        self._restored = projection
        if projection.kind in KINDS and projection.kind != self.kind:
            self.kind = projection.kind
            self.settings_changed.emit()

    def take_restored(self, codes):
        """The projection to restore for ``codes``, once; None if there is none or it does not fit."""
        projection, self._restored = self._restored, None
        if projection is None or projection.latent_dim != codes.shape[1]:
            return None
        return projection

    def set_layout(self, xy) -> None:
        self.xy = None if xy is None else np.ascontiguousarray(xy, dtype=np.float32)
        selection = self.marks.selection
        if self.xy is not None and selection.size and selection.max() >= len(self.xy):
            self.marks.set_selection([])
        self._update_path_xy()
        self.layout_changed.emit()

    def clear(self) -> None:
        """Forget the layout and highlights (a new dataset; the marks clear themselves)."""
        self._restored = None
        self.projection = None
        self.xy = None
        self.highlight = np.zeros(0, dtype=np.int64)
        self.nearest = None
        if self.filter_mask is not None:
            self.filter_mask = None
            self.filter_changed.emit(None)
        self.projection_changed.emit(None)
        self.layout_changed.emit()
        self.highlight_changed.emit(self.highlight)

    # -- map <-> latent --------------------------------------------------------------------------
    @property
    def ready(self) -> bool:
        return self.projection is not None and getattr(self.projection, "fitted", False)

    def inverse(self, points) -> np.ndarray:
        """Map position(s) → latent code(s) through the projection's inverse."""
        if not self.ready:
            raise ValueError("The map has no projection yet.")
        return self.projection.inverse(points)

    def forward(self, codes) -> np.ndarray:
        """Latent code(s) → map position(s), float32.

        Exact for dims and PCA; for UMAP a blend of the 2D positions of the nearest data
        codes (fast and deterministic, good for drawing paths).
        """
        if not self.ready:
            raise ValueError("The map has no projection yet.")
        return np.asarray(self.projection.transform(codes), dtype=np.float32)

    def pin_xy(self, pin: Pin) -> tuple[float, float] | None:
        """Where ``pin`` sits on the current map (its data point's position when it has one)."""
        if not self.ready:
            return None
        if pin.index is not None and self.xy is not None and 0 <= pin.index < len(self.xy):
            codes = self.codes
            if codes is not None and np.allclose(codes[pin.index], pin.z, atol=1e-6):
                return tuple(float(v) for v in self.xy[pin.index])
        try:
            x, y = self.forward(pin.z)
        except ValueError:
            return None
        return float(x), float(y)

    # -- cursor --------------------------------------------------------------------------------------
    def set_cursor(self, xy) -> np.ndarray | None:
        """Move the cursor to map position ``xy`` (or None: it left the map); returns its code."""
        if xy is None or not self.ready:
            if self.cursor_xy is not None or self.cursor_z is not None:
                self.cursor_xy, self.cursor_z = None, None
                self.cursor_changed.emit(None)
            return None
        x, y = float(xy[0]), float(xy[1])
        z = self.projection.inverse(np.array([x, y]))
        self.cursor_xy, self.cursor_z = (x, y), z
        self.cursor_changed.emit(z)
        return z

    def set_hovered_index(self, index) -> None:
        index = None if index is None else int(index)
        if index != self.hovered_index:
            self.hovered_index = index
            self.hovered_index_changed.emit(index)

    def nearest_index(self, xy, radius: float) -> int | None:
        """The data point closest to map position ``xy`` within ``radius`` (map units)."""
        if self.xy is None or not len(self.xy):
            return None
        visible = self.visible_mask()
        d2 = (self.xy[:, 0] - xy[0]) ** 2 + (self.xy[:, 1] - xy[1]) ** 2
        if visible is not None:
            d2 = np.where(visible, d2, np.inf)
        i = int(np.argmin(d2))
        return i if d2[i] <= radius * radius else None

    # -- latent neighbours ------------------------------------------------------------------------
    @property
    def neighbor_index(self):
        """A :class:`vae_core.latent.NeighborIndex` over the codes (built on first use)."""
        from vae_core.latent import NeighborIndex

        codes = self.codes
        if codes is None:
            return None
        if self._neighbor_index is None or self._neighbor_index.codes.shape != codes.shape:
            self._neighbor_index = NeighborIndex(codes)
        return self._neighbor_index

    def query_nearest(self, z, k: int = 1) -> Nearest | None:
        """The ``k`` data codes nearest to ``z`` (pure; may run in a worker thread)."""
        index = self.neighbor_index
        if index is None or z is None or not len(index):
            return None
        z = np.asarray(z, dtype=np.float32).reshape(-1)
        idx, dist = index.query(z, k=max(1, int(k)))
        return Nearest(z=z, indices=np.asarray(idx, dtype=np.int64), distances=np.asarray(dist, dtype=np.float32))

    @property
    def data_spacing(self) -> float | None:
        """Median distance from a data code to its nearest other code (sampled)."""
        if self._data_spacing is None:
            index = self.neighbor_index
            if index is None or len(index) < 2:
                return None
            n = len(index)
            # ~20 M distances at most: 300 samples for MNIST, fewer for a million codes.
            m = int(min(n, 300, max(32, 20_000_000 // n)))
            sample = index.codes[np.linspace(0, n - 1, m).astype(np.int64)]
            _, dist = index.query(sample, k=2)
            self._data_spacing = float(np.median(dist[:, 1])) or 1e-6
        return self._data_spacing

    def known_data_spacing(self) -> float | None:
        """:attr:`data_spacing` if it was computed already (never computes it)."""
        index = self._neighbor_index
        if index is None or self.codes is None or index.codes.shape != self.codes.shape:
            return None
        return self._data_spacing

    def set_nearest(self, nearest: Nearest | None) -> None:
        """Store the cursor's nearest data codes (computed by a worker, see query_nearest)."""
        self.nearest = nearest
        self.nearest_changed.emit(nearest)

    def set_highlight(self, indices) -> None:
        """Highlight data points on the map (e.g. neighbours of a pin); empty clears."""
        self.highlight = np.unique(np.asarray(indices if indices is not None else [], dtype=np.int64))
        self.highlight_changed.emit(self.highlight)

    # -- classes shown -------------------------------------------------------------------------------
    def set_label_visible(self, label: int, visible: bool) -> None:
        hidden = set(self.hidden_labels)
        hidden.discard(int(label)) if visible else hidden.add(int(label))
        self.set_hidden_labels(hidden)

    def set_hidden_labels(self, labels) -> None:
        labels = frozenset(int(v) for v in labels)
        if labels != self.hidden_labels:
            self.hidden_labels = labels
            self.hidden_labels_changed.emit(labels)

    def visible_mask(self) -> np.ndarray | None:
        """Boolean mask of points drawn: class shown, and inside the filter when it hides (None: all)."""
        labels = self.labels
        mask = None
        if self.hidden_labels and labels is not None:
            mask = ~np.isin(labels, np.fromiter(self.hidden_labels, dtype=np.int64))
        if self.hide_filtered and self.filter_mask is not None:
            mask = self.filter_mask.copy() if mask is None else mask & self.filter_mask
        return mask

    def selectable_mask(self) -> np.ndarray | None:
        """Points a rectangle or lasso may select: drawn and inside the filter (None: all)."""
        mask = self.visible_mask()
        if self.filter_mask is not None:
            mask = self.filter_mask.copy() if mask is None else mask & self.filter_mask
        return mask

    def set_filter(self, mask, *, hide: bool = False) -> None:
        """Points inside the measures filter (``N`` booleans, None: no filter); ``hide`` hides the others."""
        mask = None if mask is None else np.asarray(mask, dtype=bool)
        if mask is not None and len(mask) != self.document.num_points:
            raise ValueError(f"A filter of {len(mask)} points for {self.document.num_points}.")
        same = (mask is None and self.filter_mask is None) or (
            mask is not None and self.filter_mask is not None and np.array_equal(mask, self.filter_mask))
        if same and bool(hide) == self.hide_filtered:
            return
        self.filter_mask, self.hide_filtered = mask, bool(hide)
        self.filter_changed.emit(mask)

    # -- clicks ----------------------------------------------------------------------------------------
    def pin_cursor(self, *, name: str | None = None) -> Pin | None:
        """Pin the code under the cursor (the hovered data point's own code when on one)."""
        picked = self.pick(self.cursor_xy, index=self.hovered_index) if self.cursor_xy is not None else None
        if picked is None:
            return None
        return self.marks.add_pin(picked.z, name=name, index=picked.index, label=picked.label)

    def pick(self, xy, index: int | None = None) -> PickedPoint | None:
        """Resolve a click at ``xy`` (on data point ``index``, if any) and emit point_picked."""
        if not self.ready or xy is None:
            return None
        codes, labels = self.codes, self.labels
        if index is not None and codes is not None and 0 <= index < len(codes):
            z = codes[index].copy()
        else:
            index = None
            z = self.projection.inverse(np.array([float(xy[0]), float(xy[1])]))
        label = int(labels[index]) if index is not None and labels is not None else None
        picked = PickedPoint(z=np.asarray(z, dtype=np.float32), xy=(float(xy[0]), float(xy[1])), index=index,
                             label=label)
        self.point_picked.emit(picked)
        return picked

    # -- selecting on the map ----------------------------------------------------------------------
    def select_rect(self, x0, y0, x1, y1) -> np.ndarray:
        """Indices of the shown points inside the rectangle (map units)."""
        if self.xy is None:
            return np.zeros(0, dtype=np.int64)
        xa, xb = sorted((float(x0), float(x1)))
        ya, yb = sorted((float(y0), float(y1)))
        x, y = self.xy[:, 0], self.xy[:, 1]
        mask = (x >= xa) & (x <= xb) & (y >= ya) & (y <= yb)
        visible = self.selectable_mask()
        if visible is not None:
            mask &= visible
        return np.flatnonzero(mask)

    def select_polygon(self, polygon) -> np.ndarray:
        """Indices of the shown points inside a closed polygon (``M×2`` map coordinates)."""
        if self.xy is None:
            return np.zeros(0, dtype=np.int64)
        inside = points_in_polygon(self.xy, polygon)
        visible = self.selectable_mask()
        if visible is not None:
            inside &= visible
        return np.flatnonzero(inside)

    # -- a path of codes (studio) ----------------------------------------------------------------
    def set_path(self, codes) -> None:
        """Draw a path through latent ``codes`` (``T×d``) on the map; None clears it."""
        if codes is None or len(codes) == 0:
            self.path_codes = self.path_xy = None
            self.path_frame = -1
        else:
            self.path_codes = np.atleast_2d(np.asarray(codes, dtype=np.float32)).copy()
            if self.path_frame >= len(self.path_codes):
                self.path_frame = -1
        self._update_path_xy(emit=False)
        self.path_changed.emit()

    def set_path_frame(self, frame: int) -> None:
        """Mark frame ``frame`` of the path (-1 hides the marker)."""
        frame = int(frame)
        if self.path_codes is None or not (0 <= frame < len(self.path_codes)):
            frame = -1
        if frame != self.path_frame:
            self.path_frame = frame
            self.path_frame_changed.emit(frame)

    def _update_path_xy(self, emit: bool = True) -> None:
        if self.path_codes is None or not self.ready:
            self.path_xy = None
        else:
            try:
                self.path_xy = self.forward(self.path_codes)
            except ValueError:  # a path from another model (different latent size)
                self.path_xy = None
        if emit and self.path_codes is not None:
            self.path_changed.emit()

    # -- export --------------------------------------------------------------------------------------
    def export_csv(self, path) -> Path:
        """Write ``index,x,y,label,class,group`` rows for every point of the map."""
        if self.xy is None:
            raise ValueError("There is no map to export yet.")
        path = Path(path)
        labels = self.labels
        names = tuple(self.document.class_names or ())
        member = np.full(len(self.xy), "", dtype=object)
        for name, idx in self.marks.groups.items():
            idx = idx[idx < len(member)]
            member[idx] = np.where(member[idx] == "", name, member[idx] + ";" + name)
        with open(path, "w", encoding="utf-8", newline="") as f:
            import csv

            writer = csv.writer(f)
            writer.writerow(["index", "x", "y", "label", "class", "group"])
            for i, (x, y) in enumerate(self.xy.tolist()):
                lab = int(labels[i]) if labels is not None else ""
                cls = names[lab] if labels is not None and 0 <= lab < len(names) else ""
                writer.writerow([i, f"{x:.6g}", f"{y:.6g}", lab, cls, member[i]])
        return path


def points_in_polygon(points, polygon) -> np.ndarray:
    """Boolean mask of ``N×2`` points inside a closed ``M×2`` polygon (even-odd rule).

    Vectorised ray casting over the polygon's edges, with a bounding-box pre-filter so a
    small lasso over a million points stays fast.
    """
    pts = np.asarray(points, dtype=np.float64)
    poly = np.asarray(polygon, dtype=np.float64)
    inside = np.zeros(len(pts), dtype=bool)
    if len(poly) < 3 or not len(pts):
        return inside
    lo, hi = poly.min(0), poly.max(0)
    cand = np.flatnonzero((pts[:, 0] >= lo[0]) & (pts[:, 0] <= hi[0]) & (pts[:, 1] >= lo[1]) & (pts[:, 1] <= hi[1]))
    if not len(cand):
        return inside
    x, y = pts[cand, 0], pts[cand, 1]
    result = np.zeros(len(cand), dtype=bool)
    x0, y0 = poly[:, 0], poly[:, 1]
    x1, y1 = np.roll(x0, -1), np.roll(y0, -1)
    for xa, ya, xb, yb in zip(x0, y0, x1, y1):
        if ya == yb:
            continue
        crosses = (ya > y) != (yb > y)
        xcross = xa + (y - ya) * (xb - xa) / (yb - ya)
        result ^= crosses & (x < xcross)
    inside[cand] = result
    return inside
