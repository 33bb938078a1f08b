"""MapState and Marks without Qt: layouts, cursor, pins, groups, selection, paths, export."""

from __future__ import annotations

import json
import os
import sys

import numpy as np
import pytest
import torch

from explorer.jobs.priority import BACKGROUND_NICENESS
from explorer.state.map import MapState, Nearest, PickedPoint, Pin, points_in_polygon
from vae_core import build_model
from vae_core.latent import Cancelled


@pytest.fixture
def state(digits, make_document):
    torch.manual_seed(0)
    return make_document(build_model("mlp", image_shape=digits.image_shape, latent_dim=4, hidden=(32,)), encode=True)


def _fit(state, kind="pca", **kw):
    m = state.map
    proj, xy = m.compute_layout(state.codes, kind, m.projection_params(kind), **kw)
    m.set_projection(proj, xy)
    return proj, xy


def test_compute_layout_dims_and_pca(state):
    m = state.map
    events = []
    m.layout_changed.connect(lambda: events.append("layout"))
    m.projection_changed.connect(lambda p: events.append(p.kind))
    m.set_dims(1, 3)
    proj, xy = _fit(state, "dims")
    assert events == ["dims", "layout"]
    assert xy.dtype == np.float32 and xy.shape == (len(state.codes), 2)
    np.testing.assert_allclose(xy, state.codes[:, [1, 3]], rtol=0, atol=1e-6)
    assert m.kind == "dims" and m.dims == (1, 3)
    proj, xy = _fit(state, "pca")
    assert m.kind == "pca" and np.array_equal(m.xy, xy)
    # the PCA inverse is exact on the plane
    np.testing.assert_allclose(proj.transform(proj.inverse(xy[:5])), xy[:5], atol=1e-4)


def test_fit_helper_and_default_kind(state):
    assert state.map.default_kind() == "pca"
    proj = state.map.fit("dims")
    assert proj.kind == "dims" and state.map.ready


def test_cursor_is_the_inverse_projection(state):
    proj, _ = _fit(state, "pca")
    m = state.map
    got = []
    m.cursor_changed.connect(got.append)
    z = m.set_cursor((0.05, -0.02))
    np.testing.assert_allclose(z, proj.inverse(np.array([0.05, -0.02])), atol=1e-7)
    assert m.cursor_xy == (0.05, -0.02) and got[-1] is z
    assert m.set_cursor(None) is None and got[-1] is None and m.cursor_z is None


def test_hovered_index_emits_only_on_change(state):
    m = state.map
    seen = []
    m.hovered_index_changed.connect(seen.append)
    m.set_hovered_index(3)
    m.set_hovered_index(3)
    m.set_hovered_index(None)
    assert seen == [3, None]


def test_nearest_index_respects_hidden_classes(state):
    _fit(state, "pca")
    m = state.map
    i = 10
    assert m.nearest_index(m.xy[i], radius=1e-9) == i
    m.set_label_visible(int(state.labels[i]), False)
    assert m.nearest_index(m.xy[i], radius=1e-9) != i
    assert m.visible_mask()[i] == False  # noqa: E712


def test_query_nearest_matches_brute_force(state):
    m = state.map
    z = state.codes[7] + 0.01
    near = m.query_nearest(z, k=5)
    assert isinstance(near, Nearest)
    d = np.linalg.norm(state.codes - z, axis=1)
    np.testing.assert_array_equal(near.indices, np.argsort(d, kind="stable")[:5])
    assert near.distance == pytest.approx(d.min(), rel=1e-5)
    assert m.data_spacing > 0 and m.known_data_spacing() == m.data_spacing
    state.set_codes(state.codes * 2.0)        # codes changed: the index is rebuilt
    assert m.known_data_spacing() is None
    assert m.query_nearest(z, 1).indices.shape == (1,)


