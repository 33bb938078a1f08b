"""Tests for vae_core.latent: encode/decode, interpolation, arithmetic, traversals, neighbours."""

import numpy as np
import pytest
import torch
from torch import nn

from vae_core import latent as L


class TinyVAE(nn.Module):
    """A real (untrained) linear VAE on 1×4×4 images, with an optional conditional decoder."""

    def __init__(self, latent_dim=3, conditional=False, num_classes=3):
        super().__init__()
        torch.manual_seed(0)
        self.latent_dim = latent_dim
        self.image_shape = (1, 4, 4)
        self.conditional = conditional
        self.enc = nn.Linear(16, 2 * latent_dim)
        self.dec = nn.Linear(latent_dim + (num_classes if conditional else 0), 16)
        self.drop = nn.Dropout(0.5)  # would make results random if eval mode were not used
        self.num_classes = num_classes
        self.encode_calls = 0

    def encode(self, x, y=None):
        self.encode_calls += 1
        h = self.enc(self.drop(x.reshape(len(x), -1)))
        return h[:, : self.latent_dim], h[:, self.latent_dim:]

    def decode(self, z, y=None):
        if self.conditional:
            z = torch.cat([z, nn.functional.one_hot(y, self.num_classes).float()], dim=1)
        return torch.sigmoid(self.dec(z)).reshape(len(z), *self.image_shape)


@pytest.fixture
def model():
    m = TinyVAE()
    m.train()
    return m


# ---------------------------------------------------------------- encode / decode
def test_encode_dataset_matches_direct_forward_and_batches(model):
    rng = np.random.default_rng(0)
    x = rng.random((50, 1, 4, 4), dtype=np.float32)
    seen = []
    mu, logvar = L.encode_dataset(model, x, batch_size=16, progress=lambda d, t: seen.append((d, t)))
    assert mu.shape == (50, 3) and logvar.shape == (50, 3)
    assert mu.dtype == np.float32
    assert seen == [(16, 50), (32, 50), (48, 50), (50, 50)]
    assert model.training, "training mode must be restored"
    model.eval()
    with torch.no_grad():
        ref_mu, ref_lv = model.encode(torch.from_numpy(x))
    np.testing.assert_allclose(mu, ref_mu.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(logvar, ref_lv.numpy(), rtol=1e-5, atol=1e-6)


def test_encode_dataset_uint8_is_scaled(model):
    x8 = np.random.default_rng(1).integers(0, 256, (10, 1, 4, 4), dtype=np.uint8)
    mu8, _ = L.encode_dataset(model, x8)
    muf, _ = L.encode_dataset(model, x8.astype(np.float32) / 255)
    np.testing.assert_allclose(mu8, muf, rtol=1e-5, atol=1e-6)


def test_encode_dataset_cancel(model):
    x = np.zeros((100, 1, 4, 4), np.float32)
    calls = iter([False, False, True])
    with pytest.raises(L.Cancelled):
        L.encode_dataset(model, x, batch_size=10, should_stop=lambda: next(calls))
    assert model.encode_calls == 2


def test_decode_shapes_range_and_leading_dims(model):
    z = np.random.default_rng(0).standard_normal((2, 5, 3)).astype(np.float32) * 10
    out = L.decode(model, z, batch_size=3)
    assert out.shape == (2, 5, 1, 4, 4) and out.dtype == np.float32
    assert out.min() >= 0 and out.max() <= 1
    single = L.decode(model, z[1, 2])
    np.testing.assert_allclose(single, out[1, 2], rtol=1e-6)


def test_conditional_decode_needs_and_uses_labels():
    m = TinyVAE(conditional=True)
    z = np.zeros((4, 3), np.float32)
    with pytest.raises(ValueError, match="conditional"):
        L.decode(m, z)
    a = L.decode(m, z, labels=0)
    b = L.decode(m, z, labels=[0, 1, 2, 0])
    np.testing.assert_array_equal(a[0], b[0])
    assert not np.allclose(a[1], b[1])


def test_encode_decode_with_registry_model():
    registry = pytest.importorskip("vae_core.registry")
    m = registry.build_model("mlp", image_shape=(1, 8, 8), latent_dim=2)
    x = np.random.default_rng(0).random((7, 1, 8, 8), dtype=np.float32)
    mu, logvar = L.encode_dataset(m, x)
    assert mu.shape == (7, 2)
    assert L.decode(m, mu).shape == (7, 1, 8, 8)


# ---------------------------------------------------------------- interpolation
def test_lerp_endpoints_exact_and_midpoint():
    a = np.array([0.1, -2.0, 3.3], np.float32)
    b = np.array([1.7, 0.25, -1.0], np.float32)
    out = L.lerp(a, b, [0.0, 0.5, 1.0])
    np.testing.assert_array_equal(out[0], a)
    np.testing.assert_array_equal(out[2], b)
    np.testing.assert_allclose(out[1], (a + b) / 2, rtol=1e-6)
    assert L.lerp(a, b, 0.5).shape == (3,)


def test_slerp_keeps_norm_and_hits_endpoints():
    rng = np.random.default_rng(3)
    a = rng.standard_normal(16)
    b = rng.standard_normal(16)
    b *= np.linalg.norm(a) / np.linalg.norm(b)
    t = np.linspace(0, 1, 11)
    out = L.slerp(a, b, t)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), np.linalg.norm(a), rtol=1e-5)
    np.testing.assert_array_equal(out[0], a.astype(np.float32))
    np.testing.assert_array_equal(out[-1], b.astype(np.float32))
    # constant angular speed: equal angles between consecutive frames
    u = out / np.linalg.norm(out, axis=1, keepdims=True)
    angles = np.arccos(np.clip(np.sum(u[1:] * u[:-1], axis=1), -1, 1))
    np.testing.assert_allclose(angles, angles[0], rtol=1e-3)


