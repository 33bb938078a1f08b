"""The shared Qt helpers: pixel rounding, the QImage layout, the theme test, connections,
deferred work."""

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import shiboken6  # noqa: E402
from psygnal import Signal  # noqa: E402
from PySide6 import QtGui, QtWidgets  # noqa: E402

from explorer.ui.qt_utils import (Connections, Deferred, TurnQueue, is_dark, to_qimage, to_uint8,  # noqa: E402
                                  to_uint8_hwc)
from explorer.ui.theme import dark_palette  # noqa: E402

# x · 255 lands exactly on k.5 for these float32 values: round half up gives k + 1, where
# round-half-to-even would give 0, 2 and 254, and truncation 0, 2 and 254 as well.
RAW = [0.5 / 255, 2.5 / 255, 254.5 / 255, 1.0, 0.5, 0.0, 1.5, -0.25, np.nan, np.inf, -np.inf, 0.49 / 255]
VALUES = np.array(RAW, dtype=np.float32)
EXPECTED = np.array([1, 3, 255, 255, 128, 0,
                     255, 0, 0, 255, 0, 0], dtype=np.uint8)


def pixels(image: QtGui.QImage) -> np.ndarray:
    """The bytes of a QImage, row by row, without the scan-line padding."""
    width = image.width() * image.depth() // 8
    raw = np.frombuffer(image.constBits(), dtype=np.uint8, count=image.sizeInBytes())
    return raw.reshape(image.height(), image.bytesPerLine())[:, :width].copy()


def test_to_uint8_rounds_half_up_clips_and_blackens_nan():
    assert (VALUES * np.float32(255))[:3].tolist() == [0.5, 2.5, 254.5]   # the boundaries are exact
    np.testing.assert_array_equal(to_uint8(VALUES), EXPECTED)
    values64 = np.array(RAW, dtype=np.float64)
    assert (values64 * 255.0)[:3].tolist() == [0.5, 2.5, 254.5]
    np.testing.assert_array_equal(to_uint8(values64), EXPECTED)
    frame = np.arange(12, dtype=np.uint8).reshape(2, 2, 3)
    assert to_uint8(frame) is frame


def test_to_qimage_grayscale_pixels():
    image = to_qimage(VALUES.reshape(1, 2, 6))            # C×H×W decoder output
    assert image.format() == QtGui.QImage.Format.Format_Grayscale8
    assert (image.width(), image.height()) == (6, 2)
    np.testing.assert_array_equal(pixels(image), EXPECTED.reshape(2, 6))


def test_to_qimage_channel_layouts():
    chw = np.zeros((3, 2, 5), dtype=np.float32)
    chw[0, 0, 0] = 1.0          # red
    chw[2, 1, 4] = 0.5          # half blue
    image = to_qimage(chw)
    assert image.format() == QtGui.QImage.Format.Format_RGB888
    assert image.pixelColor(0, 0).getRgb()[:3] == (255, 0, 0)
    assert image.pixelColor(4, 1).getRgb()[:3] == (0, 0, 128)
    # The same pixels as H×W×C uint8 (an exported frame) and as an explicit C×H×W.
    hwc = to_uint8_hwc(chw)
    assert hwc.shape == (2, 5, 3)
    again = to_qimage(hwc)
    np.testing.assert_array_equal(pixels(again).reshape(2, 5, 3), hwc)
    small = np.zeros((3, 3, 4), dtype=np.float32)   # ambiguous shape: the caller says
    assert to_qimage(small, channels_first=True).size().toTuple() == (4, 3)
    with pytest.raises(ValueError, match="1, 3 or 4 channels"):
        to_qimage(np.zeros((2, 4, 4), dtype=np.float32), channels_first=True)


def test_is_dark_follows_the_window_colour(qapp):
    assert is_dark(dark_palette())
    light = QtWidgets.QApplication.style().standardPalette()
    assert not is_dark(light)
    # Only the Window role decides, whatever Base says.
    mixed = dark_palette()
    mixed.setColor(QtGui.QPalette.ColorRole.Base, QtGui.QColor(255, 255, 255))
    assert is_dark(mixed)


class _Emitter:
    changed = Signal(int)


def test_connections_disconnect_all_and_end_with_their_owner(qapp):
    source = _Emitter()
    seen: list[int] = []
    widget = QtWidgets.QWidget()
    connections = Connections(widget)
    connections.connect_all([(source.changed, seen.append)])
    source.changed.emit(1)
    connections.disconnect_all()
    source.changed.emit(2)
    assert seen == [1] and len(connections) == 0

    connections.connect(source.changed, seen.append)
    shiboken6.delete(widget)   # emits destroyed now
    source.changed.emit(3)
    assert seen == [1]


def test_deferred_work_runs_one_task_a_turn_in_the_order_asked(qapp):
    ran = []
    a, b, c = (Deferred(lambda n=n: ran.append(n)) for n in "abc")
    for task in (a, b, c, a, b):   # asking again before the run coalesces
        task.start()
    assert len(TurnQueue.instance()) == 3 and a.isActive()
    after_each_turn = []
    for _ in range(50):
        qapp.processEvents()
        after_each_turn.append(len(ran))
        if len(ran) == 3:
            break
    assert ran == ["a", "b", "c"]
    steps = np.diff([0] + after_each_turn)
    assert steps.max() == 1   # never two of them in one turn of the event loop
    assert not a.isActive() and len(TurnQueue.instance()) == 0


