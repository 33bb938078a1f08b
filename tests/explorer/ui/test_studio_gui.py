"""The studio's widgets, driven like a user would, checked against direct vae_core calls."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PySide6.QtCore import Qt

from explorer.state import ExplorerState
from vae_core import TrainConfig, build_model, fit, load_dataset
from vae_core import latent as vl
from vae_core.export import prepare_frames


def _show(qtbot, widget, size=(520, 640)):
    qtbot.addWidget(widget)
    widget.resize(*size)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def _redrawn(qtbot, panel):
    """Wait for the traversal panel's redraw (it runs on the next event-loop turn)."""
    qtbot.waitUntil(lambda: not panel._redraw_timer.isActive(), timeout=5000)
    return panel


def _pick(qtbot, picker, kind, value, button="add"):
    """Choose an operand in an OperandPicker and press one of its buttons."""
    picker.set_kind(kind)
    if kind == "index":
        picker.index_spin.setValue(value)
    else:
        combo = {"pin": picker.pin_combo, "centroid": picker.class_combo, "group": picker.group_combo}[kind]
        combo.setCurrentIndex(combo.findData(value))
    qtbot.mouseClick(picker.buttons[button], Qt.MouseButton.LeftButton)


def test_interpolation_through_the_widgets_matches_vae_core(qtbot, state):
    from explorer.ui.studio.docks import InterpolationPanel
    from explorer.ui.studio.player import PlayerWidget

    panel = _show(qtbot, InterpolationPanel(state))
    player = _show(qtbot, PlayerWidget(state))
    _pick(qtbot, panel.picker, "index", 3)
    _pick(qtbot, panel.picker, "centroid", 7)
    _pick(qtbot, panel.picker, "index", 100)
    assert panel.keyframe_list.count() == 3
    panel.method_combo.setCurrentIndex(panel.method_combo.findData("slerp"))
    panel.easing_combo.setCurrentIndex(panel.easing_combo.findData("ease-in-out"))
    panel.steps_spin.setValue(13)

    codes = state.codes
    keys = np.stack([codes[3], codes[state.labels == 7].mean(0), codes[100]])
    expected = vl.decode(state.model, vl.interpolate(keys, 13, "slerp", "ease-in-out"))
    np.testing.assert_allclose(state.studio.player.frames, expected, atol=1e-6)
    shown = np.asarray(player.shown_frames)
    np.testing.assert_array_equal(shown, prepare_frames(expected))
    assert player.filmstrip.count() == 13
    assert "3 keyframes → 13 frames" in panel.summary.text()

    # scrub: the picture on screen is the frame the slider points at
    player.slider.setValue(6)
    assert state.studio.player.current_frame == 6
    np.testing.assert_array_equal(player.view.image_array()[..., 0], shown[6])
    assert player.frame_label.text() == "7 / 13"
    assert player.filmstrip.currentRow() == 6

    # ping-pong, as prepare_frames does it
    qtbot.mouseClick(player.pingpong_check, Qt.MouseButton.LeftButton)
    assert state.studio.player.pingpong
    np.testing.assert_array_equal(np.asarray(player.shown_frames), prepare_frames(expected, pingpong=True))
    assert player.slider.maximum() == 23

    # reorder with the buttons: the path changes accordingly
    panel.keyframe_list.setCurrentRow(2)
    qtbot.mouseClick(panel.up_button, Qt.MouseButton.LeftButton)
    assert [k.name for k in state.studio.interpolation.keyframes] == ["#3", "#100", "mean of 7"]


