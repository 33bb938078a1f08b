"""A vqvae in the window (pytest-qt, offscreen): its options in the Training panel, the
Decoder's changed cells, the Codebook panel, the Code Grid Editor, snapped and unsnapped
interpolation in the player, and Train prior from its button."""

from __future__ import annotations

import numpy as np
import torch
from PySide6.QtCore import Qt

from explorer.ui.training.panel import TrainingOptions
from vae_core import load_checkpoint

VQ = dict(dataset="digits", model="vqvae", latent_dim=3, codebook_size=16, commitment_weight=0.5, ema_decay=0.9,
          prior_width=16, prior_heads=2, batch_size=128, lr=3e-3, seed=0, epochs=2)


def _direct(model, grid):
    with torch.inference_mode():
        return model.decode_indices(torch.as_tensor(grid)[None])[0].numpy()


def test_vqvae_options_rows_show_for_vqvae_only(qtbot, make_main_window):
    window = make_main_window()
    qtbot.waitUntil(lambda: window.engine_ready, timeout=60_000)
    panel = window.training_panel
    panel.set_options(TrainingOptions(model="conv"))
    family, form = panel.family, panel._model_form
    codebook = family.vq_widgets["codebook_size"]
    assert not form.isRowVisible(codebook) and form.isRowVisible(panel.hidden_edit)
    panel.model_combo.setCurrentText("vqvae")
    assert form.isRowVisible(codebook) and not form.isRowVisible(panel.hidden_edit)
    assert form.labelForField(panel.latent_spin).text() == "&Code vector size:"
    assert codebook.maximum() == 65_536 and family.vq_widgets["ema_decay"].minimum() > 0
    family.vq_widgets["prior_width"].setValue(30)
    family.vq_widgets["prior_heads"].setValue(4)
    assert "multiple of prior_heads" in family.problem_label.text()
    assert not panel.train_button.isEnabled()
    family.vq_widgets["prior_width"].setValue(32)
    assert family.problem_label.text() == "" and panel.train_button.isEnabled()
    family.vq_widgets["ema"].setChecked(False)
    options = panel.options()
    assert options.ema is False and options.prior_width == 32
    assert TrainingOptions.from_dict(options.to_dict()) == options  # kept between sessions


