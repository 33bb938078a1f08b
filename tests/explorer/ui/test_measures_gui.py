"""Colour by, filter, search, outliers and the selection view, driven through the real widgets."""

from __future__ import annotations

import csv
import io
import zipfile

import numpy as np
import pytest
import torch

pytest.importorskip("pytestqt")

from PIL import Image  # noqa: E402
from PySide6 import QtCore  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402

from explorer.jobs.measures import MeasuresJob  # noqa: E402
from explorer.ui.map.colour_by import ColourKey, MapColouring, MeasuresPanel, colour_map_rgb, numeric_keys  # noqa: E402
from explorer.ui.map.outliers import OutliersPanel  # noqa: E402
from explorer.ui.map.selection_view import SelectionView  # noqa: E402
from vae_core import build_model  # noqa: E402

LEFT = QtCore.Qt.MouseButton.LeftButton


class Parts:
    pass


@pytest.fixture
def setup(make_map_host, digits):
    torch.manual_seed(0)
    p = Parts()

    def side(m):
        p.state, p.encoder, p.map_panel, p.view = m.state, m.encoder, m.panel, m.panel.view
        p.job = MeasuresJob(m.state, m.host)
        p.colouring = MapColouring(p.view, m.state)
        p.key = ColourKey(p.colouring)
        p.map_panel.body.addWidget(p.key)
        p.panel = MeasuresPanel(m.state, p.view, p.colouring, p.job)
        p.outliers = OutliersPanel(m.state, p.view)
        p.selection = SelectionView(m.state)
        return [p.panel, p.outliers, p.selection]

    make_map_host(build_model("mlp", image_shape=digits.image_shape, latent_dim=3, hidden=(32,)), side,
                  size=(1400, 950), side_stretch=2)
    yield p
    p.job.shutdown()


def _choose(p, qtbot, key):
    combo = p.panel.combo
    combo.setCurrentIndex(combo.findData(key))
    combo.activated.emit(combo.currentIndex())
    assert p.job.wait(60)
    qtbot.waitUntil(lambda: p.state.measures.column(key) is not None, timeout=5_000)


def test_colour_by_a_measure_computes_it_and_shows_a_colour_bar(setup, qtbot):
    p = setup
    ms = p.state.measures
    assert p.key.isHidden() and p.map_panel.legend.isVisible() is not None
    with qtbot.waitSignal(p.job.busy_changed, timeout=5_000):
        p.panel.combo.setCurrentIndex(p.panel.combo.findData("iwae_ll"))
        p.panel.combo.activated.emit(p.panel.combo.currentIndex())
    assert p.job.wait(60)
    values = ms.measures["iwae_ll"]
    assert ms.colour_by == "iwae_ll"
    keys = numeric_keys(values, *p.colouring.levels)
    np.testing.assert_array_equal(p.view.points._color_keys, keys)
    assert p.view.points._key_palette[:256] == colour_map_rgb()
    assert p.key.shows_colour_bar and p.key.bar.isVisible() and p.key.title.text() == "IWAE log-likelihood"
    lo, hi = p.colouring.levels
    assert lo == pytest.approx(np.percentile(values, 1)) and hi == pytest.approx(np.percentile(values, 99))
    # the histogram counts every point
    assert p.panel.bars is not None and int(sum(p.panel.bars.opts["height"])) == len(values)
    # The rendered map carries the colour map: the lowest and highest entries both appear.
    image = p.view.points.render_to_image(p.view.vb.viewRect(), 400, 400)
    ptr = image.constBits()
    pixels = np.frombuffer(ptr, dtype=np.uint32, count=image.width() * image.height())
    assert len(np.unique(pixels)) > 20

    # categories: a legend, no colour bar; the labels: the class toggles
    _choose(p, qtbot, "split")
    assert not p.key.shows_colour_bar and len(p.key.entries) == 2
    assert p.view.points._color_keys.max() == 1
    _choose(p, qtbot, "label")
    assert p.key.isHidden() and p.view.points._color_keys is None


