"""Small Qt helpers shared by the window and every panel.

One place for what used to be written two or three times with different behaviour:

* :func:`to_uint8` / :func:`to_uint8_hwc` / :func:`to_qimage` — the one conversion from
  image arrays to 8-bit pixels and ``QImage``s (round half up, NaN black);
* :func:`is_dark` — the one test for a dark theme;
* :class:`Connections` — signal connections that end with their widget;
* :func:`safe_paint`, :class:`MutedLabel`, :class:`StatusLabel` and :class:`WrappedLabel`;
* :class:`FlowLayout` — a layout that wraps its widgets onto more rows;
* :class:`Deferred` — work for a later turn of the event loop, one task of the whole window
  a turn (:class:`TurnQueue`).
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import shiboken6
from PySide6 import QtCore, QtGui, QtWidgets

from explorer.state.connections import Connections

__all__ = ["Connections", "Deferred", "FlowLayout", "TurnQueue", "MutedLabel", "StatusLabel", "WrappedLabel", "is_dark",
           "safe_paint", "to_qimage", "to_uint8", "to_uint8_hwc"]


# ---------------------------------------------------------------------------------------
# Images
# ---------------------------------------------------------------------------------------
def to_uint8(image) -> np.ndarray:
    """Pixel values in [0, 1] as ``uint8``: ``x · 255`` rounded half up, clipped to 0…255.

    NaN and −inf become 0 (black), +inf 255. ``uint8`` input is returned unchanged. The
    product is taken in the input's own float precision, so that a float32 ``k.5 / 255``
    lands exactly on ``k.5`` and rounds to ``k + 1`` (``np.rint`` would round half of
    those cases down, to the even neighbour).
    """
    a = np.asarray(image)
    if a.dtype == np.uint8:
        return a
    if a.dtype not in (np.float32, np.float64):
        a = a.astype(np.float32)
    y = np.nan_to_num(a, nan=0.0, posinf=1.0, neginf=0.0) * 255.0
    # floor(y + 0.5) would round 0.49999997 up in float32; comparing the exact remainder does not.
    r = np.floor(y)
    r += (y - r) >= 0.5
    return np.clip(r, 0, 255).astype(np.uint8)


def to_uint8_hwc(image, *, channels_first: bool | None = None) -> np.ndarray:
    """An image as contiguous ``uint8`` ``H×W×C`` (C = 1, 3 or 4).

    Parameters
    ----------
    image : array_like
        ``C×H×W`` (decoder output), ``H×W×C`` or ``H×W``; floats in [0, 1] or ``uint8``.
    channels_first : bool, optional
        Whether a 3-D ``image`` is ``C×H×W``. By default a float array whose first axis
        has 1, 3 or 4 entries and whose last does not is taken as ``C×H×W`` (decoder
        images), anything else as ``H×W×C`` (exported frames are ``uint8`` ``H×W×C``).
    """
    a = np.asarray(image)
    if a.ndim == 3:
        if channels_first is None:
            channels_first = a.dtype != np.uint8 and a.shape[0] in (1, 3, 4) and a.shape[2] not in (1, 3, 4)
        if channels_first:
            a = a.transpose(1, 2, 0)
    elif a.ndim == 2:
        a = a[:, :, None]
    else:
        raise ValueError(f"Expected an image of 2 or 3 dimensions, got an array of shape {a.shape}.")
    return np.ascontiguousarray(to_uint8(a))


_FORMATS = {1: QtGui.QImage.Format.Format_Grayscale8, 3: QtGui.QImage.Format.Format_RGB888,
            4: QtGui.QImage.Format.Format_RGBA8888}


def to_qimage(image, *, channels_first: bool | None = None) -> QtGui.QImage:
    """A ``QImage`` that owns its pixels, from any image :func:`to_uint8_hwc` accepts.

    One channel gives a grayscale image, three RGB, four RGBA.
    """
    a = to_uint8_hwc(image, channels_first=channels_first)
    h, w, c = a.shape
    if c not in _FORMATS:
        raise ValueError(f"An image needs 1, 3 or 4 channels, not {c}.")
    # copy(): the QImage must own its pixels once `a` goes away.
    return QtGui.QImage(a.data, w, h, w * c, _FORMATS[c]).copy()


# ---------------------------------------------------------------------------------------
# Theme
# ---------------------------------------------------------------------------------------
def is_dark(palette: QtGui.QPalette | None = None) -> bool:
    """Whether ``palette`` (default: the application's) is a dark theme.

    Decided by the Window role, the colour behind every panel: Fusion's light palettes and
    our dark one differ there by more than 150 levels of lightness.
    """
    palette = palette or QtGui.QGuiApplication.palette()
    return palette.color(QtGui.QPalette.ColorRole.Window).lightness() < 128


# ---------------------------------------------------------------------------------------
# Connections
# ---------------------------------------------------------------------------------------
# ---------------------------------------------------------------------------------------
# Painting and labels
# ---------------------------------------------------------------------------------------
def safe_paint(paint):
    """Keep exceptions out of Qt's paint loop (PySide6 does not survive them well): print once."""
    reported: set[str] = set()

    def wrapper(self, painter, *args):
        try:
            paint(self, painter, *args)
        except Exception as exc:
            if type(exc).__name__ not in reported:
                reported.add(type(exc).__name__)
                import traceback

                traceback.print_exc()

    wrapper.__name__, wrapper.__doc__ = paint.__name__, paint.__doc__
    return wrapper


class MutedLabel(QtWidgets.QLabel):
    """A label in a colour between the text and the background, in light and dark themes."""

    def __init__(self, text: str = "", parent=None):
        super().__init__(text, parent)
        self._mute()

    def _mute(self) -> None:
        palette = self.palette()
        text = palette.color(QtGui.QPalette.ColorRole.WindowText)
        window = palette.color(QtGui.QPalette.ColorRole.Window)
        mixed = QtGui.QColor((text.red() * 6 + window.red() * 4) // 10, (text.green() * 6 + window.green() * 4) // 10,
                             (text.blue() * 6 + window.blue() * 4) // 10)
        if palette.color(QtGui.QPalette.ColorRole.WindowText) != mixed:
            palette.setColor(QtGui.QPalette.ColorRole.WindowText, mixed)
            self._muting = True
            self.setPalette(palette)
            self._muting = False

    def changeEvent(self, ev) -> None:
        super().changeEvent(ev)
        if ev.type() == QtCore.QEvent.Type.PaletteChange and not getattr(self, "_muting", False):
            # A theme change: start again from the application's palette.
            self._muting = True
            self.setPalette(QtGui.QPalette())
            self._muting = False
            self._mute()


class StatusLabel(MutedLabel):
    """A muted line of status text that never changes the layout around it.

    A plain label asks for the width of its whole text: a long status line under the map
    made the window itself grow by 120 pixels when the first codes arrived, and every text
    change re-laid out the panel. This one takes the width it is given, shows its text
    elided to it, and the whole text in its tooltip when elided.
    """

    def __init__(self, text: str = "", parent=None):
        super().__init__(text, parent)
        self.setTextFormat(QtCore.Qt.TextFormat.PlainText)
        self.setSizePolicy(QtWidgets.QSizePolicy.Policy.Ignored, QtWidgets.QSizePolicy.Policy.Fixed)

    def sizeHint(self) -> QtCore.QSize:
        m = self.contentsMargins()
        return QtCore.QSize(0, self.fontMetrics().height() + m.top() + m.bottom() + 2 * self.margin())

    def minimumSizeHint(self) -> QtCore.QSize:
        return self.sizeHint()

    def displayed_text(self) -> str:
        """The text as painted: elided on the right to the label's width."""
        width = self.contentsRect().width() - 2 * self.margin()
        return self.fontMetrics().elidedText(self.text(), QtCore.Qt.TextElideMode.ElideRight, max(0, width))

    def paintEvent(self, event) -> None:
        shown = self.displayed_text()
        if shown == self.text():
            super().paintEvent(event)
            return
        painter = QtGui.QPainter(self)
        rect = self.contentsRect().adjusted(self.margin(), self.margin(), -self.margin(), -self.margin())
        self.style().drawItemText(painter, rect, int(self.alignment().value), self.palette(), self.isEnabled(), shown,
                                  self.foregroundRole())

    def event(self, event) -> bool:
        if event.type() == QtCore.QEvent.Type.ToolTip and not self.toolTip() and self.displayed_text() != self.text():
            QtWidgets.QToolTip.showText(event.globalPos(), self.text(), self)
            return True
        return super().event(event)


class WrappedLabel(QtWidgets.QLabel):
    """Word-wrapped text whose height does not shrink while its width stays the same.

    A summary rewritten at every epoch end wraps onto one line more or one line fewer from
    one epoch to the next; each time, its panel was laid out again and every slider and plot
    in it moved and repainted. Here the height reached is kept (the space below the text may
    stay empty) until the label is given another width.
    """

    def __init__(self, text: str = "", parent=None):
        super().__init__(text, parent)
        self.setWordWrap(True)
        self._held_width = -1

    def setText(self, text: str) -> None:
        super().setText(text)
        self._hold_height()

    def _hold_height(self) -> None:
        width = self.width()
        if width != self._held_width:
            self._held_width = width
            self.setMinimumHeight(0)
        needed = self.heightForWidth(width)
        if needed > self.minimumHeight():
            self.setMinimumHeight(needed)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if event.size().width() != self._held_width:
            self._hold_height()


class ProgressBar(QtWidgets.QProgressBar):
    """A progress bar that repaints with the rest of the window, never in the middle of a handler.

    ``QProgressBar.setValue`` repaints at once when the bar visibly changes, and a repaint made
    at once paints every widget of the window that is waiting for one (a map, a plot) inside
    the caller: the start of an encode thus painted the latent map inside the job's progress
    report, one 42 ms event. Here the new value is shown at the next paint, like ``update()``.
    """

    def setValue(self, value: int) -> None:
        if value == self.value():
            return
        self.setUpdatesEnabled(False)   # repaint() does nothing while updates are off
        try:
            super().setValue(value)
        finally:
            self.setUpdatesEnabled(True)   # schedules the repaint


# ---------------------------------------------------------------------------------------
# Layouts
# ---------------------------------------------------------------------------------------
class FlowLayout(QtWidgets.QLayout):
    """Lays widgets out left to right and wraps onto more rows when the width runs out.

    The map's toolbars use it so the map panel can be narrow (a 1366-pixel laptop screen with
    docks on both sides) without hiding any control.
    """

    def __init__(self, parent=None, spacing: int = 6):
        super().__init__(parent)
        self._items: list[QtWidgets.QLayoutItem] = []
        self.setContentsMargins(0, 0, 0, 0)
        self.setSpacing(spacing)

    def addItem(self, item) -> None:
        self._items.append(item)

    def count(self) -> int:
        return len(self._items)

    def itemAt(self, index: int):
        return self._items[index] if 0 <= index < len(self._items) else None

    def takeAt(self, index: int):
        return self._items.pop(index) if 0 <= index < len(self._items) else None

    def expandingDirections(self) -> QtCore.Qt.Orientation:
        return QtCore.Qt.Orientation(0)

    def hasHeightForWidth(self) -> bool:
        return True

    def heightForWidth(self, width: int) -> int:
        return self._do_layout(QtCore.QRect(0, 0, width, 0), apply=False)

    def setGeometry(self, rect) -> None:
        super().setGeometry(rect)
        self._do_layout(rect, apply=True)

    def sizeHint(self) -> QtCore.QSize:
        m = self.contentsMargins()
        width = height = 0
        for item in self._visible():
            hint = item.sizeHint()
            width += hint.width() + (self.spacing() if width else 0)
            height = max(height, hint.height())
        return QtCore.QSize(width + m.left() + m.right(), height + m.top() + m.bottom())

    def minimumSize(self) -> QtCore.QSize:
        size = QtCore.QSize()
        for item in self._visible():
            size = size.expandedTo(item.minimumSize())
        m = self.contentsMargins()
        return size + QtCore.QSize(m.left() + m.right(), m.top() + m.bottom())

    def _visible(self):
        return [item for item in self._items if not item.isEmpty()]

    def _do_layout(self, rect, *, apply: bool) -> int:
        m = self.contentsMargins()
        area = rect.adjusted(m.left(), m.top(), -m.right(), -m.bottom())
        x, y, line_height = area.x(), area.y(), 0
        row: list = []
        rows: list[list] = []
        for item in self._visible():
            hint = item.sizeHint()
            if row and x + hint.width() > area.right() + 1:
                rows.append((row, y, line_height))
                x, y = area.x(), y + line_height + self.spacing()
                row, line_height = [], 0
            row.append((item, QtCore.QPoint(x, y), hint))
            x += hint.width() + self.spacing()
            line_height = max(line_height, hint.height())
        if row:
            rows.append((row, y, line_height))
        if apply:
            for items, top, height in rows:
                for item, pos, hint in items:
                    item.setGeometry(QtCore.QRect(QtCore.QPoint(pos.x(), top + (height - hint.height()) // 2), hint))
        bottom = rows[-1][1] + rows[-1][2] if rows else area.y()
        return bottom - rect.y() + m.bottom()


# ---------------------------------------------------------------------------------------
# Work for later turns of the event loop
# ---------------------------------------------------------------------------------------
class TurnQueue(QtCore.QObject):
    """The application's queue of deferred work: one task per turn of the event loop.

    A new model, dataset or layout makes every panel want to redo something. Each panel
    deferring with its own 0 ms timer is not enough: Qt fires every due timer of a turn
    together, so all the deferred work would land in the one turn after the change, and the
    window would pause for their sum. Queued here, they run one a turn, in the order they
    were asked for, with the rest of the event loop (input, repaints, the window's own
    timers) served between them. Use it through :class:`Deferred`.
    """

    def __init__(self, parent: QtCore.QObject | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("turn_queue")
        self._pending: dict[Deferred, None] = {}   # insertion-ordered
        self._timer = QtCore.QTimer(self)
        self._timer.setInterval(0)
        self._timer.timeout.connect(self._run_one)

    @classmethod
    def instance(cls) -> TurnQueue:
        """The queue of the running application (made on first use)."""
        app = QtCore.QCoreApplication.instance()
        queue = app.findChild(cls, "turn_queue") if app is not None else None
        return queue if queue is not None else cls(app)

    def __len__(self) -> int:
        return len(self._pending)

    def add(self, task: Deferred) -> None:
        if task not in self._pending:
            self._pending[task] = None
        if not self._timer.isActive():
            self._timer.start()

    def remove(self, task: Deferred) -> None:
        self._pending.pop(task, None)
        if not self._pending:
            self._timer.stop()

    def __contains__(self, task: Deferred) -> bool:
        return task in self._pending

    def _run_one(self) -> None:
        task = None
        while self._pending and task is None:
            first = next(iter(self._pending))
            del self._pending[first]
            task = first if first.alive() else None
        if not self._pending:
            self._timer.stop()
        if task is not None:
            task.fn()


class Deferred:
    """``fn`` run on a later turn of the event loop through the :class:`TurnQueue`.

    It reads like a single-shot 0 ms ``QTimer``: :meth:`start` asks for one run (asking
    again before it ran changes nothing, so a burst of signals coalesces into one run),
    :meth:`stop` withdraws it, :meth:`isActive` says whether it is waiting. It never runs
    once ``owner`` (a ``QObject``, by default ``fn``'s) has been deleted.
    """

    def __init__(self, fn: Callable[[], object], owner: QtCore.QObject | None = None) -> None:
        self.fn = fn
        self.owner = owner if owner is not None else getattr(fn, "__self__", None)

    def alive(self) -> bool:
        return not isinstance(self.owner, QtCore.QObject) or shiboken6.isValid(self.owner)

    def start(self) -> None:
        TurnQueue.instance().add(self)

    def stop(self) -> None:
        TurnQueue.instance().remove(self)

    def isActive(self) -> bool:  # noqa: N802 - reads like QTimer's
        return self in TurnQueue.instance()

    def run_now(self) -> None:
        """Run now instead of on its turn (tests step through turns with it)."""
        self.stop()
        self.fn()
