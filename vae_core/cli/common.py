"""What every subcommand shares: exit codes, the one-line-error parser, data options and
checkpoint loading."""

from __future__ import annotations

import argparse
import math
import sys

from vae_core.checkpoint import Checkpoint, load_checkpoint
from vae_core.data import DatasetSplits, load_dataset
from vae_core.errors import CLIError
from vae_core.ranges import range_text
from vae_core.training import DEVICES, LIMITS, SEED_MAX, check_compatible

__all__ = ["EXIT_USAGE", "EXIT_INTERRUPTED", "OneLineErrorParser", "IntermixedParser", "add_data_options", "positive_int",
           "int_range", "float_range", "one_line", "load_data_from_args", "load_checkpoint_for", "print_warnings",
           "add_model_source", "load_model_for"]

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class OneLineErrorParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose usage errors are one line and exit with status 2."""

    def error(self, message: str):  # one line instead of usage + error
        self.exit(EXIT_USAGE, f"{self.prog}: error: {one_line(message)} (see --help)\n")


class IntermixedParser(OneLineErrorParser):
    """A :class:`OneLineErrorParser` that collects positionals wherever they stand.

    ``arithmetic [CHECKPOINT] EXPRESSION`` has an optional positional before a required
    one: plain argparse would give ``CHECKPOINT`` to ``EXPRESSION`` in
    ``arithmetic run --out a.png -- EXPR``, because it fills positionals chunk by chunk
    between options. Intermixed parsing sees both at once.
    """

    _inside = False

    def parse_known_args(self, args=None, namespace=None):
        if self._inside:  # parse_known_intermixed_args calls back here twice
            return super().parse_known_args(args, namespace)
        self._inside = True
        try:
            return self.parse_known_intermixed_args(args, namespace)
        finally:
            self._inside = False


def one_line(text: str) -> str:
    """``text`` with line breaks and other control characters escaped, so it prints as one line."""
    return "".join(c if c.isprintable() or c == " " else repr(c)[1:-1] for c in str(text))


def add_data_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--data-root``, ``--image-size`` and ``--channels`` (read by :func:`load_data_from_args`)."""
    parser.add_argument("--data-root", metavar="DIR", help="where torchvision datasets live or are downloaded to")
    parser.add_argument("--image-size", type=int_range(4, 1024), metavar="N",
                        help="side length in pixels, 4 to 1024: resamples any dataset (default: its own)")
    parser.add_argument("--channels", type=int, choices=[1, 3], help="1 = grayscale, 3 = RGB (folder: datasets)")


def int_range(low: int, high: int | None = None):
    """argparse ``type`` for whole numbers from ``low`` to ``high``.

    The error names the range and the value: ``argument --epochs: must be a whole
    number from 1 to 100000 (got 0)``.
    """

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < low or (high is not None and value > high):
            shown = one_line(text if len(text) <= 40 else text[:37] + "...")
            raise argparse.ArgumentTypeError(f"must be {range_text(low, high, integer=True)} (got {shown})")
        return value

    parse.__name__ = "whole number"
    return parse


def float_range(low: float | None = None, high: float | None = None, *, low_open: bool = False):
    """argparse ``type`` for finite numbers in a range (NaN and infinities never are).

    The error names the range and the value: ``argument --beta: must be a finite
    number from 0 to 1000 (got nan)``.
    """

    def parse(text: str) -> float:
        try:
            value = float(text)
        except (ValueError, OverflowError):
            value = math.nan
        ok = math.isfinite(value) and (low is None or value > low or (value == low and not low_open)) \
            and (high is None or value <= high)
        if not ok:
            shown = one_line(text if len(text) <= 40 else text[:37] + "...")
            raise argparse.ArgumentTypeError(f"must be {range_text(low, high, low_open=low_open)} (got {shown})")
        return value

    parse.__name__ = "number"
    return parse


def print_warnings(checkpoint: Checkpoint) -> None:
    """Print each damaged part a checkpoint lost, one line each, on stderr."""
    for note in checkpoint.warnings:
        print(f"warning: {note}", file=sys.stderr)