def test_pins_add_rename_remove_save_load(state, tmp_path):
    m = state.marks
    changes = []
    m.pins_changed.connect(lambda: changes.append(1))
    a = m.add_pin(state.codes[0], index=0, label=int(state.labels[0]))
    b = m.add_pin(np.ones(4))
    assert (a.name, b.name) == ("P1", "P2")
    with pytest.raises(ValueError):
        m.add_pin(np.zeros(4), name="P1")
    m.rename_pin("P2", "smile")
    with pytest.raises(ValueError):
        m.rename_pin("smile", "P1")
    assert set(m.named_vectors()) == {"pin:P1", "pin:smile"}
    path = m.save_pins(tmp_path / "pins.json")
    data = json.loads(path.read_text())
    assert data["format"] == "latent-explorer-pins" and data["latent_dim"] == 4
    m.remove_pin("P1")
    assert [p.name for p in m.pins] == ["smile"]
    loaded = m.load_pins(path)
    assert [p.name for p in loaded] == ["P1", "smile (2)"]     # clashing name gets a suffix
    np.testing.assert_array_equal(m.pin("P1").z, state.codes[0])
    assert m.pin("P1").index == 0 and m.pin("P1").label == int(state.labels[0])
    m.load_pins(path, replace=True)
    assert [p.name for p in m.pins] == ["P1", "smile"]
    assert len(changes) >= 6


def test_load_pins_rejects_bad_files(state, tmp_path):
    m = state.marks
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="not a readable pins file"):
        m.load_pins(bad)
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(ValueError, match="not a Latent Explorer pins file"):
        m.load_pins(other)
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"format": "latent-explorer-pins", "format_version": 1,
                                 "pins": [{"name": "x", "z": [1, 2, 3]}]}))
    with pytest.raises(ValueError, match="3-dimensional"):
        m.load_pins(wrong)
    assert m.pins == []


def test_groups_and_named_vectors(state):
    m = state.marks
    sel = []
    m.selection_changed.connect(sel.append)
    name = m.add_group([5, 1, 3, 3])
    assert name == "G1" and m.active_group == "G1"
    np.testing.assert_array_equal(m.selection, [1, 3, 5])
    np.testing.assert_allclose(m.named_vectors()["group:G1"], state.codes[[1, 3, 5]].mean(0))
    m.rename_group("G1", "loops")
    assert m.active_group == "loops" and "group:loops" in m.named_vectors()
    with pytest.raises(ValueError):
        m.add_group([1], name="loops")
    m.add_group([7, 8], name="other", select=False)
    assert m.active_group == "loops"
    m.select_group("other")
    np.testing.assert_array_equal(m.selection, [7, 8])
    m.remove_group("other")
    assert m.active_group is None and m.selection.size == 0
    np.testing.assert_allclose(m.group_centroid("loops"), state.codes[[1, 3, 5]].mean(0))


def test_rect_and_polygon_selection(state):
    _fit(state, "pca")
    m = state.map
    x0, y0 = np.percentile(m.xy, 30, axis=0)
    x1, y1 = np.percentile(m.xy, 70, axis=0)
    rect = m.select_rect(x1, y1, x0, y0)    # corners in any order
    inside = (m.xy[:, 0] >= x0) & (m.xy[:, 0] <= x1) & (m.xy[:, 1] >= y0) & (m.xy[:, 1] <= y1)
    np.testing.assert_array_equal(rect, np.flatnonzero(inside))
    poly = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])
    np.testing.assert_array_equal(m.select_polygon(poly), rect)
    hidden = int(state.labels[rect[0]])
    m.set_label_visible(hidden, False)
    assert not np.isin(state.labels[m.select_rect(x0, y0, x1, y1)], [hidden]).any()


def test_points_in_polygon_concave():
    # An L shape: the notch must stay outside.
    poly = np.array([[0, 0], [2, 0], [2, 1], [1, 1], [1, 2], [0, 2]], dtype=float)
    pts = np.array([[0.5, 0.5], [1.5, 0.5], [0.5, 1.5], [1.5, 1.5], [3, 3], [-1, 0.5]])
    np.testing.assert_array_equal(points_in_polygon(pts, poly), [True, True, True, False, False, False])
    assert not points_in_polygon(pts, poly[:2]).any()