def test_slerp_norm_is_linear_between_lengths():
    a = np.array([3.0, 0.0])
    b = np.array([0.0, 1.0])
    out = L.slerp(a, b, [0.25, 0.5])
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), [2.5, 2.0], rtol=1e-6)
    np.testing.assert_allclose(out[1] / np.linalg.norm(out[1]), [np.sqrt(0.5), np.sqrt(0.5)], rtol=1e-6)


@pytest.mark.parametrize("b", [
    np.array([1.0, 1e-9, 0.0]),          # nearly parallel
    np.array([1.0, 0.0, 0.0]),           # identical
    np.array([-1.0, 0.0, 0.0]),          # opposite
    np.array([0.0, 0.0, 0.0]),           # zero
])
def test_slerp_degenerate_cases_are_finite(b):
    a = np.array([1.0, 0.0, 0.0])
    out = L.slerp(a, b, np.linspace(0, 1, 7))
    assert np.isfinite(out).all()
    np.testing.assert_array_equal(out[0], a.astype(np.float32))
    np.testing.assert_array_equal(out[-1], b.astype(np.float32))
    if np.linalg.norm(b) == 1.0:
        np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, rtol=1e-6)


@pytest.mark.parametrize("method", ["lerp", "slerp"])
@pytest.mark.parametrize("easing", sorted(L.EASINGS))
def test_interpolate_passes_each_keyframe(method, easing):
    keys = np.array([[0.0, 0.0], [1.0, 2.0], [-3.0, 0.5]], np.float32)
    out = L.interpolate(keys, 10, method=method, easing=easing)
    assert out.shape == (10, 2)
    # 9 intervals over 2 segments -> 5 + 4: keyframes at rows 0, 5, 9
    np.testing.assert_array_equal(out[0], keys[0])
    np.testing.assert_array_equal(out[5], keys[1])
    np.testing.assert_array_equal(out[9], keys[2])


def test_interpolate_lerp_linear_is_evenly_spaced_and_validates():
    keys = np.array([[0.0], [4.0]], np.float32)
    np.testing.assert_allclose(L.interpolate(keys, 5)[:, 0], [0, 1, 2, 3, 4])
    eased = L.interpolate(keys, 5, easing="ease-in-out")[:, 0]
    assert eased[1] < 1 and eased[2] == pytest.approx(2) and eased[3] > 3
    with pytest.raises(ValueError, match="at least 3"):
        L.interpolate(np.zeros((3, 2)), 2)
    with pytest.raises(ValueError, match="easing"):
        L.interpolate(keys, 5, easing="bounce")
    with pytest.raises(ValueError, match="method"):
        L.interpolate(keys, 5, method="cubic")


