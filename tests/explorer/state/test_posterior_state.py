"""The map's posterior cloud, holes overlay and own image, without Qt."""

from __future__ import annotations

import numpy as np
import pytest

from explorer.state.posterior import ELLIPSE_SIGMAS, HolesOverlay
from vae_core.latent import encode_dataset


@pytest.fixture(scope="module")
def doc(make_trained_document):
    state = make_trained_document("mlp", latent_dim=4)
    state.map.fit("pca")
    return state


def test_hovering_a_point_shows_its_ellipses_at_once_on_a_linear_map(doc):
    cloud = doc.map.posterior
    shapes = []
    cloud.cloud_changed.connect(shapes.append)
    doc.map.set_hovered_index(None)
    cloud.set_enabled(True)
    doc.map.set_hovered_index(17)
    shape = shapes[-1]
    assert shape.exact and shape.index == 17 and set(shape.outlines) == set(ELLIPSE_SIGMAS)
    # independent of the library's formula: the components of a fitted PCA and the encoder's σ
    pca = doc.map.projection
    sigma2 = np.exp(doc.logvar[17].astype(np.float64))
    expected = (pca.components * sigma2) @ pca.components.T
    np.testing.assert_allclose(shape.covariance, expected, rtol=1e-6)
    np.testing.assert_allclose(shape.centre, doc.map.xy[17], rtol=1e-4, atol=1e-5)
    doc.map.set_hovered_index(None)
    assert shapes[-1] is None
    cloud.set_enabled(False)
    doc.map.set_hovered_index(17)
    assert shapes[-1] is None


def test_holes_overlay_computes_for_the_shown_map_and_drops_stale_results(doc):
    holes = doc.map.holes
    key, args = holes.request()
    result = HolesOverlay.compute(*args)
    assert result.exact and result.log_ratio.shape == (128, 128)
    seen = []
    holes.holes_changed.connect(seen.append)
    assert holes.set_result(key, result) and seen[-1] is result
    doc.map.fit("dims")                       # another projection: the result is stale
    assert seen[-1] is None and holes.result is None
    assert not holes.set_result(key, result)


def test_own_image_lands_where_encode_puts_it(doc, tmp_path, digits):
    from PIL import Image

    image = digits.test.images[9]
    path = tmp_path / "mine.png"
    Image.fromarray((np.kron(image[0], np.ones((4, 4))) * 255 + 0.5).astype(np.uint8)).save(path)
    result = doc.map.own_image.load(path)
    prepared, _ = doc.map.own_image.prepare(path)
    mu, _ = encode_dataset(doc.model, prepared[None])
    np.testing.assert_allclose(result.code, mu[0], rtol=1e-6)
    np.testing.assert_allclose(result.xy, doc.map.projection.transform(mu)[0], rtol=1e-5)
    assert result.log_likelihood is not None and 0.0 <= result.percentile <= 100.0
    assert len(doc.map.own_image.reference) == min(500, len(digits.all()))
    # noise is far less likely than a digit
    noise = np.random.default_rng(0).random((32, 32))
    assert doc.map.own_image.load(noise, name="noise").percentile < result.percentile
    doc.weights_changed.emit()
    assert doc.map.own_image.result is None and doc.map.own_image.reference is None