def test_pick_uses_the_data_code_on_a_point(state):
    proj, xy = _fit(state, "pca")
    m = state.map
    picked = []
    m.point_picked.connect(picked.append)
    p = m.pick(xy[12], index=12)
    assert isinstance(p, PickedPoint) and p.index == 12 and p.label == int(state.labels[12])
    np.testing.assert_array_equal(p.z, state.codes[12])
    q = m.pick((0.0, 0.0))
    assert q.index is None and q.label is None
    np.testing.assert_allclose(q.z, proj.inverse(np.zeros(2)))
    assert picked == [p, q]
    m.set_cursor(xy[12])
    m.set_hovered_index(12)
    pin = m.pin_cursor()
    assert isinstance(pin, Pin) and pin.index == 12
    assert m.pin_xy(pin) == pytest.approx(tuple(xy[12]))


def test_refresh_after_training_is_aligned(state):
    """After the weights change, a Procrustes-aligned PCA moves points less than a raw refit."""
    proj, xy = _fit(state, "pca")
    with torch.no_grad():
        for p in state.model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    state.encode()
    m = state.map
    _, raw = m.compute_layout(state.codes, "pca", {})
    _, aligned = m.compute_layout(state.codes, "pca", {}, previous=proj, previous_xy=xy, align=True)
    assert np.mean(np.linalg.norm(aligned - xy, axis=1)) <= np.mean(np.linalg.norm(raw - xy, axis=1)) + 1e-6
    # dims keep their axes: no alignment even when asked
    m.set_dims(0, 1)
    _, d = m.compute_layout(state.codes, "dims", {"i": 0, "j": 1}, previous_xy=xy, align=True)
    np.testing.assert_allclose(d, state.codes[:, :2], atol=1e-6)


def test_umap_layout_is_kept_across_epochs(state):
    """UMAP refreshes keep the 2D layout and re-attach the new codes (no refit)."""
    m = state.map
    codes = state.codes[:300]
    proj, xy = m.compute_layout(codes, "umap", {"n_neighbors": 10, "n_epochs": 30, "min_dist": 0.1})
    assert proj.kind == "umap" and xy.shape == (300, 2)
    new_codes = codes * 1.5 + 0.1
    proj2, xy2 = m.compute_layout(new_codes, "umap", {"n_neighbors": 10, "n_epochs": 30}, previous=proj,
                                  previous_xy=xy, keep_umap_layout=True)
    np.testing.assert_allclose(xy2, xy, atol=1e-5)
    np.testing.assert_array_equal(proj2.codes, new_codes)
    # the inverse now decodes with the new codes: at a data point it returns (about) that code
    np.testing.assert_allclose(proj2.inverse(xy2[5]), new_codes[5], atol=0.5)


def test_compute_layout_can_be_cancelled(state):
    with pytest.raises(Cancelled):
        MapState.compute_layout(state.codes, "pca", {}, should_stop=lambda: True)


def test_path_follows_the_projection(state):
    proj, _ = _fit(state, "pca")
    m = state.map
    events = []
    m.path_changed.connect(lambda: events.append("path"))
    m.path_frame_changed.connect(events.append)
    codes = state.codes[:6]
    m.set_path(codes)
    np.testing.assert_allclose(m.path_xy, proj.transform(codes), atol=1e-5)
    m.set_path_frame(2)
    m.set_path_frame(99)   # out of range hides the marker
    assert events == ["path", 2, -1]
    _fit(state, "dims")    # a new projection re-maps the path
    np.testing.assert_allclose(m.path_xy, codes[:, :2], atol=1e-6)
    m.set_path(None)
    assert m.path_xy is None and m.path_frame == -1


def test_export_csv(state, tmp_path):
    _fit(state, "pca")
    m = state.map
    m.add_group([0, 2], name="a")
    path = m.export_csv(tmp_path / "map.csv")
    lines = path.read_text().splitlines()
    assert lines[0] == "index,x,y,label,class,group"
    assert len(lines) == len(state.codes) + 1
    first = lines[1].split(",")
    assert first[0] == "0" and float(first[1]) == pytest.approx(m.xy[0, 0], rel=1e-5)
    assert first[3] == str(state.labels[0]) and first[5] == "a"
    assert lines[2].split(",")[5] == ""