def test_deferred_work_is_dropped_with_its_owner_and_can_be_withdrawn(qapp):
    ran = []
    owner = QtWidgets.QWidget()
    orphan = Deferred(lambda: ran.append("orphan"), owner)
    withdrawn = Deferred(lambda: ran.append("withdrawn"))
    kept = Deferred(lambda: ran.append("kept"))
    for task in (orphan, withdrawn, kept):
        task.start()
    withdrawn.stop()
    shiboken6.delete(owner)
    for _ in range(10):
        qapp.processEvents()
    assert ran == ["kept"]


def test_a_progress_bar_shows_a_new_value_at_the_next_paint_not_inside_the_caller(qapp):
    """QProgressBar.setValue repaints at once, and with it every widget waiting for a repaint."""
    from PySide6.QtCore import QEvent, QObject

    from explorer.ui.qt_utils import ProgressBar

    window = QtWidgets.QWidget()
    layout = QtWidgets.QVBoxLayout(window)
    bar, other = ProgressBar(), QtWidgets.QLabel("a plot waiting for its repaint")
    bar.setRange(0, 1000)
    layout.addWidget(bar)
    layout.addWidget(other)
    window.show()
    for _ in range(5):
        qapp.processEvents()
    painted = []

    class Watch(QObject):
        def eventFilter(self, obj, event):
            if event.type() == QEvent.Type.Paint:
                painted.append(obj)
            return False

    watch = Watch()
    bar.installEventFilter(watch)
    other.installEventFilter(watch)
    other.update()
    bar.setValue(500)
    assert painted == [] and bar.value() == 500
    for _ in range(5):
        qapp.processEvents()
    assert bar in painted and other in painted
    window.close()


def test_a_status_label_keeps_its_layout_and_elides_a_long_text(qapp):
    """A plain label asks for the width of its whole text: a long status line made the window grow."""
    from explorer.ui.qt_utils import StatusLabel

    window = QtWidgets.QWidget()
    layout = QtWidgets.QVBoxLayout(window)
    label = StatusLabel("short")
    layout.addWidget(QtWidgets.QLabel("above"))
    layout.addWidget(label)
    window.resize(200, 80)
    window.show()
    qapp.processEvents()
    minimum, height = window.minimumSizeHint(), label.height()
    text = "70,000 points · PCA (29% of the variance) · move the mouse to decode, click to pin, drag to group"
    label.setText(text)
    qapp.processEvents()
    assert window.minimumSizeHint() == minimum and window.width() == 200 and label.height() == height
    shown = label.displayed_text()
    assert shown.endswith("…") and text.startswith(shown[:-1])
    assert label.fontMetrics().horizontalAdvance(shown) <= label.contentsRect().width()
    window.resize(1200, 80)
    qapp.processEvents()
    assert label.displayed_text() == text
    window.close()


def test_a_wrapped_label_keeps_its_height_when_its_text_gets_shorter(qapp):
    """A summary one line shorter at an epoch end re-laid out its panel; only a new width lets it shrink."""
    from explorer.ui.qt_utils import WrappedLabel

    window = QtWidgets.QWidget()
    layout = QtWidgets.QVBoxLayout(window)
    label, below = WrappedLabel("one line"), QtWidgets.QTextEdit()
    layout.addWidget(label)
    layout.addWidget(below, 1)
    window.resize(160, 300)
    window.show()
    qapp.processEvents()
    one_line = label.height()
    label.setText("a much longer summary that wraps onto several lines at this width")
    qapp.processEvents()
    tall, below_height = label.height(), below.height()
    assert tall > one_line
    label.setText("one line again")
    qapp.processEvents()
    assert label.height() == tall and below.height() == below_height
    window.resize(600, 300)   # another width: the height follows the text again
    qapp.processEvents()
    assert label.height() < tall
    window.close()


def test_the_map_status_line_and_progress_do_not_resize_the_map(qapp, qtbot, state):
    """The first codes' status line made the window 120 pixels wider; the progress bar, shown in a
    toolbar, wrapped it onto another row: the map changed size (and redrew) at every encode."""
    from explorer.ui.map.panel import MapPanel

    panel = MapPanel(state)
    qtbot.addWidget(panel)
    panel.resize(700, 600)
    panel.show()
    qtbot.waitExposed(panel)
    qapp.processEvents()
    minimum, view = panel.minimumSizeHint().width(), panel.view.size()
    panel.show_status("70,000 points · PCA (29% of the variance) · move the mouse to decode, click to pin, "
                      "drag with Rectangle/Lasso to make a group, and a few more words besides")
    panel.progress.setVisible(True)
    panel.cancel_button.setVisible(True)
    for _ in range(3):
        qapp.processEvents()
    assert panel.minimumSizeHint().width() == minimum and panel.view.size() == view
    panel.progress.setVisible(False)
    panel.cancel_button.setVisible(False)
    qapp.processEvents()
    assert panel.view.size() == view


def test_the_map_footer_says_the_jobs_progress_once(qapp, qtbot, state):
    """The status line carries the words, the bar beside it only how far: not the same text twice."""
    from explorer.ui.map.panel import MapPanel

    panel = MapPanel(state)
    qtbot.addWidget(panel)
    panel._on_progress("Encoding 1,797 images…", 0.4)
    assert panel.status.text() == "Encoding 1,797 images…" and panel.progress.text() == "40%"
