"""The model families and objectives in the window: training from the panel, their loss terms,
the hvae layer picker and the decoder's posterior samples (pytest-qt, offscreen)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PySide6.QtCore import Qt

from explorer.ui.map.decoder_view import POSTERIOR_SAMPLES, POSTERIOR_SEED, DecoderView
from explorer.ui.training.panel import TrainingOptions
from vae_core import build_model

FAST = dict(dataset="digits", latent_dim=2, hidden=(32,), batch_size=128, lr=3e-3, seed=0, epochs=1)


def _train_from_panel(qtbot, window, **options) -> None:
    panel = window.training_panel
    panel.set_options(TrainingOptions(**{**FAST, **options}))
    assert panel.train_button.isEnabled(), panel.family.problem_label.text()
    with qtbot.waitSignal(window.state.training_finished, timeout=120_000) as finished:
        qtbot.mouseClick(panel.train_button, Qt.MouseButton.LeftButton)
    assert finished.args == ["completed"], getattr(window, "last_error", None)


def _hover_the_middle(qtbot, window) -> np.ndarray:
    """Hover the middle of the map once the new codes are laid out; the decoded image."""
    state, panel, decoder = window.state, window.map_docks.panel, window.map_docks.decoder
    assert window.encoder.wait(60)
    assert panel.jobs.wait(60)
    qtbot.waitUntil(lambda: state.map.ready and state.codes is not None, timeout=20_000)
    x, y = np.median(state.map.xy, axis=0)
    before = decoder.decode_count
    panel.view.hover_at(float(x), float(y))
    assert decoder.decode_count == before + 1
    assert decoder.preview_image.shape == state.dataset.image_shape
    assert np.isfinite(decoder.preview_image).all()
    return decoder.preview_image


@pytest.mark.parametrize("options, terms", [
    (dict(model="hvae", lower_dims=(8,), map_layer="top"), set()),
    (dict(model="iaf", flow_steps=2), set()),
    (dict(model="vaegan", hidden=(32,), gan_weight=0.5), {"gan", "disc", "feature"}),
    (dict(model="mlp", objective="iwae", samples=3), {"neg_elbo"}),
    (dict(model="mlp", objective="tcvae", alpha=1.0, beta=2.0, gamma=1.0), {"mi", "tc", "dim_kl"}),
])
def test_each_model_and_objective_trains_from_the_panel_and_the_map_hovers(options, terms, qtbot, make_main_window):
    window = make_main_window()
    qtbot.waitUntil(lambda: window.engine_ready, timeout=60_000)
    _train_from_panel(qtbot, window, **options)
    state = window.state
    assert state.model.name == options["model"] and state.epochs_trained == 1
    assert state.train_config["objective"] == options.get("objective", "elbo")
    for name in ("flow_steps", "lower_dims", "gan_weight"):
        if name in options:
            assert getattr(state.model.config, name) == options[name]
    # The loss curves show the objective's and the model's own terms, with the history's values.
    plot = window.loss_plot
    plot.redraw()
    assert set(plot.terms) == terms
    for term in terms:   # live: the run's batches, up to the end of its one epoch
        x, y = plot.series(term)
        assert len(x) >= 1 and np.isfinite(y).all() and x[-1] <= 1.0
    # A plot opened on the history (e.g. after reopening) shows the epochs' values.
    from explorer.ui.training.loss_plot import LossPlot

    fresh = LossPlot(state)
    qtbot.addWidget(fresh)
    assert set(fresh.terms) == terms
    for term in terms:
        x, y = fresh.series(term)
        np.testing.assert_allclose(y, [e[f"train_{term}"] for e in state.history])
    adversarial = bool(terms & {"gan", "disc", "feature"})
    assert (fresh.term_axes.scene() is not None) == adversarial
    _hover_the_middle(qtbot, window)


def test_the_panel_shows_each_family_with_its_rows_description_and_checks(qtbot, make_main_window):
    window = make_main_window()
    qtbot.waitUntil(lambda: window.engine_ready, timeout=60_000)
    panel = window.training_panel
    family = panel.family
    panel.model_combo.setCurrentText("iaf")
    assert "inverse autoregressive flow" in panel.model_info.text()
    assert family.flow_steps_spin.isVisibleTo(panel) and not family.gan_weight_spin.isVisibleTo(panel)
    panel.model_combo.setCurrentText("vaegan")
    assert "discriminator" in panel.model_info.text()
    assert family.gan_weight_spin.isVisibleTo(panel) and not family.flow_steps_spin.isVisibleTo(panel)
    # Ranges come from the library's tables.
    from vae_core.model_options import MODEL_OPTIONS
    from vae_core.training import LIMITS

    flow = next(o for o in MODEL_OPTIONS if o.name == "flow_steps")
    assert (family.flow_steps_spin.minimum(), family.flow_steps_spin.maximum()) == (flow.low, flow.high)
    assert (family.samples_spin.minimum(), family.samples_spin.maximum()) == LIMITS["samples"]
    # Objective rows follow the objective.
    family.objective_combo.setCurrentIndex(family.objective_combo.findData("iwae"))
    assert family.samples_spin.isVisibleTo(panel) and not family.alpha_spin.isVisibleTo(panel)
    family.objective_combo.setCurrentIndex(family.objective_combo.findData("tcvae"))
    assert family.alpha_spin.isVisibleTo(panel) and family.gamma_spin.isVisibleTo(panel)
    assert not family.samples_spin.isVisibleTo(panel)
    # hvae: the layers decide the map-layer choices; a hidden list of the wrong length is refused as typed.
    panel.model_combo.setCurrentText("hvae")
    family.objective_combo.setCurrentIndex(family.objective_combo.findData("elbo"))
    family.lower_dims_edit.setText("8, 4")
    assert [family.map_layer_combo.itemData(i) for i in range(family.map_layer_combo.count())] == \
        ["top", "2", "1", "all"]
    panel.hidden_edit.setText("16, 16")
    assert "one hidden width per layer" in family.problem_label.text()
    assert not panel.train_button.isEnabled()
    panel.hidden_edit.setText("16")
    assert family.problem_label.text() == "" and panel.train_button.isEnabled()
    # Every new row explains itself.
    for widget in (family.objective_combo, family.samples_spin, family.alpha_spin, family.gamma_spin,
                   family.flow_steps_spin, family.lower_dims_edit, family.map_layer_combo, family.gan_weight_spin,
                   family.feature_weight_spin):
        assert widget.toolTip()
    # The form's values are the options (and so the saved settings).
    family.map_layer_combo.setCurrentIndex(family.map_layer_combo.findData("all"))
    options = panel.options()
    assert (options.model, options.lower_dims, options.map_layer) == ("hvae", (8, 4), "all")
    assert TrainingOptions.from_dict(options.to_dict()) == options


# -- the map and the decoder, without a window ------------------------------------------------------
def _map_setup(make_map_host, model):
    m = make_map_host(model, lambda m: [DecoderView(m.state)], size=(1100, 800))
    return m.state, m.panel, m.side[0], m.encoder


@pytest.fixture
def hvae_map(make_map_host, digits):
    torch.manual_seed(0)
    model = build_model("hvae", image_shape=digits.image_shape, latent_dim=3, lower_dims=(6, 5), hidden=(16, 16, 16))
    return _map_setup(make_map_host, model)


def test_the_layer_picker_re_encodes_and_the_map_shows_that_layer(hvae_map, qtbot):
    state, panel, decoder, encoder = hvae_map
    assert panel.code_box.isVisibleTo(panel)
    combo = panel.code_combo
    assert [combo.itemData(i) for i in range(combo.count())] == ["top", "2", "1", "all"]
    assert state.codes.shape[1] == 3
    pin = state.marks.add_pin(state.codes[7], index=7)
    loose = state.marks.add_pin(np.zeros(3))
    for choice, dims in (("1", 6), ("all", 14), ("top", 3)):
        combo.setCurrentIndex(combo.findData(choice))
        combo.activated.emit(combo.currentIndex())
        assert encoder.wait(30) and panel.jobs.wait(30)
        qtbot.waitUntil(lambda: state.map.ready and state.codes is not None, timeout=10_000)
        assert state.model.config.map_layer == choice and state.model.latent_dim == dims
        # The codes are the model's map code of that layer (the encoding job's, through encode()).
        with torch.inference_mode():
            expected = state.model.map_code(torch.from_numpy(state.images[:5])).numpy()
        np.testing.assert_allclose(state.codes[:5], expected, atol=1e-5)
        assert state.map.projection.latent_dim == dims
        assert panel.dim_x.count() == dims   # the dims picker lists that layer's dimensions
        # A pin from a data point follows it; a pin without one cannot.
        assert [p.name for p in state.marks.pins] == [pin.name]
        np.testing.assert_array_equal(state.marks.pins[0].z, state.codes[7])
        x, y = np.median(state.map.xy, axis=0)
        panel.view.hover_at(float(x), float(y))
        assert decoder.preview_image is not None and np.isfinite(decoder.preview_image).all()
    assert loose.name not in [p.name for p in state.marks.pins]


def test_sampling_the_lower_layers_changes_the_decoding_not_the_codes(hvae_map, qtbot):
    state, panel, decoder, encoder = hvae_map
    check, redraw = panel.lower_noise_check, panel.redraw_noise
    assert check.isVisibleTo(panel) and not check.isChecked() and not redraw.isEnabled()
    codes, revision = state.codes, state.encoder_revision
    x, y = np.median(state.map.xy, axis=0)
    panel.view.hover_at(float(x), float(y))
    at_means = decoder.preview_image.copy()
    z = np.asarray(state.map.inverse(np.array([[x, y]], dtype=np.float32)), dtype=np.float32)[0]
    check.setChecked(True)
    assert state.model.lower_noise_seed is not None and redraw.isEnabled()
    # The hovered image is now the decode with the lower layers drawn from the model's fixed noise.
    panel.view.hover_at(float(x), float(y))
    with torch.inference_mode():
        expected = state.model.decode(torch.from_numpy(z[None])).numpy()[0]
    np.testing.assert_allclose(decoder.preview_image, expected, atol=1e-5)
    assert np.abs(decoder.preview_image - at_means).max() > 1e-3
    first = decoder.preview_image.copy()
    redraw.click()
    panel.view.hover_at(float(x), float(y))
    assert np.abs(decoder.preview_image - first).max() > 1e-3
    # Only decoding changed: the same codes object, nothing encoded again.
    assert encoder.wait(30)
    assert state.codes is codes and state.encoder_revision == revision
    check.setChecked(False)
    panel.view.hover_at(float(x), float(y))
    np.testing.assert_allclose(decoder.preview_image, at_means, atol=1e-6)
    # The bottom layer has nothing below it: the toggle goes away.
    combo = panel.code_combo
    combo.setCurrentIndex(combo.findData("1"))
    combo.activated.emit(combo.currentIndex())
    assert not check.isVisibleTo(panel)


def test_the_picker_is_hidden_for_models_with_one_code(make_map_host, digits):
    torch.manual_seed(0)
    state, panel, _decoder, encoder = _map_setup(make_map_host, build_model("iaf", image_shape=digits.image_shape,
                                                                            latent_dim=2, hidden=(16,)))
    assert not panel.code_box.isVisibleTo(panel)


@pytest.mark.parametrize("name, config", [("iaf", dict(latent_dim=2, hidden=(16,), flow_steps=2)),
                                          ("hvae", dict(latent_dim=2, lower_dims=(4,), hidden=(16, 16)))])
def test_posterior_samples_are_the_models_samples_decoded(name, config, qtbot, make_map_host, digits):
    torch.manual_seed(0)
    state, panel, decoder, encoder = _map_setup(make_map_host, build_model(name, image_shape=digits.image_shape,
                                                                           **config))
    decoder.samples_toggle.setChecked(True)
    assert decoder.samples_row.isVisibleTo(decoder)
    index = 11
    state.map.set_hovered_index(index)
    qtbot.waitUntil(lambda: decoder.samples_index == index, timeout=2_000)
    with torch.inference_mode():
        generator = torch.Generator().manual_seed(POSTERIOR_SEED)
        z = state.model.sample_posterior(torch.from_numpy(state.images[index : index + 1]), POSTERIOR_SAMPLES,
                                         generator=generator)[:, 0]
        expected = state.model.decode(z).numpy()
    assert len(decoder.sample_panes) == POSTERIOR_SAMPLES
    for pane, image in zip(decoder.sample_panes, expected):
        np.testing.assert_allclose(pane.image, image[0], atol=1e-6)
    # The samples differ from each other and from the mean's decoding.
    assert not np.allclose(decoder.sample_panes[0].image, decoder.sample_panes[1].image)
    # Hovering the point again reuses the cached samples without sampling anew.
    state.map.set_hovered_index(None)
    state.map.set_hovered_index(index)
    assert decoder.samples_index == index


def test_a_vqvae_trains_from_the_panel_and_hovering_decodes_a_snapped_code(qtbot, make_main_window):
    import torch

    window = make_main_window()
    _train_from_panel(qtbot, window, model="vqvae", latent_dim=2)
    model = window.state.model
    assert model.name == "vqvae"
    image = _hover_the_middle(qtbot, window)
    # What the Decoder shows is the model's decode of the hovered code: snapped to codebook
    # entries, so the same image as decoding the snapped code directly.
    state = window.state
    z = torch.as_tensor(state.map.cursor_z, dtype=torch.float32)[None]
    with torch.inference_mode():
        _, snapped = model.quantize(z)
        expected = model.decode(snapped)[0].numpy()
    np.testing.assert_allclose(image, expected, atol=1e-5)