def test_player_plays_steps_and_space_toggles(qtbot, state):
    from explorer.ui.studio.player import PlayerWidget

    player = _show(qtbot, PlayerWidget(state))
    studio = state.studio
    studio.interpolation.add_index_keyframe(0)
    studio.interpolation.add_index_keyframe(1)
    studio.interpolation.set_steps(8)
    player.fps_spin.setValue(50)
    assert studio.player.fps == 50
    qtbot.mouseClick(player.play_button, Qt.MouseButton.LeftButton)
    assert studio.player.playing and player.timer.isActive()
    qtbot.waitUntil(lambda: studio.player.current_frame >= 3, timeout=3000)
    player.setFocus()
    qtbot.keyClick(player, Qt.Key.Key_Space)
    assert not studio.player.playing and not player.timer.isActive()
    frame = studio.player.current_frame
    qtbot.mouseClick(player.forward_button, Qt.MouseButton.LeftButton)
    assert studio.player.current_frame == (frame + 1) % 8
    qtbot.mouseClick(player.first_button, Qt.MouseButton.LeftButton)
    assert studio.player.current_frame == 0
    qtbot.mouseClick(player.back_button, Qt.MouseButton.LeftButton)
    assert studio.player.current_frame == 7                # steps wrap around
    qtbot.keyClick(player, Qt.Key.Key_Space)
    assert studio.player.playing
    # without loop the player stops on the last frame
    qtbot.mouseClick(player.loop_check, Qt.MouseButton.LeftButton)
    assert not studio.player.loop
    qtbot.waitUntil(lambda: not studio.player.playing, timeout=3000)
    assert studio.player.current_frame == 7
    # a filmstrip click shows that frame
    player.filmstrip.frame_clicked.emit(2)
    assert studio.player.current_index == 2


def test_arithmetic_composer_through_the_widgets(qtbot, state):
    from explorer.ui.studio.arithmetic import ArithmeticPanel

    panel = _show(qtbot, ArithmeticPanel(state))
    studio = state.studio
    _pick(qtbot, panel.picker, "index", 12, "+")
    _pick(qtbot, panel.picker, "centroid", 7, "-")
    _pick(qtbot, panel.picker, "centroid", 3, "+")
    assert panel.expression_edit.text() == "#12 − mean(7) + mean(3)"
    panel.strength_slider.setValue(1.5)
    assert studio.arithmetic.strength == pytest.approx(1.5)

    resolver = vl.LatentResolver(state.codes, state.labels, state.class_names)
    expected = vl.evaluate_expression("#12 - mean(7) + mean(3)", resolver, 1.5)
    np.testing.assert_allclose(studio.arithmetic.result_z, expected, atol=1e-6)
    image = vl.decode(state.model, expected[None])[0]
    np.testing.assert_allclose(panel.terms.images[-1], image, atol=1e-6)       # the "= result" tile
    idx, _ = vl.nearest_neighbors(state.codes, expected, 8)
    np.testing.assert_array_equal(panel.neighbors.images, state.images[idx])
    assert panel.terms.count() == 4                 # three terms and the result
    assert panel.pin_button.isEnabled()

    # typing: live validation with the parser's message
    panel.expression_edit.clear()
    qtbot.keyClicks(panel.expression_edit, "#12 - ")
    assert "column 7" in panel.status.text()
    assert "d32f2f" in panel.expression_edit.styleSheet()
    assert not panel.pin_button.isEnabled()
    qtbot.keyClicks(panel.expression_edit, "@7")
    assert panel.expression_edit.styleSheet() == ""
    assert panel.status.text().startswith("✓ 2 terms")
    np.testing.assert_allclose(studio.arithmetic.result_z, vl.evaluate_expression("#12 - @7", resolver, 1.5), atol=1e-6)

    qtbot.mouseClick(panel.pin_button, Qt.MouseButton.LeftButton)
    assert [p.name for p in state.map.pins] == ["P1"]
    np.testing.assert_array_equal(state.map.pins[0].z, studio.arithmetic.result_z)
    # the pin is now an operand
    _pick(qtbot, panel.picker, "pin", "P1", "+")
    assert panel.expression_edit.text() == "#12 - @7 + pin:P1"
    qtbot.mouseClick(panel.animate_button, Qt.MouseButton.LeftButton)
    assert studio.player.animation_kind == "arithmetic"
    np.testing.assert_allclose(studio.player.frame_codes[-1], studio.arithmetic.result_z, atol=1e-6)


