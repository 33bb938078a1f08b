"""Fixtures for the application tests.

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


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread_for_the_gui():
    import torch

    # The GUI thread decodes small batches; training sets its own thread count.
    torch.set_num_threads(1)


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


# -- documents with a briefly trained model (shared by the studio tests) -------------------------
def trained_document(data, model_name: str = "mlp", latent_dim: int = 4, **config):
    """An ExplorerState on ``data`` with a model trained for 3 epochs, and its codes."""
    import torch

    from explorer.state import ExplorerState
    from vae_core import TrainConfig, build_model, fit

    torch.manual_seed(0)
    torch.set_num_threads(1)
    model = build_model(model_name, image_shape=data.image_shape, latent_dim=latent_dim, hidden=(64,), **config)
    history = fit(model, data, TrainConfig(epochs=3, batch_size=64, lr=3e-3, seed=0))
    state = ExplorerState()
    state.set_dataset(data)
    state.set_model(model, history=history)
    state.encode()
    return state


@pytest.fixture(scope="module")
def digits():
    from vae_core import load_dataset

    return load_dataset("digits")


@pytest.fixture(scope="module")
def make_trained_document(digits):
    """``make_trained_document(model_name="mlp", latent_dim=4, **config)`` on digits."""
    return lambda *args, **kwargs: trained_document(digits, *args, **kwargs)


@pytest.fixture(scope="module")
def trained(make_trained_document):
    return make_trained_document()


@pytest.fixture
def state(trained):
    """A fresh document sharing the trained model and codes (cheap to build per test)."""
    from explorer.state import ExplorerState

    s = ExplorerState()
    s.set_dataset(trained.dataset)
    s.set_model(trained.model, history=trained.history)
    s.set_codes(trained.codes, trained.logvar)
    return s