def test_a_new_dataset_clears_layout_groups_and_selection_but_keeps_pins(state):
    _fit(state, "pca")
    m, marks = state.map, state.marks
    marks.add_pin(np.zeros(4))
    marks.add_group([1, 2])
    state.set_dataset(state.dataset)
    assert m.xy is None and m.projection is None and marks.groups == {} and marks.selection.size == 0
    assert len(marks.pins) == 1


def test_fit_process_matches_an_in_process_fit_and_stops(state):
    """UMAP fitted in the child process: same layout as in this process, cancellable."""
    from explorer.jobs.umap_fit import FitProcess
    from vae_core.projection import make_projection

    codes = state.codes[:300]
    params = {"n_neighbors": 10, "n_epochs": 30, "min_dist": 0.1}
    service = FitProcess()
    try:
        with pytest.raises(Cancelled):
            service.fit(make_projection("umap", **params), codes, should_stop=lambda: True)
        seen = []
        remote = service.fit(make_projection("umap", **params), codes, progress=lambda d, n: seen.append((d, n)))
        # and it plugs into compute_layout
        _, xy = MapState.compute_layout(codes, "umap", params, fitter=service.fit)
        if sys.platform.startswith("linux"):   # the child yields cores to the window
            assert os.getpriority(os.PRIO_PROCESS, service.pid) >= BACKGROUND_NICENESS > os.getpriority(os.PRIO_PROCESS, 0)
    finally:
        service.close()
    local = make_projection("umap", **params).fit(codes)
    assert remote.fitted and remote.kind == "umap"
    np.testing.assert_allclose(remote.transform(codes), local.transform(codes), atol=1e-4)
    assert seen and seen[-1] == (300, 300)
    np.testing.assert_allclose(xy, local.transform(codes), atol=1e-4)


STREAMED = {"n_neighbors": 10, "n_epochs": 30, "min_dist": 0.1, "intermediate_interval": 0.0}


def test_compute_layout_hands_over_aligned_provisional_umaps(state):
    """While UMAP optimises, each layout arrives as a usable projection, aligned like the result."""
    from vae_core.projection import align_to

    codes = state.codes[:300]
    _, previous_xy = MapState.compute_layout(codes, "pca")
    seen = []
    proj, xy = MapState.compute_layout(codes, "umap", STREAMED, previous_xy=previous_xy, align=True,
                                       intermediate=lambda p, layout: seen.append((p, layout)))
    _, unwatched = MapState.compute_layout(codes, "umap", STREAMED, previous_xy=previous_xy, align=True)
    np.testing.assert_array_equal(xy, unwatched)
    assert len(seen) == STREAMED["n_epochs"]
    for shown, layout in seen:
        assert shown.fitted and shown.kind == "umap" and shown is not proj
        assert layout.shape == (300, 2) and layout.dtype == np.float32
        np.testing.assert_allclose(shown.transform(codes), layout, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(shown.affine, align_to(previous_xy, shown.embedding), rtol=1e-6, atol=1e-9)
        assert shown._inverse is not None   # built in the worker, not on the first hover
    gap = [np.abs(layout - xy).mean() for _, layout in seen]
    assert gap[-1] < 0.5 * gap[0], gap   # the points glide towards the result


def test_fit_process_streams_layouts_and_stops_after_one(state):
    from explorer.jobs.umap_fit import FitProcess
    from vae_core.projection import make_projection

    codes = state.codes[:300]
    service = FitProcess()
    try:
        seen = []
        remote = service.fit(make_projection("umap", **STREAMED), codes, intermediate=seen.append)
        stopped = []
        with pytest.raises(Cancelled):
            service.fit(make_projection("umap", **STREAMED), codes, intermediate=stopped.append,
                        should_stop=lambda: len(stopped) >= 2)
        again = service.fit(make_projection("umap", **STREAMED), codes)
    finally:
        service.close()
    local = make_projection("umap", **STREAMED).fit(codes)
    assert len(seen) == STREAMED["n_epochs"] and all(xy.shape == (300, 2) for xy in seen)
    np.testing.assert_allclose(remote.embedding, local.embedding, atol=1e-4)
    assert len(stopped) == 2   # nothing is handed over once a stop was asked
    np.testing.assert_array_equal(again.embedding, remote.embedding)