def test_a_vqvae_from_the_panel_in_every_code_view(qtbot, make_main_window, tmp_path):
    window = make_main_window()
    qtbot.waitUntil(lambda: window.engine_ready, timeout=60_000)
    state = window.state
    panel = window.training_panel
    panel.set_options(TrainingOptions(**VQ))
    assert panel.train_button.isEnabled(), panel.family.problem_label.text()
    with qtbot.waitSignal(state.training_finished, timeout=120_000) as finished:
        qtbot.mouseClick(panel.train_button, Qt.MouseButton.LeftButton)
    assert finished.args == ["completed"]
    model = state.model
    assert (model.name, model.config.codebook_size, model.config.commitment_weight, model.config.ema_decay) == \
        ("vqvae", 16, 0.5, 0.9)
    docks = window.vq_docks
    assert all(d.isVisible() or window.tabifiedDockWidgets(d) for d in docks.docks.values())

    # -- hover: the Decoder says how many cells changed code ----------------------------------------
    map_panel, decoder = window.map_docks.panel, window.map_docks.decoder
    assert window.encoder.wait(60) and map_panel.jobs.wait(60)
    qtbot.waitUntil(lambda: state.map.ready and state.codes is not None, timeout=20_000)
    a, b = state.map.xy[0], state.map.xy[1]
    map_panel.view.hover_at(float(a[0]), float(a[1]))
    first = state.vq.cells.grid.copy()
    map_panel.view.hover_at(float(b[0]), float(b[1]))
    second = state.vq.cells.grid
    changed = int((first != second).sum())
    assert decoder.cells_label.isVisibleTo(decoder)
    assert decoder.cells_label.text() == f"{changed} of 16 grid cells changed code since the last position"

    # -- codebook panel: one tile per code with its usage; a click sets the brush ----------------------
    book = docks.codebook
    book.refresh()
    usage = state.vq.codebook.usage()
    assert len(book.tile_codes) == 16 and usage.sum() == len(state.codes) * 16
    dead = int((usage == 0).sum())
    assert f"<b>{16 - dead}</b> used" in book.summary.text()
    assert len(book.dead_scatter.data) == dead and len(book.scatter.data) == 16 - dead

    # -- code grid editor: a map click opens the point, a click paints a cell ---------------------------
    state.map.point_picked.emit(type("Picked", (), dict(z=state.codes[5], xy=(0.0, 0.0), index=5, label=None))())
    editor, edit_panel = state.vq.editor, docks.editor
    assert editor.source == "#5"
    original = editor.grid.copy()
    new_code = (int(original[1, 2]) + 3) % 16
    book.pick_code(new_code)
    assert edit_panel.brush_spin.value() == new_code
    edit_panel.resize(400, 500)
    edit_panel.show()
    qtbot.waitExposed(edit_panel)
    qtbot.mouseClick(edit_panel.canvas, Qt.MouseButton.LeftButton, pos=edit_panel.canvas.cell_center(1, 2))
    expected = original.copy()
    expected[1, 2] = new_code
    np.testing.assert_array_equal(editor.grid, expected)
    np.testing.assert_array_equal(edit_panel.grid_image(), _direct(model, expected))
    assert edit_panel.status.text() == "1 cell edited"

    # -- the edit as a keyframe; snapped and unsnapped interpolation play in the player -----------------
    qtbot.mouseClick(edit_panel.keyframe_button, Qt.MouseButton.LeftButton)
    state.studio.interpolation.add_index_keyframe(60)
    studio_panel = window.studio_docks.interpolation
    assert studio_panel._form.isRowVisible(studio_panel.snap_check) and studio_panel.snap_check.isChecked()
    player = state.studio.player
    snapped = player.frames.copy()
    with torch.inference_mode():
        grids = model.quantize(torch.from_numpy(player.frame_codes))[0]
        np.testing.assert_array_equal(snapped, model.decode_indices(grids).numpy())
    qtbot.mouseClick(studio_panel.snap_check, Qt.MouseButton.LeftButton)
    assert player.unquantized
    assert np.abs(player.frames - snapped).max() > 1e-3
    widget = window.studio_docks.player
    widget.fps_spin.setValue(50)
    qtbot.mouseClick(widget.play_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: player.current_frame >= 3, timeout=5000)
    qtbot.mouseClick(widget.play_button, Qt.MouseButton.LeftButton)
    np.testing.assert_array_equal(np.asarray(widget.shown_frames[0]).shape[:2], snapped.shape[-2:])

    # -- train the prior from its button; samples come from it and Save keeps it -------------------------
    prior_panel = docks.prior
    assert not model.prior_trained
    prior_panel.epochs_spin.setValue(1)
    with qtbot.waitSignal(prior_panel.runner.finished, timeout=120_000) as done:
        qtbot.mouseClick(prior_panel.train_button, Qt.MouseButton.LeftButton)
        assert prior_panel.cancel_button.isEnabled() and not prior_panel.train_button.isEnabled()
    assert done.args[0] == "completed", done.args
    assert state.model.prior_trained and prior_panel.progress.value() == 1000
    window.sample_view.refresh()
    qtbot.waitUntil(lambda: "learned prior" in window.sample_view._caption.text(), timeout=5000)
    prior_panel.temperature_spin.setValue(0.5)
    assert state.vq.sampling.temperature == 0.5
    window.sample_view.refresh()
    assert "temperature 0.5" in window.sample_view._caption.text()
    # A sample tile opens its grid in the editor.
    view = window.sample_view
    view.tile_clicked.emit(2)
    assert state.vq.editor.source == "sample 3"
    np.testing.assert_array_equal(state.vq.editor.grid,
                                  state.vq.sampling.sample_grids(view.rows * view.sample_columns)[2])
    prior_panel.rows_spin.setValue(2)
    qtbot.mouseClick(prior_panel.complete_button, Qt.MouseButton.LeftButton)
    assert prior_panel.completions._images.shape[0] == 8
    path = tmp_path / "vq"
    state.save_checkpoint(path)
    loaded = load_checkpoint(path).model
    assert loaded.prior_trained
    for key, value in state.model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key


def test_cancel_stops_the_prior_fit(qtbot, make_main_window):
    window = make_main_window()
    qtbot.waitUntil(lambda: window.engine_ready, timeout=60_000)
    state = window.state
    window.training_panel.set_options(TrainingOptions(**{**VQ, "epochs": 1}))
    with qtbot.waitSignal(state.training_finished, timeout=120_000):
        qtbot.mouseClick(window.training_panel.train_button, Qt.MouseButton.LeftButton)
    prior_panel = window.vq_docks.prior
    prior_panel.epochs_spin.setValue(500)
    with qtbot.waitSignal(prior_panel.runner.finished, timeout=60_000) as done:
        qtbot.mouseClick(prior_panel.train_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: prior_panel.progress.value() > 0, timeout=30_000)
        qtbot.mouseClick(prior_panel.cancel_button, Qt.MouseButton.LeftButton)
    assert done.args[0] == "stopped"
    assert "Cancelled" in prior_panel.progress_label.text()
    assert prior_panel.train_button.isEnabled()
