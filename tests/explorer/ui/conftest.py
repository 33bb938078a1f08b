"""Fixtures for the window tests (pytest-qt, offscreen).

* Settings never touch the user's real ones: QSettings write INI files under a temporary
  folder for the whole session.
* ``make_main_window`` builds real main windows (offscreen) and owns their teardown, like
  napari's ``make_napari_viewer``: training is stopped, workers are awaited, windows are
  closed without the unsaved-changes question.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

_SETTINGS_DIR = tempfile.mkdtemp(prefix="le-test-settings-")


def _isolate_settings() -> None:
    from PySide6.QtCore import QSettings

    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    for fmt in (QSettings.Format.IniFormat, QSettings.Format.NativeFormat):
        for scope in (QSettings.Scope.UserScope, QSettings.Scope.SystemScope):
            QSettings.setPath(fmt, scope, _SETTINGS_DIR)


_isolate_settings()


@pytest.fixture
def settings_path(tmp_path) -> Path:
    """An INI file for one test's settings (pass ``settings=`` to share it between windows)."""
    return tmp_path / "settings.ini"


@pytest.fixture
def make_main_window(qtbot, settings_path, monkeypatch):
    """Factory: ``make_main_window(open_default=False, settings=None, state=None) -> MainWindow``.

    With ``open_default=True`` it opens the bundled example model and waits for it.
    """
    from PySide6.QtCore import QSettings, QThreadPool

    from explorer.ui import main_window as mw

    # Unsaved-changes questions are modal; tests that care patch this again.
    monkeypatch.setattr(mw, "ask_save_changes", lambda *args, **kwargs: "discard")
    windows = []

    def factory(*, open_default: bool = False, settings: QSettings | None = None, state=None, show: bool = True):
        settings = settings or QSettings(str(settings_path), QSettings.Format.IniFormat)
        window = mw.MainWindow(state, settings=settings)
        windows.append(window)
        if show:
            window.show()
            qtbot.waitExposed(window)
        if open_default:
            with qtbot.waitSignal(window.initial_load_finished, timeout=60_000) as blocker:
                window.open_initial()
            assert blocker.args == [True], getattr(window, "last_error", None)
        return window

    yield factory

    for window in windows:
        try:
            window.runner.wait(20_000)
            window.close()
            window.deleteLater()
        except RuntimeError:  # already deleted by the test
            pass
    QThreadPool.globalInstance().waitForDone(20_000)
    qtbot.wait(10)


# -- a map panel without a main window ----------------------------------------------------------
class MapHost:
    """What :func:`make_map_host` built: ``state``, ``panel``, ``encoder``, ``host`` and ``side``."""

    def __init__(self, state, host, encoder, panel) -> None:
        self.state, self.host, self.encoder, self.panel = state, host, encoder, panel
        self.side: list = []


@pytest.fixture
def make_map_host(qtbot, make_document):
    """Factory: ``make_map_host(model, side=None, size=(1200, 900), side_stretch=1) -> MapHost``.

    A fresh document of ``model`` on digits, the application's ``EncodingJob`` (the panel
    only projects), a ``MapPanel`` and, in a column at its right (``side_stretch`` to the
    map's 3), the widgets that ``side(map_host)`` returns; shown, encoded, laid out and
    drawn. Teardown shuts the panel's jobs and the encoder.
    """
    from PySide6 import QtWidgets

    from explorer.jobs.encoding import EncodingJob
    from explorer.ui.map.panel import MapPanel

    built = []

    def factory(model, side=None, *, size=(1200, 900), side_stretch: int = 1) -> MapHost:
        state = make_document(model)
        host = QtWidgets.QWidget()
        encoder = EncodingJob(state, host)
        m = MapHost(state, host, encoder, MapPanel(state, encoder=encoder))
        built.append(m)
        m.side = list(side(m)) if side is not None else []
        layout = QtWidgets.QHBoxLayout(host)
        layout.addWidget(m.panel, 3)
        column = QtWidgets.QVBoxLayout()
        for widget in m.side:
            column.addWidget(widget)
        layout.addLayout(column, side_stretch)
        host.resize(*size)
        qtbot.addWidget(host)
        host.show()
        qtbot.waitExposed(host)
        assert encoder.wait(30)
        assert m.panel.jobs.wait(30)
        qtbot.waitUntil(lambda: state.map.ready, timeout=10_000)
        m.panel.view.finish_animation()
        qtbot.waitUntil(lambda: m.panel.view.points.has_render, timeout=5_000)
        return m

    yield factory

    for m in built:
        try:
            m.panel.jobs.shutdown()
            m.encoder.shutdown()
        except RuntimeError:  # already deleted by the test
            pass


# -- the end of the session ---------------------------------------------------------------------
# A Python job still running in Qt's thread pool when the interpreter shuts down deadlocks it:
# the pool's destructor waits for the job, the job waits for the interpreter lock. So ask every
# background job to stop and wait for them; if one cannot be stopped, leave without the
# interpreter's teardown (the results are already reported).
_BACKGROUND_WAIT_MS = 120_000


def pytest_sessionfinish(session, exitstatus):
    session.config._le_exitstatus = int(exitstatus)
    if "PySide6" not in sys.modules:
        return
    from PySide6.QtCore import QThreadPool
    from superqt.utils import WorkerBase

    for worker in list(WorkerBase._worker_set):
        worker.quit()
    QThreadPool.globalInstance().waitForDone(_BACKGROUND_WAIT_MS)


def pytest_unconfigure(config):
    if "PySide6" not in sys.modules:
        return
    from PySide6.QtCore import QThreadPool

    if QThreadPool.globalInstance().activeThreadCount():
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(getattr(config, "_le_exitstatus", 1))
