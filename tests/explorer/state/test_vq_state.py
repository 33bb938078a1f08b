"""The code-grid views' state without Qt: codebook, grid editor, changed cells, snapped
interpolation and prior sampling of a vqvae."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from explorer.state import ExplorerState
from explorer.state.map import PickedPoint


@pytest.fixture(scope="module")
def vq_model(digits):
    from vae_core import TrainConfig, build_model, fit
    from vae_core.prior import PriorConfig, train_prior

    torch.manual_seed(0)
    model = build_model("vqvae", image_shape=digits.image_shape, latent_dim=3, codebook_size=16, prior_width=16,
                        prior_heads=2)
    history = fit(model, digits, TrainConfig(epochs=2, batch_size=64, lr=3e-3, seed=0))
    list(train_prior(model, digits, PriorConfig(epochs=1, batch_size=64, lr=3e-3)))
    return model.eval(), history


@pytest.fixture
def doc(digits, vq_model):
    model, history = vq_model
    state = ExplorerState()
    state.set_dataset(digits)
    state.set_model(model, history=history)
    state.encode()
    return state


def _direct(model, grid):
    with torch.inference_mode():
        return model.decode_indices(torch.as_tensor(grid)[None])[0].numpy()


def test_the_codebook_counts_every_cell_and_draws_each_entry(doc):
    model, book = doc.model, doc.vq.codebook
    assert book.available and book.size == 16
    with torch.inference_mode():
        expected = model.code_usage(doc.images)
    usage = book.usage()
    np.testing.assert_array_equal(usage, expected)
    assert usage.sum() == len(doc.codes) * 4 * 4
    np.testing.assert_array_equal(book.dead(), expected == 0)
    p = expected[expected > 0] / expected.sum()
    assert book.perplexity() == pytest.approx(np.exp(-(p * np.log(p)).sum()))
    patches = book.patch_images()
    assert patches.shape == (16, *doc.dataset.image_shape)
    # (batched with the other entries: equal up to the convolutions' batch-size rounding)
    np.testing.assert_allclose(patches[5], _direct(model, np.full((4, 4), 5)), rtol=0, atol=1e-6)
    # The map of the vectors is their PCA: distances along it never exceed the true ones.
    xy, vectors = book.layout(), book.vectors()
    assert xy.shape == (16, 2)
    centred = vectors - vectors.mean(0)
    np.testing.assert_allclose(np.abs(xy[:, 0]).max(), np.abs(centred @ np.linalg.svd(centred)[2][0]).max(),
                               rtol=1e-4)
    assert np.linalg.norm(xy[0] - xy[1]) <= np.linalg.norm(vectors[0] - vectors[1]) + 1e-5


def test_the_editor_result_equals_a_direct_decode_of_the_edited_grid(doc):
    editor, model = doc.vq.editor, doc.model
    editor.set_index(7)
    with torch.inference_mode():
        expected_grid = model.encode_indices(torch.from_numpy(doc.images[7:8]))[0].numpy()
    np.testing.assert_array_equal(editor.grid, expected_grid)
    np.testing.assert_array_equal(editor.image, _direct(model, expected_grid))
    editor.set_brush((int(editor.grid[1, 2]) + 1) % 16)
    will_change = 1 + int(editor.grid[3, 3] != editor.brush)
    assert editor.paint([(1, 2), (3, 3), (3, 3), (9, 9)]) == will_change
    edited = expected_grid.copy()
    edited[1, 2] = edited[3, 3] = editor.brush
    np.testing.assert_array_equal(editor.grid, edited)
    np.testing.assert_array_equal(editor.image, _direct(model, edited))
    assert not np.array_equal(editor.image, _direct(model, expected_grid))
    # Pinned, the edit is the code of its entries; that code snaps back to the same grid.
    pin = editor.pin()
    with torch.inference_mode():
        np.testing.assert_array_equal(pin.z, model.codes_from_indices(torch.as_tensor(edited))[0].numpy())
    editor.set_pin(pin)
    np.testing.assert_array_equal(editor.grid, edited)
    editor.reset()
    np.testing.assert_array_equal(editor.grid, edited)  # the pin is the new source
    with pytest.raises(ValueError, match="0 to 15"):
        editor.set_brush(16)


def test_a_map_click_opens_the_point_in_the_editor(doc):
    doc.map.point_picked.emit(PickedPoint(z=doc.codes[3], xy=(0.0, 0.0), index=3, label=None))
    assert doc.vq.editor.source == "#3" and doc.vq.editor.source_index == 3


def test_edits_become_keyframes_and_snapped_frames_are_made_of_codebook_entries(doc):
    editor, interp, player = doc.vq.editor, doc.studio.interpolation, doc.studio.player
    model = doc.model
    editor.set_index(0)
    editor.set_brush(int(editor.grid[0, 0]) ^ 1)
    editor.paint([(0, 0), (0, 1)])
    first = editor.add_keyframe()
    assert first.name == "#0 edited"
    interp.add_index_keyframe(40)
    interp.set_steps(6)
    codes = player.frame_codes
    np.testing.assert_array_equal(codes[0], editor.code())
    # Snapped: every frame decodes from codebook entries, exactly as the grid of its nearest entries.
    assert interp.snap and not player.unquantized
    book = model.codebook.numpy()
    with torch.inference_mode():
        grids, snapped = model.quantize(torch.from_numpy(codes))
        direct = model.decode_indices(grids).numpy()
    vectors = snapped.numpy().reshape(len(codes), -1, 3)
    assert all((book == v).all(1).any() for frame in vectors for v in frame)
    np.testing.assert_array_equal(player.frames, direct)
    np.testing.assert_allclose(player.frames[0], editor.image, rtol=0, atol=1e-6)  # batch of 6 vs 1
    # Not snapped: the decoder reads the continuous codes, so the in-between frames differ.
    interp.set_snap(False)
    assert player.unquantized and "not snapped" in player.animation_title
    with torch.inference_mode():
        raw = model.decode_unquantized(torch.from_numpy(codes)).numpy()
    np.testing.assert_allclose(player.frames, raw, atol=1e-6)
    assert np.abs(player.frames[1:-1] - direct[1:-1]).max() > 1e-3
    player.redecode_animation()
    np.testing.assert_allclose(player.frames, raw, atol=1e-6)
    # What the player shows and an export writes are these frames.
    from vae_core.export import prepare_frames

    np.testing.assert_array_equal(player.display_frames(), prepare_frames(player.frames, pingpong=False))
    assert not np.array_equal(player.display_frames(), prepare_frames(direct, pingpong=False))


def test_changed_cells_follow_the_hovered_codes(doc):
    cells, model = doc.vq.cells, doc.model
    a, b = doc.codes[0], doc.codes[1]
    cells.update(a)
    assert cells.changed is None and cells.cells == 16
    cells.update(a)
    assert cells.changed == 0
    cells.update(b)
    with torch.inference_mode():
        ga, gb = model.quantize(torch.from_numpy(np.stack([a, b])))[0].numpy()
    assert cells.changed == int((ga != gb).sum()) > 0


def test_prior_samples_follow_temperature_and_completion_keeps_the_top_rows(doc):
    sampling, model = doc.vq.sampling, doc.model
    assert sampling.available and sampling.prior_trained
    images = sampling.samples(6)
    grids = sampling.sample_grids(6)
    np.testing.assert_array_equal(images, _decode_all(model, grids))
    sampling.set_temperature(0.2)
    cold = sampling.sample_grids(200)
    sampling.set_temperature(3.0)
    hot = sampling.sample_grids(200)
    assert len(np.unique(cold)) < len(np.unique(hot)) or _entropy(cold) < _entropy(hot)
    with torch.inference_mode():
        grid = model.encode_indices(torch.from_numpy(doc.images[5:6]))[0].numpy()
    sampling.set_rows_kept(2)
    done = sampling.complete_grids(grid, 8)
    assert (done[:, :2] == grid[:2]).all()
    assert (done[:, 2:] != grid[2:]).any()
    np.testing.assert_array_equal(sampling.complete(grid, 8), _decode_all(model, done))
    with pytest.raises(ValueError, match="0 to 4"):
        sampling.set_rows_kept(5)
    with pytest.raises(ValueError, match="temperature"):
        sampling.set_temperature(0.0)


def _decode_all(model, grids):
    with torch.inference_mode():
        return model.decode_indices(torch.as_tensor(grids)).numpy()


def _entropy(grids):
    counts = np.bincount(grids.ravel())
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum())


def test_a_gaussian_model_has_no_code_grid_views(state):
    assert not state.vq.codebook.available and state.vq.codebook.usage() is None
    assert not state.vq.sampling.available
    state.vq.cells.update(state.codes[0])
    assert state.vq.cells.grid is None
    with pytest.raises(ValueError, match="discrete code grid"):
        state.vq.editor.set_index(0)