def positive_int(text: str) -> int:
    """argparse ``type`` for whole numbers >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def load_data_from_args(args: argparse.Namespace, spec: str | None = None,
                        options: dict | None = None) -> DatasetSplits:
    """Load the dataset named on the command line.

    Parameters
    ----------
    args
        Parsed arguments with ``dataset`` and the :func:`add_data_options` options.
    spec, options
        Dataset spec and options to use instead of ``args.dataset`` (e.g. the ones a
        checkpoint remembers); ``--image-size`` and ``--channels`` still override.
    """
    opts = dict(options or {})
    if getattr(args, "image_size", None):
        opts["image_size"] = args.image_size
    if getattr(args, "channels", None):
        opts["channels"] = args.channels
    known = {"image_size", "channels", "seed", "test_fraction"}
    spec = spec or args.dataset
    # A bar only on a terminal: decoding a big folder or rendering dsprites takes a while,
    # and piped output (and the one-line errors) should stay clean.
    bar = None
    if not getattr(args, "quiet", False) and sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(desc=f"Loading {spec}", unit="img", dynamic_ncols=True, file=sys.stderr, leave=False)

    def progress(done: int, total: int) -> None:
        if bar.total != total:
            bar.total = total
            bar.refresh()   # tqdm may skip updates that come fast; the size shows at least once
        bar.update(done - bar.n)

    try:
        return load_dataset(spec, args.data_root, progress=progress if bar is not None else None,
                            **{k: v for k, v in opts.items() if k in known})
    finally:
        if bar is not None:
            bar.close()


def load_checkpoint_for(args: argparse.Namespace, *,
                        dataset_required: bool = True) -> tuple[Checkpoint, DatasetSplits | None]:
    """Load ``args.checkpoint`` and the dataset (given or remembered); check they fit.

    Raises
    ------
    CLIError
        If no dataset is given and the checkpoint does not name one (with ``dataset_required``).
    ShapeMismatchError
        If the model cannot read the dataset's images.
    """
    ckpt = load_checkpoint(args.checkpoint)
    print_warnings(ckpt)
    spec = getattr(args, "dataset", None)
    options = None
    if not spec and ckpt.dataset:
        spec, options = ckpt.dataset.get("spec"), ckpt.dataset.get("options")
    if not spec:
        if dataset_required:
            raise CLIError("The checkpoint does not say which dataset it was trained on: pass --dataset.")
        return ckpt, None
    data = load_data_from_args(args, spec, options)
    check_compatible(ckpt.model, data)
    return ckpt, data


def add_model_source(parser: argparse.ArgumentParser) -> None:
    """Add ``CHECKPOINT`` (optional) and ``--model-file``/``--weights`` (read by :func:`load_model_for`)."""
    parser.add_argument("checkpoint", nargs="?", metavar="CHECKPOINT",
                        help="checkpoint folder or .safetensors file (or --model-file instead)")
    parser.add_argument("--model-file", metavar="FILE",
                        help="instead of a checkpoint: an adapter (.py file or module name) for a VAE written "
                             "elsewhere; its code runs (see docs/OWN_MODEL.md)")
    parser.add_argument("--weights", metavar="FILE",
                        help="with --model-file: the weights, .safetensors or a torch.save'd state dict "
                             "(default: the ones build_model() sets)")


def load_model_for(args: argparse.Namespace, *, dataset_required: bool = True, load_data: bool = True) -> tuple:
    """The model named on the command line (a checkpoint or an adapter) and its dataset.

    With ``load_data=False`` no dataset is loaded (``data`` is None) and none is required.

    Returns
    -------
    model : BaseVAE
    name : str
        The checkpoint's model name or the adapter's ``NAME``.
    data : DatasetSplits or None
        None only without ``dataset_required`` when no dataset is known.

    Raises
    ------
    CLIError
        Neither or both of ``CHECKPOINT`` and ``--model-file``; ``--weights`` without
        ``--model-file``; ``--model-file`` without ``--dataset`` (when one is required).
    AdapterError
        The adapter, its weights or the dataset's image size do not fit.
    """
    from vae_core.adapter import check_dataset, load_adapted_model

    model_file = getattr(args, "model_file", None)
    weights = getattr(args, "weights", None)
    if model_file:
        if args.checkpoint:
            raise CLIError(f"Give either a checkpoint ({args.checkpoint}) or --model-file, not both.")
        data = None
        if load_data and getattr(args, "dataset", None):
            data = load_data_from_args(args)
        elif load_data and dataset_required:
            raise CLIError("--model-file needs --dataset: an adapter does not say which images its model reads.")
        model = load_adapted_model(model_file, weights, dataset_shape=None if data is None else data.image_shape)
        if data is not None:
            check_dataset(model, data)
        return model, model.name, data
    if weights:
        raise CLIError("--weights goes with --model-file; a checkpoint holds its own weights.")
    if not args.checkpoint:
        raise CLIError("Give a checkpoint, or --model-file FILE with --weights and --dataset.")
    if not load_data:
        ckpt = load_checkpoint(args.checkpoint)
        print_warnings(ckpt)
        return ckpt.model, ckpt.model_name, None
    ckpt, data = load_checkpoint_for(args, dataset_required=dataset_required)
    return ckpt.model, ckpt.model_name, data


def add_optimisation_options(parser, *, batch_default: int, batch_help: str) -> None:
    """``--epochs``, ``--batch-size``, ``--lr``, ``--seed``, ``--device`` and ``--threads``, as
    ``train`` and ``train-prior`` take them (``parser``: anything with argparse's ``add_argument``)."""
    parser.add_argument("--epochs", type=int_range(*LIMITS["epochs"]), default=10, metavar="N",
                        help="epochs, 1 to 100000 (default: 10)")
    parser.add_argument("--batch-size", type=int_range(*LIMITS["batch_size"]), default=batch_default, metavar="N",
                        help=f"{batch_help}, 1 to 1000000 (default: {batch_default})")
    parser.add_argument("--lr", type=float_range(*LIMITS["lr"], low_open=True), default=1e-3, metavar="LR",
                        help="Adam learning rate, > 0 and ≤ 10 (default: 1e-3)")
    parser.add_argument("--seed", type=int_range(0, SEED_MAX), default=0, metavar="S",
                        help=f"random seed, 0 to {SEED_MAX} (default: 0)")
    parser.add_argument("--device", choices=DEVICES, default="auto", help="device (default: auto)")
    parser.add_argument("--threads", type=int_range(*LIMITS["num_threads"]), metavar="N",
                        help="torch CPU threads, 1 to 1024 (default: torch's choice)")
