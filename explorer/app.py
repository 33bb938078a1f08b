"""Start Latent Explorer: ``latent-explorer [CHECKPOINT] [--dataset SPEC] [--data-root DIR] [--smoke]``,
or ``latent-explorer --model-file ADAPTER.py --weights W --dataset SPEC`` for a model written elsewhere.

The window is shown before the engine (torch) is imported, so it appears quickly; the
engine loads right after the first paint and the model opens in a worker thread.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time
from pathlib import Path

_T0 = time.time()

USAGE_EXIT = 2
SMOKE_TIMEOUT_S = 120


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="latent-explorer",
        description="Train, map, decode and animate variational autoencoders. With no arguments the app opens "
                    "on the bundled digits dataset and a small pretrained model.")
    parser.add_argument("checkpoint", nargs="?", metavar="CHECKPOINT",
                        help="a checkpoint to open (a folder with config.json or a .safetensors file); "
                             "a folder of images or an .npz file is selected as the training dataset")
    parser.add_argument("--dataset", metavar="SPEC",
                        help="dataset spec: digits, mnist, fashion-mnist, kmnist, cifar10, shapes, shapes:32, "
                             "folder:PATH or npz:PATH (default: the checkpoint's, else digits)")
    parser.add_argument("--model-file", metavar="FILE",
                        help="instead of a checkpoint: an adapter (.py file or module name) for a VAE written "
                             "elsewhere; its code runs (see docs/OWN_MODEL.md)")
    parser.add_argument("--weights", metavar="FILE",
                        help="with --model-file: the weights, .safetensors or a torch.save'd state dict")
    parser.add_argument("--data-root", metavar="DIR",
                        help="where torchvision datasets (MNIST, CIFAR-10, ...) are stored or downloaded to; remembered")
    parser.add_argument("--theme", choices=("system", "light", "dark"), help="colour scheme (remembered)")
    parser.add_argument("--smoke", action="store_true",
                        help="open the window, load the model, process events and quit (exit status 0 if all went well)")
    parser.add_argument("--precompile", action="store_true",
                        help="compile UMAP's numba code into the cache and quit (once per install: the first UMAP "
                             "on the map then starts as fast as every later one)")
    return parser


def user_cache_dir() -> Path:
    """Per-user cache folder for compiled code (numba) and the like."""
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local"))
        return base / "latent-explorer" / "cache"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "latent-explorer"
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "latent-explorer"


def _precompile() -> int:
    from vae_core.projection import precompile_umap

    print("Compiling UMAP's numba code into", os.environ["NUMBA_CACHE_DIR"], "(once per install)...",
          file=sys.stderr, flush=True)
    try:
        seconds = precompile_umap()
    except Exception as exc:   # a failed warm-up costs speed, never the launch: say so and carry on
        print(f"Could not precompile UMAP ({exc}); the first UMAP will compile it instead.", file=sys.stderr)
        return 1
    print(f"Done in {seconds:.0f} s.", file=sys.stderr)
    return 0


def _no_display_message() -> str | None:
    if not sys.platform.startswith("linux") or os.environ.get("QT_QPA_PLATFORM"):
        return None
    if os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
        return None
    return ("latent-explorer: no display found (neither DISPLAY nor WAYLAND_DISPLAY is set).\n"
            "Run it from a desktop session, or without a screen under a virtual X server:\n"
            "    xvfb-run -a latent-explorer\n"
            "or render off screen (nothing is shown; useful for tests):\n"
            "    QT_QPA_PLATFORM=offscreen latent-explorer")


def _timing(event: str) -> None:
    # Read by bench/bench_gui.py: seconds since the epoch, compared with its own spawn time.
    if os.environ.get("LATENT_EXPLORER_TIMING"):
        print(f"LE_TIMING {event} {time.time():.6f} {time.time() - _T0:.6f}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.model_file and args.checkpoint:
        parser.error("give either a CHECKPOINT or --model-file, not both")
    if args.weights and not args.model_file:
        parser.error("--weights goes with --model-file; a checkpoint holds its own weights")
    os.environ.setdefault("NUMBA_CACHE_DIR", str(user_cache_dir() / "numba"))
    # Importing torch._dynamo (the first optimizer does) creates torch's compile cache folder,
    # by default a torchinductor_<user> folder in the shared temp folder: keep it with ours.
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(user_cache_dir() / "torch"))
    if args.precompile:
        return _precompile()
    if args.smoke and _no_display_message():
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    message = _no_display_message()
    if message:
        print(message, file=sys.stderr)
        return USAGE_EXIT

    from PySide6.QtCore import QSettings, Qt, QTimer
    from PySide6.QtGui import QGuiApplication
    from PySide6.QtWidgets import QApplication

    QGuiApplication.setHighDpiScaleFactorRoundingPolicy(Qt.HighDpiScaleFactorRoundingPolicy.PassThrough)
    app = QApplication.instance() or QApplication([sys.argv[0]])
    app.setOrganizationName("LatentExplorer")
    app.setApplicationName("Latent Explorer")
    app.setDesktopFileName("latent-explorer")
    smoke_settings = _isolate_settings() if args.smoke else None
    if args.smoke:
        _quiet_offscreen_notes()

    import pyqtgraph as pg

    from explorer.ui.main_window import MainWindow, app_icon, is_checkpoint
    from explorer.ui.theme import apply_theme

    pg.setConfigOptions(antialias=True)
    app.setWindowIcon(app_icon())
    settings = (QSettings(str(Path(smoke_settings.name) / "settings.ini"), QSettings.Format.IniFormat)
                if smoke_settings is not None else QSettings("LatentExplorer", "Latent Explorer"))
    theme = args.theme or str(settings.value("window/theme", "system"))
    if args.theme:
        settings.setValue("window/theme", args.theme)
    apply_theme(app, theme)

    window = MainWindow(settings=settings, start_engine=False)
    window.show()
    app.processEvents()
    _timing("window_shown")
    _install_excepthook(window)

    checkpoint, dataset = args.checkpoint, args.dataset
    if checkpoint and not is_checkpoint(Path(checkpoint)):
        path = Path(checkpoint)
        if path.is_dir() and not dataset:
            checkpoint, dataset = None, f"folder:{path}"
        elif path.suffix.lower() == ".npz" and not dataset:
            checkpoint, dataset = None, f"npz:{path}"
    result = {"ok": True}

    def start() -> None:
        window.start_engine()
        # Everything imported so far lives as long as the app: keep it out of the garbage
        # collector's full passes, which would otherwise stall the window now and then.
        gc.freeze()
        _timing("engine_ready")
        window.open_initial(checkpoint, dataset=dataset, data_root=args.data_root, model_file=args.model_file,
                            weights=args.weights)

    def loaded(ok: bool) -> None:
        _timing("model_loaded" if ok else "load_failed")
        if args.smoke:
            result["ok"] = ok
            QTimer.singleShot(200, window.close)

    window.initial_load_finished.connect(loaded)
    # Let the window paint first: the engine import takes a few seconds on a small machine.
    QTimer.singleShot(30, start)
    if args.smoke:
        def give_up() -> None:
            result["ok"] = False
            window.close()

        QTimer.singleShot(SMOKE_TIMEOUT_S * 1000, give_up)

    app.aboutToQuit.connect(lambda: window.runner.wait(15_000))
    rc = app.exec()
    # Delete the window while Qt is still up, not during interpreter shutdown.
    from PySide6.QtCore import QCoreApplication, QEvent

    window.deleteLater()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    if args.smoke:
        rc = _smoke_report(window, result["ok"] and rc == 0)
        settings.sync()  # nothing left to write later into the folder removed here
        smoke_settings.cleanup()
    _leave_if_work_is_stuck(rc)
    return rc


def _isolate_settings():
    """Send every QSettings of a smoke run to a temporary folder; returns it (to clean up).

    ``QSettings(organization, application)`` always uses the native format, so redirecting
    only the INI format (or only the default format) still wrote the user's settings file.
    """
    import tempfile

    from PySide6.QtCore import QSettings

    folder = tempfile.TemporaryDirectory(prefix="le-smoke-")
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    for fmt in (QSettings.Format.NativeFormat, QSettings.Format.IniFormat):
        for scope in (QSettings.Scope.UserScope, QSettings.Scope.SystemScope):
            QSettings.setPath(fmt, scope, folder.name)
    return folder


def _quiet_offscreen_notes() -> None:
    """Keep the offscreen platform's notes about what it cannot do off a smoke run's stderr.

    Every dock resize on the offscreen platform logs "This plugin does not support
    propagateSizeHints()", which would bury the one line a smoke run has to say.
    """
    from PySide6.QtCore import qInstallMessageHandler

    def handler(_kind, _context, message: str) -> None:
        if not message.startswith("This plugin does not support"):
            print(message, file=sys.stderr)

    qInstallMessageHandler(handler)


def _smoke_report(window, ok: bool) -> int:
    """Say on stderr how a smoke run went and return its exit status.

    A checkpoint or dataset that cannot be opened is bad input, as on the command line:
    one line and status 2. A bug or a time-out is status 1 with the details. What a
    damaged side file cost is one ``warning:`` line each; the run still succeeds.
    """
    from explorer.jobs.training import app_words, expected_error
    from explorer.ui.main_window import DAMAGED_PARTS_TITLE

    for note in window.checkpoint_warnings:
        print(f"latent-explorer: warning: {app_words(note)}", file=sys.stderr)
    error = window.last_error
    if ok:
        if error is not None and error[0] != DAMAGED_PARTS_TITLE:  # shown, but the model opened
            print(f"latent-explorer: {error[0]}: {error[1]}", file=sys.stderr)
        print("latent-explorer --smoke: ok", file=sys.stderr)
        return 0
    if error is not None and expected_error(window.last_exception):
        print(f"latent-explorer: error: {error[0]}: {' '.join(error[1].split())}", file=sys.stderr)
        return USAGE_EXIT
    if error is not None:
        print(f"latent-explorer: {error[0]}: {error[1]}\n{error[2]}", file=sys.stderr)
    print("latent-explorer --smoke: FAILED", file=sys.stderr)
    return 1


def _leave_if_work_is_stuck(rc: int, wait_ms: int = 15_000) -> None:
    """Exit now if a background job (say, a projection being compiled) outlives the window.

    A Python job still in Qt's thread pool when the interpreter shuts down deadlocks it (the
    pool waits for the job, the job for the interpreter lock); the window has already asked
    every job to stop and saved everything, so leaving without the teardown loses nothing.
    """
    from PySide6.QtCore import QThreadPool
    from superqt.utils import WorkerBase

    for worker in list(WorkerBase._worker_set):
        worker.quit()
    if not QThreadPool.globalInstance().waitForDone(wait_ms):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(rc)


def _install_excepthook(window) -> None:
    """Show unexpected errors in a dialog with details instead of losing them on stderr."""
    import traceback

    previous = sys.excepthook

    def hook(exc_type, exc, tb) -> None:
        previous(exc_type, exc, tb)
        if issubclass(exc_type, KeyboardInterrupt):
            return
        details = "".join(traceback.format_exception(exc_type, exc, tb))
        try:
            window.show_error("Something went wrong",
                              f"An unexpected error occurred ({exc_type.__name__}: {exc}). Your work is still open; "
                              "saving it now is a good idea.", details)
        except Exception:  # noqa: BLE001 - never fail inside the hook
            pass

    sys.excepthook = hook


if __name__ == "__main__":
    sys.exit(main())
