"""MeasuresState without Qt: cached measures, colour-by columns, filter, search, outliers, CSV."""

from __future__ import annotations

import dataclasses
import numpy as np
import pytest
import torch

from explorer.state.measures import CSVError, MEASURE_KEYS
from vae_core import build_model
from vae_core.measures import compute_measures


@pytest.fixture
def state(digits, make_document):
    torch.manual_seed(0)
    s = make_document(build_model("mlp", image_shape=digits.image_shape, latent_dim=3, hidden=(32,)), encode=True)
    s.measures.k = 2
    s.map.fit("pca")
    return s


def test_measures_are_the_librarys_and_drop_with_the_codes(state):
    ms = state.measures
    events = []
    ms.measures_changed.connect(lambda: events.append("measures"))
    got = ms.compute()
    direct = compute_measures(state.model, state.images, codes=state.codes, logvar=state.logvar, k=2, seed=0)
    for key in MEASURE_KEYS:
        np.testing.assert_array_equal(got[key], direct[key])
    assert ms.column("iwae_ll").values is got["iwae_ll"] or np.array_equal(ms.column("iwae_ll").values,
                                                                              got["iwae_ll"])
    state.apply_weights({k: v + 0.01 for k, v in state.model.state_dict().items()})
    assert ms.measures is not None          # the weights changed, the codes not yet
    state.encode()                          # new codes: the measures of the old ones are gone
    assert ms.measures is None and ms.column("kl") is None
    ms.compute()
    state.set_model(build_model("mlp", image_shape=state.dataset.image_shape, latent_dim=2, hidden=(8,)))
    assert ms.measures is None
    assert events == ["measures", "measures", "measures", "measures"]


def test_columns_for_label_split_and_clusters(state, digits):
    ms = state.measures
    label = ms.column("label")
    assert label.categorical and np.array_equal(label.values, state.labels)
    assert label.categories[3] == state.class_names[3]
    split = ms.column("split")
    assert split.categories == ("train", "test")
    assert (split.values[: len(digits.train)] == 0).all() and (split.values[len(digits.train):] == 1).all()
    ms.compute()
    cluster = ms.column("cluster")
    raw = ms.measures["cluster"]
    assert cluster.categorical and cluster.categories[-1] == "noise"
    assert (cluster.values[raw < 0] == len(cluster.categories) - 1).all()
    assert np.array_equal(cluster.values[raw >= 0], raw[raw >= 0])


def test_choosing_a_measure_requests_it_and_the_vqvae_says_what_it_lacks(state, digits):
    ms = state.measures
    assert not ms.wanted
    ms.set_colour_by("kl")
    assert ms.wanted and ms.needs_compute and ms.column() is None
    ms.compute()
    assert not ms.needs_compute and ms.column().label == "KL"
    state.set_model(build_model("vqvae", image_shape=digits.image_shape, latent_dim=2, codebook_size=8))
    reasons = {c.key: c.reason for c in ms.choices()}
    assert "point mass" in reasons["iwae_ll"] and "point mass" in reasons["posterior_std"]
    assert reasons["recon_nll"] is None and reasons["kl"] is None
    with pytest.raises(ValueError, match="no column"):
        ms.set_colour_by("csv:nothing")


def test_filter_mask_counts_and_selection(state):
    ms, m = state.measures, state.map
    ms.compute()
    ms.set_colour_by("recon_nll")
    values = ms.measures["recon_nll"]
    lo, hi = np.percentile(values, [20, 60])
    seen = []
    m.filter_changed.connect(seen.append)
    ms.set_filter(hi, lo)                     # either order
    inside = (values >= lo) & (values <= hi)
    assert ms.filter_range == (lo, hi)
    assert np.array_equal(m.filter_mask, inside) and np.array_equal(seen[-1], inside)
    assert m.visible_mask() is None           # dimmed, not hidden
    # A rectangle over everything selects exactly the points inside the filter.
    xy = m.xy
    got = m.select_rect(xy[:, 0].min() - 1, xy[:, 1].min() - 1, xy[:, 0].max() + 1, xy[:, 1].max() + 1)
    assert np.array_equal(got, np.flatnonzero(inside))
    ms.set_hide_filtered(True)
    assert np.array_equal(m.visible_mask(), inside)
    m.set_label_visible(0, False)
    assert np.array_equal(m.visible_mask(), inside & (state.labels != 0))
    ms.set_filter(None)
    assert m.filter_mask is None and m.visible_mask() is not None
    # Another column clears the range.
    ms.set_filter(lo, hi)
    ms.set_colour_by("split")
    assert ms.filter_range is None and m.filter_mask is None


def test_categorical_filter_and_new_codes_keep_the_range(state):
    ms, m = state.measures, state.map
    ms.set_colour_by("label")
    ms.set_filter(2, 3)
    assert np.array_equal(m.filter_mask, np.isin(state.labels, [2, 3]))
    ms.compute()
    ms.set_colour_by("kl")
    ms.set_filter(0, np.median(ms.measures["kl"]))
    assert m.filter_mask is not None
    state.encode()                            # measures dropped: nothing to filter on until they return
    assert m.filter_mask is None and ms.filter_range is not None
    ms.compute()
    assert m.filter_mask.sum() == (ms.measures["kl"] <= ms.filter_range[1]).sum()