def test_attribute_panel_applies_and_animates(qtbot, state):
    from explorer.ui.studio.arithmetic import AttributePanel

    panel = _show(qtbot, AttributePanel(state))
    studio = state.studio
    panel.positive_combo.setCurrentIndex(panel.positive_combo.findData("label:1"))
    panel.negative_combo.setCurrentIndex(panel.negative_combo.findData("label:7"))
    _pick(qtbot, panel.picker, "index", 5, "set")
    panel.amount_slider.setValue(2.0)
    vector = vl.attribute_vector(state.codes, state.labels, 1, 7)
    shifted = vl.apply_attribute(state.codes[5], vector, 2.0)
    np.testing.assert_allclose(studio.attributes.result_z, shifted, atol=1e-5)
    np.testing.assert_array_equal(panel.shifted_view.image_array()[..., 0],
                                  prepare_frames(vl.decode(state.model, shifted[None]))[0])
    assert "class 1 − class 7" in panel.vector_label.text()
    qtbot.mouseClick(panel.animate_button, Qt.MouseButton.LeftButton)
    assert studio.player.animation_kind == "attribute"
    np.testing.assert_allclose(studio.player.frame_codes[[0, -1]], np.stack([state.codes[5], shifted]), atol=1e-5)


def _with_every_row(qtbot, panel):
    """The panel once its slider rows are built (a few per event-loop turn)."""
    qtbot.waitUntil(lambda: len(panel._rows) == panel.studio.context.latent_dim, timeout=5000)
    return panel


def test_traversal_panel_sliders_sorted_by_kl_decode_live(qtbot, state):
    from explorer.ui.studio.traversal import TraversalPanel

    panel = _with_every_row(qtbot, _show(qtbot, TraversalPanel(state), (620, 700)))
    studio = state.studio
    order = studio.traversal.dimension_order().tolist()
    rows = [panel.slider_grid.itemAtPosition(r, 0).widget().text().split()[0] for r in range(len(order))]
    assert rows == [f"z{d}" for d in order]
    _pick(qtbot, panel.picker, "index", 9, "set")
    np.testing.assert_array_equal(studio.traversal.code, state.codes[9])
    top = order[0]
    panel._rows[top].slider.setValue(1.5)
    _redrawn(qtbot, panel)
    z = state.codes[9].copy()
    z[top] = 1.5
    np.testing.assert_allclose(studio.traversal.code, z, atol=1e-6)
    np.testing.assert_array_equal(panel.view.image_array()[..., 0],
                                  prepare_frames(vl.decode(state.model, z[None]))[0])
    grid = vl.traversal_grid(studio.traversal.code, studio.traversal.kl_values(), steps=9, span=3.0, max_dims=16)
    np.testing.assert_allclose(panel.grid.images, vl.decode(state.model, grid.reshape(-1, 4)), atol=1e-6)
    assert panel.grid.columns == 9
    panel.steps_spin.setValue(5)
    _redrawn(qtbot, panel)
    assert panel.grid.count() == 4 * 5
    qtbot.mouseClick(panel._rows[top].animate, Qt.MouseButton.LeftButton)
    assert studio.player.animation_kind == "traversal"


def _player_with_animation(qtbot, state, steps=10):
    from explorer.ui.studio.player import PlayerWidget

    player = _show(qtbot, PlayerWidget(state))
    state.studio.interpolation.add_index_keyframe(0)
    state.studio.interpolation.add_centroid_keyframe(4)
    state.studio.interpolation.add_index_keyframe(50)
    state.studio.interpolation.set_steps(steps)
    return player


