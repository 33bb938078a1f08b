"""Tests for vae_core.projection: dims/PCA/UMAP projections, KNN inverse, alignment, save/load."""

import os

import numpy as np
import pytest

from vae_core.latent import Cancelled
from vae_core.projection import (
    IDENTITY_AFFINE, DimsProjection, KNNInverse, NotFittedError, PCAProjection, Projection,
    UMAPProjection, align_to, apply_affine, compose_affine, invert_affine, load_projection,
    make_projection, save_projection,
)


def clustered_codes(n=600, d=6, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((5, d)) * 3
    return (centers[rng.integers(0, 5, n)] + rng.standard_normal((n, d)) * 0.5).astype(np.float32)


def similarity(angle, scale, shift, reflect=False):
    c, s = np.cos(angle), np.sin(angle)
    a = scale * np.array([[c, -s], [s, c]])
    if reflect:
        a = a @ np.diag([1.0, -1.0])
    return np.hstack([a, np.asarray(shift, float)[:, None]])


# ---------------------------------------------------------------- affine / Procrustes
def test_affine_helpers():
    m = similarity(0.3, 2.0, [1.0, -4.0])
    pts = np.random.default_rng(0).standard_normal((10, 2))
    np.testing.assert_allclose(apply_affine(invert_affine(m), apply_affine(m, pts)), pts, atol=1e-12)
    m2 = similarity(-1.1, 0.5, [3.0, 2.0], reflect=True)
    np.testing.assert_allclose(apply_affine(compose_affine(m2, m), pts), apply_affine(m2, apply_affine(m, pts)),
                               atol=1e-12)
    with pytest.raises(ValueError, match="singular"):
        PCAProjection().affine = np.zeros((2, 3))


@pytest.mark.parametrize("reflect", [False, True])
def test_align_to_recovers_similarity(reflect):
    rng = np.random.default_rng(1)
    new = rng.standard_normal((200, 2))
    truth = similarity(0.7, 1.8, [5.0, -2.0], reflect=reflect)
    prev = apply_affine(truth, new) + rng.standard_normal((200, 2)) * 1e-3
    m = align_to(prev, new)
    np.testing.assert_allclose(m, truth, atol=1e-2)
    if reflect:
        rigid = align_to(prev, new, reflection=False)
        assert np.linalg.det(rigid[:, :2]) > 0
    fixed = align_to(prev, new, scale=False)
    np.testing.assert_allclose(np.linalg.svd(fixed[:, :2])[1], [1.0, 1.0], atol=1e-9)


# ---------------------------------------------------------------- dims
def test_dims_projection_transform_and_fills():
    codes = clustered_codes(d=5)
    p = DimsProjection(3, 1).fit(codes)
    np.testing.assert_array_equal(p.transform(codes), codes[:, [3, 1]].astype(np.float64))
    z = p.inverse([[2.0, -1.0]])
    np.testing.assert_array_equal(z, [[0.0, -1.0, 0.0, 2.0, 0.0]])
    m = DimsProjection(3, 1, fill="mean").fit(codes)
    expected = codes.mean(0)
    expected[[3, 1]] = [2.0, -1.0]
    np.testing.assert_allclose(m.inverse([2.0, -1.0]), expected, rtol=1e-6)
    v = DimsProjection(0, 4, fill=np.arange(5.0))
    np.testing.assert_array_equal(v.inverse([9.0, 8.0]), [9.0, 1.0, 2.0, 3.0, 8.0])  # usable unfitted
    p.reference = codes[7]
    expected = codes[7].copy()
    expected[[3, 1]] = [0.5, 0.25]
    np.testing.assert_array_equal(p.inverse([0.5, 0.25]), expected)
    p.reference = None
    assert p.inverse([0.5, 0.25])[0] == 0.0
    assert p.name == "z3 × z1" and p.kind == "dims"
    x0, y0, x1, y1 = p.bounds()
    assert (x0, x1) == (codes[:, 3].min(), codes[:, 3].max()) and (y0, y1) == (codes[:, 1].min(), codes[:, 1].max())


def test_dims_projection_validation():
    with pytest.raises(ValueError, match="different"):
        DimsProjection(2, 2)
    with pytest.raises(ValueError, match="does not exist"):
        DimsProjection(0, 7).fit(np.zeros((5, 3)))
    with pytest.raises(ValueError, match="fill"):
        DimsProjection(0, 1, fill="median")
    with pytest.raises(NotFittedError):
        DimsProjection(0, 1, fill="mean").inverse([0.0, 0.0])


# ---------------------------------------------------------------- PCA
def test_pca_round_trip_on_plane_and_exact_for_planar_data():
    rng = np.random.default_rng(2)
    basis = np.linalg.qr(rng.standard_normal((8, 2)))[0].T  # 2×8 orthonormal
    coords = rng.standard_normal((300, 2)) * [3.0, 1.0]
    codes = (coords @ basis + rng.standard_normal(8)).astype(np.float32)
    p = PCAProjection().fit(codes)
    assert p.explained_variance_ratio.sum() == pytest.approx(1.0, abs=1e-6)
    assert p.explained_variance_ratio[0] > p.explained_variance_ratio[1]
    np.testing.assert_allclose(p.inverse(p.transform(codes)), codes, atol=1e-5)
    pts = rng.uniform(-5, 5, (50, 2))
    np.testing.assert_allclose(p.transform(p.inverse(pts)), pts, atol=1e-5)
    np.testing.assert_allclose(p.components @ p.components.T, np.eye(2), atol=1e-12)


def test_pca_is_deterministic_and_sign_fixed():
    codes = clustered_codes()
    a, b = PCAProjection().fit(codes), PCAProjection().fit(codes[::-1].copy())
    np.testing.assert_allclose(a.components, b.components, atol=1e-9)
    assert np.all(a.components[np.arange(2), np.abs(a.components).argmax(1)] > 0)


def test_affine_post_transform_keeps_inverse_consistent_and_bounds():
    codes = clustered_codes()
    p = PCAProjection().fit(codes)
    raw = p.transform(codes)
    p.affine = similarity(1.0, 3.0, [10.0, -7.0], reflect=True)
    xy = p.transform(codes)
    np.testing.assert_allclose(xy, apply_affine(p.affine, raw), atol=1e-9)
    pts = np.random.default_rng(0).uniform(-30, 30, (40, 2))
    np.testing.assert_allclose(p.transform(p.inverse(pts)), pts, atol=1e-4)
    x0, y0, x1, y1 = p.bounds()
    np.testing.assert_allclose([x0, y0, x1, y1], [*xy.min(0), *xy.max(0)], atol=1e-9)
    p.fit(codes)
    np.testing.assert_array_equal(p.affine, IDENTITY_AFFINE)


def test_align_with_after_refit_keeps_points_in_place():
    codes = clustered_codes()
    p = PCAProjection().fit(codes)
    before = p.transform(codes)
    # "after an epoch": codes rotated in latent space and shifted; the PCA axes move
    rng = np.random.default_rng(5)
    q = np.linalg.qr(rng.standard_normal((6, 6)))[0]
    moved = (codes @ q.T * 1.5 + 2.0).astype(np.float32)
    p.fit(moved)
    p.align_with(before, moved)
    np.testing.assert_allclose(p.transform(moved), before, atol=1e-3)
    np.testing.assert_allclose(p.transform(p.inverse(before[:5])), before[:5], atol=1e-3)


# ---------------------------------------------------------------- KNN inverse
@pytest.fixture(scope="module")
def smooth_field():
    rng = np.random.default_rng(3)
    pts = rng.uniform(0, 10, (2000, 2))
    codes = np.stack([np.sin(pts[:, 0] / 2), np.cos(pts[:, 1] / 3), pts[:, 0] * 0.1 - pts[:, 1] * 0.2], 1)
    return pts, codes.astype(np.float32)


def test_knn_inverse_close_to_data_and_deterministic(smooth_field):
    pts, codes = smooth_field
    inv = KNNInverse(pts, codes)
    out = inv(pts)
    spread = np.linalg.norm(codes - codes.mean(0), axis=1).mean()
    assert np.linalg.norm(out - codes, axis=1).mean() / spread < 0.05
    np.testing.assert_array_equal(out, inv(pts))
    np.testing.assert_array_equal(out, KNNInverse(pts, codes)(pts))
    np.testing.assert_array_equal(inv(pts[17]), out[17])  # single == batched
    assert out.dtype == np.float32 and inv(pts[0]).shape == (3,)


def test_knn_inverse_is_continuous_and_extrapolates_smoothly(smooth_field):
    pts, codes = smooth_field
    inv = KNNInverse(pts, codes)
    steps = []
    for n in (2000, 20000):
        line = np.linspace([-5.0, 3.0], [15.0, 6.0], n)  # leaves the data on both sides
        z = inv(line).astype(np.float64)
        steps.append(np.linalg.norm(np.diff(z, axis=0), axis=1).max())
        assert np.isfinite(z).all()
    assert steps[1] < steps[0] / 5  # step size shrinks with resolution: no jumps
    # beyond the data the code keeps moving along the global trend (3rd coordinate is linear)
    outside = inv(np.array([[10.5, 5.0], [12.0, 5.0], [14.0, 5.0]]))
    assert outside[0, 2] < outside[1, 2] < outside[2, 2]
    far = inv(np.array([[1e6, 1e6]]))
    assert np.isfinite(far).all() and np.abs(far).max() < 10 * np.abs(codes).max()


def test_knn_inverse_tiny_inputs():
    one = KNNInverse(np.zeros((1, 2)), np.ones((1, 4)))
    np.testing.assert_array_equal(one([[5.0, 5.0]]), np.ones((1, 4)))
    two = KNNInverse(np.array([[0.0, 0.0], [1.0, 0.0]]), np.array([[0.0], [1.0]]))
    assert np.isfinite(two(np.array([[0.5, 0.0], [0.0, 0.0], [3.0, 3.0]]))).all()
    with pytest.raises(ValueError):
        KNNInverse(np.zeros((3, 3)), np.zeros((3, 2)))


# ---------------------------------------------------------------- factory / persistence
def test_make_projection_and_errors():
    assert isinstance(make_projection("PCA"), PCAProjection)
    assert isinstance(make_projection("dims", i=2, j=0), DimsProjection)
    assert make_projection("umap", n_neighbors=5).n_neighbors == 5
    with pytest.raises(ValueError, match="dims, pca, umap"):
        make_projection("tsne")
    with pytest.raises(ValueError, match="knn"):
        UMAPProjection(knn="annoy")
    with pytest.raises(NotFittedError):
        PCAProjection().transform(np.zeros((2, 3)))
    with pytest.raises(NotFittedError):
        PCAProjection().bounds()
    p = PCAProjection().fit(clustered_codes())
    with pytest.raises(ValueError, match="6-dimensional"):
        p.transform(np.zeros((2, 3)))


def _assert_same_behaviour(a: Projection, b: Projection, codes):
    pts = np.random.default_rng(9).uniform(-8, 8, (64, 2))
    np.testing.assert_array_equal(a.transform(codes), b.transform(codes))
    np.testing.assert_array_equal(a.inverse(pts), b.inverse(pts))
    assert a.bounds() == b.bounds()
    assert (a.kind, a.name, a.fitted, a.latent_dim) == (b.kind, b.name, b.fitted, b.latent_dim)
    np.testing.assert_array_equal(a.affine, b.affine)


@pytest.mark.parametrize("make", [
    lambda: PCAProjection(),
    lambda: DimsProjection(4, 2, fill="mean"),
    lambda: DimsProjection(0, 1, fill=np.linspace(-1, 1, 6)),
])
def test_save_load_round_trip(tmp_path, make):
    codes = clustered_codes()
    p = make().fit(codes)
    p.affine = similarity(0.4, 1.5, [1.0, 2.0])
    if isinstance(p, DimsProjection) and isinstance(p.fill, str):
        p.reference = codes[3]
    path = save_projection(tmp_path / "map.safetensors", p)
    assert [f.name for f in tmp_path.iterdir()] == ["map.safetensors"]  # no temp file left
    q = load_projection(path)
    assert type(q) is type(p)
    _assert_same_behaviour(p, q, codes)
    meta, arrays = p.state()
    assert Projection.from_state(meta, arrays).kind == p.kind
    with pytest.raises(ValueError, match="not"):
        UMAPProjection.from_state(meta, arrays)


def test_load_projection_rejects_other_files(tmp_path):
    from safetensors.numpy import save_file

    save_file({"x": np.zeros(3)}, tmp_path / "other.safetensors")
    with pytest.raises(ValueError, match="not a Latent Explorer projection"):
        load_projection(tmp_path / "other.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"not a file at all")
    with pytest.raises(ValueError):
        load_projection(tmp_path / "junk.safetensors")
    with pytest.raises(FileNotFoundError):
        load_projection(tmp_path / "missing.safetensors")


def test_unfitted_state_round_trip():
    p = DimsProjection(0, 2)
    q = Projection.from_state(*p.state())
    assert not q.fitted and (q.i, q.j) == (0, 2)


# ---------------------------------------------------------------- UMAP (numba JIT: ~10 s)
@pytest.fixture(scope="module")
def umap_fit():
    pytest.importorskip("umap")
    codes = clustered_codes(600)
    seen = []
    proj = UMAPProjection(n_neighbors=10, n_epochs=50, max_fit=500, seed=0)
    proj.fit(codes, progress=lambda done, total: seen.append((done, total)))
    return proj, codes, seen


@pytest.mark.slow
def test_umap_fit_progress_and_transform(umap_fit):
    proj, codes, seen = umap_fit
    assert proj.fitted and proj.embedding.shape == (600, 2)
    assert seen[-1] == (600, 600)
    assert all(b == 600 for _, b in seen)
    assert [a for a, _ in seen] == sorted(a for a, _ in seen)
    np.testing.assert_array_equal(proj.transform(codes), proj.embedding.astype(np.float64))
    # new codes land next to the points they resemble
    nudged = codes[:20] + 1e-3
    np.testing.assert_allclose(proj.transform(nudged), proj.embedding[:20], atol=0.5)
    x0, y0, x1, y1 = proj.bounds()
    assert x0 == proj.embedding[:, 0].min() and y1 == proj.embedding[:, 1].max()


@pytest.mark.slow
def test_umap_inverse_deterministic_and_close(umap_fit):
    proj, codes, _ = umap_fit
    back = proj.inverse(proj.embedding)
    np.testing.assert_array_equal(back, proj.inverse(proj.embedding))
    spread = np.linalg.norm(codes - codes.mean(0), axis=1).mean()
    rel = np.linalg.norm(back - codes, axis=1).mean() / spread
    assert rel < 0.3, rel
    # each inverse lands closer to its own cluster than the typical spread
    assert np.linalg.norm(proj.inverse(proj.embedding[5]) - codes[5]) < spread


@pytest.mark.slow
def test_umap_save_load_reproduces_transform_and_inverse(umap_fit, tmp_path):
    proj, codes, _ = umap_fit
    proj.affine = similarity(0.2, 0.5, [3.0, 1.0])
    try:
        q = load_projection(save_projection(tmp_path / "u.safetensors", proj))
        _assert_same_behaviour(proj, q, codes)
        _assert_same_behaviour(proj, q, codes[:7] + 0.01)
    finally:
        proj.affine = IDENTITY_AFFINE


@pytest.mark.slow
def test_umap_fit_can_be_cancelled(umap_fit):
    calls = {"n": 0}

    def stop():
        calls["n"] += 1
        return calls["n"] > 3

    with pytest.raises(Cancelled):
        UMAPProjection(n_neighbors=10, n_epochs=200, seed=1).fit(clustered_codes(300), should_stop=stop)

    # The cancel unwinds through umap's tqdm bar: tqdm's global lock must be free again, or
    # the next progress bar in this process (in any thread) waits forever.
    import threading

    from tqdm import tqdm

    made = threading.Event()
    worker = threading.Thread(target=lambda: (tqdm(total=1, disable=True), made.set()), daemon=True)
    worker.start()
    worker.join(10)
    assert made.is_set(), "a cancelled UMAP fit left tqdm's write lock held"


# ---------------------------------------------------------------- UMAP while it is optimised
def _fit_rows(n, max_fit, seed=0):
    """The codes a UMAPProjection fits directly (the rest are placed after)."""
    return np.sort(np.random.default_rng(seed).choice(n, max_fit, replace=False))


@pytest.mark.slow
def test_umap_intermediate_layouts_leave_the_final_layout_unchanged(umap_fit):
    plain, codes, _ = umap_fit
    seen = []
    watched = UMAPProjection(n_neighbors=10, n_epochs=50, max_fit=500, seed=0, intermediate_interval=0.0)
    watched.fit(codes, intermediate=lambda xy: seen.append(np.array(xy)))
    # watching changes nothing, to the bit: same layout, same inverse
    np.testing.assert_array_equal(watched.embedding, plain.embedding)
    np.testing.assert_array_equal(watched.inverse(plain.embedding[:50]), plain.inverse(plain.embedding[:50]))
    # one layout before the first epoch (umap's initialisation) and one after each epoch but the last
    assert len(seen) == 50
    assert all(xy.shape == (600, 2) and xy.dtype == np.float32 and np.isfinite(xy).all() for xy in seen)
    gap = [np.abs(xy - plain.embedding).mean() for xy in seen]
    assert gap[-1] < 0.25 * gap[0], gap
    # the codes left out of the fit follow their nearest fitted codes in every layout
    fit = _fit_rows(600, 500)
    rest = np.setdiff1d(np.arange(600), fit)
    from vae_core.latent import NeighborIndex

    idx, dist = NeighborIndex(codes[fit]).query(codes[rest], k=10)
    w = 1.0 / dist.astype(np.float64) ** 2
    for xy in (seen[0], seen[-1]):
        expected = np.einsum("mk,mkc->mc", w / w.sum(1, keepdims=True), xy[fit][idx].astype(np.float64))
        np.testing.assert_allclose(xy[rest], expected, rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_umap_fit_stops_between_intermediate_layouts():
    seen = []
    with pytest.raises(Cancelled):
        UMAPProjection(n_neighbors=10, n_epochs=200, seed=1, intermediate_interval=0.0).fit(
            clustered_codes(300), intermediate=lambda xy: seen.append(1), should_stop=lambda: len(seen) >= 3)
    assert len(seen) == 3


@pytest.mark.slow
def test_umap_with_layout_is_a_fitted_projection_of_that_layout(umap_fit):
    proj, codes, _ = umap_fit
    layout = proj.embedding * 2.0 + 1.0
    shown = proj.with_layout(codes, layout)
    assert shown.fitted and shown.kind == "umap" and shown is not proj
    np.testing.assert_array_equal(shown.transform(codes), layout.astype(np.float64))
    np.testing.assert_allclose(shown.inverse(layout[:30]), KNNInverse(layout, codes)(layout[:30]), rtol=1e-6)
    assert shown.bounds() == (layout[:, 0].min(), layout[:, 1].min(), layout[:, 0].max(), layout[:, 1].max())
    assert proj.embedding is not shown.embedding and np.array_equal(proj.transform(codes), proj.embedding)
    with pytest.raises(ValueError):
        proj.with_layout(codes, layout[:-1])


@pytest.mark.slow
def test_umap_kernels_are_kept_in_numbas_disk_cache(umap_fit):
    """umap compiles these without cache=True; ours are the same functions, cached."""
    import umap.layouts
    import umap.umap_

    for module, name in ((umap.umap_, "smooth_knn_dist"), (umap.umap_, "compute_membership_strengths"),
                         (umap.layouts, "_nb_optimize_layout_euclidean_single_epoch")):
        kernel = getattr(module, name)
        assert type(kernel._cache).__name__ == "FunctionCache", name
        assert kernel.signatures, f"{name} was not used by the fit"
        index = f".{kernel.py_func.__name__}-"
        assert any(index in f and f.endswith(".nbi") for f in os.listdir(kernel._cache._cache_path)), name
