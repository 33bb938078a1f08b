"""A folder of runs as a table (no Qt): a sweep's summary or any folder of checkpoints.

Two layouts are read:

* a **sweep folder** (``python -m vae_core sweep --out OUT``): ``OUT/summary.json`` is a
  list of one dict per run (``name``, ``status``, the run's settings such as ``model``,
  ``beta``, ``latent_dim``, ``seed``, and its metrics such as ``neg_elbo``, ``recon``,
  ``kl``, ``active_units``, ``train_seconds``); each run's checkpoint is
  ``OUT/runs/<name>/``. A checkpoint under ``runs/`` that the summary does not list yet
  (a sweep still running, or interrupted) gets a row built from the checkpoint itself.
* **any folder of checkpoints** (folders with ``config.json`` or ``.safetensors`` files,
  directly inside it or inside its ``runs/``): one row per checkpoint, from its
  ``config.json`` (model, dataset, latent size, training settings) and the last entry of
  its training history (the test-set loss terms of the last epoch), read without loading
  any weights.

:func:`read_runs` is pure (a worker may call it); :class:`RunsState` holds the open table
and the plot choices for the Runs panel. Which columns are metrics and which are
settings decides how rate–distortion curves are traced (:func:`curves`): runs that differ
only in the curve's parameter (β by default) lie on one curve.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from psygnal import Signal

SUMMARY_FILE = "summary.json"
SWEEP_FILE = "sweep.json"
RUNS_DIR = "runs"

#: Columns that describe a run's bookkeeping, not its settings or results (``checkpoint`` is
#: the run's folder relative to the sweep folder; ``error`` says why a run failed).
BOOKKEEPING = ("name", "status", "error", "checkpoint")
#: Settings of the machine a run trained on, not of the model: they never split a curve.
MACHINE = ("data_root", "device", "threads")
#: Metrics a run may report (anything starting with ``test_``/``train_`` counts too).
METRICS = ("neg_elbo", "recon", "kl", "active_units", "iwae_nll", "iwae_k", "train_seconds", "epochs_trained",
           "mig", "sap", "dci_disentanglement", "dci_completeness", "dci_informativeness", "factorvae_score",
           "betavae_score", "mse", "psnr", "ssim", "fid", "precision", "recall", "perplexity", "codebook_usage")
#: Preferred order of the settings columns; others follow alphabetically.
SETTINGS_ORDER = ("model", "dataset", "objective", "beta", "latent_dim", "hidden", "epochs", "batch_size", "lr",
                  "seed")
#: Rate (x) and distortion (y) of the rate–distortion plot: nats per image on the test set.
RATE, DISTORTION = "kl", "recon"


class RunsFolderError(ValueError):
    """A folder that holds no runs, or a summary that cannot be read (one sentence)."""


@dataclass(frozen=True)
class Run:
    """One row: the run's values by column, and the checkpoint that opens it (if found)."""

    name: str
    values: dict
    path: Path | None = None

    def value(self, column: str):
        return self.values.get(column)

    def number(self, column: str) -> float:
        """The column's value as a float; NaN when missing or not a number."""
        value = self.values.get(column)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return math.nan
        return float(value)


@dataclass(frozen=True)
class RunTable:
    """Every run of a folder, with the columns in display order."""

    folder: Path
    source: str                       # "summary" (a sweep's summary.json) or "checkpoints"
    runs: tuple[Run, ...]
    columns: tuple[str, ...]
    notes: tuple[str, ...] = field(default=())   # checkpoints that could not be read

    def __len__(self) -> int:
        return len(self.runs)

    def is_numeric(self, column: str) -> bool:
        """Whether every value present in ``column`` is a number (and at least one is)."""
        values = [r.values.get(column) for r in self.runs if r.values.get(column) is not None]
        return bool(values) and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)

    def numeric_columns(self) -> list[str]:
        return [c for c in self.columns if self.is_numeric(c)]

    def settings_columns(self) -> list[str]:
        return [c for c in self.columns if column_role(c) == "setting"]

    def metric_columns(self) -> list[str]:
        return [c for c in self.columns if column_role(c) == "metric"]


def column_role(column: str) -> str:
    """``"bookkeeping"``, ``"machine"``, ``"metric"`` or ``"setting"``."""
    if column in BOOKKEEPING:
        return "bookkeeping"
    if column in MACHINE:
        return "machine"
    if column in METRICS or column.startswith(("test_", "train_")):
        return "metric"
    return "setting"


def is_runs_folder(path) -> bool:
    """Whether ``path`` is a sweep folder (``summary.json``, ``sweep.json`` or checkpoints under ``runs/``)."""
    path = Path(path)
    if not path.is_dir():
        return False
    if (path / SUMMARY_FILE).is_file() or (path / SWEEP_FILE).is_file():
        return True
    runs = path / RUNS_DIR
    return runs.is_dir() and any(_is_checkpoint(p) for p in runs.iterdir())


