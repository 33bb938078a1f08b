"""Grids of training runs: plan them, run them in local processes or as Ray tasks, read the table.

A sweep folder holds::

    OUT/sweep.json          the grid (swept and fixed options), every run's config, the command
    OUT/runs/<name>/        one checkpoint folder per finished run (history included), with
                            result.json: the run's row of the summary
    OUT/summary.json        one dict per finished or failed run: name, status ("done" or
                            "failed" with error), checkpoint (relative path), every config key,
                            the final test metrics, train_seconds
    OUT/summary.csv         the same table

A run's config uses the names of ``python -m vae_core train``'s options (``beta``,
``latent_dim``, ``hvae``'s ``lower_dims``, ...): a run trains exactly what ``train`` with
those options trains. Its name is built from the swept options only
(``model=mlp,beta=0.5,seed=0``), so it is the same every time the grid is planned.

A run is written once, at its end, together with its ``result.json`` (an atomic folder
write): a folder with both is finished and is skipped when the sweep runs again; a run
that was interrupted left nothing and starts over. The summary is rewritten after every
run, so it can be read while the sweep runs.

Why Ray tasks and not Ray Tune: the grid is fixed, each run is one function call that
writes its own checkpoint, and the folder layout and resumption are ours. Tasks give Ray's
scheduling (``num_cpus`` per run, placement across nodes, retries when a node dies) with
``pip install ray`` alone; Tune would add its trial directories under ``~/ray_results``,
its own checkpoint and resume logic beside ours, and the ``ray[tune]`` dependencies
(pandas, pyarrow) for nothing the sweep uses.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import math
import os
import signal
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from vae_core.errors import (AdapterError, CheckpointError, CLIError, ConfigError, DatasetError, NonFiniteLossError,
                             OutputError, ResourceError, ShapeMismatchError)
from vae_core.resources import output_error, temporary_name

__all__ = ["SweepRun", "plan_grid", "run_name", "train_options", "write_sweep_spec", "run_sweep", "train_run",
           "finished_result", "read_summary", "write_summary", "default_jobs", "SWEEP_FILE", "SUMMARY_JSON",
           "SUMMARY_CSV", "RUNS_FOLDER", "RESULT_FILE", "MACHINE_KEYS"]

SWEEP_FILE = "sweep.json"
SUMMARY_JSON = "summary.json"
SUMMARY_CSV = "summary.csv"
RUNS_FOLDER = "runs"
RESULT_FILE = "result.json"
FORMAT_VERSION = 1

#: Options that say where the data is and what runs it, not what is trained: they may
#: change when a sweep is resumed (on another machine) and never name a run.
MACHINE_KEYS = ("data_root", "device", "threads")

#: Summary columns that come before the config keys.
_HEAD = ("name", "status", "error", "checkpoint")

Report = Callable[[str], None]

#: Failures a run's row explains in one line; anything else is a bug and its traceback is reported.
_EXPECTED = (CLIError, ConfigError, DatasetError, CheckpointError, ShapeMismatchError, ResourceError, OutputError,
             AdapterError, NonFiniteLossError, MemoryError)


@dataclass(frozen=True)
class SweepRun:
    """One point of a grid.

    Attributes
    ----------
    name : str
        Filesystem-safe, built from the swept options (``model=mlp,beta=0.5,seed=0``).
    config : dict
        Every ``train`` option of the run by its argparse name (``latent_dim``), with
        JSON values (lists, not tuples).
    index : int
        Position in the grid, from 0.
    """

    name: str
    config: dict = field(hash=False)
    index: int = 0


def train_options() -> dict:
    """The defaults of every ``train`` option that makes a run (``dataset`` is None)."""
    import argparse

    from vae_core.cli.train import add_train_options

    parser = argparse.ArgumentParser(add_help=False)
    add_train_options(parser)
    return {**vars(parser.parse_args(["--dataset", "-"])), "dataset": None}


def _jsonable(value):
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    return value


def _value_text(value) -> str:
    if isinstance(value, list):
        return "-".join(_value_text(v) for v in value)
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        # repr is the shortest text that reads back as the same float, so two betas never share a name.
        text = repr(value)
        return text[:-2] if text.endswith(".0") else text
    text = str(value)
    return "".join(c if c.isalnum() or c in "._+-" else "_" for c in text)


def run_name(config: dict, swept) -> str:
    """The folder name of a run: ``key=value`` of each swept option, joined by commas.

    Floats are written in their shortest exact form (``0.5``, ``1``, ``1e-05``), lists
    with dashes (``512-256``); anything but letters, digits and ``._+-`` becomes ``_``.
    A grid without a swept option has one run, called ``run``.
    """
    parts = [f"{key}={_value_text(_jsonable(config[key]))}" for key in swept]
    return ",".join(parts) or "run"


def plan_grid(grid: dict, fixed: dict | None = None) -> list[SweepRun]:
    """Every combination of ``grid``'s values, with ``fixed`` and ``train``'s defaults.

    Parameters
    ----------
    grid : dict of str to list
        Option name → the values to sweep. An option with one value is fixed. The last
        option varies fastest; runs are named in this order of keys.
    fixed : dict, optional
        Options shared by every run (``dataset`` is required, here or in ``grid``).

    Raises
    ------
    ConfigError
        For an unknown option name, an empty list, a value listed twice or no dataset.
    """
    defaults = train_options()
    fixed = {k: _jsonable(v) for k, v in (fixed or {}).items()}
    grid = {k: [_jsonable(v) for v in values] for k, values in grid.items()}
    for key in (*fixed, *grid):
        if key not in defaults:
            raise ConfigError(f"{key!r} is not an option of train; the options are {', '.join(defaults)}.")
    for key, values in grid.items():
        if not values:
            raise ConfigError(f"The list of {key} values is empty.")
        texts = [json.dumps(v) for v in values]
        for text in texts:
            if texts.count(text) > 1:
                raise ConfigError(f"{key} lists {text} twice: every run of a sweep must differ.")
    swept = [k for k, values in grid.items() if len(values) > 1]
    base = {**defaults, **fixed, **{k: values[0] for k, values in grid.items() if len(values) == 1}}
    if not base.get("dataset"):
        raise ConfigError("A sweep needs a dataset.")
    runs = []
    for index, point in enumerate(itertools.product(*(grid[k] for k in swept))):
        config = {**base, **dict(zip(swept, point))}
        runs.append(SweepRun(run_name(config, swept), config, index))
    return runs


# -- files --------------------------------------------------------------------------------
def _write_atomic(path: Path, data: bytes) -> None:
    # Beside, then renamed: a reader (the Runs view) never sees half a summary.
    tmp = path.parent / temporary_name(path.name, ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "xb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise output_error(path, exc) from None


def _dumps(value) -> bytes:
    return json.dumps(value, indent=1, allow_nan=False, default=str).encode()


def _spec_of(grid: dict, fixed: dict) -> dict:
    # What the runs are, without where they run: the part that must match on resumption.
    return {"grid": {k: v for k, v in grid.items() if k not in MACHINE_KEYS},
            "fixed": {k: v for k, v in fixed.items() if k not in MACHINE_KEYS}}


def write_sweep_spec(out, runs: list[SweepRun], *, grid: dict, fixed: dict, command=None) -> Path:
    """Write ``OUT/sweep.json``, or check that the one there describes the same grid.

    Raises
    ------
    CLIError
        When ``out`` is a non-empty folder without a sweep, or holds another grid.
    OutputError
        When ``out`` cannot be written.
    """
    out = Path(out)
    path = out / SWEEP_FILE
    grid = {k: [_jsonable(v) for v in values] for k, values in grid.items()}
    fixed = {k: _jsonable(v) for k, v in fixed.items()}
    if path.is_file():
        try:
            old = json.loads(path.read_text())
            same = _spec_of(old.get("grid", {}), old.get("fixed", {})) == _spec_of(grid, fixed)
        except (OSError, ValueError, AttributeError):
            same = False
        if not same:
            raise CLIError(f"{out} holds another sweep (its {SWEEP_FILE} lists other options or values): "
                           "give the same options to resume it, or choose another --out.")
    elif out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise CLIError(f"{out} is not empty and holds no {SWEEP_FILE}: choose a new folder for --out.")
    document = {"format_version": FORMAT_VERSION, "command": list(command) if command else None,
                "grid": grid, "fixed": fixed, "runs": [{"name": r.name, "config": r.config} for r in runs]}
    _write_atomic(path, _dumps(document))
    return path


def finished_result(out, run: SweepRun) -> dict | None:
    """The summary row of ``run`` if its checkpoint and result are in ``OUT/runs``; else None."""
    folder = Path(out) / RUNS_FOLDER / run.name
    try:
        result = json.loads((folder / RESULT_FILE).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(result, dict) or result.get("status") != "done" or not (folder / "config.json").is_file():
        return None
    kept = {k: v for k, v in run.config.items() if k not in MACHINE_KEYS and v is not None}
    if any(result.get(k) != v for k, v in kept.items()):
        return None  # written by another grid under the same name: train it again
    return result


def read_summary(folder) -> list[dict]:
    """The rows of ``folder/summary.json`` (one dict per finished or failed run).

    Raises
    ------
    CLIError
        When the folder has no readable summary.
    """
    path = Path(folder) / SUMMARY_JSON
    try:
        rows = json.loads(path.read_text())
    except FileNotFoundError:
        raise CLIError(f"{folder} has no {SUMMARY_JSON}: it is not a sweep folder, or no run has ended yet.") from None
    except (OSError, ValueError) as exc:
        raise CLIError(f"{path} cannot be read ({exc}).") from None
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise CLIError(f"{path} is not a list of runs.")
    return rows


def _csv_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return " ".join(map(str, value))
    if isinstance(value, float):
        return repr(value)
    return str(value)


def write_summary(out, rows: list[dict]) -> None:
    """Write ``summary.json`` and ``summary.csv`` (columns: name, status, error, checkpoint,
    then every config key and every metric, in order of first appearance)."""
    out = Path(out)
    columns = list(_HEAD)
    for row in rows:
        columns.extend(k for k in row if k not in columns)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_csv_text(row.get(c)) for c in columns])
    _write_atomic(out / SUMMARY_JSON, _dumps(rows))
    _write_atomic(out / SUMMARY_CSV, buffer.getvalue().encode())


# -- one run ------------------------------------------------------------------------------
def _row(run: SweepRun, status: str) -> dict:
    row = {"name": run.name, "status": status}
    if status == "done":
        row["checkpoint"] = f"{RUNS_FOLDER}/{run.name}"
    row.update({k: v for k, v in run.config.items() if v is not None})
    return row


def _failed(run: SweepRun, error: str) -> dict:
    row = _row(run, "failed")
    row["error"] = error
    return row


def _finite(value):
    return value if not isinstance(value, float) or math.isfinite(value) else None


def train_run(run: SweepRun, out, *, threads: int = 1, iwae_k: int | None = None,
              report: Report | None = None) -> dict:
    """Train one run, write ``OUT/runs/<name>`` with its ``result.json``; return its row.

    The run trains what ``python -m vae_core train`` trains with the same options, with
    ``threads`` torch threads (results are reproducible for a given seed and thread count).
    A run that fails (a NaN loss, a bad option, out of memory, a bug) returns a row with
    ``status = "failed"`` and a one-line ``error`` instead of raising.

    Parameters
    ----------
    iwae_k : int, optional
        Also estimate the IWAE bound with this many samples per test image (``iwae_nll``).
    report : callable, optional
        Called with a line of text after every epoch.
    """
    import argparse

    import torch

    from vae_core.checkpoint import save_checkpoint
    from vae_core.cli.common import load_data_from_args, one_line
    from vae_core.cli.train import build_training
    from vae_core.metrics import iwae_nll
    from vae_core.training import iter_training, resolve_device

    say = report or (lambda text: None)
    try:
        torch.set_num_threads(threads)
        args = argparse.Namespace(**{**run.config, "threads": threads})
        data = load_data_from_args(args)
        model, config = build_training(args, data)
        history, last = [], None
        for progress in iter_training(model, data, config):
            if progress.kind != "epoch":
                continue
            last = progress
            history.append(progress.history_entry)
            test = f", test −ELBO {progress.test['neg_elbo']:.2f}" if progress.test else ""
            say(f"{run.name}: epoch {progress.epoch + 1}/{progress.epochs}, loss {progress.losses['loss']:.2f}"
                f"{test} ({progress.elapsed:.0f} s)")
        row = _row(run, "done")
        row.update({"threads": threads, "model": model.name, "latent_dim": model.latent_dim,
                    "likelihood": getattr(model.config, "likelihood", None)})
        if last.test:
            row.update({k: _finite(v) for k, v in last.test.items() if isinstance(v, (int, float))})
        row["train_loss"] = _finite(last.losses["loss"])
        if iwae_k and len(data.test):
            iwae = iwae_nll(model, data.test, iwae_k, seed=0, batch_size=100, device=resolve_device(config.device))
            row.update({"iwae_nll": _finite(iwae["nll"]), "iwae_k": int(iwae["k"])})
        # iter_training's clock starts after the optimizer is built, so torch's one-time
        # set-up in a fresh worker (seconds) is not counted as training.
        row["train_seconds"] = round(last.elapsed, 3)
        save_checkpoint(Path(out) / RUNS_FOLDER / run.name, model, dataset=data, history=history,
                        train_config=config, optimizer_state=last.optimizer_state,
                        extra_files={RESULT_FILE: _dumps(row)})
        return row
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as exc:  # noqa: BLE001 - a run's failure is a row of the table, not the sweep's end
        text = one_line(str(exc).strip()) or type(exc).__name__
        if not isinstance(exc, (*_EXPECTED, torch.cuda.OutOfMemoryError)):
            say(f"{run.name}: failed unexpectedly:\n{traceback.format_exc()}")
            text = f"{type(exc).__name__}: {text}"
        return _failed(run, text)


# -- many runs ----------------------------------------------------------------------------
def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def default_jobs(runs: int, threads: int | None = None) -> int:
    """Runs at once on this machine: one per core (or per ``threads`` cores), at most ``runs``.

    Small VAEs train faster as several one-thread processes than as one process with many
    threads, whose per-batch work is too small to split well.
    """
    return max(1, min(runs, _cores() // (threads or 1)))


def run_sweep(out, runs: list[SweepRun], *, jobs: int | None = None, threads: int | None = None,
              ray_address: str | None = None, iwae_k: int | None = None,
              report: Report | None = None) -> list[dict]:
    """Train every run of ``runs`` not finished in ``out``; return the summary rows.

    Finished runs (checkpoint and ``result.json`` present) are skipped. The summary is
    rewritten after each run. Ctrl+C (``KeyboardInterrupt``) stops the running runs, keeps
    the summary of the finished ones and is raised again: running the sweep again resumes.

    Parameters
    ----------
    jobs : int, optional
        Local runs at once, each in its own process (default :func:`default_jobs`).
    threads : int, optional
        torch threads per run (default: cores / jobs locally, 1 on Ray); on Ray also each
        task's ``num_cpus``.
    ray_address : str, optional
        Run as Ray tasks: ``"local"`` starts a Ray instance on this machine, ``"auto"``
        joins the cluster this machine belongs to, anything else is a cluster address
        (``ray.init(address=...)``). An already initialised Ray is used as it is. ``out``
        must be a path every node can write (a shared file system).
    report : callable, optional
        Called with each progress line.
    """
    out = Path(out).absolute()
    say = report or (lambda text: None)
    rows: dict[str, dict] = {}
    for row in _previous_rows(out):
        rows[row.get("name")] = row
    todo = []
    for run in runs:
        done = finished_result(out, run)
        if done is not None:
            rows[run.name] = done
        else:
            todo.append(run)
    total = len(runs)
    skipped = total - len(todo)
    if skipped:
        say(f"{skipped} of {total} runs already finished in {out}; {len(todo)} to go")

    def table() -> list[dict]:
        return [rows[r.name] for r in runs if r.name in rows]

    def finished(row: dict) -> None:
        rows[row["name"]] = row
        write_summary(out, table())
        done = sum(1 for r in rows.values() if r.get("status") == "done")
        if row["status"] == "done":
            metrics = ", ".join(f"{label} {row[key]:.2f}" for key, label in
                                (("neg_elbo", "test −ELBO"), ("kl", "KL")) if isinstance(row.get(key), float))
            say(f"[{done}/{total}] {row['name']}: done in {row['train_seconds']:.1f} s"
                + (f", {metrics}" if metrics else ""))
        else:
            say(f"[{done}/{total}] {row['name']}: FAILED: {row.get('error')}")

    write_summary(out, table())
    if not todo:
        return table()
    try:
        if ray_address:
            _run_ray(out, todo, ray_address, threads or 1, iwae_k, jobs, finished, say)
        else:
            jobs = jobs or default_jobs(len(todo), threads)
            threads = threads or max(1, _cores() // jobs)
            _run_local(out, todo, jobs, threads, iwae_k, finished, say)
    except KeyboardInterrupt:
        # A run may have written its folder just before Ctrl+C, before its row arrived here:
        # the summary lists what is on disk, as the next session will see it.
        for run in todo:
            done = finished_result(out, run)
            if done is not None:
                rows[run.name] = done
        write_summary(out, table())
        raise
    return table()


def _previous_rows(out: Path) -> list[dict]:
    # Failures of an earlier session stay in the table until their run is tried again.
    try:
        rows = json.loads((out / SUMMARY_JSON).read_text())
    except (OSError, ValueError):
        return []
    return [r for r in rows if isinstance(r, dict) and r.get("status") == "failed"] if isinstance(rows, list) else []


def _local_worker(conn, out: str, threads: int, iwae_k) -> None:
    """Body of a local worker process: train the runs it is sent, one after another, until None.

    A worker serves several runs so that torch's import and first-use costs (seconds each)
    are paid once per worker, not once per run.
    """
    def report(text: str) -> None:
        conn.send(("progress", text))

    try:
        while (run := conn.recv()) is not None:
            conn.send(("result", train_run(run, out, threads=threads, iwae_k=iwae_k, report=report)))
    except EOFError:
        pass  # the sweep has ended or was interrupted
    finally:
        conn.close()


class _Worker:
    def __init__(self, context, out: Path, threads: int, iwae_k):
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_local_worker, args=(child, str(out), threads, iwae_k),
                                       name="sweep worker", daemon=True)
        # Workers start with SIGINT ignored (Python keeps an inherited SIG_IGN), so Ctrl+C
        # in the terminal reaches only the sweep, which stops them in order.
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if _main_thread() else None
        try:
            self.process.start()
        finally:
            if previous is not None:
                signal.signal(signal.SIGINT, previous)
        child.close()
        self.run: SweepRun | None = None

    def stop(self) -> None:
        self.process.terminate()
        self.process.join()
        self.conn.close()


def _run_local(out: Path, todo: list[SweepRun], jobs: int, threads: int, iwae_k, finished, say) -> None:
    from multiprocessing import get_context
    from multiprocessing.connection import wait

    # spawn, not fork: a forked child would inherit torch's thread pools and OpenMP state.
    context = get_context("spawn")
    pending = list(todo)
    jobs = min(jobs, len(pending))
    workers: list[_Worker] = []
    say(f"training {len(todo)} runs, {jobs} at a time, {threads} torch thread{'s' if threads > 1 else ''} each")
    try:
        while pending or any(w.run is not None for w in workers):
            while len(workers) < min(jobs, len(pending) + sum(w.run is not None for w in workers)):
                workers.append(_Worker(context, out, threads, iwae_k))
            for worker in workers:
                if worker.run is None and pending:
                    worker.run = pending.pop(0)
                    worker.conn.send(worker.run)
                    say(f"{worker.run.name}: started")
            for conn in wait([w.conn for w in workers]):
                worker = next(w for w in workers if w.conn is conn)
                try:
                    kind, payload = conn.recv()
                except (EOFError, OSError):
                    # The worker died (killed, out of memory): its run failed; a new worker takes the rest.
                    workers.remove(worker)
                    worker.process.join()
                    worker.conn.close()
                    if worker.run is not None:
                        finished(_failed(worker.run, f"its process ended with exit code {worker.process.exitcode} "
                                                     "before reporting (killed, or out of memory)"))
                    continue
                if kind == "progress":
                    say(payload)
                else:
                    worker.run = None
                    finished(payload)
        for worker in workers:
            worker.conn.send(None)
        for worker in workers:
            worker.process.join()
            worker.conn.close()
    except KeyboardInterrupt:
        for worker in workers:
            worker.stop()
        raise


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def _ray_task(run: SweepRun, out: str, threads: int, iwae_k) -> dict:
    """A Ray task: one run, its progress lines printed on the worker's stderr (Ray forwards them)."""
    return train_run(run, out, threads=threads, iwae_k=iwae_k, report=lambda text: print(text, file=sys.stderr,
                                                                                         flush=True))


