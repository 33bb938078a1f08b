"""The map's VAE tools driven through the real widgets: posterior cloud, holes, your image,
pixel samples and the inpainting editor (pytest-qt, offscreen)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("pytestqt")

from PySide6 import QtCore, QtWidgets
from PySide6.QtTest import QTest

from explorer.ui.dialogs import ErrorDialog
from explorer.ui.map.decoder_view import DecoderView
from explorer.ui.map.holes import holes_lut, holes_rgba
from vae_core import TrainConfig, build_model, fit
from vae_core.data import image_to_input
from vae_core.latent import encode_dataset

LEFT = QtCore.Qt.MouseButton.LeftButton


@pytest.fixture(scope="module")
def trained_model(digits):
    torch.manual_seed(0)
    model = build_model("mlp", image_shape=digits.image_shape, latent_dim=4, hidden=(64,))
    fit(model, digits, TrainConfig(epochs=4, batch_size=64, lr=3e-3, seed=0))
    return model


@pytest.fixture
def setup(make_map_host, trained_model):
    m = make_map_host(trained_model, lambda m: [DecoderView(m.state)], size=(1200, 850))
    return m.state, m.panel, m.side[0]


def _pixel_of(panel, x, y) -> QtCore.QPoint:
    return panel.view.mapFromScene(panel.view.vb.mapViewToScene(QtCore.QPointF(float(x), float(y))))


def _hover_point(qtbot, state, panel, index: int) -> None:
    target = _pixel_of(panel, *state.map.xy[index])
    # Qt sends no move event to where it believes the pointer already is (the last test's spot).
    QTest.mouseMove(panel.view.viewport(), target + QtCore.QPoint(25, 25))
    qtbot.wait(5)
    QTest.mouseMove(panel.view.viewport(), target)
    qtbot.waitUntil(lambda: state.map.hovered_index is not None, timeout=2000)


def _a_lonely_point(state, panel) -> int:
    """A point well inside the view with no other near it, so hovering it picks it."""
    xy = state.map.xy
    r = panel.view.vb.viewRect()
    inner = np.flatnonzero((xy[:, 0] > r.left() + 0.2 * r.width()) & (xy[:, 0] < r.right() - 0.2 * r.width())
                           & (xy[:, 1] > r.top() + 0.2 * r.height()) & (xy[:, 1] < r.bottom() - 0.2 * r.height()))
    candidates = inner[:300]
    d = np.linalg.norm(xy[:, None] - xy[None, candidates], axis=2)
    d[candidates, np.arange(len(candidates))] = np.inf
    return int(candidates[np.argmax(d.min(0))])


def test_hovering_draws_the_posterior_ellipse_of_the_encoders_sigma(setup, qtbot):
    state, panel, _ = setup
    tools = panel.vae_tools
    tools.posterior_check.click()
    assert state.map.posterior.enabled
    index = _a_lonely_point(state, panel)
    _hover_point(qtbot, state, panel, index)
    hovered = state.map.hovered_index
    item = tools.cloud.item
    qtbot.waitUntil(lambda: item.shape is not None and item.shape.index == hovered, timeout=2000)
    assert item.isVisible() and item.shape.exact
    pca = state.map.projection
    # Independently: the PCA components (and its display affine) applied to the encoder's σ².
    _, logvar = encode_dataset(state.model, state.images[hovered:hovered + 1])
    a = pca.affine[:, :2]
    w = a @ pca.components
    np.testing.assert_allclose(item.shape.covariance, (w * np.exp(logvar[0].astype(np.float64))) @ w.T, rtol=1e-4)
    # The 1σ outline is at Mahalanobis distance 1 from the point's own position.
    d = item.shape.outlines[1.0] - state.map.xy[hovered]
    inv = np.linalg.inv(item.shape.covariance)
    np.testing.assert_allclose(np.sqrt(np.einsum("ni,ij,nj->n", d, inv, d)), 1.0, atol=2e-3)
    tools.posterior_check.click()
    assert item.shape is None and not item.isVisible()


def test_a_umap_like_map_gets_a_sampled_cloud_once_the_cursor_rests(setup, qtbot, monkeypatch):
    state, panel, _ = setup
    tools = panel.vae_tools
    monkeypatch.setattr(type(state.map.projection), "_linear_raw", lambda self: None)   # as UMAP: not linear
    tools.posterior_check.click()
    index = _a_lonely_point(state, panel)
    _hover_point(qtbot, state, panel, index)
    assert tools.cloud.item.shape is None           # nothing on the hover path itself
    qtbot.waitUntil(lambda: tools.cloud.item.shape is not None, timeout=2000)
    shape = tools.cloud.item.shape
    assert not shape.exact and shape.samples.shape == (64, 2)
    spread = np.linalg.norm(shape.samples - shape.centre, axis=1)
    assert np.isfinite(spread).all() and spread.max() > 0


def test_holes_overlay_is_computed_off_the_gui_thread_and_drawn_with_its_legend(setup, qtbot):
    state, panel, _ = setup
    tools = panel.vae_tools
    tools.holes_check.click()
    assert tools.holes.legend.isVisible()
    qtbot.waitUntil(lambda: state.map.holes.result is not None, timeout=30_000)
    result = state.map.holes.result
    assert tools.holes.item.isVisible()
    np.testing.assert_array_equal(tools.holes.item.image, holes_rgba(result, holes_lut(dark=tools.holes.dark)))
    # shaded inside the prior's bulk, transparent far outside it
    alpha = tools.holes.item.image[..., 3]
    assert (alpha[result.prior_quantile > 0.99] == 0).all()
    assert alpha[result.prior_quantile < 0.98].max() > 0
    # what the worker computed is the library's holes map for the shown map and codes
    _, args = state.map.holes.request()
    np.testing.assert_array_equal(result.log_ratio, state.map.holes.compute(*args).log_ratio)
    xmin, ymin, xmax, ymax = result.extent
    rect = tools.holes.item.mapRectToParent(tools.holes.item.boundingRect())
    assert (rect.left(), rect.top(), rect.right(), rect.bottom()) == pytest.approx((xmin, ymin, xmax, ymax))
    xy = state.map.xy
    assert xmin < xy[:, 0].min() and xy[:, 0].max() < xmax and ymin < xy[:, 1].min() and xy[:, 1].max() < ymax
    assert "2-D marginals" in tools.holes.legend.note.text()
    state.map.fit("dims")                         # another map: recomputed for it
    qtbot.waitUntil(lambda: state.map.holes.result is not None and tools.holes.job.task is None, timeout=30_000)
    assert state.map.holes.set_result(state.map.holes.key(), state.map.holes.result)
    tools.holes_check.click()
    assert not tools.holes.item.isVisible() and not tools.holes.legend.isVisible()


def _drop(widget, mime) -> None:
    pos = QtCore.QPointF(widget.rect().center())
    actions = QtCore.Qt.DropAction.CopyAction
    enter = QtGui_drag_enter(pos, actions, mime)
    QtWidgets.QApplication.sendEvent(widget, enter)
    assert enter.isAccepted()
    from PySide6.QtGui import QDropEvent

    drop = QDropEvent(pos, actions, mime, LEFT, QtCore.Qt.KeyboardModifier.NoModifier)
    QtWidgets.QApplication.sendEvent(widget, drop)


def QtGui_drag_enter(pos, actions, mime):
    from PySide6.QtGui import QDragEnterEvent

    return QDragEnterEvent(pos.toPoint(), actions, mime, LEFT, QtCore.Qt.KeyboardModifier.NoModifier)


def test_a_dropped_image_lands_where_encode_puts_it(setup, qtbot, tmp_path, digits):
    from PIL import Image

    state, panel, _ = setup
    tools = panel.vae_tools
    path = tmp_path / "my-digit.png"
    Image.fromarray((np.kron(digits.test.images[4][0], np.ones((6, 6))) * 255).astype(np.uint8)).save(path)
    mime = QtCore.QMimeData()
    mime.setUrls([QtCore.QUrl.fromLocalFile(str(path))])
    with qtbot.waitSignal(tools.own_image.analysed, timeout=60_000):
        _drop(panel.view.viewport(), mime)
    result = state.map.own_image.result
    expected = image_to_input(path, state.model.image_shape, background="dark")
    mu, _ = encode_dataset(state.model, expected[None])
    np.testing.assert_allclose(result.code, mu[0], rtol=1e-5, atol=1e-6)
    xy = state.map.projection.transform(mu)[0]
    np.testing.assert_allclose(tools.own_image.marker.data["x"][0], xy[0], rtol=1e-5)
    np.testing.assert_allclose(tools.own_image.marker.data["y"][0], xy[1], rtol=1e-5)
    card = tools.own_image.card
    assert card.isVisible() and "log p(x) ≥" in card.score.text() and "percentile" in card.score.text()
    np.testing.assert_allclose(card.reconstruction.image, state.decode(mu)[0][0], atol=1e-6)
    card.pin_button.click()
    assert state.marks.pins[-1].name == "my-digit" and np.allclose(state.marks.pins[-1].z, mu[0])
    card.close_button.click()
    assert not card.isVisible() and not tools.own_image.marker.isVisible()


def test_a_pasted_image_and_a_bad_file_get_an_answer(setup, qtbot, tmp_path):
    from PySide6.QtGui import QImage

    state, panel, _ = setup
    tools = panel.vae_tools
    image = QImage(40, 40, QImage.Format.Format_RGB32)
    image.fill(QtCore.Qt.GlobalColor.black)
    QtWidgets.QApplication.clipboard().setImage(image)
    with qtbot.waitSignal(tools.own_image.analysed, timeout=60_000):
        assert tools.own_image.paste()
    assert state.map.own_image.result.name == "pasted image"
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not a png at all")
    mime = QtCore.QMimeData()
    mime.setUrls([QtCore.QUrl.fromLocalFile(str(bad))])
    with qtbot.waitSignal(tools.own_image.failed, timeout=30_000) as blocker:
        _drop(panel.view.viewport(), mime)
    assert blocker.args == ["broken.png could not be read as an image."]
    dialogs = [d for d in panel.window().findChildren(ErrorDialog) if d.isVisible()]
    assert dialogs and dialogs[-1].text == "broken.png could not be read as an image."
    dialogs[-1].accept()


def test_pixel_samples_are_draws_of_the_decoded_mean(setup, qtbot):
    _, panel, decoder = setup
    box = decoder.pixel_samples
    box.toggle.click()
    centre = panel.view.mapFromScene(panel.view.vb.sceneBoundingRect().center())
    QTest.mouseMove(panel.view.viewport(), centre)
    qtbot.waitUntil(lambda: box.samples is not None and decoder.preview_image is not None, timeout=2000)
    qtbot.wait(150)
    assert set(np.unique(box.samples)) <= {0.0, 1.0}       # a Bernoulli model: pixels on or off
    np.testing.assert_allclose(box.mean_pane.image, decoder.preview_image[0])
    assert "Bernoulli" in box.caption.text()


def test_inpainting_editor_fills_erased_pixels_and_pins_the_result(setup, qtbot):
    state, panel, _ = setup
    tools = panel.vae_tools
    index = _a_lonely_point(state, panel)
    _hover_point(qtbot, state, panel, index)
    hovered = state.map.hovered_index
    tools.inpaint_button.click()
    dialog = tools.inpaint_dialog
    qtbot.waitExposed(dialog)
    original = state.images[hovered]
    np.testing.assert_array_equal(dialog.canvas.image, original)
    # a stroke with the mouse across the bottom rows, then the quick button for the whole half
    canvas = dialog.canvas
    QTest.mousePress(canvas, LEFT, pos=canvas.widget_position(0, 7).toPoint())
    for col in range(1, 8):
        QTest.mouseMove(canvas, canvas.widget_position(col, 7).toPoint())
    QTest.mouseRelease(canvas, LEFT, pos=canvas.widget_position(7, 7).toPoint())
    assert not canvas.observed[7].any() and canvas.observed[:5].all()
    dialog.erase_half.click()
    observed = canvas.observed.copy()
    dialog.steps_spin.setValue(10)
    with qtbot.waitSignal(dialog.run_finished, timeout=30_000):
        dialog.fill_button.click()
    assert len(dialog.steps) == 11
    for step in dialog.steps:
        np.testing.assert_array_equal(step.image[:, observed], original[:, observed])
    np.testing.assert_array_equal(dialog.result_pane.image, dialog.steps[-1].image[0])
    assert [c.text() for c in dialog.film_captions] == [f"step {k}" for k in (0, 1, 3, 4, 6, 7, 9, 10)]
    np.testing.assert_array_equal(dialog.film_panes[-1].image, dialog.steps[-1].image[0])
    dialog.step_slider.setValue(3)
    np.testing.assert_array_equal(dialog.result_pane.image, dialog.steps[3].image[0])
    dialog.step_slider.setValue(10)
    dialog.pin_button.click()
    pin = state.marks.pins[-1]
    mu, _ = encode_dataset(state.model, dialog.steps[-1].image[None])
    assert pin.name.startswith("inpainted") and np.allclose(pin.z, mu[0])
    dialog.method_combo.setCurrentIndex(1)
    with qtbot.waitSignal(dialog.run_finished, timeout=30_000):
        dialog.fill_button.click()
    for step in dialog.steps:
        np.testing.assert_array_equal(step.image[:, observed], original[:, observed])
    dialog.close()


def test_holes_colours_follow_the_log_ratio_inside_the_priors_region():
    from explorer.ui.map.holes import DATA_RGB, HOLE_ALPHA, HOLE_RGB
    from vae_core.latent import HolesMap

    ratio = np.array([[8.0, -8.0, 0.0, 8.0]], np.float32)
    quantile = np.array([[0.1, 0.1, 0.1, 0.999]], np.float32)
    rgba = holes_rgba(HolesMap(ratio, ratio, ratio, quantile, (0, 0, 1, 1), True, 1, 8.0))
    assert tuple(rgba[0, 0, :3]) == HOLE_RGB[False] and rgba[0, 0, 3] == HOLE_ALPHA
    assert tuple(rgba[0, 1, :3]) == DATA_RGB and 0 < rgba[0, 1, 3] < HOLE_ALPHA
    assert rgba[0, 2, 3] == 0 and rgba[0, 3, 3] == 0     # agreement; outside the prior's 99% region
