"""Model registry: a registry name maps to a model class and its config dataclass.

Checkpoints store the registry name and the config fields, never a class path, so a
checkpoint stays loadable when modules move.

This module is a leaf: it imports nothing from vae_core, so model modules can import
:func:`register_model` without a cycle. ``import vae_core`` imports ``vae_core.models``,
which registers the built-in models before any lookup can happen.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

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


def model_config_class(name: str) -> type:
    """The config dataclass of model ``name``."""
    return _lookup(name)[1]


def config_from_dict(name: str, values: dict[str, Any]):
    """Build model ``name``'s config from a plain dict, rejecting unknown keys.

    Lists are turned back into tuples so that a config read from JSON compares equal
    to the one that was saved.
    """
    config_cls = model_config_class(name)
    fields = {f.name for f in dataclasses.fields(config_cls)}
    unknown = sorted(set(values) - fields)
    if unknown:
        raise ValueError(
            f"Unknown setting(s) for model {name!r}: {', '.join(unknown)}. "
            f"Valid settings: {', '.join(sorted(fields))}."
        )
    clean = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
    try:
        return config_cls(**clean)
    except TypeError as exc:  # a required field is missing
        raise ValueError(f"Invalid settings for model {name!r}: {exc}") from None


def build_model(name: str, **config: Any):
    """Instantiate registered model ``name`` with the given config values."""
    model_cls, _ = _lookup(name)
    return model_cls(config_from_dict(name, config))


def _lookup(name: str) -> tuple[type, type]:
    try:
        return _MODELS[name]
    except KeyError:
        raise ValueError(
            f"Unknown model {name!r}. Available models: {', '.join(_MODELS)}."
        ) from None
