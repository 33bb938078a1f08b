"""Engine modules imported on first use: the one lazy-import helper of the application.

Importing ``vae_core`` loads torch, which takes seconds on a small machine. The window is
shown, and the application state built, before that happens (see :mod:`explorer.app`), so
modules that only need the engine inside their methods name it through :class:`LazyModule`
instead of importing it at the top.
"""

from __future__ import annotations

import importlib


class LazyModule:
    """A module that is imported when one of its attributes is first read.

    Parameters
    ----------
    name
        The dotted module name, e.g. ``"vae_core.latent"``.

    Examples
    --------
    >>> vl = LazyModule("vae_core.latent")   # nothing imported yet
    >>> vl.EASINGS["linear"]                 # doctest: +SKIP
    """

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attribute: str):
        return getattr(importlib.import_module(self._name), attribute)

    def __repr__(self) -> str:
        return f"LazyModule({self._name!r})"


def lazy_names(module_name: str, names: dict[str, str]):
    """A module-level ``__getattr__`` (PEP 562) that imports ``names`` on first use.

    Parameters
    ----------
    module_name
        The ``__name__`` of the module that assigns the result to its ``__getattr__``
        (for the error message).
    names
        Exported name → ``"module"`` (the same name there) or ``"module:attribute"``.
    """

    def __getattr__(name: str):
        if name not in names:
            raise AttributeError(f"module {module_name!r} has no attribute {name!r}")
        module, _, attribute = names[name].partition(":")
        return getattr(LazyModule(module), attribute or name)

    return __getattr__