def test_traversal_rows_wait_while_the_panel_is_behind_another_tab(qtbot, state):
    """A dock behind another's tab stays 'visible' to Qt, which shows and lays out each new
    widget in it: the rows wait until the panel can be seen, then fill in."""
    from PySide6.QtWidgets import QDockWidget, QLabel, QMainWindow, QTextEdit

    from explorer.ui.studio.traversal import TraversalPanel

    window = QMainWindow()
    window.setCentralWidget(QLabel("map"))
    other = QTextEdit("other")   # opaque, as the window's panels are: it hides the tab behind it
    docks = []
    for title, widget in (("Traversals", TraversalPanel(state)), ("Other", other)):
        dock = QDockWidget(title, window)
        dock.setWidget(widget)
        window.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, dock)
        docks.append(dock)
    window.tabifyDockWidget(docks[0], docks[1])
    docks[1].raise_()
    _show(qtbot, window, (900, 700))
    panel = docks[0].widget()
    qtbot.wait(300)   # many turns
    assert panel.isVisible() and panel.visibleRegion().isEmpty()
    assert panel._rows == {} and state.studio.context.latent_dim > 0
    docks[0].raise_()
    _with_every_row(qtbot, panel)
    order = state.studio.traversal.dimension_order().tolist()
    assert [panel.slider_grid.itemAtPosition(r, 0).widget().text().split()[0] for r in range(len(order))] == \
        [f"z{d}" for d in order]


def test_traversal_rows_for_a_larger_model_are_built_over_several_turns(qtbot, state, make_trained_document):
    from explorer.ui.studio.traversal import ROWS_PER_TURN, TraversalPanel

    panel = _with_every_row(qtbot, _show(qtbot, TraversalPanel(state), (620, 700)))
    kept = panel._rows[0]
    bigger = make_trained_document(latent_dim=16)
    state.set_model(bigger.model, history=bigger.history)
    # No new row in the turn of the switch, then a few per turn: each costs milliseconds.
    assert sorted(panel._rows) == [0, 1, 2, 3] and panel._rows[0] is kept
    assert panel._more_rows.isActive()
    panel._more_rows.run_now()   # one turn's worth
    assert len(panel._rows) == 4 + ROWS_PER_TURN and panel._more_rows.isActive()
    assert panel._rows[0] is kept
    qtbot.waitUntil(lambda: len(panel._rows) == 16, timeout=5000)
    order = state.studio.traversal.dimension_order().tolist()
    rows = [panel.slider_grid.itemAtPosition(r, 0).widget().text().split()[0] for r in range(16)]
    assert rows == [f"z{d}" for d in order]
    _redrawn(qtbot, panel)
    assert panel.grid.count() > 0    # decoded once every row exists
    smaller = make_trained_document(latent_dim=3)
    state.set_model(smaller.model, history=smaller.history)
    assert sorted(panel._rows) == [0, 1, 2]


def test_export_gif_and_mp4_match_the_preview(qtbot, state, tmp_path):
    import imageio.v3 as iio

    from explorer.ui.studio.export_dialog import ExportDialog

    player = _player_with_animation(qtbot, state)
    qtbot.mouseClick(player.pingpong_check, Qt.MouseButton.LeftButton)
    preview = np.asarray(player.shown_frames)           # what the player steps through
    assert len(preview) == 18

    dialog = _show(qtbot, ExportDialog(state), (700, 420))
    assert dialog.pingpong_check.isChecked() and dialog.fps_spin.value() == state.studio.player.fps
    dialog.set_format("gif")
    dialog.upscale_spin.setValue(4)
    dialog.set_path(tmp_path / "interp.gif")
    with qtbot.waitSignal(dialog.exported, timeout=30000):
        qtbot.mouseClick(dialog.export_button, Qt.MouseButton.LeftButton)
    assert dialog.progress.value() == 100
    gif = iio.imread(tmp_path / "interp.gif", index=None)
    gif = gif[..., 0] if gif.ndim == 4 else gif
    enlarged = preview.repeat(4, axis=1).repeat(4, axis=2)
    assert gif.shape == enlarged.shape == (18, 32, 32)
    np.testing.assert_array_equal(gif, enlarged)       # grayscale GIF: exact

    dialog.set_format("mp4")
    assert dialog.path_edit.text().endswith("interp.mp4")
    with qtbot.waitSignal(dialog.exported, timeout=60000):
        qtbot.mouseClick(dialog.export_button, Qt.MouseButton.LeftButton)
    gray = _read_mp4(tmp_path / "interp.mp4")
    assert gray.shape == enlarged.shape
    assert np.abs(gray.astype(int) - enlarged.astype(int)).mean() < 6   # H.264 is lossy

    # a PNG grid of the same frames, with captions
    dialog.set_format("grid")
    dialog.columns_spin.setValue(6)
    dialog.captions_check.setChecked(True)
    with qtbot.waitSignal(dialog.exported, timeout=30000):
        qtbot.mouseClick(dialog.export_button, Qt.MouseButton.LeftButton)
    grid = iio.imread(tmp_path / "interp.png")
    tile = prepare_frames(state.studio.player.frames, pingpong=True, upscale=4, captions=state.studio.player.captions)
    assert grid.shape[:2] == (3 * tile.shape[1], 6 * 32)
    np.testing.assert_array_equal(grid[: tile.shape[1], :32], tile[0])


