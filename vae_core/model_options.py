"""The settings of each model family that people choose, with their documented ranges.

The command line (``train --flow-steps 4``) and the application's Training panel both
read :data:`MODEL_OPTIONS`, so a setting has one range, one help text and one error
wording (:mod:`vae_core.ranges`) wherever it is typed. The model configs keep their own
structural checks; these ranges are what a person may ask for.

:func:`family_config` turns chosen values into the keyword arguments of
:func:`vae_core.registry.build_model`, filling what a choice implies (an ``hvae`` with
three stochastic layers needs three hidden widths).
"""

from __future__ import annotations

from dataclasses import dataclass

from vae_core.errors import ConfigError
from vae_core.ranges import range_text, real, whole

__all__ = ["ModelOption", "MODEL_OPTIONS", "options_for", "check_model_option", "family_config",
           "MAP_LAYER_WORDS", "BOOL_WORDS"]

#: ``map_layer`` values besides a layer number.
MAP_LAYER_WORDS = ("top", "all")


@dataclass(frozen=True)
class ModelOption:
    """One model setting people choose.

    Attributes
    ----------
    name : str
        The config field (``flow_steps``); the CLI flag is ``--flow-steps``.
    models : tuple of str
        The registered models that have it.
    kind : {"int", "float", "ints", "choice", "layer", "bool"}
        ``ints`` is one or more whole numbers; ``layer`` is ``top``, ``all`` or a layer number;
        ``bool`` is on or off.
    low, high : number or None
        The documented range (each number of an ``ints``).
    low_open : bool
        ``low`` itself is excluded (``> 0``).
    choices : tuple of str
        The values of a ``choice``.
    default
        The config's default, for help texts and forms.
    help : str
        What it does, one sentence (tooltips and ``--help``).
    """

    name: str
    models: tuple[str, ...]
    kind: str
    help: str
    default: object
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()
    low_open: bool = False

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def range_text(self) -> str:
        """``"a whole number from 0 to 64"`` (empty for choices)."""
        if self.kind in ("int", "ints"):
            return range_text(self.low, self.high, integer=True)
        if self.kind == "float":
            return range_text(self.low, self.high, low_open=self.low_open)
        return ""


MODEL_OPTIONS: tuple[ModelOption, ...] = (
    ModelOption("flow_steps", ("iaf",), "int", "Inverse autoregressive flow steps after the Gaussian posterior; "
                "more steps give a more flexible (non-Gaussian) posterior, 0 gives a plain Gaussian VAE.",
                2, 0, 64),
    ModelOption("lower_dims", ("hvae",), "ints", "Sizes of the stochastic layers below the top one, bottom first: "
                "one number per extra layer (the top layer has the latent dimensions).", (100,), 1, 4096),
    ModelOption("depth", ("hvae",), "int", "Deterministic (tanh) layers between two stochastic layers.", 2, 1, 16),
    ModelOption("backbone", ("hvae",), "choice", "What reads and writes the image: fully connected (mlp) or "
                "convolutions (conv, for larger images).", "mlp", choices=("mlp", "conv")),
    ModelOption("inference", ("hvae",), "choice", "How the posterior is computed: bottom-up (Burda et al.) or "
                "top-down (ladder VAE); auto picks bottom-up for mlp and top-down for conv.", "auto",
                choices=("auto", "bottom-up", "top-down")),
    ModelOption("map_layer", ("hvae",), "layer", "Which code the map shows: the top layer, all layers "
                "concatenated, or one layer by number (1 is the bottom).", "top"),
    ModelOption("gan_weight", ("vaegan",), "float", "Weight of the adversarial loss: how hard the decoder tries to "
                "fool the discriminator (0 trains a plain conv VAE).", 1.0, 0.0, 1000.0),
    ModelOption("feature_weight", ("vaegan",), "float", "Weight of the reconstruction error measured in the "
                "discriminator's features (what sharpens the images).", 1.0, 0.0, 1000.0),
    # vqvae's code dimension is latent_dim (--latent-dim, the panel's "Latent dimensions").
    ModelOption("codebook_size", ("vqvae",), "int", "Number of codebook entries (K, the discrete codes) each "
                "grid cell chooses from.", 256, 2, 65_536),
    ModelOption("commitment_weight", ("vqvae",), "float", "β of the commitment loss that pulls the encoder's "
                "vectors towards their codebook entries (van den Oord et al. use 0.25).", 0.25, 0.0, 1000.0),
    ModelOption("ema", ("vqvae",), "bool", "Move the codebook by exponential moving averages of the vectors "
                "assigned to each entry (on) or by a codebook loss through the optimizer (off).", True),
    ModelOption("ema_decay", ("vqvae",), "float", "Decay of the codebook's moving averages: closer to 1 moves "
                "the entries more slowly.", 0.99, 0.0, 0.99999, low_open=True),
    ModelOption("dead_code_threshold", ("vqvae",), "float", "An entry used fewer times per batch than this "
                "(moving average) restarts at an encoder output of the batch; 0 never restarts.", 1.0, 0.0, 1e6),
    ModelOption("prior_width", ("vqvae",), "int", "Width of the autoregressive prior over code grids (a causal "
                "transformer, trained afterwards by train-prior).", 64, 1, 4096),
    ModelOption("prior_layers", ("vqvae",), "int", "Transformer layers of the prior over code grids.", 2, 1, 64),
    ModelOption("prior_heads", ("vqvae",), "int", "Attention heads of the prior over code grids; the prior's "
                "width must be a multiple of it.", 4, 1, 64),
)

