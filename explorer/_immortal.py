"""Keep ``None``, ``True`` and ``False`` alive under PySide6 6.12 on CPython 3.11.

PySide6 6.12's bindings give back one reference too many when a method returns ``None``
(every ``void`` C++ method: ``update()``, ``setPen()``, ``QPainter.save()``…) and when a
signal's ``emit()`` returns ``True``. On CPython 3.12 and later these singletons are
immortal and nothing happens. On 3.11 their reference counts fall with every such call
until the interpreter aborts with "Fatal Python error: none_dealloc: deallocating None"
(or ``bool_dealloc``) — after a few thousand signal emissions or some minutes of live
plots. This gives them the effectively unlimited count that 3.12 gives them.

Imported for its side effect by the modules that drive Qt at high rates
(:mod:`explorer.map_state`, :mod:`explorer.widgets.latent_map`); idempotent.
"""

from __future__ import annotations

import sys

_HEADROOM = 1 << 40


def immortalize_singletons() -> bool:
    """Raise the reference counts of None, True and False far out of reach; True if done."""
    if sys.implementation.name != "cpython" or sys.version_info >= (3, 12):
        return False
    import ctypes

    for obj in (None, True, False):
        # ob_refcnt is the first field of every object in a release build of CPython.
        count = ctypes.c_ssize_t.from_address(id(obj))
        if count.value < _HEADROOM:
            count.value += _HEADROOM
    return True


immortalize_singletons()
