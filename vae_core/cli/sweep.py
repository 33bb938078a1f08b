"""The ``sweep`` subcommand: ``train``'s options, each taking a comma-separated list of values."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from vae_core.cli.common import EXIT_INTERRUPTED, int_range, load_data_from_args, one_line
from vae_core.cli.train import add_train_options, build_training
from vae_core.errors import CLIError, ConfigError
from vae_core.metrics import IWAE_K_MAX
from vae_core.resources import check_writable

__all__ = ["add_commands", "cmd_sweep", "ListOptions", "SINGLE_VALUED"]

#: ``train`` options that take one value in a sweep: the data and the machine. Sweeping
#: the dataset would put incomparable numbers in one table; ``--threads`` is per run.
SINGLE_VALUED = ("dataset", "data_root", "image_size", "channels", "device", "threads")

EXIT_FAILED_RUNS = 1


class ListOptions:
    """Stands in for a parser in ``add_train_options``: each option it adds takes a list.

    ``--beta 0.5,1,2`` gives ``[0.5, 1.0, 2.0]``, every item checked by the option's own
    type and choices, so the ranges and error messages are ``train``'s. An option with
    several numbers per value (``--hidden``) separates values with commas and numbers
    with spaces: ``--hidden 512 256,1024`` sweeps ``[512, 256]`` and ``[1024]``. Options
    in :data:`SINGLE_VALUED` are added unchanged.
    """

    def __init__(self, target):
        self._target = target
        #: dest → the item type of every list option (to split multi-number options after parsing)
        self.multi: dict[str, object] = {}
        self.lists: list[str] = []

    def add_argument_group(self, *args, **kwargs) -> "ListOptions":
        group = ListOptions(self._target.add_argument_group(*args, **kwargs))
        group.multi, group.lists = self.multi, self.lists  # one record for the whole parser
        return group

    def add_argument(self, *flags, **kwargs):
        dest = kwargs.get("dest") or flags[0].lstrip("-").replace("-", "_")
        if dest in SINGLE_VALUED:
            if dest == "threads":
                kwargs["help"] = ("torch CPU threads of each run, 1 to 1024 (default: cores / --jobs locally, "
                                  "1 on Ray, where it is also each task's num_cpus)")
            return self._target.add_argument(*flags, **kwargs)
        item = kwargs.pop("type", str)
        choices = kwargs.pop("choices", None)
        self.lists.append(dest)
        if choices is not None:
            kwargs.setdefault("metavar", "{" + ",".join(map(str, choices)) + "}")
        kwargs["help"] = (kwargs.get("help") or "").rstrip() + "; a comma-separated list sweeps it"
        if kwargs.get("nargs") == "+":
            self.multi[dest] = (item, choices)
            return self._target.add_argument(*flags, **kwargs)
        kwargs["type"] = _list_type(item, choices)
        return self._target.add_argument(*flags, **kwargs)


def _check_item(item, choices, text: str):
    value = item(text.strip())
    if choices is not None and value not in choices:
        raise argparse.ArgumentTypeError(f"must be one of {', '.join(map(str, choices))} (got {one_line(text)})")
    return value


def _list_type(item, choices):
    def parse(text: str) -> list:
        if not text.strip():
            raise argparse.ArgumentTypeError("needs at least one value")
        return [_check_item(item, choices, part) for part in text.split(",")]

    parse.__name__ = "list"
    return parse


def add_commands(subparsers) -> None:
    """Add the ``sweep`` subcommand to an argparse subparsers object."""
    sweep = subparsers.add_parser(
        "sweep", help="train a grid of runs (locally or on Ray) and tabulate their metrics",
        description="Train every combination of the listed values (train's options; a comma-separated list "
                    "sweeps an option), several runs at once or as Ray tasks. OUT gets sweep.json, one "
                    "checkpoint per run in OUT/runs/NAME and summary.csv/summary.json with each run's options "
                    "and final test metrics. Run the same command again to resume: finished runs are skipped.",
        epilog="example: python -m vae_core sweep --dataset mnist --epochs 10 --beta 0.5,1,2,4 --latent-dim 2,10 "
               "--model mlp,conv --seed 0,1 --out runs/beta")
    options = ListOptions(sweep)
    add_train_options(options)
    sweep.add_argument("--out", required=True, metavar="DIR", help="the sweep folder (created; reused to resume)")
    sweep.add_argument("--jobs", type=int_range(1, 1024), metavar="N",
                       help="local runs at once, each in its own process (default: one per core, at most the "
                            "number of runs); with --ray local, the CPUs Ray may use are jobs × threads")
    sweep.add_argument("--ray", metavar="ADDRESS",
                       help="run as Ray tasks: 'local' starts Ray on this machine, 'auto' joins the cluster this "
                            "machine is part of, or a cluster address (needs: pip install 'latent-explorer[ray]'; "
                            "--out must be a folder every node can write)")
    sweep.add_argument("--iwae-k", type=int_range(1, IWAE_K_MAX), metavar="K",
                       help="also estimate each run's IWAE bound on the test set with K samples per image")
    sweep.add_argument("--quiet", action="store_true", help="no per-epoch lines")
    sweep.set_defaults(handler=cmd_sweep, list_options=options)


def _split_multi(args: argparse.Namespace, options: ListOptions) -> None:
    # "--hidden 512 256,1024" arrives as ["512", "256,1024"]: commas separate values.
    for dest, (item, choices) in options.multi.items():
        tokens = getattr(args, dest)
        if tokens is None:
            continue
        flag = "--" + dest.replace("_", "-")
        values = []
        for chunk in " ".join(tokens).split(","):
            parts = chunk.split()
            if not parts:
                raise CLIError(f"{flag} has an empty value between commas.")
            try:
                values.append([_check_item(item, choices, p) for p in parts])
            except argparse.ArgumentTypeError as exc:
                raise CLIError(f"argument {flag}: {exc}") from None
        setattr(args, dest, values)


def grid_of(args: argparse.Namespace) -> tuple[dict, dict]:
    """``(grid, fixed)``: the list options with their values, and every other run option."""
    options: ListOptions = args.list_options
    _split_multi(args, options)
    grid = {}
    for dest in options.lists:
        value = getattr(args, dest)
        # Defaults arrive as one value (or, for a string default, already as a list of one).
        grid[dest] = value if isinstance(value, list) and (dest not in options.multi or value) else [value]
    fixed = {dest: getattr(args, dest) for dest in SINGLE_VALUED}
    if fixed.get("data_root"):
        # Children and Ray workers may start elsewhere.
        fixed["data_root"] = str(Path(fixed["data_root"]).absolute())
    return grid, fixed


def _check_runs(runs, args: argparse.Namespace) -> None:
    """Build every run's model once, so a combination that cannot train stops the sweep before it starts."""
    data = load_data_from_args(args)
    for run in runs:
        try:
            build_training(argparse.Namespace(**run.config), data)
        except (CLIError, ConfigError, ValueError) as exc:
            text = str(exc).strip().rstrip(".")
            raise CLIError(f"The run {run.name} cannot train: {text}; leave that combination out (run it as "
                           "its own sweep).") from None


