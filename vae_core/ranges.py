"""Range checks for numeric settings, with one wording everywhere.

The library (:class:`~vae_core.training.TrainConfig`, :func:`~vae_core.metrics.evaluate`,
the export options) and the command line (``argparse`` ``type=`` functions in
:mod:`vae_core.cli.common`) both check a number against its documented range with
:func:`whole` and :func:`real`, so a value is refused with the same sentence from
Python and from the shell: "beta must be a finite number from 0 to 1000 (got nan)".
NaN and infinities are never in a range; booleans are not numbers.
"""

from __future__ import annotations

import math
import numbers

from vae_core.errors import ConfigError

__all__ = ["whole", "real", "range_text"]


def range_text(low=None, high=None, *, low_open: bool = False, integer: bool = False) -> str:
    """``"from 1 to 100"``, ``"≥ 0"``, ``"> 0"``, ``"> 0 and ≤ 10"`` (for help texts)."""
    noun = "a whole number" if integer else "a finite number"
    if low is not None and high is not None and not low_open:
        return f"{noun} from {low:g} to {high:g}" if not integer else f"{noun} from {low} to {high}"
    parts = []
    if low is not None:
        parts.append(f"{'>' if low_open else '≥'} {low:g}")
    if high is not None:
        parts.append(f"≤ {high:g}")
    return f"{noun} {' and '.join(parts)}".rstrip()


def _shown(value) -> str:
    text = repr(value) if not isinstance(value, float) else f"{value:g}"
    return text if len(text) <= 40 else text[:37] + "..."


def whole(name: str, value, low: int | None = None, high: int | None = None) -> int:
    """``value`` as an int if it is a whole number in ``[low, high]``; else :class:`ConfigError`."""
    ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if ok:
        value = int(value)
        ok = (low is None or value >= low) and (high is None or value <= high)
    if not ok:
        raise ConfigError(f"{name} must be {range_text(low, high, integer=True)} (got {_shown(value)}).")
    return value


def real(name: str, value, low: float | None = None, high: float | None = None, *,
         low_open: bool = False) -> float:
    """``value`` as a float if it is finite and in its range; else :class:`ConfigError`.

    ``low_open`` excludes ``low`` itself (``> 0`` rather than ``≥ 0``).
    """
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if ok:
        try:
            value = float(value)
        except OverflowError:  # an int beyond float's range
            ok = False
    if ok:
        ok = (math.isfinite(value) and (low is None or value > low or (value == low and not low_open))
              and (high is None or value <= high))
    if not ok:
        raise ConfigError(f"{name} must be {range_text(low, high, low_open=low_open)} (got {_shown(value)}).")
    return value
