"""``train``'s options for objectives and model families: ``--objective``, ``--samples``,
``--alpha``/``--gamma`` and one flag per :data:`vae_core.model_options.MODEL_OPTIONS`."""

from __future__ import annotations

import argparse

from vae_core.cli.common import float_range, int_range
from vae_core.errors import CLIError
from vae_core.model_options import BOOL_WORDS, MAP_LAYER_WORDS, MODEL_OPTIONS, family_config
from vae_core.objectives import OBJECTIVES
from vae_core.training import LIMITS

__all__ = ["add_family_options", "objective_settings", "model_settings", "check_resume_family",
           "IWAE_DEFAULT_SAMPLES"]

#: K when ``--objective iwae`` is given without ``--samples`` (Burda et al. report K = 5 and 50).
IWAE_DEFAULT_SAMPLES = 5


def _layer(text: str) -> str:
    value = text.strip().lower()
    if value in MAP_LAYER_WORDS or (value.isdigit() and int(value) >= 1):
        return value
    raise argparse.ArgumentTypeError(f"must be top, all or a layer number from 1 (got {text})")


_layer.__name__ = "layer"


def _switch(text: str) -> bool:
    value = text.strip().lower()
    if value in BOOL_WORDS:
        return BOOL_WORDS[value]
    raise argparse.ArgumentTypeError(f"must be on or off (got {text})")


_switch.__name__ = "on/off"


def add_family_options(parser: argparse.ArgumentParser) -> None:
    """Add the objective options and every model family's options to ``train``."""
    group = parser.add_argument_group("objective")
    group.add_argument("--objective", choices=list(OBJECTIVES), default="elbo",
                       help="what training minimizes: " + "; ".join(f"{k}: {v}" for k, v in OBJECTIVES.items())
                            + " (default: elbo)")
    low, high = LIMITS["samples"]
    group.add_argument("--samples", type=int_range(low, high), metavar="K",
                       help=f"iwae only: importance samples per image, {low} to {high} "
                            f"(default: {IWAE_DEFAULT_SAMPLES}; K=1 is the ELBO)")
    for name, what in (("alpha", "weight of the index-code mutual information"),
                       ("gamma", "weight of the dimension-wise KL")):
        low, high = LIMITS[name]
        group.add_argument(f"--{name}", type=float_range(low, high), metavar=name[0].upper(),
                           help=f"tcvae only: {what}, {low:g} to {high:g} (default: 1); "
                                "--beta weights the total correlation")

    group = parser.add_argument_group("model families (hvae, iaf, vaegan, vqvae)")
    for option in MODEL_OPTIONS:
        models = "/".join(option.models)
        default = option.default
        shown = " ".join(map(str, default)) if isinstance(default, tuple) else default
        help_text = f"{models} only: {option.help[0].lower()}{option.help[1:].rstrip('.')}"
        if option.kind == "int":
            kwargs = dict(type=int_range(int(option.low), int(option.high)), metavar="N")
            help_text += f"; {option.range_text}"
        elif option.kind == "float":
            kwargs = dict(type=float_range(option.low, option.high, low_open=option.low_open), metavar="W")
            help_text += f"; {option.range_text}"
        elif option.kind == "ints":
            kwargs = dict(type=int_range(int(option.low), int(option.high)), nargs="+", metavar="N")
            help_text += f"; each {option.range_text}"
        elif option.kind == "choice":
            kwargs = dict(choices=list(option.choices))
        elif option.kind == "bool":
            kwargs = dict(type=_switch, metavar="on|off")
            shown = "on" if default else "off"
        else:
            kwargs = dict(type=_layer, metavar="LAYER")
        group.add_argument(option.flag, dest=option.name, **kwargs, help=f"{help_text} (default: {shown})")


def objective_settings(args: argparse.Namespace) -> dict:
    """``TrainConfig`` keyword arguments of the objective options; a stray option is an error."""
    objective = args.objective
    if args.samples is not None and objective != "iwae":
        raise CLIError(f"--samples applies to --objective iwae only (the objective is {objective}).")
    for name in ("alpha", "gamma"):
        if getattr(args, name) is not None and objective != "tcvae":
            raise CLIError(f"--{name} applies to --objective tcvae only (the objective is {objective}).")
    settings = {"objective": objective}
    if objective == "iwae":
        settings["samples"] = args.samples if args.samples is not None else IWAE_DEFAULT_SAMPLES
    if objective == "tcvae":
        settings.update(alpha=args.alpha if args.alpha is not None else 1.0,
                        gamma=args.gamma if args.gamma is not None else 1.0)
    return settings


def _given(args: argparse.Namespace) -> dict:
    return {o.name: getattr(args, o.name) for o in MODEL_OPTIONS if getattr(args, o.name, None) is not None}


def model_settings(args: argparse.Namespace, model: str, latent_dim: int) -> dict:
    """The family options of ``model`` from the command line, checked (``ConfigError``).

    An option of another family is a :class:`CLIError`: it would otherwise be ignored.
    """
    given = _given(args)
    for option in MODEL_OPTIONS:
        if option.name in given and model not in option.models:
            raise CLIError(f"{option.flag} applies to --model {'/'.join(option.models)} only, not {model}.")
    hidden = args.hidden if model == "hvae" else None
    return family_config(model, {**given, "latent_dim": latent_dim}, hidden=hidden)


def check_resume_family(args: argparse.Namespace, ckpt) -> None:
    """A resumed run keeps its model: a family option that asks for another one is an error."""
    for name, value in _given(args).items():
        kept = getattr(ckpt.config, name, None)
        if kept is None:
            raise CLIError(f"--{name.replace('_', '-')} does not apply to the resumed {ckpt.model_name} model.")
        if (tuple(value) if isinstance(value, list) else value) != kept:
            shown = " ".join(map(str, value)) if isinstance(value, list) else value
            raise CLIError(f"--{name.replace('_', '-')} {shown} differs from the resumed checkpoint ({kept}): a "
                           "resumed run keeps its model; leave it out or train a new model without --resume.")