def read_runs(folder) -> RunTable:
    """Read a sweep folder or a folder of checkpoints as a :class:`RunTable`.

    Raises
    ------
    RunsFolderError
        When ``folder`` is not a folder, its ``summary.json`` is not a list of runs, or it
        holds neither a summary nor any checkpoint.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise RunsFolderError(f"{folder} is not a folder.")
    notes: list[str] = []
    summary = folder / SUMMARY_FILE
    checkpoints = _checkpoints_in(folder)
    if summary.is_file():
        rows = _read_summary(summary)
        listed = {row["name"] for row in rows}
        runs = [Run(row["name"], row, _run_checkpoint(folder, row)) for row in rows]
        for path in checkpoints:   # in runs/ but not in the summary yet
            name = _checkpoint_name(path)
            if name not in listed:
                row = _row_or_note(path, notes)
                if row is not None:
                    runs.append(Run(name, row, path))
        source = "summary"
    else:
        if not checkpoints:
            raise RunsFolderError(f"{folder} holds no runs: neither a {SUMMARY_FILE} nor any checkpoint "
                                  f"(a folder with config.json, or a .safetensors file).")
        runs = []
        for path in checkpoints:
            row = _row_or_note(path, notes)
            if row is not None:
                runs.append(Run(row["name"], row, path))
        if not runs:
            raise RunsFolderError(f"None of the {len(checkpoints)} checkpoints in {folder} could be read: {notes[0]}")
        source = "checkpoints"
    return RunTable(folder=folder, source=source, runs=tuple(runs), columns=_columns(runs), notes=tuple(notes))


def checkpoint_row(path) -> dict:
    """A run's row from a checkpoint: its settings and the last history entry's test metrics.

    Raises
    ------
    vae_core.CheckpointError
        When the checkpoint cannot be read.
    """
    from vae_core.checkpoint import read_checkpoint_history, read_checkpoint_info

    path = Path(path)
    document = read_checkpoint_info(path)
    history = read_checkpoint_history(path)
    config = document.get("config") or {}
    train = document.get("train_config") or {}
    dataset = document.get("dataset") or {}
    row: dict = {"name": _checkpoint_name(path), "status": "finished" if history else "untrained",
                 "model": document.get("model")}
    if dataset.get("spec"):
        row["dataset"] = dataset["spec"]
    for key in ("objective", "beta", "seed", "lr", "batch_size", "epochs"):
        if key in train and isinstance(train[key], (int, float, str)):
            row[key] = train[key]
    if isinstance(config.get("latent_dim"), int):
        row["latent_dim"] = config["latent_dim"]
    hidden = config.get("hidden")
    if isinstance(hidden, (list, tuple)) and hidden:
        row["hidden"] = "-".join(str(h) for h in hidden)
    elif isinstance(hidden, int):
        row["hidden"] = str(hidden)
    if history:
        last = history[-1]
        for key, value in last.items():
            if key.startswith("test_") and isinstance(value, (int, float)) and not isinstance(value, bool):
                row[key[len("test_"):]] = value
        row["epochs_trained"] = int(last.get("epoch", len(history)))
        seconds = [e.get("seconds") for e in history if isinstance(e.get("seconds"), (int, float))]
        if seconds:
            row["train_seconds"] = float(sum(seconds))
    return row


def curves(table: RunTable, parameter: str = "beta") -> list[list[int]]:
    """Runs that differ only in ``parameter``, as lists of row indices sorted by it.

    A β sweep gives one curve per combination of the other settings (model, latent size,
    seed, …), so the rate–distortion plot can draw each as a line. Runs without a number
    in ``parameter`` or without both rate and distortion are left out; curves of one run
    are dropped.
    """
    groups: dict[tuple, list[int]] = {}
    others = [c for c in table.settings_columns() if c != parameter]
    for i, run in enumerate(table.runs):
        if not all(math.isfinite(run.number(c)) for c in (parameter, RATE, DISTORTION)):
            continue
        key = tuple(json.dumps(run.value(c), sort_keys=True, default=str) for c in others)
        groups.setdefault(key, []).append(i)
    return [sorted(idx, key=lambda i: table.runs[i].number(parameter)) for idx in groups.values() if len(idx) > 1]


# -- the state of the Runs panel -------------------------------------------------------------
class RunsState:
    """The open table of runs and what the Runs panel plots (no Qt).

    ``color_column`` colours the points of both plots; ``x_column``/``y_column`` are the
    axes of the metric-vs-setting plot (the rate–distortion plot's are fixed: ``kl`` against
    ``recon``).
    """

    table_changed = Signal(object)     # RunTable | None
    plot_changed = Signal()            # colour or axis columns

    def __init__(self) -> None:
        self.table: RunTable | None = None
        self.color_column: str | None = None
        self.x_column: str | None = None
        self.y_column: str | None = None

    def open(self, folder) -> RunTable:
        """Read ``folder`` now and show it (scripts, tests; the window reads in a worker)."""
        table = read_runs(folder)
        self.set_table(table)
        return table

    def set_table(self, table: RunTable | None) -> None:
        self.table = table
        if table is not None:
            numeric = table.numeric_columns()
            settings = [c for c in table.settings_columns() if c in numeric]
            metrics = [c for c in table.metric_columns() if c in numeric]
            self.color_column = _first(["beta", *settings], table.columns) or _first(numeric, table.columns)
            self.x_column = _first(["beta", *settings, *numeric], numeric)
            self.y_column = _first(["neg_elbo", *metrics, *numeric], numeric)
        self.table_changed.emit(table)

    def set_color_column(self, column: str | None) -> None:
        self._check_column(column)
        if column != self.color_column:
            self.color_column = column
            self.plot_changed.emit()

    def set_axes(self, x: str | None = None, y: str | None = None) -> None:
        for column in (x, y):
            self._check_column(column)
        changed = False
        if x is not None and x != self.x_column:
            self.x_column, changed = x, True
        if y is not None and y != self.y_column:
            self.y_column, changed = y, True
        if changed:
            self.plot_changed.emit()

    def _check_column(self, column) -> None:
        if column is not None and (self.table is None or column not in self.table.columns):
            raise ValueError(f"There is no column {column!r} in the table of runs.")

    def points(self, x: str, y: str) -> tuple[list[int], list[float], list[float]]:
        """Rows with a finite number in both ``x`` and ``y``: their indices and values."""
        rows, xs, ys = [], [], []
        for i, run in enumerate(self.table.runs if self.table is not None else ()):
            a, b = run.number(x), run.number(y)
            if math.isfinite(a) and math.isfinite(b):
                rows.append(i)
                xs.append(a)
                ys.append(b)
        return rows, xs, ys

    def rate_distortion(self) -> tuple[list[int], list[float], list[float]]:
        """The rate–distortion points: KL (rate) and reconstruction (distortion) per run."""
        return self.points(RATE, DISTORTION)


# -- helpers --------------------------------------------------------------------------------------
def _first(candidates, allowed):
    return next((c for c in candidates if c in allowed), None)


def _is_checkpoint(path: Path) -> bool:
    return (path.is_dir() and (path / "config.json").is_file()) or (path.is_file() and path.suffix == ".safetensors"
                                                                   and not path.name.startswith("."))


def _checkpoint_name(path: Path) -> str:
    return path.name.removesuffix(".safetensors")


def _checkpoints_in(folder: Path) -> list[Path]:
    found = []
    for where in (folder, folder / RUNS_DIR):
        if where.is_dir():
            found.extend(p for p in sorted(where.iterdir()) if _is_checkpoint(p)
                         and not p.name.endswith((".projection.safetensors",)))
    return found


def _run_checkpoint(folder: Path, row: dict) -> Path | None:
    name = row["name"]
    candidates = [folder / RUNS_DIR / name, folder / RUNS_DIR / f"{name}.safetensors"]
    if isinstance(row.get("checkpoint"), str) and row["checkpoint"]:
        candidates.insert(0, folder / row["checkpoint"])
    for candidate in candidates:
        try:
            inside = candidate.resolve().is_relative_to(folder.resolve())
        except OSError:
            inside = False
        if inside and _is_checkpoint(candidate):
            return candidate
    return None


def _row_or_note(path: Path, notes: list[str]) -> dict | None:
    from vae_core.errors import CheckpointError

    try:
        return checkpoint_row(path)
    except CheckpointError as exc:
        notes.append(str(exc))
        return None


def _read_summary(path: Path) -> list[dict]:
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise RunsFolderError(f"{path} cannot be read as JSON ({exc}).") from None
    if isinstance(rows, dict) and isinstance(rows.get("runs"), list):
        rows = rows["runs"]
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise RunsFolderError(f"{path} is not a list of runs (one JSON object per run).")
    out, seen = [], set()
    for i, row in enumerate(rows):
        name = row.get("name")
        if not isinstance(name, str) or not name:
            raise RunsFolderError(f"{path}: run {i + 1} has no name.")
        if name in seen:
            raise RunsFolderError(f"{path}: the run name {name!r} appears twice.")
        seen.add(name)
        out.append({k: v for k, v in row.items() if isinstance(k, str)})
    return out


def _columns(runs: list[Run]) -> tuple[str, ...]:
    present: list[str] = []
    for run in runs:
        present.extend(k for k in run.values if k not in present)
    settings = [c for c in present if column_role(c) == "setting"]
    settings.sort(key=lambda c: (SETTINGS_ORDER.index(c) if c in SETTINGS_ORDER else len(SETTINGS_ORDER), c))
    metrics = [c for c in present if column_role(c) == "metric"]
    metrics.sort(key=lambda c: (METRICS.index(c) if c in METRICS else len(METRICS), c))
    machine = [c for c in MACHINE if c in present]
    return tuple([c for c in BOOKKEEPING if c in present] + settings + metrics + machine)
