"""The ``export`` subcommand: a model's encoder and decoder as ONNX and/or TorchScript."""

from __future__ import annotations

import argparse
import sys

from vae_core.cli.common import add_model_source, load_model_for
from vae_core.errors import CLIError

__all__ = ["add_commands", "cmd_export"]

EXPORT_EPILOG = """\
Each format writes encoder and decoder graphs with a dynamic batch axis and a manifest.json
naming their inputs and outputs (see docs/OWN_MODEL.md).

examples:
  python -m vae_core export runs/mnist-conv --onnx export/onnx --torchscript export/torchscript
  python -m vae_core export --model-file my_vae.py --weights model.pt --onnx export/onnx
"""


def add_commands(subparsers) -> None:
    """Add the ``export`` subcommand to an argparse subparsers object."""
    export = subparsers.add_parser(
        "export", help="write a model's encoder and decoder as ONNX and/or TorchScript",
        description="Write the encoder and the decoder of a checkpoint (or of an adapted model) as ONNX "
                    "(--onnx) and/or TorchScript (--torchscript) files, each folder with a manifest.json.",
        epilog=EXPORT_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_source(export)
    export.add_argument("--onnx", metavar="DIR", help="folder for encoder.onnx and decoder.onnx")
    export.add_argument("--torchscript", metavar="DIR", help="folder for encoder.pt and decoder.pt")
    export.set_defaults(handler=cmd_export)


def cmd_export(args: argparse.Namespace) -> int:
    """Handler of ``python -m vae_core export``."""
    from vae_core.model_export import export_onnx, export_torchscript

    if not args.onnx and not args.torchscript:
        raise CLIError("Say where to write the model: --onnx DIR, --torchscript DIR or both.")
    model, name, _ = load_model_for(args, load_data=False)
    for flag, folder, write in (("onnx", args.onnx, export_onnx), ("torchscript", args.torchscript,
                                                                     export_torchscript)):
        if folder:
            manifest = write(model, folder)
            print(f"wrote {name}'s encoder and decoder as {flag} to {manifest.parent}", file=sys.stderr)
    return 0