def test_easings_have_exact_endpoints_and_are_monotone():
    t = np.linspace(0, 1, 101)
    for name, f in L.EASINGS.items():
        y = f(t)
        assert y[0] == 0.0 and y[-1] == 1.0, name
        assert np.all(np.diff(y) >= 0), name


# ---------------------------------------------------------------- arithmetic
@pytest.fixture
def resolver():
    rng = np.random.default_rng(0)
    codes = rng.standard_normal((30, 4)).astype(np.float32)
    labels = np.arange(30) % 3
    return L.LatentResolver(codes, labels, ("Cat", "Dog", "T-shirt/top"),
                            pins={"smile": np.ones(4, np.float32)},
                            groups={"g": np.array([1, 2, 3]), "v": np.full(4, 2.0, np.float32)})


def test_arithmetic_equals_explicit_sums(resolver):
    c, lab = resolver.codes, resolver.labels
    mean = lambda k: c[lab == k].mean(axis=0)
    cases = {
        "#12 - mean(1) + mean(2)": c[12] - mean(1) + mean(2),
        "12 - @1 + @2": c[12] - mean(1) + mean(2),
        '0.5*#3 + mean("Dog") - @"t-shirt/top"': 0.5 * c[3] + mean(1) - mean(2),
        "-#3 + #4*2": -c[3] + 2 * c[4],
        "mean(#1, #5, #9) − 0.25 #2": (c[1] + c[5] + c[9]) / 3 - 0.25 * c[2],
        "pin:smile + group:g - group:v": 1 + c[[1, 2, 3]].mean(axis=0) - 2,
        "mean(Cat, 1)": (mean(0) + mean(1)) / 2,
        "1e-1*#0": 0.1 * c[0],
    }
    for text, expected in cases.items():
        np.testing.assert_allclose(L.evaluate_expression(L.parse_expression(text), resolver), expected,
                                   rtol=1e-5, atol=1e-6, err_msg=text)