def test_filter_range_dims_counts_and_limits_the_selection(setup, qtbot):
    p = setup
    state, ms, m = p.state, p.state.measures, p.state.map
    _choose(p, qtbot, "recon_nll")
    values = ms.measures["recon_nll"]
    p.panel.filter_check.setChecked(True)
    assert p.panel.region.isVisible()
    lo, hi = np.percentile(values, [30, 70])
    p.panel.region.setRegion((lo, hi))
    qtbot.waitUntil(lambda: ms.filter_range is not None and ms.filter_range[0] == pytest.approx(lo), timeout=2000)
    inside = (values >= lo) & (values <= hi)
    np.testing.assert_array_equal(m.filter_mask, inside)
    assert p.panel.count.text() == f"{inside.sum():,} of {len(values):,} points"
    assert p.map_panel.status.text().startswith(f"{inside.sum():,} of {len(values):,} points in the filter")
    np.testing.assert_array_equal(p.view.points._dimmed, ~inside)

    # A rectangle over the whole view selects only points inside the filter.
    p.map_panel.set_tool("rect")
    rect = p.view.vb.sceneBoundingRect()
    a = p.view.mapFromScene(rect.topLeft() + QtCore.QPointF(3, 3))
    b = p.view.mapFromScene(rect.bottomRight() - QtCore.QPointF(3, 3))
    vp = p.view.viewport()
    QTest.mousePress(vp, LEFT, pos=a)
    for t in (0.5, 1.0):
        QTest.mouseMove(vp, a + (b - a) * t)
        qtbot.wait(15)
    QTest.mouseRelease(vp, LEFT, pos=b)
    qtbot.waitUntil(lambda: len(state.marks.selection) > 0, timeout=2000)
    sel = state.marks.selection
    assert inside[sel].all()
    view_rect = p.view.vb.viewRect()
    xy = m.xy
    in_view = ((xy[:, 0] >= view_rect.left()) & (xy[:, 0] <= view_rect.right())
               & (xy[:, 1] >= view_rect.top()) & (xy[:, 1] <= view_rect.bottom()))
    assert abs(len(sel) - int((inside & in_view).sum())) <= max(3, 0.03 * len(sel))

    # hidden instead of dimmed
    p.panel.hide_check.setChecked(True)
    np.testing.assert_array_equal(m.visible_mask(), inside)
    assert p.view.points._dimmed is None
    assert sum(len(layer["idx"]) for layer in p.view.points._layers) == inside.sum()
    p.panel.filter_check.setChecked(False)
    assert m.filter_mask is None and p.panel.count.text() == ""
    assert sum(len(layer["idx"]) for layer in p.view.points._layers) == len(values)


def test_search_centres_and_marks_the_hit(setup, qtbot):
    p = setup
    m = p.state.map
    p.view.vb.setRange(rect=QtCore.QRectF(-50, -50, 1, 1), padding=0)
    QTest.keyClicks(p.panel.search_edit, "#42")
    QTest.keyClick(p.panel.search_edit, QtCore.Qt.Key.Key_Return)
    assert m.highlight.tolist() == [42]
    centre = p.view.vb.viewRect().center()
    assert (centre.x(), centre.y()) == pytest.approx(tuple(m.xy[42]), abs=1e-3)
    assert p.panel.search_result.text() == "#42"
    hits = p.panel.search("label 3")
    np.testing.assert_array_equal(hits, np.flatnonzero(p.state.labels == 3))
    np.testing.assert_array_equal(m.highlight, hits)
    p.panel.search("nothing like this")
    assert "No data point" in p.panel.search_result.text() and not len(m.highlight)


def test_outliers_list_ranks_and_clicking_centres(setup, qtbot):
    p = setup
    ms = p.state.measures
    assert p.outliers.compute_button.isVisible()
    QTest.mouseClick(p.outliers.compute_button, LEFT)
    assert p.job.wait(60)
    qtbot.waitUntil(lambda: p.outliers.list.count() == p.outliers.count, timeout=5000)
    ll = ms.measures["iwae_ll"]
    first = p.outliers.list.item(0).data(QtCore.Qt.ItemDataRole.UserRole)
    assert first == int(np.argmin(ll))
    assert not p.outliers.list.item(0).icon().isNull()
    item = p.outliers.list.item(2)
    QTest.mouseClick(p.outliers.list.viewport(), LEFT, pos=p.outliers.list.visualItemRect(item).center())
    index = item.data(QtCore.Qt.ItemDataRole.UserRole)
    assert p.state.map.highlight.tolist() == [index]
    centre = p.view.vb.viewRect().center()
    assert (centre.x(), centre.y()) == pytest.approx(tuple(p.state.map.xy[index]), abs=1e-3)
    p.outliers.set_ranking("recon_nll")
    first = p.outliers.list.item(0).data(QtCore.Qt.ItemDataRole.UserRole)
    assert first == int(np.argmax(ms.measures["recon_nll"]))