def test_search_by_index_label_and_class_name(state):
    ms = state.measures
    hits = []
    ms.search_changed.connect(hits.append)
    assert ms.search("17").tolist() == [17]
    assert state.class_names[7] == "7" and ms.search("7").tolist() == [7]   # digits: a number is an index
    assert ms.search("#5").tolist() == [5]
    assert ms.search(f"{state.num_points}").tolist() == []
    assert np.array_equal(ms.search("label 4"), np.flatnonzero(state.labels == 4))
    assert ms.search("no such class").tolist() == []
    assert len(hits) == 6
    words = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
    state.set_dataset(dataclasses.replace(state.dataset, class_names=words))
    assert np.array_equal(ms.search("SEVEN"), np.flatnonzero(state.labels == 7))
    assert np.array_equal(ms.search("se"), np.flatnonzero(state.labels == 7))       # the start of a name
    assert np.array_equal(ms.search("t"), np.flatnonzero(np.isin(state.labels, [2, 3])))


def test_outliers_rank_least_likely_and_worst_reconstructed(state):
    ms = state.measures
    assert ms.outliers().size == 0
    ms.compute()
    ll = ms.measures["iwae_ll"]
    worst = ms.outliers("iwae_ll", 10)
    assert np.array_equal(np.sort(ll[worst]), np.sort(ll)[:10])
    assert (np.diff(ll[worst]) >= 0).all()
    recon = ms.measures["recon_nll"]
    top = ms.outliers("recon_nll", 5)
    assert np.array_equal(recon[top], np.sort(recon)[::-1][:5])
    with pytest.raises(ValueError):
        ms.outliers("kl")


def test_table_has_every_measure_and_csv_column(state, tmp_path):
    ms = state.measures
    ms.compute()
    path = tmp_path / "extra.csv"
    path.write_text("index,score,kind\n3,0.5,a\n1,2.5,b\n")
    assert ms.load_csv(path) == ["score", "kind"]
    header, rows = ms.table([1, 3, 4])
    assert header[:3] == ["index", "label", "class"] and "iwae_ll" in header and header[-2:] == ["score", "kind"]
    assert rows[0][0] == 1 and rows[0][1] == int(state.labels[1])
    assert rows[0][header.index("kl")] == pytest.approx(float(ms.measures["kl"][1]))
    assert rows[0][-2:] == [2.5, "b"] and rows[1][-2:] == [0.5, "a"]
    assert np.isnan(rows[2][-2]) and rows[2][-1] == ""


def test_csv_columns_are_keyed_by_index(state, tmp_path):
    ms = state.measures
    n = state.num_points
    path = tmp_path / "cols.csv"
    path.write_text("name,INDEX,group\nx,10,1\ny,0,2\nz,5,1\n")
    ms.load_csv(path)
    name, group = ms.column("csv:name"), ms.column("csv:group")
    assert name.categories == ("x", "y", "z") and name.values[[10, 0, 5]].tolist() == [0, 1, 2]
    assert (np.delete(name.values, [0, 5, 10]) == -1).all()
    assert group.categories == ("1", "2")      # few whole numbers repeated: a category
    numbers = tmp_path / "numbers.csv"
    numbers.write_text("index,v\n" + "".join(f"{i},{i * 0.5}\n" for i in reversed(range(n))))
    ms.load_csv(numbers)
    col = ms.column("csv:v")
    assert not col.categorical and np.allclose(col.values, np.arange(n) * 0.5)
    ms.set_colour_by("csv:v")
    ms.set_filter(1.0, 2.0)
    assert state.map.filter_mask.sum() == 3
    state.set_dataset(state.dataset)          # another dataset: the user's columns go
    assert ms.user_columns == {} and ms.colour_by == "label"


@pytest.mark.parametrize("text,match", [
    ("", "empty"),
    ("a,b\n1,2\n", "no 'index' column"),
    ("index\n1\n", "only an index column"),
    ("index,v\n", "no rows"),
    ("index,v\n1.5,2\n", "whole numbers"),
    ("index,v\n99999,2\n", "whole numbers"),
    ("index,v\n-1,2\n", "whole numbers"),
    ("index,v\n1,2\n1,3\n", "more than once"),
    ("index,v,v\n1,2,3\n", "twice"),
])
def test_bad_csv_is_one_sentence(state, tmp_path, text, match):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(CSVError, match=match) as info:
        state.measures.load_csv(path)
    message = str(info.value)
    assert message.count(". ") == 0 and message.endswith(".") and "\n" not in message
    assert state.measures.user_columns == {}


def test_unreadable_csv(state, tmp_path):
    path = tmp_path / "binary.csv"
    path.write_bytes(b"\xff\xfe\x00\x81index")
    with pytest.raises(CSVError, match="not a text CSV"):
        state.measures.load_csv(path)
    with pytest.raises(CSVError, match="could not be read"):
        state.measures.load_csv(tmp_path / "missing.csv")


def test_the_torch_free_measure_names_are_the_librarys():
    # The state keeps its own copy so listing choices does not import torch; it must not drift.
    from explorer.state.measures import MEASURE_LABELS
    from vae_core.measures import MEASURE_LABELS as LIBRARY_LABELS
    from vae_core.measures import MEASURES

    assert MEASURE_KEYS == MEASURES and MEASURE_LABELS == LIBRARY_LABELS