def _run_ray(out: Path, todo: list[SweepRun], address: str, threads: int, iwae_k, jobs, finished, say) -> None:
    try:
        import ray
    except ImportError:
        raise CLIError("Running a sweep on Ray needs the ray package: pip install 'latent-explorer[ray]'.") from None
    started = not ray.is_initialized()
    if started:
        options = {"include_dashboard": False} if address == "local" else {}
        if address == "local" and jobs:
            options["num_cpus"] = jobs * threads
        try:
            ray.init(address=address, logging_level="ERROR", **options)
        except (ConnectionError, ValueError, RuntimeError) as exc:
            raise CLIError(f"Could not reach a Ray cluster at {address!r} ({str(exc).strip().splitlines()[0]}): "
                           "start one with 'ray start --head', or use --ray local.") from None
    try:
        task = ray.remote(num_cpus=threads)(_ray_task)
        say(f"submitting {len(todo)} runs to Ray ({threads} CPU{'s' if threads > 1 else ''} each)")
        refs = {task.remote(run, str(out), threads, iwae_k): run for run in todo}
        try:
            while refs:
                ready, _ = ray.wait(list(refs), num_returns=1)
                for ref in ready:
                    run = refs.pop(ref)
                    try:
                        row = ray.get(ref)
                    except ray.exceptions.RayError as exc:
                        row = _failed(run, f"Ray: {str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}")
                    finished(row)
        except KeyboardInterrupt:
            for ref in refs:
                ray.cancel(ref, force=True)
            raise
    finally:
        if started:
            ray.shutdown()
