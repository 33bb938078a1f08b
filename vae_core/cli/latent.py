"""The latent-space subcommands of ``python -m vae_core``: ``interpolate`` and ``arithmetic``.

Each handler returns the exit status and raises :class:`~vae_core.errors.CLIError` for
mistakes the user can fix.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from vae_core.cli.common import IntermixedParser, add_data_options, add_model_source, float_range, int_range, load_model_for
from vae_core.errors import CLIError, ExpressionError
from vae_core.export import FPS_MAX, MAX_FRAMES, SUPPORTED_EXTENSIONS, UPSCALE_MAX, export_animation, prepare_frames
from vae_core.latent.expressions import STRENGTH_MAX
from vae_core.resources import check_writable
from vae_core.latent import (EASINGS, IndexOperand, LabelOperand, LatentResolver, decode, encode_dataset,
                             interpolate, parse_expression)
from vae_core.training import DEVICES, resolve_device

__all__ = ["add_commands", "cmd_interpolate", "cmd_arithmetic", "EXPRESSION_HELP"]

EXPRESSION_HELP = """\
expression syntax:
  Terms joined by + and - (− works too); each term is an optional coefficient and
  an operand: 0.5*#12, 0.5#12 and #12*0.5 are the same. Operands:
    #12 or 12            the code of data point 12 (0-based, --split order)
    mean(7) or @7        the centroid of label 7
    mean("Sneaker")      the centroid of a class by name (also @"Sneaker", @Sneaker)
    mean(#1, #5, #9)     the mean of several operands (a bare number inside is a label)
    pin:NAME, group:NAME named vectors (supplied by the desktop app)
  Strength s scales every term after the first: "A - B + C" gives A + s*(C - B).
  Quote the expression for the shell; if it starts with '-', put -- before it.

examples:
  python -m vae_core arithmetic run.safetensors "#12 - mean(7) + mean(3)" --out a.png
  python -m vae_core arithmetic run "mean(Sneaker) - mean(Sandal) + #4031" --strength 0.7 --out b.png
"""

INTERPOLATE_EPILOG = """\
Indices count from 0 in the order of --split (all = the training images, then the
test images). The path starts at --from, passes every --via in order and ends at --to.

examples:
  python -m vae_core interpolate run.safetensors --from 0 --to 7 --steps 48 --out morph.gif
  python -m vae_core interpolate run --from 3 --via 10 22 --to 3 --method slerp \\
      --easing ease-in-out --steps 60 --fps 24 --out loop.mp4
"""


def _index(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a data point index") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"indices count from 0, got {value}")
    return value


def _common(p: argparse.ArgumentParser) -> None:
    add_model_source(p)
    p.add_argument("--dataset", metavar="SPEC", help="dataset spec (default: the one the checkpoint was trained on; "
                                                     "required with --model-file)")
    add_data_options(p)
    p.add_argument("--split", choices=["all", "train", "test"], default="all",
                   help="which images the indices refer to (default: all = train then test)")
    p.add_argument("--label", type=int_range(0, 1_000_000), metavar="L",
                   help="conditional models: the label to decode with, 0 to classes-1 (default: from the first operand)")
    p.add_argument("--upscale", type=int_range(1, UPSCALE_MAX), metavar="K",
                   help=f"enlarge frames K times, nearest neighbour, 1 to {UPSCALE_MAX} (default: about 128 pixels wide)")
    p.add_argument("--device", choices=DEVICES, default="auto", help="device (default: auto)")


def add_commands(subparsers) -> None:
    """Add the ``interpolate`` and ``arithmetic`` subcommands to an argparse subparsers object."""
    formats = ", ".join(SUPPORTED_EXTENSIONS)
    interp = subparsers.add_parser(
        "interpolate", help="animate a path through the latent codes of chosen images",
        description="Encode the chosen images, interpolate between their latent codes and write the decoded "
                    "frames as an animation (or a PNG strip).",
        epilog=INTERPOLATE_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    _common(interp)
    interp.add_argument("--from", dest="start", type=_index, required=True, metavar="I", help="first image index")
    interp.add_argument("--to", dest="end", type=_index, required=True, metavar="J", help="last image index")
    interp.add_argument("--via", type=_index, nargs="+", action="extend", default=[], metavar="K",
                        help="images to pass through on the way, in order")
    interp.add_argument("--steps", type=int_range(1, MAX_FRAMES // 2), default=30, metavar="N",
                        help=f"frames along the path, keyframes included, 1 to {MAX_FRAMES // 2} (default: 30)")
    interp.add_argument("--method", choices=["lerp", "slerp"], default="lerp",
                        help="lerp: straight line; slerp: great circle with linearly changing length")
    interp.add_argument("--easing", choices=list(EASINGS), default="linear",
                        help="speed profile within each segment (default: linear)")
    interp.add_argument("--fps", type=float_range(0.0, FPS_MAX, low_open=True), default=12.0, metavar="F",
                        help=f"frames per second, > 0 and ≤ {FPS_MAX:g} (default: 12)")
    interp.add_argument("--pingpong", action="store_true", help="play forwards then backwards")
    interp.add_argument("--no-loop", action="store_true", help="play once (GIF, WebP, APNG)")
    interp.add_argument("--columns", type=int_range(1, MAX_FRAMES), metavar="N",
                        help=f".png output: frames per row, 1 to {MAX_FRAMES}")
    interp.add_argument("--out", required=True, metavar="FILE", help=f"output file: {formats}")
    interp.set_defaults(handler=cmd_interpolate)

    arith = subparsers.add_parser(
        "arithmetic", help="decode a latent arithmetic expression such as \"#12 - mean(7) + mean(3)\"",
        description="Evaluate a latent arithmetic expression over the dataset's codes and write the decoded "
                    "operands and the result side by side, with captions.",
        epilog=EXPRESSION_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    # add_parser() always builds the subparsers' class; this one (a subclass adding no state)
    # needs intermixed parsing for its optional CHECKPOINT before EXPRESSION.
    arith.__class__ = IntermixedParser
    _common(arith)
    arith.add_argument("expression", metavar="EXPRESSION", help="see 'expression syntax' below")
    arith.add_argument("--strength", type=float_range(-STRENGTH_MAX, STRENGTH_MAX), default=1.0, metavar="S",
                       help=f"scales every term after the first, -{STRENGTH_MAX:g} to {STRENGTH_MAX:g} (default: 1)")
    arith.add_argument("--out", required=True, metavar="FILE.png", help="output image (other formats flip through)")
    arith.set_defaults(handler=cmd_arithmetic)


# ---------------------------------------------------------------------------------------
# Shared steps
# ---------------------------------------------------------------------------------------
def _check_out(path: str) -> None:
    ext = Path(path).suffix.lower()
    if ext not in SUPPORTED_EXTENSIONS:
        raise CLIError(f"Cannot write '{path}': the file name must end in one of {', '.join(SUPPORTED_EXTENSIONS)}.")
    check_writable(path)


def _load(args):
    model, _, data = load_model_for(args)
    device = resolve_device(args.device)
    model = model.to(device).eval()
    split = {"all": data.all, "train": lambda: data.train, "test": lambda: data.test}[args.split]()
    return model, data, split, device


def _check_indices(indices, n: int) -> None:
    for i in indices:
        if i >= n:
            raise CLIError(f"Index {i} is out of range: the dataset has {n} points.")


def _default_upscale(model) -> int:
    return max(1, 128 // max(model.image_shape[1:]))


def _decode_label(args, model, fallback):
    if not getattr(model, "conditional", False):
        return None
    label = args.label if args.label is not None else fallback
    if label is None:
        label = 0
    if not 0 <= int(label) < model.num_classes:
        raise CLIError(f"Label {label} does not exist: this model knows labels 0–{model.num_classes - 1}.")
    return int(label)


def _report(path, frames) -> None:
    n, h, w = frames.shape[:3]
    print(f"wrote {path}  ({n} frame{'s' if n != 1 else ''} of {w}×{h} pixels)", file=sys.stderr)


# ---------------------------------------------------------------------------------------
# interpolate
# ---------------------------------------------------------------------------------------
def cmd_interpolate(args) -> int:
    """Handler of ``python -m vae_core interpolate``."""
    _check_out(args.out)
    model, data, split, device = _load(args)
    chosen = [args.start, *args.via, args.end]
    _check_indices(chosen, len(split))
    if args.steps < len(chosen):
        raise CLIError(f"--steps {args.steps} cannot pass through {len(chosen)} images: use at least {len(chosen)}.")
    labels = None if split.labels is None else split.labels[chosen]
    keys, _ = encode_dataset(model, split.images[chosen], labels if model.conditional else None, device=device)
    codes = interpolate(keys, args.steps, method=args.method, easing=args.easing)
    fallback = None if labels is None else int(labels[0])
    frames = decode(model, codes, _decode_label(args, model, fallback), device=device)
    prepared = prepare_frames(frames, pingpong=args.pingpong, upscale=args.upscale or _default_upscale(model))
    path = export_animation(prepared, args.out, fps=args.fps, loop=not args.no_loop, grid_columns=args.columns)
    _report(path, prepared)
    return 0


# ---------------------------------------------------------------------------------------
# arithmetic
# ---------------------------------------------------------------------------------------
def _captions(expr, strength: float) -> list[str]:
    captions = []
    for k, term in enumerate(expr.terms):
        c = term.coefficient
        body = str(term.operand) if abs(c) == 1 else f"{abs(c):g}*{term.operand}"
        # ASCII signs: PIL's default font has no U+2212 minus glyph.
        if k == 0:
            captions.append(("-" if c < 0 else "") + body)
        else:
            captions.append(("- " if c < 0 else "+ ") + body)
    captions.append("= result" if strength == 1 else f"= result (s={strength:g})")
    return captions


def _first_label(expr, resolver):
    op = expr.terms[0].operand
    if isinstance(op, IndexOperand) and resolver.labels is not None and op.index < len(resolver.labels):
        return int(resolver.labels[op.index])
    if isinstance(op, LabelOperand):
        try:
            return resolver.label_id(op.label)
        except ValueError:
            return None
    return None


def cmd_arithmetic(args) -> int:
    """Handler of ``python -m vae_core arithmetic``."""
    _check_out(args.out)
    try:
        expr = parse_expression(args.expression)
    except ExpressionError as exc:
        raise CLIError(f"{exc} (expression: {args.expression})") from None
    model, data, split, device = _load(args)
    mu, _ = encode_dataset(model, split.images, split.labels if model.conditional else None, device=device)
    resolver = LatentResolver(mu, split.labels, data.class_names)
    try:
        operands = resolver.term_vectors(expr)
        result = resolver.evaluate(expr, args.strength)
    except ExpressionError as exc:
        raise CLIError(str(exc)) from None
    codes = np.stack([*operands, result])
    images = decode(model, codes, _decode_label(args, model, _first_label(expr, resolver)), device=device)
    upscale = args.upscale or _default_upscale(model)
    captions = _captions(expr, args.strength)
    path = export_animation(images, args.out, fps=1.0, upscale=upscale, captions=captions, gap=2)
    print(f"{expr}  (strength {args.strength:g}): wrote {path}", file=sys.stderr)
    return 0
