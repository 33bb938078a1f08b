"""Per-point measures on the map (no Qt): colour by, filter, search, outliers, user columns.

:class:`MeasuresState` is ``document.measures``. It holds

* the per-point measures of :mod:`vae_core.measures` (reconstruction NLL, KL, −ELBO, IWAE
  log-likelihood, posterior σ, nearest-neighbour distance, HDBSCAN cluster), computed by
  :class:`explorer.jobs.measures.MeasuresJob` (or :meth:`MeasuresState.compute` in scripts
  and tests) and handed over with :meth:`MeasuresState.set_measures`. They belong to the
  codes: new codes (a new model, new weights, another map code) drop them;
* columns of a user's CSV keyed by data index (:meth:`MeasuresState.load_csv`), kept until
  the dataset changes;
* which column colours the map (:attr:`colour_by`), a filter range on it and whether the
  points outside are dimmed or hidden. The filter's mask goes to ``document.map``
  (:meth:`~explorer.state.map.MapState.set_filter`), which the view draws and the
  rectangle and lasso selections respect;
* a search by index, label or class name (:meth:`search`).

A column key is ``"label"``, ``"split"``, a measure name (``"iwae_ll"``…) or ``"csv:NAME"``.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from psygnal import Signal

from explorer.state.lazy import LazyModule

_measures = LazyModule("vae_core.measures")

# The names and order of the measures, repeated here so that listing the choices does not
# load torch (vae_core.measures imports nothing heavy at module level, but its package does).
MEASURE_KEYS = ("recon_nll", "kl", "neg_elbo", "iwae_ll", "posterior_std", "nn_distance", "cluster")
MEASURE_LABELS = {
    "recon_nll": "Reconstruction NLL",
    "kl": "KL",
    "neg_elbo": "−ELBO",
    "iwae_ll": "IWAE log-likelihood",
    "posterior_std": "Mean posterior σ",
    "nn_distance": "Nearest-neighbour distance",
    "cluster": "Cluster (HDBSCAN)",
}
#: Ways to rank outliers: (key, column, ascending) — least likely first, or worst reconstructed.
OUTLIER_RANKINGS = {
    "iwae_ll": ("Least likely (IWAE log-likelihood)", True),
    "recon_nll": ("Largest reconstruction error", False),
}
CATEGORICAL_LIMIT = 50       # a CSV column of whole numbers with at most this many values is a category
MAX_CSV_COLUMNS = 200


class CSVError(ValueError):
    """A user CSV cannot be used; the message is one sentence to show as it is."""


@dataclass(frozen=True)
class Choice:
    """One entry of the colour-by chooser."""

    key: str
    label: str
    reason: str | None = None       # why it cannot be chosen now (None: it can)


@dataclass(frozen=True)
class Column:
    """What the map colours by: numbers (continuous) or category codes with names."""

    key: str
    label: str
    values: np.ndarray              # float64 (NaN: missing) or int64 category codes (-1: none)
    categories: tuple[str, ...] | None = None   # names of codes 0.. for a categorical column

    @property
    def categorical(self) -> bool:
        return self.categories is not None


class MeasuresState:
    """Per-point measures, user columns, colour-by, filter and search of the map."""

    measures_changed = Signal()          # measures set or dropped (``self.measures``)
    columns_changed = Signal()           # user CSV columns loaded or dropped
    colour_by_changed = Signal(str)      # the key of the column that colours the map
    filter_changed = Signal(object)      # (lo, hi) or None
    search_changed = Signal(object)      # np.ndarray of hits (data indices)
    wanted_changed = Signal(bool)        # someone asked for the measures (the job computes them)

    def __init__(self, document) -> None:
        self.document = document
        self.measures = None             # vae_core.measures.Measures | None
        self.user_columns: dict[str, np.ndarray] = {}
        self.user_categories: dict[str, tuple[str, ...]] = {}
        self.colour_by = "label"
        self.filter_range: tuple[float, float] | None = None
        self.hide_filtered = False
        self.search_text = ""
        self.search_hits = np.zeros(0, dtype=np.int64)
        self.wanted = False
        self.k = 16
        self.seed = 0
        document.codes_changed.connect(self._on_document_codes_changed)
        document.dataset_changed.connect(self._on_document_dataset_changed)
        document.model_changed.connect(self._on_document_model_changed)

    # -- the document ---------------------------------------------------------------------------
    def _on_document_codes_changed(self) -> None:
        self._drop_measures()

    def _on_document_model_changed(self, _model) -> None:
        self._drop_measures()

    def _on_document_dataset_changed(self, _data) -> None:
        self._drop_measures()
        if self.user_columns:
            self.user_columns, self.user_categories = {}, {}
            self.columns_changed.emit()
        self.search_text, self.search_hits = "", np.zeros(0, dtype=np.int64)
        if self.filter_range is not None:
            self.filter_range = None
            self.filter_changed.emit(None)
        if self.colour_by.startswith("csv:"):
            self.set_colour_by("label")

    def _drop_measures(self) -> None:
        if self.measures is None:
            return
        self.measures = None
        self.measures_changed.emit()
        if self.colour_by in MEASURE_KEYS:
            self._apply_filter()

    # -- measures ----------------------------------------------------------------------------------
    def request(self) -> None:
        """Ask for the measures: the job computes them now and again whenever the codes change."""
        if not self.wanted:
            self.wanted = True
            self.wanted_changed.emit(True)

    def withdraw(self) -> None:
        """No longer ask for the measures (the user cancelled them); :meth:`request` asks again."""
        if self.wanted:
            self.wanted = False
            self.wanted_changed.emit(False)

    @property
    def needs_compute(self) -> bool:
        doc = self.document
        return (self.wanted and self.measures is None and doc.model is not None and doc.codes is not None
                and doc.dataset is not None)

    def compute(self, *, progress=None, should_stop=None):
        """Compute the measures in the calling thread (scripts, tests) and set them."""
        doc = self.document
        if doc.model is None or doc.codes is None:
            raise ValueError("Load a model and encode the dataset first.")
        measures = compute_for(doc.model, doc.images, doc.labels, doc.codes, doc.logvar, k=self.k, seed=self.seed,
                               progress=progress, should_stop=should_stop)
        self.set_measures(measures)
        return measures

    def set_measures(self, measures) -> None:
        """Make ``measures`` (a :class:`vae_core.measures.Measures` of the current codes) current."""
        if measures is not None and len(measures) != self.document.num_points:
            raise ValueError(f"Got measures of {len(measures)} points for {self.document.num_points}.")
        self.measures = measures
        self.measures_changed.emit()
        if self.colour_by in MEASURE_KEYS:
            self._apply_filter()

    def unavailable_reason(self, key: str) -> str | None:
        """Why measure ``key`` cannot be shown for this model (None when it can)."""
        model = self.document.model
        if model is None:
            return "Load or train a model first."
        if self.measures is not None:
            return self.measures.unavailable.get(key)
        return _measures.undefined_measures(model).get(key)

    # -- columns ---------------------------------------------------------------------------------------
    def choices(self) -> list[Choice]:
        """Every column the map can be coloured by, with a reason where one cannot be chosen now."""
        doc = self.document
        out = [Choice("label", "Label", None if doc.labels is not None else "The dataset has no labels."),
               Choice("split", "Split (train / test)", None if doc.dataset is not None else "Load a dataset first.")]
        for key in MEASURE_KEYS:
            out.append(Choice(key, MEASURE_LABELS[key], self.unavailable_reason(key) if doc.model is not None
                              else "Load or train a model first."))
        out.extend(Choice("csv:" + name, f"{name} (CSV)") for name in self.user_columns)
        return out

    def column(self, key: str | None = None) -> Column | None:
        """The values of column ``key`` (default: the colour-by one); None when not available now."""
        key = self.colour_by if key is None else key
        doc = self.document
        if key == "label":
            if doc.labels is None:
                return None
            names = tuple(doc.class_names) or tuple(str(i) for i in range(int(doc.labels.max()) + 1))
            n = max(len(names), int(doc.labels.max()) + 1 if len(doc.labels) else 0)
            names = names + tuple(str(i) for i in range(len(names), n))
            return Column(key, "Label", doc.labels.astype(np.int64), names)
        if key == "split":
            if doc.dataset is None:
                return None
            n_train = len(doc.dataset.train)
            values = np.zeros(doc.num_points, dtype=np.int64)
            values[n_train:] = 1
            return Column(key, "Split", values, ("train", "test"))
        if key in MEASURE_KEYS:
            if self.measures is None or key not in self.measures:
                return None
            values = self.measures[key]
            if key == "cluster":
                return _cluster_column(values)
            return Column(key, MEASURE_LABELS[key], np.asarray(values, dtype=np.float64))
        if key.startswith("csv:") and key[4:] in self.user_columns:
            name = key[4:]
            return Column(key, name, self.user_columns[name], self.user_categories.get(name))
        return None

    def set_colour_by(self, key: str) -> None:
        """Colour the map by column ``key``; a measure not computed yet is requested."""
        valid = {c.key for c in self.choices()}
        if key not in valid:
            raise ValueError(f"There is no column {key!r} to colour by.")
        if key in MEASURE_KEYS:
            self.request()
        if key != self.colour_by:
            self.colour_by = key
            self.filter_range = None
            self.colour_by_changed.emit(key)
            self.filter_changed.emit(None)
            self._apply_filter()

    # -- filter ---------------------------------------------------------------------------------------
    def set_filter(self, lo: float | None, hi: float | None = None) -> None:
        """Keep the points whose colour-by value lies in ``[lo, hi]``; ``None`` clears the filter."""
        if lo is None or hi is None:
            rng = None
        else:
            lo, hi = float(lo), float(hi)
            if math.isnan(lo) or math.isnan(hi):
                raise ValueError("A filter range needs two numbers.")
            rng = (min(lo, hi), max(lo, hi))
        if rng != self.filter_range:
            self.filter_range = rng
            self.filter_changed.emit(rng)
            self._apply_filter()

    def set_hide_filtered(self, hide: bool) -> None:
        """Hide (True) or dim (False) the points outside the filter."""
        hide = bool(hide)
        if hide != self.hide_filtered:
            self.hide_filtered = hide
            self._apply_filter()

    def filter_mask(self) -> np.ndarray | None:
        """Points inside the filter range (missing values are outside); None without a filter."""
        col = self.column()
        if self.filter_range is None or col is None:
            return None
        lo, hi = self.filter_range
        v = col.values
        with np.errstate(invalid="ignore"):
            mask = (v >= lo) & (v <= hi)
        if col.categorical:
            mask &= v >= 0
        return mask

    def _apply_filter(self) -> None:
        self.document.map.set_filter(self.filter_mask(), hide=self.hide_filtered)

    # -- search ---------------------------------------------------------------------------------------
    def search(self, text: str) -> np.ndarray:
        """Data points matching ``text``: an index (``123`` or ``#123``), a label (``label 3``) or a class name.

        A number is always an index, also where class names are digits (MNIST): ``label 7``
        finds the class.

        A class name matches case-insensitively, whole names first, then names that start
        with the text. The hits are kept in :attr:`search_hits` (``search_changed``).
        """
        doc = self.document
        text = str(text).strip()
        n = doc.num_points
        hits = np.zeros(0, dtype=np.int64)
        low = text.lower().lstrip("#")
        if text and low.isdigit():   # a number is an index; "label 7" finds MNIST's class "7"
            i = int(low)
            hits = np.array([i], dtype=np.int64) if 0 <= i < n else hits
        elif text and doc.labels is not None:
            label = None
            for prefix in ("label ", "label:", "class ", "class:"):
                if low.startswith(prefix) and low[len(prefix):].strip().lstrip("-").isdigit():
                    label = int(low[len(prefix):].strip())
            if label is None:
                names = [name.lower() for name in doc.class_names]
                exact = [i for i, name in enumerate(names) if name == low]
                start = [i for i, name in enumerate(names) if name.startswith(low)]
                labels = exact or start
                hits = np.flatnonzero(np.isin(doc.labels, labels)) if labels else hits
            else:
                hits = np.flatnonzero(doc.labels == label)
        self.search_text, self.search_hits = text, hits.astype(np.int64)
        self.search_changed.emit(self.search_hits)
        return self.search_hits

    # -- outliers ---------------------------------------------------------------------------------------
    def outliers(self, by: str = "iwae_ll", n: int = 50) -> np.ndarray:
        """The ``n`` data points ranked first by ``by`` (see :data:`OUTLIER_RANKINGS`); empty before the measures."""
        if by not in OUTLIER_RANKINGS:
            raise ValueError(f"Outliers are ranked by {' or '.join(OUTLIER_RANKINGS)}, not {by!r}.")
        if self.measures is None or by not in self.measures:
            return np.zeros(0, dtype=np.int64)
        values = np.asarray(self.measures[by], dtype=np.float64)
        key = values if OUTLIER_RANKINGS[by][1] else -values
        key = np.where(np.isnan(key), np.inf, key)
        return np.argsort(key, kind="stable")[: max(0, int(n))].astype(np.int64)

    # -- tables -------------------------------------------------------------------------------------------
    def table(self, indices) -> tuple[list[str], list[list]]:
        """Header and rows for data points ``indices``: index, label, class, every measure, every CSV column."""
        doc = self.document
        idx = np.asarray(indices, dtype=np.int64)
        header = ["index", "label", "class"]
        cols: list[tuple[str, np.ndarray, tuple | None]] = []
        if self.measures is not None:
            for key in MEASURE_KEYS:
                if key in self.measures:
                    header.append(key)
                    cols.append((key, self.measures[key], None))
        for name, values in self.user_columns.items():
            header.append(name)
            cols.append((name, values, self.user_categories.get(name)))
        labels = doc.labels
        names = tuple(doc.class_names)
        rows = []
        for i in idx.tolist():
            lab = int(labels[i]) if labels is not None else ""
            row = [i, lab, names[lab] if labels is not None and 0 <= lab < len(names) else ""]
            for _, values, categories in cols:
                v = values[i]
                if categories is not None:
                    row.append(categories[v] if v >= 0 else "")
                elif np.issubdtype(np.asarray(values).dtype, np.integer):
                    row.append(int(v))
                else:
                    row.append(float(v))
            rows.append(row)
        return header, rows

    # -- user columns -------------------------------------------------------------------------------
    def load_csv(self, path) -> list[str]:
        """Add the columns of a CSV keyed by data index; returns their names.

        The file needs a header row with an ``index`` column (whole numbers from 0 to N−1,
        each at most once). Columns of numbers become continuous columns (empty cells are
        missing), others categories. Raises :class:`CSVError` with one sentence otherwise.
        """
        columns, categories = read_index_csv(path, self.document.num_points)
        self.user_columns.update(columns)
        self.user_categories.update(categories)
        for name in columns:
            if name not in categories:
                self.user_categories.pop(name, None)
        self.columns_changed.emit()
        return list(columns)


def compute_for(model, images, labels, codes, logvar, *, k=16, seed=0, progress=None, should_stop=None):
    """:func:`vae_core.measures.compute_measures` with the document's codes (any thread)."""
    conditional = getattr(model, "conditional", False)
    return _measures.compute_measures(model, images, labels if conditional else None, codes=codes, logvar=logvar,
                                      k=k, seed=seed, progress=progress, should_stop=should_stop)


def _cluster_column(values) -> Column:
    values = np.asarray(values, dtype=np.int64)
    top = int(values.max()) + 1 if len(values) else 0
    names = tuple(f"cluster {i}" for i in range(top))
    # Noise (-1) is its own category, last, so every point has a colour and a legend entry.
    codes = np.where(values < 0, top, values)
    return Column("cluster", MEASURE_LABELS["cluster"], codes, names + ("noise",))


def read_index_csv(path, n: int) -> tuple[dict[str, np.ndarray], dict[str, tuple[str, ...]]]:
    """Read a CSV keyed by an ``index`` column into per-point columns (see :meth:`MeasuresState.load_csv`)."""
    path = Path(path)
    if n <= 0:
        raise CSVError("Load a dataset before adding columns from a CSV file.")
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            rows = list(csv.reader(f))
    except UnicodeDecodeError:
        raise CSVError(f"{path.name} is not a text CSV file (it is not UTF-8).") from None
    except csv.Error as exc:
        raise CSVError(f"{path.name} is not a valid CSV file ({exc}).") from None
    except OSError as exc:
        raise CSVError(f"{path.name} could not be read: {exc.strerror or exc}.") from None
    rows = [r for r in rows if any(cell.strip() for cell in r)]
    if not rows:
        raise CSVError(f"{path.name} is empty: it needs a header row with an index column and rows of values.")
    header = [h.strip() for h in rows[0]]
    lowered = [h.lower() for h in header]
    if "index" not in lowered:
        raise CSVError(f"{path.name} has no 'index' column: its header row must name one column 'index' "
                       "(the data point each row belongs to).")
    at = lowered.index("index")
    others = [(j, h) for j, h in enumerate(header) if j != at]
    if not others:
        raise CSVError(f"{path.name} has only an index column: add at least one column of values.")
    if len(others) > MAX_CSV_COLUMNS:
        raise CSVError(f"{path.name} has {len(others)} columns; at most {MAX_CSV_COLUMNS} can be added.")
    names = [h or f"column {j + 1}" for j, h in others]
    if len(set(names)) != len(names):
        raise CSVError(f"{path.name} names a column twice: every column needs its own name.")
    body = rows[1:]
    if not body:
        raise CSVError(f"{path.name} has a header but no rows.")
    index = np.empty(len(body), dtype=np.int64)
    for r, row in enumerate(body):
        cell = row[at].strip() if at < len(row) else ""
        try:
            value = float(cell)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and value == int(value) and 0 <= value < n):
            raise CSVError(f"Row {r + 2} of {path.name} has index {cell!r}: indices must be whole numbers "
                           f"from 0 to {n - 1:,}.")
        index[r] = int(value)
    uniq, counts = np.unique(index, return_counts=True)
    if (counts > 1).any():
        raise CSVError(f"Index {int(uniq[counts > 1][0])} appears more than once in {path.name}: "
                       "each data point may have one row.")
    columns: dict[str, np.ndarray] = {}
    categories: dict[str, tuple[str, ...]] = {}
    for (j, _), name in zip(others, names):
        cells = [(row[j].strip() if j < len(row) else "") for row in body]
        numbers = np.full(len(cells), np.nan)
        numeric = True
        for r, cell in enumerate(cells):
            if not cell:
                continue
            try:
                numbers[r] = float(cell)
            except ValueError:
                numeric = False
                break
        finite = numbers[np.isfinite(numbers)]
        whole = numeric and len(finite) and np.all(finite == np.round(finite))
        if numeric and not (whole and len(np.unique(finite)) <= CATEGORICAL_LIMIT and len(np.unique(finite)) < len(finite)):
            out = np.full(n, np.nan)
            out[index] = numbers
            columns[name] = out
            continue
        # A category: text, or few distinct whole numbers (class ids, cluster ids).
        present = [c for c in cells if c]
        if numeric:
            order = sorted(set(present), key=float)
        else:
            order = sorted(set(present))
        lookup = {c: i for i, c in enumerate(order)}
        out = np.full(n, -1, dtype=np.int64)
        out[index] = [lookup.get(c, -1) for c in cells]
        columns[name] = out
        categories[name] = tuple(order)
    return columns, categories