def test_strength_scales_everything_after_first_term(resolver):
    c = resolver.codes
    text = "#0 - #1 + #2"
    for s in (0.0, 0.5, 2.0):
        np.testing.assert_allclose(resolver.evaluate(text, strength=s), c[0] + s * (c[2] - c[1]), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(L.evaluate_expression("#5", resolver, strength=0.3), c[5])


def test_expression_round_trips_through_str():
    e = L.parse_expression('#12 - mean(7) + 0.5*@"Sneaker" - mean(#1, #5) + pin:a*2 - group:"x y"')
    assert str(e) == '#12 - mean(7) + 0.5*mean("Sneaker") - mean(#1, #5) + 2*pin:a - group:"x y"'
    assert L.parse_expression(str(e)).terms == e.terms
    assert [t.position for t in e.terms] == [0, 6, 16, 33, 48, 58]


@pytest.mark.parametrize("text,message,position", [
    ("#1 + * 3", "column 6", 5),
    ("#1 +", "column 5", 4),
    ("#1 $ 2", "unexpected character '\\$'", 3),
    ("mean(3", "expected ',' or '\\)'", 6),
    ("0.5", "not a data point index", 0),
    ("#1 #2", "expected '\\+' or '-'", 3),
    ("", "empty", 0),
])
def test_syntax_errors_have_positions(text, message, position):
    with pytest.raises(L.ExpressionError, match=message) as info:
        L.parse_expression(text)
    assert info.value.position == position


def test_operand_errors_are_clear(resolver):
    big = L.LatentResolver(np.zeros((70000, 2), np.float32))
    with pytest.raises(L.ExpressionError, match=r"^Index 70001 is out of range: the dataset has 70000 points\.$"):
        big.evaluate("#70001")
    with pytest.raises(L.ExpressionError, match=r"Label 7 does not exist: the labels are 0–2"):
        resolver.evaluate("#1 - mean(7)")
    with pytest.raises(L.ExpressionError, match=r'Unknown class name "Sneaker": the classes are "Cat", "Dog"'):
        resolver.evaluate('@"Sneaker"')
    with pytest.raises(L.ExpressionError, match=r'No pin named "frown" \(pins: smile\)'):
        resolver.evaluate("pin:frown")
    with pytest.raises(L.ExpressionError, match=r'No group named "x" \(groups: g, v\)'):
        resolver.evaluate("group:x")
    with pytest.raises(L.ExpressionError, match="unlabeled"):
        big.evaluate("mean(1)")
    assert isinstance(L.ExpressionError("x"), ValueError)


def test_attribute_vector_and_apply():
    rng = np.random.default_rng(1)
    codes = rng.standard_normal((40, 3)).astype(np.float32)
    labels = np.arange(40) % 4
    v = L.attribute_vector(codes, labels, 2, 0)
    np.testing.assert_allclose(v, codes[labels == 2].mean(0) - codes[labels == 0].mean(0), rtol=1e-5, atol=1e-6)
    mask = labels == 1
    np.testing.assert_allclose(L.attribute_vector(codes, None, mask, [0, 1]),
                               codes[mask].mean(0) - codes[[0, 1]].mean(0), rtol=1e-5, atol=1e-6)
    z = codes[5]
    np.testing.assert_allclose(L.apply_attribute(z, v, 0.5), z + 0.5 * v, rtol=1e-6)
    ramp = L.apply_attribute(z, v, np.linspace(0, 1, 3))
    assert ramp.shape == (3, 3)
    np.testing.assert_allclose(ramp[-1], z + v, rtol=1e-6)
    with pytest.raises(ValueError, match="no points"):
        L.attribute_vector(codes, labels, 9, 0)


# ---------------------------------------------------------------- traversal / prior
def test_traverse_varies_one_dim():
    z = np.array([0.5, -1.0, 2.0], np.float32)
    out = L.traverse(z, 1, span=2.0, steps=5, std=np.array([1.0, 0.5, 1.0]))
    np.testing.assert_allclose(out[:, 1], [-1.0, -0.5, 0.0, 0.5, 1.0])
    np.testing.assert_array_equal(out[:, [0, 2]], np.tile(z[[0, 2]], (5, 1)))
    rel = L.traverse(z, 2, span=1.0, steps=3, relative=True)
    np.testing.assert_allclose(rel[:, 2], [1.0, 2.0, 3.0])


def test_traversal_grid_orders_by_kl():
    z = np.zeros(4, np.float32)
    kl = np.array([0.01, 3.0, 0.5, 1.0])
    grid = L.traversal_grid(z, kl, steps=7)
    assert grid.shape == (4, 7, 4)
    order = L.traversal_dims(4, kl)
    np.testing.assert_array_equal(order, [1, 3, 2, 0])
    for row, dim in enumerate(order):
        varying = np.flatnonzero(np.ptp(grid[row], axis=0) > 0)
        np.testing.assert_array_equal(varying, [dim])
    np.testing.assert_array_equal(L.traversal_dims(4, kl, dims=[0, 2], max_dims=1), [2])
    np.testing.assert_array_equal(L.traversal_dims(4, np.array([2, 0, 1])), [2, 0, 1])


def test_sample_prior_seeded():
    a = L.sample_prior(100, 5, seed=3)
    assert a.shape == (100, 5) and a.dtype == np.float32
    np.testing.assert_array_equal(a, L.sample_prior(100, 5, seed=3))
    assert not np.array_equal(a, L.sample_prior(100, 5, seed=4))


# ---------------------------------------------------------------- neighbours
def test_nearest_neighbors_matches_brute_force():
    rng = np.random.default_rng(2)
    codes = rng.standard_normal((3000, 20)).astype(np.float32)
    queries = rng.standard_normal((37, 20)).astype(np.float32)
    index = L.NeighborIndex(codes, block_elements=3000 * 8)  # forces several query blocks
    idx, dist = index.query(queries, k=8)
    full = np.linalg.norm(codes[None].astype(np.float64) - queries[:, None], axis=2)
    ref = np.argsort(full, axis=1)[:, :8]
    np.testing.assert_array_equal(idx, ref)
    np.testing.assert_allclose(dist, np.take_along_axis(full, ref, 1), rtol=1e-5)
    i1, d1 = L.nearest_neighbors(codes, codes[42], k=3)
    assert i1.shape == (3,) and i1[0] == 42 and d1[0] == 0
    assert index.query(codes[0], k=10_000)[0].shape == (3000,)
