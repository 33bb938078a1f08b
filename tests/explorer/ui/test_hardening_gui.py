"""Bad files and failing disks through the real window: every library error becomes a sentence
that says what to do, damaged side files cost only themselves, saves that fail leave the
previous files as they were, and no field of the window holds a value the library refuses."""

from __future__ import annotations

import errno
import hashlib
import os
import re
from pathlib import Path

import pytest
from explorer.jobs.training import error_details, expected_error, friendly_error
from explorer.ui.dialogs import ErrorDialog

UNLOADABLE = ("truncated_weights", "config_of_wrong_types", "config_not_an_object", "absurd_latent_dim",
              "config_not_json", "truncated_single_file")
SIDE_FILE_DAMAGED = ("bad_history", "history_of_wrong_rows", "truncated_optimizer")
CLASS_NAME = re.compile(r"\b[A-Z]\w*(Error|Exception)\b")


def _library_errors():
    """One error of every class the library raises on purpose, and words of the advice the window adds."""
    from vae_core import errors
    from vae_core.adapter import AdapterError
    from vae_core.model_export import ModelExportError
    from vae_core.resources import output_error

    return [
        (errors.CheckpointError("/m/c: the weights do not match config.json (the files were modified or mixed)."),
         "Open another checkpoint"),
        (errors.DatasetError("image_size must be between 4 and 1024 pixels, not 1000000000."),
         "Choose another dataset"),
        (errors.ConfigError("beta must be a finite number from 0 to 1000 (got nan)."), "Change that setting"),
        # Resource and adapter errors end with their own advice, which is kept.
        (errors.ResourceError("Training a model with 9,000,000,000 parameters would need 134 GiB of memory, but "
                              "only 3.1 GiB is available: choose a smaller model or image size."),
         "choose a smaller model"),
        (output_error("/m/out.gif", OSError(errno.ENOSPC, "No space left on device")), "Free some disk space"),
        (output_error("/m/out.gif", OSError(errno.EROFS, "Read-only file system")), "a folder you can write to"),
        (errors.ShapeMismatchError("The model reads 1×8×8 images but the dataset has 3×8×8 images."),
         "train a new model"),
        (errors.NonFiniteLossError("The loss became nan at epoch 3, step 2. Training stopped and the last good "
                                   "weights were kept; try a lower learning rate."), "stopped being a number"),
        (errors.ExpressionError("Unknown name 'meen' at position 0."), "Correct the expression"),
        (AdapterError("my_model.py does not define build_model; an adapter defines build_model()."),
         "an adapter defines"),
        (ModelExportError("Exporting the encoder to ONNX failed: unsupported operator."), "export again"),
    ]


@pytest.mark.parametrize("index", range(11))
def test_every_library_error_is_a_sentence_with_advice(index):
    exc, advice = _library_errors()[index]
    text = friendly_error(exc, "Opening the checkpoint")
    assert expected_error(exc)
    assert "unexpectedly" not in text and not CLASS_NAME.search(text), text
    assert str(exc).rstrip(".") in text and text.endswith(".") and advice in text, text


def test_cli_words_become_the_windows_and_bugs_still_show_their_details():
    from vae_core import errors

    text = friendly_error(errors.DatasetError("MNIST was not found in /d. Put it under /d/MNIST or pass --data-root."))
    assert "--data-root" not in text and "data root in the Training panel" in text
    assert "--device" not in friendly_error(errors.ConfigError("CUDA was requested but no CUDA GPU is available: "
                                                               "use --device cpu or auto."))
    try:
        None.weights  # noqa: B018 - a genuine bug
    except AttributeError as exc:
        bug = exc
    assert not expected_error(bug)
    assert friendly_error(bug, "Opening the checkpoint").startswith("Opening the checkpoint failed unexpectedly")
    assert "Traceback" in error_details(bug) and "AttributeError" in error_details(bug)


def _wait_for_dialog(qtbot, window, before) -> ErrorDialog:
    qtbot.waitUntil(lambda: window.last_error is not before and not window.busy, timeout=30_000)
    dialogs = [d for d in window.findChildren(ErrorDialog) if d.isVisible()]
    assert len(dialogs) == 1, [d.text for d in dialogs]
    return dialogs[0]


def test_damaged_checkpoints_are_refused_with_a_sentence_and_the_window_stays_usable(
        qtbot, make_main_window, damaged_checkpoints):
    window = make_main_window()
    for name in UNLOADABLE:
        before = window.last_error
        assert window.open_checkpoint(damaged_checkpoints[name]), name
        dialog = _wait_for_dialog(qtbot, window, before)
        title, text = dialog.windowTitle(), dialog.message.text()
        assert title == "Could not open the checkpoint", (name, title)
        assert "unexpectedly" not in text and not CLASS_NAME.search(text), (name, text)
        assert text.endswith(".") and "Open another checkpoint" in text, (name, text)
        assert expected_error(window.last_exception), (name, window.last_exception)
        assert window.state.model is None, name
        dialog.accept()
    # Still usable: the bundled model opens afterwards.
    with qtbot.waitSignal(window.state.model_changed, timeout=60_000):
        window.open_default()
    assert window.state.model is not None and window.checkpoint_warnings == []


