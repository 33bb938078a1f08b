"""The comparison of two models and the factor information, without a window."""

from __future__ import annotations

import numpy as np
import pytest

from explorer.state.compare import CompareState, compute_layouts
from explorer.state.factors import FactorInformation, factor_information


@pytest.fixture(scope="module")
def two_models(digits):
    import torch

    from vae_core import TrainConfig, build_model, fit

    models = []
    for seed, latent_dim in ((0, 2), (1, 3)):
        torch.manual_seed(seed)
        model = build_model("mlp", image_shape=digits.image_shape, latent_dim=latent_dim, hidden=(32,))
        fit(model, digits, TrainConfig(epochs=2, batch_size=64, lr=3e-3, seed=seed, num_threads=1))
        models.append(model)
    return models


def test_the_right_layout_is_procrustes_aligned_onto_the_left(digits, two_models):
    from vae_core.latent import encode_dataset
    from vae_core.projection import align_to, apply_affine, make_projection

    left, right = two_models
    images = digits.all().images
    result = compute_layouts(left, right, images, kind="pca")
    right_codes, _ = encode_dataset(right, images)
    np.testing.assert_array_equal(result.right_codes, right_codes)
    raw = make_projection("pca").fit(right_codes).transform(right_codes)
    np.testing.assert_allclose(result.right_xy, apply_affine(align_to(result.left_xy, raw), raw), atol=1e-4)
    # alignment can only bring the points closer to their places on the left map
    assert np.sum((result.right_xy - result.left_xy) ** 2) <= np.sum((raw - result.left_xy) ** 2) + 1e-6
    # the inverse still decodes where the points are: the aligned map's inverse is consistent
    np.testing.assert_allclose(result.right_projection.transform(result.right_projection.inverse(result.right_xy[:5])),
                               result.right_xy[:5], atol=1e-3)


def test_dims_need_two_dimensions(digits, two_models):
    from vae_core import build_model

    one = build_model("mlp", image_shape=digits.image_shape, latent_dim=1, hidden=(8,))
    with pytest.raises(ValueError, match="two latent dimensions"):
        compute_layouts(one, two_models[0], digits.all().images[:20], kind="dims")
    with pytest.raises(ValueError, match="Unknown projection"):
        compute_layouts(one, two_models[0], digits.all().images[:20], kind="tsne")


def test_a_hovered_point_is_shared_by_both_maps(digits, two_models):
    compare = CompareState()
    compare.set_models(two_models[0], two_models[1], digits)
    assert compare.default_kind() == "pca"   # a 2-D and a 3-D model
    compare.update()
    seen = []
    compare.hovered_index_changed.connect(seen.append)
    compare.left.map.set_hovered_index(10)
    assert compare.right.map.hovered_index == 10 and compare.hovered_side == "left"
    assert list(compare.left.map.highlight) == [10] == list(compare.right.map.highlight)
    compare.right.map.set_hovered_index(11)
    assert compare.left.map.hovered_index == 11 and compare.hovered_side == "right"
    compare.right.map.set_hovered_index(None)
    assert compare.left.map.hovered_index is None and compare.hovered_side is None
    assert len(compare.left.map.highlight) == 0
    assert seen == [10, 11, None]


def test_a_factor_one_dimension_copies_is_carried_entirely_by_it():
    rng = np.random.default_rng(0)
    n = 3000
    factors = {"shape": rng.integers(0, 3, n), "x": rng.random(n), "flip": rng.integers(0, 2, n)}
    codes = rng.normal(size=(n, 4)).astype(np.float32)
    codes[:, 1] = factors["shape"]            # z1 is the shape
    codes[:, 2] = factors["x"] * 5.0 - 1.0    # z2 is x, rescaled
    codes[:, 3] = factors["flip"] * 0.1       # z3 is a binary factor: H = log 2 < 1 nat
    result = factor_information(codes, factors)
    assert result.factor_names == ("shape", "x", "flip")
    assert result.normalized[0, 1] == pytest.approx(1.0) and result.normalized[1, 2] == pytest.approx(1.0)
    assert result.normalized[2, 3] == pytest.approx(1.0) and result.mi[2, 3] == pytest.approx(np.log(2), abs=1e-3)
    np.testing.assert_allclose(result.normalized * result.entropy[:, None], result.mi, atol=1e-12)
    assert result.normalized[0, 0] < 0.02 and result.normalized[1, 0] < 0.1
    assert [result.best_dimension(k) for k in range(3)] == [1, 2, 3]
    np.testing.assert_allclose(result.entropy[0], np.log(3), atol=0.01)
    # a subsample gives the same answer for such a clear code
    small = factor_information(codes, factors, max_points=1000)
    assert small.points == 1000 and small.normalized[0, 1] == pytest.approx(1.0)


def test_the_factor_information_follows_the_documents_codes():
    from explorer.state import ExplorerState
    from vae_core import load_dataset

    data = load_dataset("shapes:32")
    document = ExplorerState()
    document.set_dataset(data)
    info = FactorInformation(document)
    assert info.available and info.request() is None   # no codes yet
    n = document.num_points
    codes = np.column_stack([data.factors["shape"], np.random.default_rng(0).normal(size=n)]).astype(np.float32)
    document.set_codes(codes)
    result = info.compute()
    assert result.best_dimension(0) == 0 and result.normalized[0, 0] == pytest.approx(1.0)
    generation = info.generation
    document.set_codes(codes[:, ::-1].copy())
    assert info.result is None
    info.set_result(generation, result)   # a result of the older codes is dropped
    assert info.result is None
    with pytest.raises(ValueError, match="no latent dimension"):
        info.request_traversal(0)
    traversals = []
    info.traversal_requested.connect(traversals.append)
    info.compute()
    info.request_traversal(1)
    assert traversals == [1]
    document.set_dataset(load_dataset("digits"))
    assert not info.available and info.result is None