def _read_mp4(path) -> np.ndarray:
    """Every frame of a video, as gray ``T×H×W`` (decoded by ffmpeg)."""
    import imageio_ffmpeg

    reader = imageio_ffmpeg.read_frames(str(path), pix_fmt="gray", bpp=1)
    meta = next(reader)
    w, h = meta["size"]
    return np.stack([np.frombuffer(f, np.uint8).reshape(h, w) for f in reader])


def test_export_can_be_cancelled_and_reports_errors(qtbot, state, tmp_path):
    from explorer.ui.studio.export_dialog import ExportDialog

    _player_with_animation(qtbot, state, steps=60)
    dialog = _show(qtbot, ExportDialog(state), (700, 420))
    dialog.set_format("webp")
    dialog.upscale_spin.setValue(32)
    dialog.set_path(tmp_path / "big.webp")
    job = dialog.start_export()
    assert job is not None and dialog.cancel_button.isVisible() and not dialog.format_combo.isEnabled()
    dialog.reject()                                   # closing while writing cancels first
    qtbot.waitUntil(lambda: dialog.job is None, timeout=30000)
    assert "cancelled" in dialog.status.text() or (tmp_path / "big.webp").exists()
    assert not list(tmp_path.glob(".big*"))           # no half-written file is left behind

    blocker = tmp_path / "file"
    blocker.write_text("x")
    dialog.set_format("gif")
    dialog.set_path(blocker / "inside.gif")           # a folder that cannot exist
    dialog.start_export()
    qtbot.waitUntil(lambda: dialog.job is None, timeout=30000)
    assert "d32f2f" in dialog.status.styleSheet() and dialog.status.text()


def test_copy_and_save_the_current_frame(qtbot, state, tmp_path):
    from PySide6.QtGui import QGuiApplication

    from explorer.ui.studio.export_dialog import copy_frame_to_clipboard, save_frame
    from explorer.ui.qt_utils import to_uint8_hwc

    player = _player_with_animation(qtbot, state)
    state.studio.player.set_current_frame(4)
    frame = player.current_shown_frame()
    np.testing.assert_array_equal(frame, prepare_frames(state.studio.player.frames)[4])
    copy_frame_to_clipboard(frame, upscale=3)
    image = QGuiApplication.clipboard().image()
    assert (image.width(), image.height()) == (24, 24)
    from superqt.utils import qimage_to_array

    pixels = qimage_to_array(image)[..., 0]
    np.testing.assert_array_equal(pixels, frame.repeat(3, 0).repeat(3, 1))

    import imageio.v3 as iio

    path = save_frame(frame, tmp_path / "frame", upscale=2)
    assert path.suffix == ".png"
    np.testing.assert_array_equal(iio.imread(path), to_uint8_hwc(frame)[..., 0].repeat(2, 0).repeat(2, 1))