def test_selection_table_and_exports_match_the_selection(setup, qtbot, tmp_path):
    p = setup
    state, ms = p.state, p.state.measures
    ms.request()
    assert p.job.wait(60)
    qtbot.waitUntil(lambda: ms.measures is not None, timeout=5000)
    chosen = np.array([3, 10, 11, 500, 1500])
    state.marks.add_group(chosen)
    qtbot.waitUntil(lambda: p.selection.table.rowCount() == len(chosen), timeout=2000)
    header = [p.selection.table.horizontalHeaderItem(c).text() for c in range(p.selection.table.columnCount())]
    assert header[:3] == ["index", "label", "class"] and "iwae_ll" in header and "cluster" in header
    assert p.selection.grid.count() == len(chosen)

    out = p.selection.export_csv(tmp_path / "sel.csv")
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert [int(r["index"]) for r in rows] == chosen.tolist()
    assert [int(r["label"]) for r in rows] == state.labels[chosen].tolist()
    np.testing.assert_allclose([float(r["kl"]) for r in rows], ms.measures["kl"][chosen], rtol=1e-8)

    npz = np.load(p.selection.export_npz(tmp_path / "sel.npz"))
    np.testing.assert_array_equal(npz["indices"], chosen)
    np.testing.assert_array_equal(npz["images"], state.images[chosen])
    np.testing.assert_array_equal(npz["codes"], state.codes[chosen])
    np.testing.assert_array_equal(npz["iwae_ll"], ms.measures["iwae_ll"][chosen])

    (archive,) = p.selection.export_images(tmp_path / "sel.zip")
    with zipfile.ZipFile(archive) as z:
        names = sorted(z.namelist())
        assert len(names) == len(chosen) and names[0].startswith("00003_")
        first = np.asarray(Image.open(io.BytesIO(z.read(names[0]))))
    expected = np.floor(state.images[3, 0] * 255 + 0.5).astype(np.uint8)
    np.testing.assert_array_equal(first, expected)
    files = p.selection.export_images(tmp_path / "folder")
    assert sorted(f.name for f in files) == names and all(f.exists() for f in files)


def test_bad_csv_opens_an_error_dialog_and_a_good_one_adds_a_column(setup, qtbot, tmp_path):
    p = setup
    bad = tmp_path / "bad.csv"
    bad.write_text("id,score\n1,2\n")
    assert not p.panel.load_csv(bad)
    dialog = p.panel.error_dialog
    qtbot.waitUntil(dialog.isVisible, timeout=2000)
    assert "no 'index' column" in dialog.text and dialog.text.count(". ") == 0
    dialog.close()
    good = tmp_path / "good.csv"
    good.write_text("index,score\n" + "".join(f"{i},{i % 7 + 0.5}\n" for i in range(0, p.state.num_points, 2)))
    assert p.panel.load_csv(good)
    assert p.panel.combo.findData("csv:score") >= 0
    _choose(p, qtbot, "csv:score")
    assert p.key.shows_colour_bar and "grey" in p.key.note.text()


def test_a_vqvae_greys_out_what_it_cannot_measure(setup, qtbot, digits):
    p = setup
    p.state.set_model(build_model("vqvae", image_shape=digits.image_shape, latent_dim=2, codebook_size=8))
    combo = p.panel.combo
    # The chooser is rebuilt once on the next event-loop turn after a model change.
    qtbot.waitUntil(lambda: not combo.model().item(combo.findData("iwae_ll")).isEnabled(), timeout=2000)
    item = combo.model().item(combo.findData("iwae_ll"))
    assert not item.isEnabled() and "point mass" in item.toolTip()
    assert combo.model().item(combo.findData("recon_nll")).isEnabled()
    ranking = p.outliers.ranking
    assert not ranking.model().item(ranking.findData("iwae_ll")).isEnabled()
    assert p.outliers.by == "recon_nll"


