"""The ``python -m vae_core`` parser and entry point; each command group adds its own
subcommands (:mod:`vae_core.cli.train`, :mod:`vae_core.cli.latent`,
:mod:`vae_core.cli.prior`, :mod:`vae_core.cli.sweep`)."""

from __future__ import annotations

import argparse
import sys

from vae_core.cli import latent, model_export, prior, sweep, train
from vae_core.cli.common import EXIT_INTERRUPTED, EXIT_USAGE, OneLineErrorParser, one_line
from vae_core.errors import (AdapterError, CheckpointError, CLIError, ConfigError, DatasetError, ExpressionError,
                             ModelExportError, NonFiniteLossError, OutputError, ResourceError, ShapeMismatchError)

__all__ = ["build_parser", "main", "USER_ERRORS"]

#: Mistakes the user can fix: one line on stderr and exit status 2. Anything else is a
#: bug and keeps its traceback.
USER_ERRORS = (CLIError, ConfigError, DatasetError, CheckpointError, ShapeMismatchError, ExpressionError,
               ResourceError, OutputError, AdapterError, ModelExportError)
EXIT_FAILED = 1


def build_parser() -> argparse.ArgumentParser:
    """The full parser; every subcommand stores its handler as ``handler``."""
    parser = OneLineErrorParser(prog="python -m vae_core",
                                description="Train, evaluate and explore variational autoencoders.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineErrorParser)
    train.add_commands(sub)
    latent.add_commands(sub)
    prior.add_commands(sub)
    model_export.add_commands(sub)
    sweep.add_commands(sub)
    return parser


def _one_line(exc: BaseException, fallback: str) -> str:
    # Messages quote what the user typed (paths, expressions), which may hold line breaks.
    text = one_line(str(exc).strip())
    return text or fallback


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (2 for mistakes the user can fix).

    Errors of the kinds in :data:`USER_ERRORS` print one line and return 2; a loss that
    became NaN or running out of memory print one line and return 1; Ctrl-C returns 130.
    """
    import torch

    parser = build_parser()
    args = parser.parse_args(argv)
    prefix = f"{parser.prog} {args.command}: error:"
    try:
        return args.handler(args)
    except USER_ERRORS as exc:
        print(f"{prefix} {_one_line(exc, type(exc).__name__)}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except (NonFiniteLossError, MemoryError, torch.cuda.OutOfMemoryError) as exc:
        text = _one_line(exc, "")
        if not isinstance(exc, NonFiniteLossError):
            text = f"out of memory ({text or 'no details'}); use a smaller batch size, model or image size."
        print(f"{prefix} {text}", file=sys.stderr)
        return EXIT_FAILED
