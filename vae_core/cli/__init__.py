"""Command line: ``python -m vae_core {train,evaluate,interpolate,arithmetic}``.

Errors the user can fix (bad arguments, missing data, a checkpoint that does not fit)
print one line and exit with status 2; nothing prints a traceback.

``parser`` builds the parser and runs it (:func:`main`), ``common`` holds what every
subcommand shares, and there is one module per command group: ``train`` (train,
evaluate) and ``latent`` (interpolate, arithmetic).
"""

from vae_core.cli.common import EXIT_INTERRUPTED, EXIT_USAGE, load_checkpoint_for, load_data_from_args
from vae_core.cli.parser import build_parser, main

__all__ = ["main", "build_parser", "load_data_from_args", "load_checkpoint_for", "EXIT_USAGE", "EXIT_INTERRUPTED"]
