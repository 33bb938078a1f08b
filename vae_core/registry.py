"""Model registry: a registry name maps to a model class and its config dataclass.

Checkpoints store the registry name and the config fields, never a class path, so a
checkpoint stays loadable when modules move.

This module imports only the leaves :mod:`vae_core.errors` and :mod:`vae_core.resources`,
so model modules can import :func:`register_model` without a cycle. ``import vae_core`` imports ``vae_core.models``,
which registers the built-in models before any lookup can happen.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from typing import Any, Callable

from vae_core.errors import ConfigError
from vae_core.resources import check_memory

#: Bytes per parameter when a model is built: float32 weights. Training needs about four
#: times as much (weights, gradients and Adam's two moments).
BYTES_PER_PARAMETER = 4

_MODELS: dict[str, tuple[type, type]] = {}


def register_model(name: str, config: type) -> Callable[[type], type]:
    """Class decorator registering a :class:`~vae_core.models.base.BaseVAE` subclass."""

    def decorator(cls: type) -> type:
        if name in _MODELS:
            raise ValueError(f"A model named {name!r} is already registered.")
        cls.name = name
        cls.config_class = config
        _MODELS[name] = (cls, config)
        return cls

    return decorator


def list_models() -> list[str]:
    """Names of all registered models, in registration order."""
    return list(_MODELS)


def model_description(name: str) -> str:
    """The one-line ``description`` of model ``name`` (for pickers and ``--help``)."""
    return _lookup(name)[0].description


def model_config_class(name: str) -> type:
    """The config dataclass of model ``name``."""
    return _lookup(name)[1]


def config_from_dict(name: str, values: dict[str, Any]):
    """Build model ``name``'s config from a plain dict, rejecting unknown keys.

    Lists are turned back into tuples so that a config read from JSON compares equal
    to the one that was saved.
    """
    config_cls = model_config_class(name)
    if not isinstance(values, dict):
        raise ConfigError(f"The settings of model {name!r} must be a mapping of names to values, not {type(values).__name__}.")
    fields = {f.name for f in dataclasses.fields(config_cls)}
    unknown = sorted(set(values) - fields)
    if unknown:
        raise ConfigError(
            f"Unknown setting(s) for model {name!r}: {', '.join(unknown)}. "
            f"Valid settings: {', '.join(sorted(fields))}."
        )
    for f in dataclasses.fields(config_cls):
        if f.name in values:
            _check_kind(name, f, values[f.name])
    clean = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
    try:
        return config_cls(**clean)
    except TypeError as exc:  # a required field is missing
        raise ConfigError(f"Invalid settings for model {name!r}: {exc}") from None


def _default(field: dataclasses.Field):
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return None


def _same_kind(value, example) -> bool:
    if isinstance(example, bool):
        return isinstance(value, bool)
    if isinstance(example, numbers.Integral):
        return isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if isinstance(example, numbers.Real):
        return isinstance(value, numbers.Real) and not isinstance(value, bool)
    if isinstance(example, str):
        return isinstance(value, str)
    if isinstance(example, (tuple, list)):
        if not isinstance(value, (tuple, list)):
            return False
        return not example or all(_same_kind(v, example[0]) for v in value)
    return True


def _kind_text(example) -> str:
    if isinstance(example, bool):
        return "true or false"
    if isinstance(example, numbers.Integral):
        return "a whole number"
    if isinstance(example, numbers.Real):
        return "a number"
    if isinstance(example, str):
        return "a text"
    if isinstance(example, (tuple, list)):
        return f"a list of {_kind_text(example[0]).replace('a ', '', 1)}s" if example else "a list"
    return type(example).__name__


def _check_kind(name: str, field: dataclasses.Field, value) -> None:
    # Settings read from JSON may have any type; the field's default says which one fits,
    # so a new model's config is checked without code of its own.
    example = _default(field)
    if example is None or _same_kind(value, example):
        return
    shown = repr(value)
    shown = shown if len(shown) <= 40 else shown[:37] + "..."
    raise ConfigError(f"The setting {field.name} of model {name!r} must be {_kind_text(example)}, not {shown}.")


def parameter_shapes(name: str, **config: Any) -> dict[str, tuple[int, ...]]:
    """Shapes of the ``state_dict`` that model ``name`` would have, without allocating it.

    The model is built on PyTorch's ``meta`` device, which records shapes but no data,
    so a config asking for 10^12 parameters costs nothing here.

    Raises
    ------
    ConfigError
        For an unknown setting or a value of the wrong type or range.
    """
    import torch

    model_cls, _ = _lookup(name)
    values = config_from_dict(name, config)
    try:
        # Sizing must not change what the real build draws: a model that builds part of
        # itself on the CPU (iaf's flow steps) would otherwise consume the global RNG here.
        with torch.random.fork_rng(devices=[]), torch.device("meta"):
            model = model_cls(values)
    except (ValueError, TypeError, IndexError, RuntimeError, OverflowError) as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"Model {name!r} cannot be built with these settings: {exc}") from None
    return {key: tuple(t.shape) for key, t in model.state_dict().items()}


def parameter_count(name: str, **config: Any) -> int:
    """Number of values in model ``name``'s ``state_dict`` (see :func:`parameter_shapes`)."""
    return sum(math.prod(shape) for shape in parameter_shapes(name, **config).values())


def build_model(name: str, **config: Any):
    """Instantiate registered model ``name`` with the given config values.

    Raises
    ------
    ConfigError
        For unknown settings, or values of the wrong type or outside their range.
    ResourceError
        When the weights alone would not fit in the available memory (checked on the
        ``meta`` device, before anything is allocated).
    """
    model_cls, _ = _lookup(name)
    count = parameter_count(name, **config)
    check_memory(count * BYTES_PER_PARAMETER, f"A {name!r} model with {count:,} parameters",
                 "choose a smaller image size, latent size or hidden layers")
    return model_cls(config_from_dict(name, config))


def _lookup(name: str) -> tuple[type, type]:
    try:
        return _MODELS[name]
    except KeyError:
        raise ConfigError(
            f"Unknown model {name!r}. Available models: {', '.join(_MODELS)}."
        ) from None