def test_damaged_side_files_are_left_out_with_a_warning(qtbot, make_main_window, damaged_checkpoints):
    window = make_main_window()
    for name in SIDE_FILE_DAMAGED:
        before = window.last_error
        with qtbot.waitSignal(window.state.model_changed, timeout=60_000):
            window.open_checkpoint(damaged_checkpoints[name])
        dialog = _wait_for_dialog(qtbot, window, before)
        assert dialog.windowTitle() == "Part of the checkpoint was damaged", name
        assert len(window.checkpoint_warnings) == 1, (name, window.checkpoint_warnings)
        assert window.checkpoint_warnings[0] in dialog.details and "opened" in dialog.message.text()
        assert "damaged" in window.statusBar().currentMessage()
        assert window.state.model is not None and window.state.checkpoint_path == damaged_checkpoints[name]
        if name == "truncated_optimizer":
            assert window.state.optimizer_state is None
        else:
            assert window.state.history == []
        dialog.accept()


def test_training_panel_ranges_are_the_librarys(make_main_window):
    from vae_core.training import LIMITS

    panel = make_main_window().training_panel
    fields = {"epochs": panel.epochs_spin, "batch_size": panel.batch_spin, "beta": panel.beta_spin,
              "warmup_epochs": panel.warmup_spin, "seed": panel.seed_spin}
    for name, spin in fields.items():
        assert (spin.minimum(), spin.maximum()) == LIMITS[name], name
    assert panel.seed_spin.maximum() == 2**32 - 1
    low, high = LIMITS["lr"]                   # lr > 0: the smallest positive value the field shows
    assert panel.lr_spin.maximum() == high and low < panel.lr_spin.minimum() <= 10.0 ** -panel.lr_spin.decimals()
    panel.seed_spin.setValue(2**32 - 1)
    assert panel.options().train_config().seed == 2**32 - 1   # TrainConfig accepts what the form holds


def test_export_dialog_ranges_are_the_exports(qtbot, state):
    from explorer.ui.studio.export_dialog import FORMAT_EXTENSION, ExportDialog
    from vae_core.export import FPS_MAX, MAX_SIDE, UPSCALE_MAX

    dialog = ExportDialog(state)
    qtbot.addWidget(dialog)
    assert (dialog.upscale_spin.minimum(), dialog.upscale_spin.maximum()) == (1, UPSCALE_MAX)
    assert 0 < dialog.fps_spin.minimum() and dialog.fps_spin.maximum() <= FPS_MAX
    for key, ext in FORMAT_EXTENSION.items():
        dialog.set_format(key)
        assert dialog.width_spin.maximum() == dialog.height_spin.maximum() == MAX_SIDE[ext], key


# -- saving when the disk says no -----------------------------------------------------------------
def _digests(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` (hidden ones too) and a hash of its bytes."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("layout, refused", [("folder", ""), ("single", ""), ("single", "one.pins.json")])
@pytest.mark.parametrize("code, advice", [(errno.ENOSPC, "Free some disk space"),
                                          (errno.EROFS, "Choose a folder you can write to")])
def test_a_failed_save_says_why_and_keeps_the_previous_files(qtbot, make_main_window, tmp_path, monkeypatch,
                                                             layout, refused, code, advice):
    """The disk refuses every file under the checkpoint's folder (or only the pins sidecar,
    written after a single-file checkpoint) when its data must reach the disk."""
    window = make_main_window(open_default=True)
    window.state.marks.add_pin([0.0, 0.0], name="first")
    out = tmp_path / "out"
    target = out / ("model" if layout == "folder" else "one.safetensors")
    assert window._save_to(target)
    before = _digests(out)
    window.state.marks.add_pin([1.0, 1.0], name="second")  # something new to save
    fsync = os.fsync

    def refusing_disk(fd):
        name = os.readlink(f"/proc/self/fd/{fd}")
        if name.startswith(str(out)) and refused in Path(name).name:
            raise OSError(code, os.strerror(code))
        fsync(fd)

    monkeypatch.setattr(os, "fsync", refusing_disk)
    assert not window._save_to(target)
    title, text, _ = window.last_error
    assert title == "Could not save the model" and advice in text and "nothing there was changed" in text, text
    assert not CLASS_NAME.search(text) and "unexpectedly" not in text
    after = _digests(out)
    if refused:   # the checkpoint file was written; its old pins sidecar is intact
        assert after.keys() == before.keys() and after["one.pins.json"] == before["one.pins.json"]
        assert refused in text
    else:         # every previous file intact, no leftovers
        assert after == before
    monkeypatch.undo()
    assert window._save_to(target) and _digests(out) != before


def test_saved_files_follow_the_umask(make_main_window, tmp_path):
    window = make_main_window(open_default=True)
    window.state.marks.add_pin([0.0, 0.0], name="first")
    old = os.umask(0o027)
    try:
        folder = window.state.save_checkpoint(tmp_path / "folder")
        single = window.state.save_checkpoint(tmp_path / "one.safetensors")
        pins = window.state.marks.save_pins(tmp_path / "pins.json")
    finally:
        os.umask(old)
    assert folder.stat().st_mode & 0o777 == 0o750
    files = [*folder.iterdir(), pins, *(p for p in tmp_path.iterdir() if p.name.startswith("one."))]
    assert single in files and tmp_path / "one.pins.json" in files
    for path in files:
        assert path.stat().st_mode & 0o777 == 0o640, path