def test_conditional_label_picker_and_label_sweep(qtbot):
    from explorer.ui.studio.player import PlayerWidget
    from explorer.ui.studio.traversal import TraversalPanel

    torch.manual_seed(0)
    data = load_dataset("digits")
    model = build_model("cvae", image_shape=data.image_shape, latent_dim=3, hidden=(32,), num_classes=10)
    fit(model, data, TrainConfig(epochs=1, batch_size=128, seed=0))
    state = ExplorerState()
    state.set_dataset(data)
    state.set_model(model)
    state.encode()
    player = _show(qtbot, PlayerWidget(state))
    panel = _show(qtbot, TraversalPanel(state))
    assert player.label_picker.isVisible() and panel.label_picker.combo.count() == 10
    panel.label_picker.combo.setCurrentIndex(6)
    _redrawn(qtbot, panel)
    assert state.studio.decode_label == 6 and player.label_picker.combo.currentIndex() == 6
    z = state.studio.traversal.code
    np.testing.assert_array_equal(panel.view.image_array()[..., 0],
                                  prepare_frames(vl.decode(state.model, z[None], 6))[0])
    qtbot.mouseClick(panel.label_picker.animate_button, Qt.MouseButton.LeftButton)
    assert state.studio.player.animation_kind == "labels" and player.filmstrip.count() == 10
    np.testing.assert_array_equal(np.asarray(player.shown_frames),
                                  prepare_frames(vl.decode(state.model, np.repeat(z[None], 10, 0), np.arange(10))))


def test_studio_in_the_main_window(qtbot, make_main_window):
    from PySide6.QtCore import QPointF
    from PySide6.QtWidgets import QApplication

    window = make_main_window(open_default=True)
    state, studio = window.state, window.state.studio
    qtbot.waitUntil(lambda: state.codes is not None and state.map.ready, timeout=30_000)
    docks = window.studio_docks
    assert {"studio_player", "studio_interpolation", "studio_arithmetic", "studio_attributes",
            "studio_traversals"} <= set(window.docks)
    assert window.actions["export_animation"].shortcut().toString() == "Ctrl+E"
    assert window.actions["export_animation"] in window.menus["Export"].actions()
    assert window.actions["studio_play"].shortcut().toString() == "Space"

    # Pick two keyframes with real clicks on the map: no pins are dropped meanwhile.
    qtbot.mouseClick(docks.interpolation.pick_button, Qt.MouseButton.LeftButton)
    assert studio.picking.target == "keyframes" and window.actions["studio_pick"].isChecked()
    panel = window.central_panel
    assert not panel.pin_on_click
    view = panel.view
    for i in (0, 700):
        x, y = state.map.xy[i]
        pos = view.mapFromScene(view.vb.mapViewToScene(QPointF(float(x), float(y))))
        qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=pos)
    assert [k.kind for k in studio.interpolation.keyframes] == ["index", "index"]
    assert not state.map.pins
    np.testing.assert_array_equal(state.map.path_codes, studio.player.frame_codes)
    qtbot.mouseClick(docks.interpolation.pick_button, Qt.MouseButton.LeftButton)
    assert studio.picking.target is None and panel.pin_on_click

    # Space plays and pauses from anywhere but a text field; the marker follows the frame.
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window, timeout=3000)
    docks.player.slider.setFocus()
    qtbot.keyClick(docks.player.slider, Qt.Key.Key_Space)
    assert studio.player.playing
    qtbot.waitUntil(lambda: studio.player.current_frame >= 2, timeout=5000)
    qtbot.keyClick(docks.player.slider, Qt.Key.Key_Space)
    assert not studio.player.playing
    assert state.map.path_frame == studio.player.current_index
    docks.arithmetic.expression_edit.setFocus()
    qtbot.keyClick(docks.arithmetic.expression_edit, Qt.Key.Key_Space)
    assert not studio.player.playing and docks.arithmetic.expression_edit.text() == " "

    # Ctrl+E opens the export dialog on this animation.
    window.actions["export_animation"].trigger()
    dialog = docks._export_dialog
    assert dialog is not None and dialog.isVisible()
    assert dialog.preview_frames().shape[0] == studio.player.sequence_length
    dialog.close()
