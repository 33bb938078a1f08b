"""The main window fits a common 1366×768 laptop screen (about 1366×720 usable)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

LAPTOP_WIDTH, LAPTOP_HEIGHT = 1366, 720


def _fits(size) -> bool:
    return size.width() <= LAPTOP_WIDTH and size.height() <= LAPTOP_HEIGHT


def test_minimum_size_fits_a_laptop_screen(make_main_window, qtbot):
    window = make_main_window(open_default=True)
    qtbot.wait(50)
    assert _fits(window.minimumSizeHint()), window.minimumSizeHint()
    assert _fits(window.minimumSize()), window.minimumSize()
    window.resize(LAPTOP_WIDTH, LAPTOP_HEIGHT)
    qtbot.wait(50)
    assert window.width() <= LAPTOP_WIDTH and window.height() <= LAPTOP_HEIGHT


def test_map_toolbars_wrap_when_narrow(make_main_window, qtbot):
    window = make_main_window(open_default=True)
    panel = window.centralWidget()
    bar = getattr(panel, "bar2", None)
    if bar is None:
        pytest.skip("the map panel is not the central widget")
    assert bar.minimumSizeHint().width() < 400
    assert bar.heightForWidth(300) > bar.heightForWidth(2000)