#: Words the command line accepts for a ``bool`` option.
BOOL_WORDS = {"on": True, "true": True, "yes": True, "1": True, "off": False, "false": False, "no": False, "0": False}


def options_for(model: str) -> tuple[ModelOption, ...]:
    """The options of one registered model (empty for ``mlp``, ``conv``, ``cvae``)."""
    return tuple(o for o in MODEL_OPTIONS if model in o.models)


def check_model_option(option: ModelOption, value):
    """``value`` checked against ``option``'s range; :class:`ConfigError` (one sentence) if not.

    Returns the value in the config's type (a tuple for ``ints``, a string for ``layer``).
    """
    name = option.name
    if option.kind == "int":
        return whole(name, value, option.low, option.high)
    if option.kind == "float":
        return real(name, value, option.low, option.high, low_open=option.low_open)
    if option.kind == "bool":
        if isinstance(value, str) and value.strip().lower() in BOOL_WORDS:
            return BOOL_WORDS[value.strip().lower()]
        if not isinstance(value, bool):
            raise ConfigError(f"{name} must be on or off (got {value!r}).")
        return value
    if option.kind == "ints":
        values = (value,) if isinstance(value, int) else tuple(value)
        if not values:
            raise ConfigError(f"{name} needs at least one size.")
        return tuple(whole(name, v, option.low, option.high) for v in values)
    if option.kind == "choice":
        if value not in option.choices:
            raise ConfigError(f"{name} must be one of {', '.join(option.choices)} (got {value!r}).")
        return value
    text = str(value).strip().lower()
    if text not in MAP_LAYER_WORDS and not (text.isdigit() and int(text) >= 1):
        raise ConfigError(f"{name} must be top, all or a layer number from 1 (got {value!r}).")
    return text


def family_config(model: str, values: dict, *, hidden=None) -> dict:
    """Checked model settings for ``build_model(model, ...)`` from chosen ``values``.

    Parameters
    ----------
    values : dict
        Option names to values; options the model does not have are ignored, missing
        ones keep the config's default.
    hidden : sequence of int, optional
        The hidden sizes asked for. An ``hvae`` needs one width per stochastic layer:
        one number is used for every layer, and none gives each layer twice its size
        (Burda et al.'s 100 → 200, 50 → 100).

    Returns
    -------
    dict
        The model's option values, plus ``hidden`` for an ``hvae`` whose layers were chosen.

    Raises
    ------
    ConfigError
        A value outside its range, a map layer the hierarchy does not have, or a vqvae
        prior width that its heads do not divide.
    """
    config = {}
    for option in options_for(model):
        if option.name in values and values[option.name] is not None:
            config[option.name] = check_model_option(option, values[option.name])
    if model == "vqvae":
        width, heads = config.get("prior_width", 64), config.get("prior_heads", 4)
        if width % heads:
            raise ConfigError(f"prior_width ({width}) must be a multiple of prior_heads ({heads}).")
    if model == "hvae":
        lower = config.get("lower_dims", (100,))
        layers = len(lower) + 1
        layer = config.get("map_layer", "top")
        if layer.isdigit() and int(layer) > layers:
            raise ConfigError(f"map_layer {layer} does not exist: this hierarchy has {layers} stochastic layers "
                              f"(1 to {layers}).")
        widths = tuple(int(h) for h in hidden) if hidden else ()
        if len(widths) == 1:
            widths = widths * layers
        if widths and len(widths) != layers:
            raise ConfigError(f"An hvae with {layers} stochastic layers needs one hidden width per layer "
                              f"({layers} numbers) or one for all, got {len(widths)}.")
        if widths or "lower_dims" in config:
            latent = values.get("latent_dim")
            config["hidden"] = widths or tuple(2 * size for size in (*lower, latent or 50))
    return config
