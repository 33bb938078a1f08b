"""The Runs panel, the side-by-side comparison and the factor heatmap, through the real widgets."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest


def _open_runs(window, qtbot, folder):
    window.open_path(folder)   # what dropping the folder on the window does
    qtbot.waitUntil(lambda: not window.busy and window.experiments.runs.table is not None, timeout=30_000)
    return window.experiments.runs_panel


def _visible_column(panel, name):
    table = panel.runs.table
    col = table.columns.index(name)
    return [panel.proxy.index(r, col).data(Qt.ItemDataRole.DisplayRole) for r in range(panel.proxy.rowCount())], \
        [panel.proxy.mapToSource(panel.proxy.index(r, 0)).row() for r in range(panel.proxy.rowCount())]


def test_the_runs_panel_opens_a_sweep_folder_sorts_and_plots_its_rows(make_main_window, qtbot, sweep_folder):
    window = make_main_window()
    panel = _open_runs(window, qtbot, sweep_folder)
    table = panel.runs.table
    assert window.experiments.runs_dock.isVisible()
    assert panel.model.rowCount() == len(table) == 6
    assert panel.model.headerData(0, Qt.Orientation.Horizontal) == "name"

    # a click on the "kl" header sorts by KL as numbers, a second click reverses
    header = panel.table.horizontalHeader()
    kl_col = table.columns.index("kl")
    QTest.mouseClick(header.viewport(), Qt.MouseButton.LeftButton,
                     pos=header.rect().topLeft() + _header_point(header, kl_col))
    _, order = _visible_column(panel, "kl")
    kls = [table.runs[i].value("kl") for i in order]
    assert kls == sorted(kls)
    QTest.mouseClick(header.viewport(), Qt.MouseButton.LeftButton,
                     pos=header.rect().topLeft() + _header_point(header, kl_col))
    _, order = _visible_column(panel, "kl")
    assert [table.runs[i].value("kl") for i in order] == sorted(kls, reverse=True)

    # one point per row at (KL, reconstruction), carrying its row; coloured by beta with a legend
    plot = panel.rd_plot
    x, y = plot.points.getData()
    rows = [int(p.data()) for p in plot.points.points()]
    assert rows == list(range(6))
    assert list(x) == [table.runs[i].value("kl") for i in rows]
    assert list(y) == [table.runs[i].value("recon") for i in rows]
    assert [item[1].text for item in plot.legend.items] == ["beta = 0.25", "beta = 1", "beta = 4"]
    brushes = [p.brush().color().name() for p in plot.points.points()]
    by_beta = {}
    for row, color in zip(rows, brushes):
        by_beta.setdefault(table.runs[row].value("beta"), set()).add(color)
    assert all(len(c) == 1 for c in by_beta.values()) and len(set.union(*by_beta.values())) == 3
    assert len(plot.curve_items) == 2   # one β curve per seed

    # the metric-vs-setting plot follows the chosen columns
    panel.plots.setCurrentIndex(1)
    panel.x_combo.setCurrentText("seed")
    panel.y_combo.setCurrentText("neg_elbo")
    mx, my = panel.metric_plot.points.getData()
    assert list(mx) == [float(r.value("seed")) for r in table.runs]
    assert list(my) == [r.value("neg_elbo") for r in table.runs]
    panel.color_combo.setCurrentText("seed")
    assert [item[1].text for item in panel.metric_plot.legend.items] == ["seed = 0", "seed = 1"]


def _header_point(header, column):
    from PySide6.QtCore import QPoint

    return QPoint(header.sectionViewportPosition(column) + header.sectionSize(column) // 2, header.height() // 2)


def test_double_clicking_a_row_or_a_point_opens_that_run(make_main_window, qtbot, sweep_folder, monkeypatch):
    from explorer.ui import main_window as mw

    window = make_main_window()
    panel = _open_runs(window, qtbot, sweep_folder)
    table = panel.runs.table

    # a row
    rect = panel.table.visualRect(panel.proxy.index(2, 1))
    _double_click(panel.table.viewport(), rect.center())
    qtbot.waitUntil(lambda: not window.busy and window.state.checkpoint_path == table.runs[2].path, timeout=30_000)
    assert window.state.history[-1]["test_kl"] == table.runs[2].value("kl")

    # a point of the rate–distortion plot, with unsaved training: the question comes first
    window.state._set_dirty(True)
    asked = []
    monkeypatch.setattr(mw, "ask_save_changes", lambda *a, **k: asked.append(a) or "cancel")
    plot = panel.rd_plot
    panel.plots.setCurrentIndex(0)
    qtbot.waitUntil(lambda: plot.isVisible())
    point = plot.mapFromScene(plot.scene_position(4))
    _double_click(plot.viewport(), point)
    qtbot.wait(50)
    assert len(asked) == 1 and window.state.checkpoint_path == table.runs[2].path
    monkeypatch.setattr(mw, "ask_save_changes", lambda *a, **k: "discard")
    _double_click(plot.viewport(), point)
    qtbot.waitUntil(lambda: not window.busy and window.state.checkpoint_path == table.runs[4].path, timeout=30_000)
    assert panel.current_row() == 4


def _double_click(widget, pos):
    # A double-click is a press and release, then a second press that Qt reports as a
    # double-click (QTest.mouseDClick sends only that press), then its release.
    QTest.mouseClick(widget, Qt.MouseButton.LeftButton, pos=pos)
    QTest.mouseDClick(widget, Qt.MouseButton.LeftButton, pos=pos)
    QTest.mouseRelease(widget, Qt.MouseButton.LeftButton, pos=pos)


def test_a_folder_without_runs_is_one_warning(make_main_window, qtbot, tmp_path):
    window = make_main_window()
    (tmp_path / "summary.json").write_text("[1, 2]")
    window.experiments.open_runs_folder(tmp_path)
    qtbot.waitUntil(lambda: not window.busy, timeout=10_000)
    assert window.last_error[0] == "No runs in this folder"
    assert "not a list of runs" in window.last_error[1]
    assert window.experiments.runs.table is None


def test_the_comparison_aligns_two_maps_and_links_the_hover(make_main_window, qtbot, sweep_folder):
    from vae_core.projection import align_to, apply_affine

    window = make_main_window()
    left_path, right_path = sweep_folder / "runs" / "mlp-beta0.25-seed0", sweep_folder / "runs" / "mlp-beta4-seed1"
    window.open_checkpoint(left_path)
    qtbot.waitUntil(lambda: not window.busy and window.state.model is not None, timeout=30_000)
    docks = window.experiments
    view = docks.compare_view
    docks.compare_with_checkpoint(right_path)
    qtbot.waitUntil(lambda: not window.busy and not view.job.busy and view.compare.right.map.xy is not None,
                    timeout=60_000)
    compare = view.compare
    left, right = compare.left, compare.right
    assert docks.compare_dock.isVisible() and compare.kind == "dims"   # both are 2-D
    assert left.checkpoint_path == left_path and right.checkpoint_path == right_path
    assert np.array_equal(left.codes, window.state.codes if window.state.codes is not None else left.codes)

    # the right layout is the Procrustes fit of its raw latent dims onto the left layout
    raw = right.codes[:, :2].astype(np.float64)
    np.testing.assert_allclose(right.map.xy, apply_affine(align_to(left.map.xy, raw), raw), rtol=1e-4, atol=1e-4)
    aligned_error = np.mean(np.sum((right.map.xy - left.map.xy) ** 2, axis=1))
    assert aligned_error < np.mean(np.sum((raw - left.map.xy) ** 2, axis=1))

    # hovering a data point on the left map shows the same point on both
    i = 123
    x, y = left.map.xy[i]
    view.left.view.hover_at(float(x), float(y))
    assert left.map.hovered_index == i and compare.hovered_index == i and compare.hovered_side == "left"
    assert right.map.hovered_index == i
    assert list(left.map.highlight) == [i] and list(right.map.highlight) == [i]
    assert view.right.view.cursor_item.isVisible()
    np.testing.assert_allclose(view.right.view.cursor_item.pos().x(), right.map.xy[i, 0], rtol=1e-6)
    images = left.images
    qtbot.waitUntil(lambda: view.right.decoder.original.image is not None, timeout=2000)
    np.testing.assert_array_equal(view.right.decoder.original.image, images[i, 0])
    left_image, right_image = view.linked_images()
    np.testing.assert_allclose(left_image, left.decode(left.codes[i])[0, 0], atol=1e-6)
    np.testing.assert_allclose(right_image, right.decode(right.codes[i])[0, 0], atol=1e-6)
    np.testing.assert_allclose(view.right.decoder.preview.image, right.decode(right.codes[i])[0, 0], atol=1e-6)
    assert not np.allclose(left_image, right_image)   # two models, two images of one input

    # and the other way round; leaving the points clears both
    j = 777
    view.right.view.hover_at(*map(float, right.map.xy[j]))
    assert compare.hovered_index == j and left.map.hovered_index == j and list(left.map.highlight) == [j]
    view.right.view.hover_at(1e6, 1e6)
    assert compare.hovered_index is None and len(left.map.highlight) == 0 and not view.left.view.cursor_item.isVisible()

    # PCA: both refit, the right one aligned onto the left
    view.kind_combo.setCurrentIndex(view.kind_combo.findData("pca"))
    qtbot.waitUntil(lambda: not view.job.busy and right.map.projection.kind == "pca", timeout=60_000)
    assert left.map.projection.kind == "pca"
    assert np.mean(np.sum((right.map.xy - left.map.xy) ** 2, axis=1)) <= aligned_error * 1.5 + 1e-3


def test_comparing_without_a_model_says_what_to_do(make_main_window, qtbot, sweep_folder):
    window = make_main_window()
    window.experiments.compare_with_checkpoint(sweep_folder / "runs" / "mlp-beta1-seed0")
    assert window.last_error[0] == "Nothing to compare with"


@pytest.fixture(scope="module")
def shapes_model():
    import torch

    from vae_core import TrainConfig, build_model, fit, load_dataset

    data = load_dataset("shapes:32")
    torch.manual_seed(0)
    model = build_model("mlp", image_shape=data.image_shape, latent_dim=5, hidden=(64,))
    history = fit(model, data, TrainConfig(epochs=1, batch_size=256, lr=3e-3, seed=0, num_threads=1))
    return data, model, history


def test_a_click_on_the_factor_heatmap_opens_that_dimensions_traversal(make_main_window, qtbot, shapes_model):
    from vae_core.metrics import discrete_entropy, factor_matrix, mutual_info_matrix

    data, model, history = shapes_model
    window = make_main_window()
    window.state.set_dataset(data)
    window.state.set_model(model, history=history)
    window.encoder.wait(60)
    docks = window.experiments
    docks.factor_dock.show()
    panel = docks.factor_panel
    qtbot.waitUntil(lambda: panel.info.result is not None, timeout=30_000)
    result = panel.info.result
    factors, names = factor_matrix(data.factors)
    assert result.factor_names == names == ("shape", "scale", "rotation", "x", "y")
    expected = mutual_info_matrix(window.state.codes, factors) / discrete_entropy(factors)[:, None]
    np.testing.assert_allclose(result.normalized, expected, atol=1e-12)
    np.testing.assert_allclose(panel.heatmap.values, expected, atol=1e-12)

    qtbot.waitUntil(lambda: panel.heatmap.isVisible())
    heat = panel.heatmap
    point = heat.mapFromScene(heat.cell_center(3, 2))
    QTest.mouseClick(heat.viewport(), Qt.MouseButton.LeftButton, pos=point)
    player = window.state.studio.player
    qtbot.waitUntil(lambda: player.animation_title == "traversal of z2", timeout=5_000)
    assert player.animation_kind == "traversal"
    assert window.docks["studio_traversals"].isVisible()
    frames = player.frame_codes
    assert np.ptp(frames[:, 2]) > 0 and np.ptp(np.delete(frames, 2, axis=1), axis=0).max() == 0


def test_the_heatmap_says_when_the_dataset_has_no_factors(make_main_window, qtbot, sweep_folder):
    window = make_main_window()
    window.open_checkpoint(sweep_folder / "runs" / "mlp-beta1-seed0")
    qtbot.waitUntil(lambda: not window.busy and window.state.model is not None, timeout=30_000)
    window.experiments.factor_dock.show()
    panel = window.experiments.factor_panel
    assert panel.info.result is None and "no known factors" in panel.caption.text()
