"""The latent map widgets, driven with real mouse events (pytest-qt, offscreen)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("pytestqt")

from PySide6 import QtCore, QtWidgets  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402

from explorer.jobs.encoding import EncodingJob  # noqa: E402
from explorer.state import ExplorerState  # noqa: E402
from explorer.ui.map.decoder_view import DecoderView  # noqa: E402
from explorer.ui.map.groups import GroupsPanel  # noqa: E402
from explorer.ui.map.panel import MapPanel  # noqa: E402
from explorer.ui.map.pins import PinGallery  # noqa: E402
from vae_core import build_model  # noqa: E402

LEFT = QtCore.Qt.MouseButton.LeftButton


@pytest.fixture
def setup(make_map_host, digits):
    """A map panel, decoder, pins and groups on one state, shown and laid out."""
    torch.manual_seed(0)
    model = build_model("mlp", image_shape=digits.image_shape, latent_dim=4, hidden=(32,))
    m = make_map_host(model, lambda m: [DecoderView(m.state), PinGallery(m.state), GroupsPanel(m.state)])
    return (m.state, m.panel, *m.side)


def _pixel_of(panel, x, y) -> QtCore.QPoint:
    """Viewport pixel of map position (x, y)."""
    scene = panel.view.vb.mapViewToScene(QtCore.QPointF(x, y))
    return panel.view.mapFromScene(scene)


def _map_pos(panel, pixel: QtCore.QPoint) -> tuple[float, float]:
    p = panel.view.vb.mapSceneToView(panel.view.mapToScene(pixel))
    return p.x(), p.y()


def _move(qtbot, panel, pixel: QtCore.QPoint) -> None:
    QTest.mouseMove(panel.view.viewport(), pixel)
    qtbot.wait(5)


def test_hover_decodes_the_inverse_projection(setup, qtbot):
    state, panel, decoder, *_ = setup
    vp_rect = panel.view.vb.sceneBoundingRect()
    first = panel.view.mapFromScene(vp_rect.center() + QtCore.QPointF(-80, -40))
    second = panel.view.mapFromScene(vp_rect.center() + QtCore.QPointF(120, 70))
    seen = decoder.decode_count
    _move(qtbot, panel, first)
    qtbot.waitUntil(lambda: decoder.decode_count > seen, timeout=2000)
    x, y = _map_pos(panel, first)
    assert state.map.cursor_xy == pytest.approx((x, y), abs=1e-9)
    z = state.map.projection.inverse(np.array([x, y]))
    expected = state.decode(z)[0]
    np.testing.assert_allclose(decoder.preview_image, expected, atol=1e-6)
    np.testing.assert_allclose(decoder.preview.image, expected[0], atol=1e-6)
    before = decoder.preview_image.copy()

    seen = decoder.decode_count
    _move(qtbot, panel, second)
    qtbot.waitUntil(lambda: decoder.decode_count > seen, timeout=2000)
    x2, y2 = _map_pos(panel, second)
    expected2 = state.decode(state.map.projection.inverse(np.array([x2, y2])))[0]
    np.testing.assert_allclose(decoder.preview_image, expected2, atol=1e-6)
    assert not np.allclose(decoder.preview_image, before)
    assert panel.view.cursor_item.isVisible()


def test_hover_decodes_outside_the_data_and_reports_the_distance(setup, qtbot):
    state, panel, decoder, *_ = setup
    xy = state.map.xy.astype(float)
    # Far outside the data: zoom out so an empty corner is on screen.
    lo, hi = xy.min(0), xy.max(0)
    span = hi - lo
    panel.view.vb.setRange(xRange=(lo[0] - 3 * span[0], hi[0] + span[0]), yRange=(lo[1], hi[1] + 3 * span[1]),
                           padding=0)
    qtbot.wait(20)
    far = _pixel_of(panel, lo[0] - 2.5 * span[0], hi[1] + 2.5 * span[1])
    _move(qtbot, panel, far)
    qtbot.waitUntil(lambda: state.map.nearest is not None, timeout=5000)
    qtbot.waitUntil(lambda: state.map.known_data_spacing() is not None, timeout=5000)
    qtbot.waitUntil(lambda: "off the data" in decoder.distance.text(), timeout=5000)
    x, y = state.map.cursor_xy
    np.testing.assert_allclose(decoder.preview_image, state.decode(state.map.projection.inverse(np.array([x, y])))[0],
                               atol=1e-6)
    d = np.linalg.norm(state.codes - state.map.cursor_z, axis=1).min()
    assert state.map.nearest.distance == pytest.approx(d, rel=1e-4)


def test_hover_does_not_rerender_the_points(setup, qtbot):
    state, panel, decoder, *_ = setup
    qtbot.wait(50)
    renders = panel.view.points.render_count
    center = panel.view.mapFromScene(panel.view.vb.sceneBoundingRect().center())
    for k in range(12):
        _move(qtbot, panel, center + QtCore.QPoint(7 * k, 3 * k))
    qtbot.waitUntil(lambda: decoder.decode_count >= 6, timeout=2000)
    qtbot.wait(30)
    assert panel.view.points.render_count == renders


def test_latest_position_wins(setup, qtbot):
    """Many moves queued before the event loop runs are processed once, at the last one."""
    state, panel, decoder, *_ = setup
    view = panel.view
    center = view.mapFromScene(view.vb.sceneBoundingRect().center())
    before = view.hover_count
    for k in range(20):   # events delivered synchronously, no event loop in between
        pos = QtCore.QPointF(center + QtCore.QPoint(k * 3, k))
        ev = QtGui_mouse_move(pos)
        QtWidgets.QApplication.sendEvent(view.viewport(), ev)
    qtbot.waitUntil(lambda: view.hover_count > before, timeout=2000)
    qtbot.wait(20)
    assert view.hover_count == before + 1
    last = center + QtCore.QPoint(19 * 3, 19)
    assert state.map.cursor_xy == pytest.approx(_map_pos(panel, last), abs=1e-9)


def QtGui_mouse_move(pos: QtCore.QPointF):
    from PySide6 import QtGui

    return QtGui.QMouseEvent(QtCore.QEvent.Type.MouseMove, pos, pos, QtCore.Qt.MouseButton.NoButton,
                             QtCore.Qt.MouseButton.NoButton, QtCore.Qt.KeyboardModifier.NoModifier)


def test_hovering_a_data_point_shows_it(setup, qtbot):
    state, panel, decoder, *_ = setup
    xy = state.map.xy
    rect = panel.view.vb.viewRect()
    inside = np.flatnonzero((xy[:, 0] > rect.left()) & (xy[:, 0] < rect.right())
                            & (xy[:, 1] > rect.top()) & (xy[:, 1] < rect.bottom()))
    i = int(inside[len(inside) // 2])
    _move(qtbot, panel, _pixel_of(panel, *xy[i]))
    qtbot.waitUntil(lambda: state.map.hovered_index is not None, timeout=2000)
    j = state.map.hovered_index
    # the point drawn under the cursor: the same one, or one drawn on top of it within a pixel or two
    assert np.linalg.norm((xy[j] - xy[i]) / np.array([rect.width(), rect.height()])) < 0.01
    # the box follows once the image under the cursor is on screen
    qtbot.waitUntil(lambda: f"#{j:,}" in decoder.hover_caption.text(), timeout=2000)
    np.testing.assert_array_equal(decoder.original.image, state.images[j][0])
    np.testing.assert_allclose(decoder.reconstruction.image, state.decode(state.codes[j])[0][0], atol=1e-6)
    assert f"<b>{state.labels[j]}</b>" in decoder.hover_caption.text()


def test_click_adds_a_pin(setup, qtbot):
    state, panel, decoder, pins, _ = setup
    picked = []
    state.map.point_picked.connect(picked.append)
    rect = panel.view.vb.sceneBoundingRect()
    # An empty spot: outside the data cloud.
    xy = state.map.xy.astype(float)
    lo, hi = xy.min(0), xy.max(0)
    panel.view.vb.setRange(xRange=(lo[0] - 1.0 * (hi[0] - lo[0]), hi[0]), yRange=(lo[1], hi[1]), padding=0)
    qtbot.wait(20)
    pixel = _pixel_of(panel, lo[0] - 0.6 * (hi[0] - lo[0]), (lo[1] + hi[1]) / 2)
    assert rect.contains(panel.view.mapToScene(pixel))
    QTest.mouseClick(panel.view.viewport(), LEFT, pos=pixel)
    qtbot.waitUntil(lambda: len(state.map.pins) == 1, timeout=2000)
    pin = state.map.pins[0]
    x, y = _map_pos(panel, pixel)
    assert pin.index is None
    np.testing.assert_allclose(pin.z, state.map.projection.inverse(np.array([x, y])), atol=1e-5)
    assert picked and picked[-1].index is None
    assert pins.list.count() == 1 and pins.list.item(0).text() == "P1"
    assert len(panel.view.pin_item.data) == 1
    # a click on a data point pins that point's own code
    i = int(np.argmin(np.linalg.norm(xy - xy.mean(0), axis=1)))
    panel.view.reset_view()
    qtbot.wait(30)
    QTest.mouseClick(panel.view.viewport(), LEFT, pos=_pixel_of(panel, *xy[i]))
    qtbot.waitUntil(lambda: len(state.map.pins) == 2, timeout=2000)
    second = state.map.pins[1]
    assert second.index is not None
    np.testing.assert_array_equal(second.z, state.codes[second.index])


def test_pin_gallery_rename_and_save(setup, qtbot, tmp_path):
    state, panel, decoder, pins, _ = setup
    state.map.add_pin(state.codes[3], index=3)
    item = pins.list.item(0)
    item.setText("loop")
    assert state.map.pins[0].name == "loop"
    state.map.add_pin(state.codes[4])
    pins.list.item(1).setText("loop")          # taken: reverted
    assert pins.list.item(1).text() == "P2" and state.map.pins[1].name == "P2"
    path = state.marks.save_pins(tmp_path / "pins.json")
    state.marks.clear_pins()
    assert pins.list.count() == 0
    state.marks.load_pins(path)
    assert [pins.list.item(k).text() for k in range(pins.list.count())] == ["loop", "P2"]


def _drag(qtbot, panel, points) -> None:
    vp = panel.view.viewport()
    QTest.mousePress(vp, LEFT, pos=points[0])
    for p in points[1:]:
        QTest.mouseMove(vp, p)
        qtbot.wait(12)   # pyqtgraph's scene drops moves closer than 10 ms apart
    QTest.mouseRelease(vp, LEFT, pos=points[-1])
    qtbot.wait(10)


def test_rectangle_selection_makes_a_group_kept_across_projection_switches(setup, qtbot):
    state, panel, decoder, pins, groups = setup
    panel.set_tool("rect")
    rect = panel.view.vb.sceneBoundingRect()
    a = panel.view.mapFromScene(rect.center() - QtCore.QPointF(rect.width() * 0.3, rect.height() * 0.3))
    b = panel.view.mapFromScene(rect.center() + QtCore.QPointF(rect.width() * 0.05, rect.height() * 0.05))
    _drag(qtbot, panel, [a, (a + b) / 2, b])
    qtbot.waitUntil(lambda: len(state.marks.groups) == 1, timeout=2000)
    (x0, y0), (x1, y1) = _map_pos(panel, a), _map_pos(panel, b)
    expected = state.map.select_rect(x0, y0, x1, y1)
    name, idx = next(iter(state.marks.groups.items()))
    assert len(idx) > 0
    # the drag's last move is the release position, give or take the rate limit of pyqtgraph
    assert abs(len(idx) - len(expected)) <= max(3, 0.05 * len(expected))
    np.testing.assert_array_equal(state.map.selection, idx)
    assert groups.table.topLevelItemCount() == 1 and groups.grid.image is not None
    assert panel.view.points._layers[1]["idx"].size == len(idx)

    # switch to two latent dimensions: animated, selection kept
    panel.kind_combo.setCurrentIndex(0)
    assert state.map.kind == "dims"
    assert panel.view.animating
    qtbot.waitUntil(lambda: not panel.view.animating, timeout=3000)
    np.testing.assert_array_equal(state.map.selection, idx)
    np.testing.assert_allclose(state.map.xy, state.codes[:, :2], atol=1e-6)
    np.testing.assert_allclose(panel.view.points.positions, state.map.xy)
    assert np.sort(panel.view.points._layers[1]["idx"]).tolist() == idx.tolist()
    # and pick other dims
    panel._pick_dims(2, 3)
    qtbot.waitUntil(lambda: not panel.view.animating, timeout=3000)
    np.testing.assert_allclose(state.map.xy, state.codes[:, [2, 3]], atol=1e-6)
    np.testing.assert_array_equal(state.map.selection, idx)


def test_lasso_selection(setup, qtbot):
    state, panel, *_ = setup
    panel.set_tool("lasso")
    c = panel.view.mapFromScene(panel.view.vb.sceneBoundingRect().center())
    ring = [c + QtCore.QPoint(int(90 * np.cos(t)), int(90 * np.sin(t))) for t in np.linspace(0, 2 * np.pi, 14)]
    _drag(qtbot, panel, ring)
    qtbot.waitUntil(lambda: len(state.marks.groups) == 1, timeout=2000)
    idx = next(iter(state.marks.groups.values()))
    center = np.array(_map_pos(panel, c))
    assert len(idx) > 0
    # every selected point lies within the lasso's bounding box
    rx = abs(_map_pos(panel, c + QtCore.QPoint(95, 0))[0] - center[0])
    ry = abs(_map_pos(panel, c + QtCore.QPoint(0, 95))[1] - center[1])
    assert np.all(np.abs(state.map.xy[idx, 0] - center[0]) <= rx)
    assert np.all(np.abs(state.map.xy[idx, 1] - center[1]) <= ry)


def test_refresh_after_an_epoch_keeps_the_layout_aligned(setup, qtbot):
    state, panel, *_ = setup
    old = state.map.xy.copy()
    weights = {k: v + 0.02 * torch.randn_like(v) for k, v in state.model.state_dict().items()}
    layouts = []
    state.map.layout_changed.connect(lambda: layouts.append(state.map.xy.copy()))
    state.apply_weights(weights)
    qtbot.waitUntil(lambda: len(layouts) >= 1, timeout=5000)
    assert panel.jobs.wait(10)
    new = state.map.xy
    np.testing.assert_allclose(new, state.map.projection.transform(state.codes), atol=1e-4)
    moved = np.median(np.linalg.norm(new - old, axis=1))
    assert moved < 0.5 * np.median(np.linalg.norm(old - old.mean(0), axis=1))
    qtbot.waitUntil(lambda: not panel.view.animating, timeout=3000)
    np.testing.assert_allclose(panel.view.points.positions, new)


def test_view_follows_the_layout_until_the_user_moves_it(setup, qtbot):
    state, panel, *_ = setup
    view = panel.view

    def new_layout(scale):
        state.map.set_layout(state.map.xy * scale)
        view.finish_animation()

    def framed():  # the view shows exactly the frame computed for the current layout
        shown, target = view.vb.viewRect(), view._target_rect(state.map.xy)
        return np.allclose([shown.left(), shown.top(), shown.width(), shown.height()],
                           [target.left(), target.top(), target.width(), target.height()], rtol=1e-3, atol=1e-6)

    # A fresh model's codes are tiny; as training spreads them out the view must follow.
    new_layout(10.0)
    assert framed()
    # Once the user zooms by hand, later epochs keep their view...
    view.vb.scaleBy((0.5, 0.5))
    view.vb.sigRangeChangedManually.emit([True, True])
    kept = view.vb.viewRect()
    new_layout(3.0)
    assert view.vb.viewRect() == kept and not framed()
    # ...until Fit view hands framing back to the layout.
    view.reset_view()
    new_layout(0.1)
    assert framed()


def test_umap_switch_runs_in_a_worker_and_can_be_cancelled(setup, qtbot):
    # The first fit in a process compiles umap's numba code: minutes on a busy 2-core machine.
    state, panel, *_ = setup
    state.map.set_umap_params(n_epochs=40, n_neighbors=8)
    shown = state.map.projection
    panel.set_projection("umap")
    assert panel.jobs.busy
    assert not panel.progress.isHidden() and not panel.cancel_button.isHidden()
    qtbot.mouseClick(panel.cancel_button, LEFT)
    qtbot.waitUntil(lambda: not panel.jobs.busy, timeout=180_000)
    assert state.map.projection is shown and state.map.kind == "pca"
    assert panel.kind_combo.currentData() == "pca"
    assert panel.progress.isHidden()

    panel.set_projection("umap")
    qtbot.waitUntil(lambda: not panel.jobs.busy, timeout=180_000)
    assert state.map.projection.kind == "umap" and state.map.kind == "umap"
    assert not panel.umap_box.isHidden() and panel.dims_box.isHidden()
    qtbot.waitUntil(lambda: not panel.view.animating, timeout=3000)
    # hovering decodes through the UMAP k-NN inverse
    rect = panel.view.vb.sceneBoundingRect()
    pixel = panel.view.mapFromScene(rect.center())
    panel.view.hover_at(*_map_pos(panel, pixel))
    x, y = state.map.cursor_xy
    np.testing.assert_allclose(state.map.cursor_z, state.map.projection.inverse(np.array([x, y])))


def test_umap_layouts_glide_in_while_optimised_and_cancel_brings_back_the_map(setup, qtbot):
    state, panel, *_ = setup
    # enough epochs that the fit is still running when Cancel is clicked
    state.map.set_umap_params(n_epochs=3000, n_neighbors=8, intermediate_interval=0.0)
    shown, shown_xy = state.map.projection, state.map.xy.copy()
    streamed = []
    panel.jobs.intermediate_layout_applied.connect(lambda: streamed.append(state.map.projection))
    panel.set_projection("umap")
    qtbot.waitUntil(lambda: len(streamed) >= 3, timeout=180_000)
    assert panel.jobs.busy and not panel.progress.isHidden()
    assert len({id(p) for p in streamed}) == len(streamed) and all(p.kind == "umap" for p in streamed)
    # the points travel to the newest layout (the end point of the running transition)...
    np.testing.assert_array_equal(panel.view.points.positions, state.map.xy)
    # ...and hovering decodes through the layout on screen
    rect = panel.view.vb.sceneBoundingRect()
    panel.view.hover_at(*_map_pos(panel, panel.view.mapFromScene(rect.center())))
    x, y = state.map.cursor_xy
    np.testing.assert_allclose(state.map.cursor_z, state.map.projection.inverse(np.array([x, y])))

    qtbot.mouseClick(panel.cancel_button, LEFT)
    assert state.map.projection is shown and state.map.kind == "pca"
    np.testing.assert_array_equal(state.map.xy, shown_xy)
    count = len(streamed)
    qtbot.waitUntil(lambda: not panel.jobs.busy, timeout=60_000)
    qtbot.wait(200)
    assert len(streamed) == count and state.map.projection is shown
    assert panel.kind_combo.currentData() == "pca"


def test_backdrop_thumbnails_neighbours_and_legend(setup, qtbot):
    state, panel, decoder, *_ = setup
    view = panel.view
    panel.backdrop_check.setChecked(True)
    assert view.backdrop.isVisible()
    k, (_, h, w) = view.backdrop_grid, state.dataset.image_shape
    assert view.backdrop.image.shape == (k * h, k * w)
    # the top-left tile is the decoded top-left cell of the view
    rect = view.vb.viewRect()
    corner = np.array([rect.left() + rect.width() / (2 * k), rect.bottom() - rect.height() / (2 * k)])
    tile = state.decode(state.map.inverse(corner))[0][0]
    np.testing.assert_allclose(view.backdrop.image[-h:, :w], tile[::-1], atol=1e-6)

    # thumbnails appear once zoomed in
    panel.thumbs_check.setChecked(True)
    xy = state.map.xy.astype(float)
    cx, cy = np.median(xy, axis=0)
    span = np.ptp(xy, axis=0) * 0.08
    view.vb.setRange(xRange=(cx - span[0], cx + span[0]), yRange=(cy - span[1], cy + span[1]), padding=0)
    qtbot.waitUntil(lambda: view.thumbnails.count > 0, timeout=3000)

    # neighbours of the cursor are highlighted
    view.reset_view()
    panel.neighbours_check.setChecked(True)
    view.hover_at(cx, cy)
    qtbot.waitUntil(lambda: len(state.map.highlight) == panel.neighbours_k, timeout=5000)
    d = np.linalg.norm(state.codes - state.map.cursor_z, axis=1)
    assert set(state.map.highlight) == set(np.argsort(d)[: panel.neighbours_k])
    assert len(view.highlight_item.data) == panel.neighbours_k

    # the legend hides a class
    before = view.points.points_in_view
    panel.legend.buttons[0].click()
    assert 0 in state.map.hidden_labels
    qtbot.waitUntil(lambda: view.points.points_in_view < before, timeout=2000)
    assert not np.isin(view.points._layers[0]["idx"], np.flatnonzero(state.labels == 0)).any()


def test_show_path_and_export(setup, qtbot, tmp_path):
    state, panel, *_ = setup
    codes = np.linspace(state.codes[0], state.codes[1], 12)
    panel.show_path(codes, frame=3)
    x, y = panel.view.path_curve.getData()
    np.testing.assert_allclose(np.column_stack([x, y]), state.map.projection.transform(codes), atol=1e-5)
    assert len(panel.view.path_marker.data) == 1
    panel.clear_path()
    assert panel.view.path_curve.getData()[0] is None or len(panel.view.path_curve.getData()[0]) == 0

    panel.export(tmp_path / "map.png")
    panel.export(tmp_path / "map.svg")
    panel.export(tmp_path / "map.csv")
    from PySide6 import QtGui

    image = QtGui.QImage(str(tmp_path / "map.png"))
    assert not image.isNull() and image.width() > 200
    svg = (tmp_path / "map.svg").read_text()
    assert svg.count("<ellipse") + svg.count("<circle") + svg.count("<path") >= 1000
    assert (tmp_path / "map.csv").read_text().count("\n") == len(state.codes) + 1


def test_click_in_studio_pick_mode_does_not_pin(setup, qtbot):
    state, panel, *_ = setup
    picked = []
    state.map.point_picked.connect(picked.append)
    panel.pin_on_click = False
    QTest.mouseClick(panel.view.viewport(), LEFT, pos=panel.view.mapFromScene(panel.view.vb.sceneBoundingRect().center()))
    qtbot.waitUntil(lambda: len(picked) == 1, timeout=2000)
    assert state.map.pins == []


def test_context_menu_pins_and_highlights(setup, qtbot):
    state, panel, *_ = setup
    xy = state.map.xy
    menu = panel.view.context_menu(float(xy[0, 0]) + 1e-3, float(xy[0, 1]))
    actions = {a.text(): a for a in menu.actions() if a.text()}
    pin = next(a for t, a in actions.items() if t.startswith("Pin "))
    pin.trigger()
    assert len(state.map.pins) == 1
    actions["Highlight the 8 nearest data points"].trigger()
    assert len(state.map.highlight) == 8
    menu.deleteLater()


def test_a_diverged_model_does_not_break_the_map(setup, qtbot):
    """NaN weights give NaN codes: the map draws nothing for them, hovering still works."""
    state, panel, decoder, *_ = setup
    weights = {k: torch.full_like(v, float("nan")) for k, v in state.model.state_dict().items()}
    panel.set_projection("dims")
    qtbot.waitUntil(lambda: not panel.view.animating, timeout=3000)
    state.apply_weights(weights)
    assert panel.jobs.wait(10)
    qtbot.waitUntil(lambda: not panel.view.animating, timeout=3000)
    assert not np.isfinite(state.map.xy).any()
    panel.view.viewport().repaint()
    assert panel.view.points.points_in_view == 0
    panel.view.hover_at(0.0, 0.0)
    assert decoder.preview.image is not None and np.isfinite(decoder.preview.image).all()
    panel.backdrop_check.setChecked(True)
    panel.view.viewport().repaint()


@pytest.mark.parametrize("layout", ["folder", "model.safetensors"])
def test_a_saved_checkpoint_reopens_with_the_same_map_and_pins(setup, qtbot, tmp_path, digits, layout):
    state, panel, *_ = setup
    state.map.set_dims(3, 1)  # not what a fresh map would pick
    panel.set_projection("dims")
    assert panel.jobs.wait(30)
    panel.view.finish_animation()
    assert state.map.projection.kind == "dims"
    state.map.add_pin(state.codes[5], name="five", index=5)
    saved = state.save_checkpoint(tmp_path / layout)
    expected_xy = state.map.xy.copy()

    reopened = ExplorerState()
    encoder = EncodingJob(reopened)
    other = MapPanel(reopened, encoder=encoder)
    qtbot.addWidget(other)
    try:
        reopened.open_checkpoint(saved, dataset=digits)
        assert encoder.wait(30)
        qtbot.waitUntil(lambda: reopened.map.ready, timeout=10_000)
        assert other.jobs.wait(30)
        proj = reopened.map.projection
        assert proj.kind == "dims" and (proj.i, proj.j) == (3, 1)
        np.testing.assert_array_equal(reopened.map.xy, expected_xy)
        assert [(p.name, p.index) for p in reopened.map.pins] == [("five", 5)]
        np.testing.assert_array_equal(reopened.map.pins[0].z, state.codes[5])
    finally:
        other.jobs.shutdown()
        encoder.shutdown()


def test_the_hovered_point_box_follows_a_sweeping_cursor_without_going_stale(setup, qtbot):
    """The original/reconstruction box shows a new point at once, then at most every
    DETAIL_INTERVAL_MS while the cursor sweeps; once the cursor rests it shows the last point."""
    from explorer.ui.map.decoder_view import DETAIL_INTERVAL_MS

    state, panel, decoder, *_ = setup
    xy = state.map.xy
    qtbot.wait(2 * DETAIL_INTERVAL_MS)
    panel.view.hover_at(*map(float, xy[3]))
    first = state.map.hovered_index
    # The image under the cursor is painted first; the box follows right after it.
    assert first is not None
    qtbot.waitUntil(lambda: f"#{first:,}<" in decoder.hover_caption.text(), timeout=2000)
    np.testing.assert_array_equal(decoder.original.image, state.images[first][0])
    # A sweep across other points within one interval: the image under the cursor follows
    # every move, the box waits for the interval.
    for i in (10, 20, 30):
        panel.view.hover_at(*map(float, xy[i]))
    last = state.map.hovered_index
    assert last != first
    np.testing.assert_array_equal(decoder.original.image, state.images[first][0])
    qtbot.waitUntil(lambda: f"#{last:,}<" in decoder.hover_caption.text(), timeout=4 * DETAIL_INTERVAL_MS + 500)
    np.testing.assert_array_equal(decoder.original.image, state.images[last][0])
    np.testing.assert_allclose(decoder.reconstruction.image, state.decode(state.codes[last])[0][0], atol=1e-6)


def test_the_point_colour_table_is_premultiplied_argb_rounded_half_to_even():
    from explorer.ui.map.point_cloud import argb_table

    table = argb_table([(200, 100, 51), (0, 255, 10)], [1.0, 0.5])
    assert table.dtype == np.uint32 and table.shape == (2, 2)
    # alpha 0.5: 127.5 → 128 (even), 25.5 → 26, 5.0 → 5; colour channels scaled by alpha
    assert int(table[0, 0]) == (255 << 24) | (200 << 16) | (100 << 8) | 51
    assert int(table[0, 1]) == (128 << 24) | (100 << 16) | (50 << 8) | 26
    assert int(table[1, 1]) == (128 << 24) | (0 << 16) | (128 << 8) | 5
    colours = np.random.default_rng(0).integers(0, 256, (12, 3))
    alphas = np.linspace(0.1, 1.0, 7)
    expected = [[(round(255 * a) << 24) | (round(r * a) << 16) | (round(g * a) << 8) | round(b * a) for a in alphas]
                for r, g, b in colours.tolist()]
    np.testing.assert_array_equal(argb_table(colours, alphas), np.array(expected, dtype=np.uint32))


def test_the_point_clouds_bounding_rect_follows_the_view_and_the_data(setup, qtbot):
    """boundingRect is kept between calls (the scene asks for it on every mouse move); it must
    still be the padded data bounds after a zoom, a resize and new positions."""
    state, panel, *_ = setup
    item, vb = panel.view.points, panel.view.vb

    def fresh():
        return item._padded_bounds()

    assert item.boundingRect() == fresh()
    before = item.boundingRect()
    vb.scaleBy(s=(0.5, 0.5))
    qtbot.wait(10)
    assert item.boundingRect() == fresh() and item.boundingRect() != before   # padding in pixels shrinks
    panel.view.resize(panel.view.width() // 2, panel.view.height())
    qtbot.wait(50)
    assert item.boundingRect() == fresh()
    item.set_positions(state.map.xy * 3.0)
    assert item.boundingRect() == fresh()
    assert item.boundingRect().width() > 2.5 * before.width()


def test_a_click_before_the_new_layout_is_drawn_still_pins_the_data_point(setup, qtbot):
    """After a layout change the map repaints a few turns later (the window staggers its
    panels); a click in between finds the data point from the positions, not the old raster."""
    state, panel, *_ = setup
    view = panel.view
    xy = state.map.xy.astype(float)
    i = int(np.argmin(np.linalg.norm(xy - xy.mean(0), axis=1)))
    view.points.set_positions(state.map.xy)   # new positions, not rasterised yet
    assert not view.points.has_render
    view._on_box_clicked(QtCore.QPointF(*xy[i]), QtCore.Qt.KeyboardModifier.NoModifier)
    assert state.map.pins[-1].index == i
    np.testing.assert_allclose(state.map.pins[-1].z, state.codes[i], rtol=1e-6)


def test_image_pane_draws_the_image_scaled_to_fit_with_square_pixels(qtbot):
    from explorer.ui.map.decoder_view import ImagePane
    from explorer.ui.qt_utils import to_uint8

    pane = ImagePane(minimum=40)
    qtbot.addWidget(pane)
    pane.resize(200, 100)
    pane.show()
    image = np.linspace(0, 1, 4 * 8, dtype=np.float32).reshape(1, 4, 8)   # C×H×W, twice as wide as high
    pane.set_image(image)
    np.testing.assert_array_equal(pane.image, image[0])
    rect = pane.image_rect()
    assert (rect.width(), rect.height()) == (200, 100)   # fills the pane: same aspect
    pane.resize(100, 100)
    rect = pane.image_rect()
    assert (rect.left(), rect.top(), rect.width(), rect.height()) == (0, 25, 100, 50)   # letterboxed, centred
    shot = pane.grab().toImage()
    background = pane.palette().color(pane.backgroundRole())
    assert QtGui_color(shot, 50, 10) == (background.red(), background.green(), background.blue())
    expected = to_uint8(image[0])
    for row in range(4):
        for col in range(8):   # the centre of each image pixel, 12.5 screen pixels wide
            x, y = int(col * 12.5 + 6), int(25 + row * 12.5 + 6)
            v = int(expected[row, col])
            assert QtGui_color(shot, x, y) == (v, v, v), (row, col)
    pane.set_image(None)
    assert pane.image is None
    assert QtGui_color(pane.grab().toImage(), 50, 50) == (background.red(), background.green(), background.blue())


def QtGui_color(image, x, y):
    from PySide6 import QtGui

    c = QtGui.QColor(image.pixel(x, y))
    return c.red(), c.green(), c.blue()


def test_the_nearest_data_query_is_asked_after_the_image_under_the_cursor_is_decoded(setup, qtbot, monkeypatch):
    """The query thread would compete with the decode for the interpreter lock: it is asked
    for on the next event-loop turn, with the newest cursor only, and still answered."""
    state, panel, decoder, *_ = setup
    asked = []
    real = panel.jobs.query_nearest
    monkeypatch.setattr(panel.jobs, "query_nearest",
                        lambda z, k: (asked.append((decoder.decode_count, np.array(z))), real(z, k))[1])
    xy = state.map.xy
    before = decoder.decode_count
    panel.view.hover_at(*map(float, xy[5]))
    panel.view.hover_at(*map(float, xy[6]))
    assert decoder.decode_count == before + 2 and asked == []   # decoded now, asked later
    qtbot.waitUntil(lambda: len(asked) == 1, timeout=2000)
    assert asked[0][0] == before + 2
    np.testing.assert_allclose(asked[0][1], state.map.cursor_z)   # the newest position only
    direct = state.map.query_nearest(state.map.cursor_z, 1)
    qtbot.waitUntil(lambda: state.map.nearest is not None
                    and state.map.nearest.indices[0] == direct.indices[0], timeout=5000)