def _pixel(image, x, y):
    """ARGB of the pixel at map position (x, y) of a render of the square [-1, 1]²."""
    w, h = image.width(), image.height()
    return image.pixel(int((x + 1) / 2 * w), int((1 - y) / 2 * h))


@pytest.mark.parametrize("density", [False, True])
def test_point_cloud_draws_colour_keys_and_dims(qtbot, monkeypatch, density):
    from PySide6 import QtGui

    from explorer.ui.map import point_cloud
    from explorer.ui.map.point_cloud import PointCloudItem

    if density:   # one pixel per point, coloured through the colour table
        monkeypatch.setattr(point_cloud, "DENSITY_THRESHOLD", 1)
    item = PointCloudItem()
    xy = np.array([[-0.5, -0.5], [0.5, 0.5], [0.5, -0.5]], np.float32)
    item.set_data(xy, labels=np.array([0, 0, 0]), colors=[(200, 200, 200)])
    palette = [(255, 0, 0), (0, 255, 0), (0, 0, 255)]
    item.set_color_keys([2, 0, 1], palette)
    item.set_dimmed([False, False, True])
    rect = QtCore.QRectF(-1, -1, 2, 2)
    image = item.render_to_image(rect, 101, 101)
    first, second, dimmed = (QtGui.QColor.fromRgba(_pixel(image, x, y)) for x, y in xy)
    # A lone point of the density layer is drawn at its lowest level's alpha (premultiplied pixels).
    a = round(255 * (0.42 if density else 1.0))
    assert (first.red(), first.green(), first.blue(), first.alpha()) == (0, 0, a, a)
    assert (second.red(), second.green(), second.blue(), second.alpha()) == (a, 0, 0, a)
    # dimmed: the same colour at dim_alpha
    d = round(255 * (0.42 if density else 1.0) * item.dim_alpha)
    assert (dimmed.red(), dimmed.green(), dimmed.blue(), dimmed.alpha()) == (0, d, 0, d)
    item.set_dimmed(None)
    item.set_color_keys(None)
    image = item.render_to_image(rect, 101, 101)
    back = QtGui.QColor.fromRgba(_pixel(image, 0.5, -0.5))
    c = round(200 * (0.42 if density else 1.0))
    assert (back.red(), back.green(), back.blue(), back.alpha()) == (c, c, c, a)
    with pytest.raises(ValueError):
        item.set_color_keys([0, 1], palette)


def test_point_cloud_recomputes_its_layers_once_for_a_burst_of_changes(qtbot, monkeypatch):
    """A new layout sets positions, colours, dimming, visibility and selection in one turn:
    the draw-order layers are computed once, when drawn, and from the last of those settings."""
    from PySide6 import QtCore, QtGui

    from explorer.ui.map.point_cloud import PointCloudItem

    rng = np.random.default_rng(0)
    xy = rng.uniform(-0.9, 0.9, size=(500, 2)).astype(np.float32)
    item = PointCloudItem()
    builds = []
    real = item._build_layers
    monkeypatch.setattr(item, "_build_layers", lambda: (builds.append(1), real())[1])
    item.set_data(xy, np.zeros(500, dtype=np.int64), [(200, 200, 200)])
    item.set_visible_mask(xy[:, 0] < 0.5)
    item.set_color_keys(np.arange(500) % 2, [(0, 0, 255), (255, 0, 0)])
    item.set_dimmed(xy[:, 1] < -0.5)
    item.set_selection([1, 2, 3])
    assert builds == []
    rect = QtCore.QRectF(-1, -1, 2, 2)
    image = item.render_to_image(rect, 101, 101)
    assert builds == [1]
    item.render_to_image(rect, 101, 101)
    assert builds == [1]
    # what was drawn follows the last settings: hidden points are not in any layer
    shown = sum(len(layer["idx"]) for layer in item._layers)
    assert shown == int((xy[:, 0] < 0.5).sum())
    assert isinstance(image, QtGui.QImage)
