"""The ``python -m vae_core`` parser and entry point; each command group adds its own
subcommands (:mod:`vae_core.cli.train`, :mod:`vae_core.cli.latent`)."""

from __future__ import annotations

import argparse
import sys

from vae_core.cli import latent, train
from vae_core.cli.common import EXIT_INTERRUPTED, EXIT_USAGE, OneLineErrorParser
from vae_core.errors import CheckpointError, CLIError, DatasetError

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The full parser; every subcommand stores its handler as ``handler``."""
    parser = OneLineErrorParser(prog="python -m vae_core",
                                description="Train, evaluate and explore variational autoencoders.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineErrorParser)
    train.add_commands(sub)
    latent.add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (2 for mistakes the user can fix)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except (CLIError, DatasetError, CheckpointError, ValueError, FileNotFoundError) as exc:
        print(f"{parser.prog} {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except RuntimeError as exc:  # e.g. NaN loss, out of memory: explain in one line
        print(f"{parser.prog} {args.command}: error: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 1
