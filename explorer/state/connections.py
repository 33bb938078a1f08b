"""One way to hold signal connections and undo them together (psygnal or Qt signals).

Qt-free on purpose: widgets (``explorer.ui``) and background jobs (``explorer.jobs``) both
listen to the document's psygnal signals and must stop listening when they close; an owner
only needs a ``destroyed`` signal, which every QObject has.
"""

from __future__ import annotations


class Connections:
    """Connections from signals (psygnal or Qt) to slots, undone all at once.

    With an ``owner``, everything is disconnected when the owner is destroyed, so a closed
    panel never receives a state signal.

    Parameters
    ----------
    owner : object with a ``destroyed`` signal (a QObject), optional
        The widget or job whose slots are connected.
    """

    def __init__(self, owner=None) -> None:
        pairs: list = []
        self._pairs = pairs
        if owner is not None:
            # The closure holds the list, not `self`, so the owner's destroyed signal does
            # not keep this object (or anything else) alive.
            owner.destroyed.connect(lambda *_: _disconnect_pairs(pairs))

    def connect(self, signal, slot) -> None:
        """Connect ``slot`` to ``signal`` and remember the pair."""
        signal.connect(slot)
        self._pairs.append((signal, slot))

    def connect_all(self, pairs) -> None:
        """:meth:`connect` each ``(signal, slot)`` of ``pairs``."""
        for signal, slot in pairs:
            self.connect(signal, slot)

    def disconnect_all(self) -> None:
        """Undo every connection made so far (ones already gone are skipped)."""
        _disconnect_pairs(self._pairs)

    def __len__(self) -> int:
        return len(self._pairs)


def _disconnect_pairs(pairs: list) -> None:
    for signal, slot in pairs:
        try:
            signal.disconnect(slot)
        except (ValueError, RuntimeError, TypeError):
            pass  # already disconnected, or the Qt sender is gone
    pairs.clear()