def cmd_sweep(args: argparse.Namespace) -> int:
    """Handler of ``python -m vae_core sweep``."""
    from vae_core.sweep import plan_grid, run_sweep, write_sweep_spec

    if args.ray:
        try:
            import ray  # noqa: F401
        except ImportError:
            raise CLIError("--ray needs the ray package, which is not installed: "
                           "pip install 'latent-explorer[ray]'.") from None
    out = Path(args.out).absolute()
    grid, fixed = grid_of(args)
    runs = plan_grid(grid, fixed)
    _check_runs(runs, args)
    check_writable(out / "sweep.json")
    write_sweep_spec(out, runs, grid=grid, fixed=fixed, command=["python", "-m", "vae_core", "sweep", *sys.argv[2:]]
                     if sys.argv[1:2] == ["sweep"] else None)

    def report(text: str) -> None:
        if args.quiet and ": epoch " in text:
            return
        print(text, file=sys.stderr, flush=True)

    try:
        rows = run_sweep(out, runs, jobs=args.jobs, threads=args.threads, ray_address=args.ray,
                         iwae_k=args.iwae_k, report=report)
    except KeyboardInterrupt:
        print(f"interrupted; the finished runs are kept in {out}: run the same command again to resume",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    failed = [r for r in rows if r.get("status") != "done"]
    print(f"{len(rows) - len(failed)} of {len(runs)} runs done; summary in {out / 'summary.csv'}", file=sys.stderr)
    if failed:
        print(f"{len(failed)} failed: " + "; ".join(f"{r['name']}: {r.get('error')}" for r in failed),
              file=sys.stderr)
        return EXIT_FAILED_RUNS
    return 0
