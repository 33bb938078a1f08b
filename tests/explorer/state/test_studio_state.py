"""The studio's state without Qt: every frame it shows equals a direct vae_core call."""

from __future__ import annotations

import numpy as np
import pytest

from explorer.state.studio import EASING_NAMES, AttributeSide, pingpong_indices
from vae_core import build_model
from vae_core import latent as vl
from vae_core.export import export_animation, prepare_frames


def test_easing_names_match_vae_core():
    assert EASING_NAMES == tuple(vl.EASINGS)


def test_interpolation_frames_are_vae_core_interpolate_and_decode(state):
    studio = state.studio
    codes = state.codes
    studio.interpolation.add_index_keyframe(3)
    assert studio.player.frames is None                      # one keyframe: nothing to play
    studio.interpolation.add_centroid_keyframe(7)
    studio.interpolation.add_index_keyframe(100)
    studio.interpolation.set_method("slerp")
    studio.interpolation.set_easing("ease-in-out")
    studio.interpolation.set_steps(17)

    mean7 = codes[state.labels == 7].mean(0)
    keys = np.stack([codes[3], mean7, codes[100]])
    expected_codes = vl.interpolate(keys, 17, "slerp", "ease-in-out")
    np.testing.assert_allclose(studio.player.frame_codes, expected_codes, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(studio.player.frames, vl.decode(state.model, expected_codes), atol=1e-6)
    assert studio.player.animation_kind == "interpolation"
    # every keyframe is a frame, exactly where keyframe_frame_indices says
    at = studio.interpolation.keyframe_frame_indices()
    assert at[0] == 0 and at[-1] == 16
    np.testing.assert_array_equal(studio.player.frame_codes[at[0]], codes[3])
    np.testing.assert_array_equal(studio.player.frame_codes[at[-1]], codes[100])
    assert studio.player.captions[at[1]] == "mean of 7"

    studio.interpolation.move_keyframe(2, 0)
    assert [k.name for k in studio.interpolation.keyframes] == ["#100", "#3", "mean of 7"]
    studio.interpolation.remove_keyframe(0)
    studio.interpolation.remove_keyframe(0)
    assert studio.player.frames is None and studio.player.animation_kind is None


def test_steps_never_below_keyframe_count(state):
    studio = state.studio
    for i in (1, 2, 3, 4):
        studio.interpolation.add_index_keyframe(i)
    studio.interpolation.set_steps(2)
    assert studio.player.frame_count == 4


def test_player_order_is_prepare_frames_order(state):
    studio = state.studio
    studio.interpolation.add_index_keyframe(0)
    studio.interpolation.add_index_keyframe(1)
    studio.interpolation.set_steps(6)
    for pingpong in (False, True):
        studio.player.set_pingpong(pingpong)
        shown = studio.player.display_frames()
        np.testing.assert_array_equal(shown, prepare_frames(studio.player.frames, pingpong=pingpong))
        np.testing.assert_array_equal(shown, prepare_frames(studio.player.frames)[studio.player.sequence])
    assert studio.player.sequence.tolist() == [0, 1, 2, 3, 4, 5, 4, 3, 2, 1]
    assert pingpong_indices(2, True).tolist() == [0, 1]


def test_player_advances_loops_and_stops(state):
    studio = state.studio
    studio.interpolation.add_index_keyframe(0)
    studio.interpolation.add_index_keyframe(1)
    studio.interpolation.set_steps(4)
    studio.player.set_pingpong(True)                     # 0 1 2 3 2 1
    studio.player.play()
    assert studio.player.playing
    seen = [studio.player.current_index]
    for _ in range(7):
        studio.player.advance()
        seen.append(studio.player.current_index)
    assert seen == [0, 1, 2, 3, 2, 1, 0, 1]
    studio.player.set_loop(False)
    studio.player.set_current_frame(4)
    assert studio.player.advance() is True and studio.player.current_frame == 5
    assert studio.player.advance() is False and not studio.player.playing and studio.player.current_frame == 5
    studio.player.play()                                 # replays from the start
    assert studio.player.playing and studio.player.current_frame == 0
    studio.player.stop()
    studio.player.set_current_frame(2)
    studio.player.set_pingpong(False)                    # same picture stays on screen
    assert studio.player.current_index == 2
    studio.player.step(-3)
    assert studio.player.current_frame == 3              # wraps around


def test_map_path_and_marker_follow_the_player(state):
    state.map.fit("pca")
    studio = state.studio
    studio.interpolation.add_index_keyframe(5)
    studio.interpolation.add_index_keyframe(6)
    studio.interpolation.set_steps(5)
    np.testing.assert_array_equal(state.map.path_codes, studio.player.frame_codes)
    assert state.map.path_xy.shape == (5, 2)
    studio.player.set_pingpong(True)
    studio.player.set_current_frame(6)                   # sequence 0 1 2 3 4 3 2 1 → frame 2
    assert state.map.path_frame == 2
    studio.interpolation.clear_keyframes()
    assert state.map.path_codes is None


def test_map_clicks_pick_keyframes_operands_and_points(state):
    state.map.fit("pca")
    studio = state.studio
    studio.picking.set_target("keyframes")
    state.map.pick(tuple(state.map.xy[9]), index=9)
    state.map.pick((0.1, -0.2))
    assert [k.kind for k in studio.interpolation.keyframes] == ["index", "map"]
    np.testing.assert_allclose(studio.interpolation.keyframes[1].z, state.map.inverse(np.array([0.1, -0.2])), atol=1e-6)
    assert studio.player.frame_count == studio.interpolation.steps

    studio.picking.set_target("arithmetic")
    state.map.pick(tuple(state.map.xy[4]), index=4)
    state.map.pick((0.3, 0.3))                    # not a data point: pinned, then used
    assert studio.arithmetic.expression == "#4 + pin:P1"
    assert studio.arithmetic.result_z is not None

    studio.picking.set_target("attribute")
    state.map.pick(tuple(state.map.xy[2]), index=2)
    assert studio.attributes.base.name == "#2"

    studio.picking.set_target("traversal")
    state.map.pick(tuple(state.map.xy[8]), index=8)
    np.testing.assert_array_equal(studio.traversal.code, state.codes[8])

    studio.picking.set_target(None)
    n = len(studio.interpolation.keyframes)
    state.map.pick((0.0, 0.0))
    assert len(studio.interpolation.keyframes) == n


def test_arithmetic_matches_vae_core(state):
    studio = state.studio
    assert studio.arithmetic.set_expression("#12 − mean(7) + mean(3)")
    studio.arithmetic.set_strength(0.5)
    resolver = vl.LatentResolver(state.codes, state.labels, state.class_names)
    expected = vl.evaluate_expression("#12 - mean(7) + mean(3)", resolver, 0.5)
    np.testing.assert_allclose(studio.arithmetic.result_z, expected, atol=1e-6)
    np.testing.assert_allclose(studio.arithmetic.result_image, vl.decode(state.model, expected[None])[0], atol=1e-6)
    idx, dist = vl.nearest_neighbors(state.codes, expected, 8)
    np.testing.assert_array_equal(studio.arithmetic.neighbor_indices, idx)
    np.testing.assert_allclose(studio.arithmetic.neighbor_distances, dist, rtol=1e-5)
    texts = [t for t, _ in studio.arithmetic.term_previews()]
    assert texts == ["#12", "− 0.5×mean(7)", "+ 0.5×mean(3)"]
    np.testing.assert_allclose(studio.arithmetic.term_previews()[1][1], vl.decode(state.model, resolver.label_mean(7)[None])[0],
                               atol=1e-6)
    # strength 0 → the first term
    np.testing.assert_allclose(studio.arithmetic.animation_codes(5)[0], state.codes[12], atol=1e-6)
    np.testing.assert_allclose(studio.arithmetic.animation_codes(5)[-1], expected, atol=1e-6)

    pin = studio.arithmetic.pin_result()
    np.testing.assert_array_equal(pin.z, studio.arithmetic.result_z)
    state.map.add_group(np.array([1, 2, 3]), name="g")
    assert studio.arithmetic.set_expression(f"pin:{pin.name} + 2*group:g")
    np.testing.assert_allclose(studio.arithmetic.result_z, pin.z + 0.5 * 2 * state.codes[[1, 2, 3]].mean(0), atol=1e-5)


def test_arithmetic_errors_are_reported_not_raised(state):
    studio = state.studio
    assert not studio.arithmetic.set_expression("#12 - ")
    assert "column 7" in studio.arithmetic.error and studio.arithmetic.error_position == 6
    assert studio.arithmetic.result_z is None
    assert not studio.arithmetic.set_expression("#99999")
    assert "out of range" in studio.arithmetic.error
    assert studio.arithmetic.validate_expression("mean(3) + pin:nope")[0].startswith('No pin named "nope"')
    assert studio.arithmetic.validate_expression("@3 - @4") == (None, None)
    with pytest.raises(ValueError):
        studio.arithmetic.pin_result()


def test_attribute_vector_and_animation(state):
    studio = state.studio
    studio.attributes.set_sides(AttributeSide("label", 1), AttributeSide("label", 7))
    assert studio.attributes.error == "Pick a point to apply the attribute to."
    studio.attributes.set_base(studio.context.operand_from_index(5))
    studio.attributes.set_amount(-1.5)
    vector = vl.attribute_vector(state.codes, state.labels, 1, 7)
    np.testing.assert_allclose(studio.attributes.vector, vector, atol=1e-6)
    shifted = vl.apply_attribute(state.codes[5], vector, -1.5)
    np.testing.assert_allclose(studio.attributes.result_z, shifted, atol=1e-6)
    np.testing.assert_allclose(studio.attributes.images, vl.decode(state.model, np.stack([state.codes[5], shifted])),
                               atol=1e-6)
    frames = studio.attributes.animate(9)
    assert studio.player.animation_kind == "attribute" and len(frames) == 9
    np.testing.assert_allclose(studio.player.frame_codes[0], state.codes[5], atol=1e-6)
    np.testing.assert_allclose(studio.player.frame_codes[-1], shifted, atol=1e-6)
    np.testing.assert_allclose(frames, vl.decode(state.model, studio.player.frame_codes), atol=1e-6)

    state.map.add_group(np.arange(0, 40), name="first")
    studio.attributes.set_sides(AttributeSide("group", "first"), AttributeSide("label", 0))
    np.testing.assert_allclose(studio.attributes.vector,
                               vl.attribute_vector(state.codes, state.labels, np.arange(40), 0), atol=1e-6)
    studio.attributes.set_sides(AttributeSide("label", 0), AttributeSide("label", 0))
    assert studio.attributes.vector is None and "different" in studio.attributes.error


def test_traversal_sliders_and_grid(state):
    studio = state.studio
    d = state.model.latent_dim
    kl = studio.traversal.kl_values()
    order = studio.traversal.dimension_order()
    assert sorted(order.tolist()) == list(range(d))
    assert np.all(np.diff(kl[order]) <= 0)
    np.testing.assert_array_equal(studio.traversal.collapsed_mask(), state.codes.var(0) <= 0.01)

    studio.traversal.set_code(state.codes[0])
    studio.traversal.set_value(int(order[0]), 1.25)
    assert studio.traversal.code[order[0]] == np.float32(1.25)
    studio.traversal.set_options(span=2.0, steps=5)
    grid = studio.traversal.grid_codes()
    expected = vl.traversal_grid(studio.traversal.code, kl, steps=5, span=2.0, max_dims=16)
    np.testing.assert_allclose(grid, expected)
    images = studio.traversal.grid_images()
    assert images.shape == (d, 5) + tuple(state.model.image_shape)
    np.testing.assert_allclose(images, vl.decode(state.model, expected), atol=1e-6)
    assert studio.traversal.row_captions()[0].startswith(f"z{order[0]}  KL")

    studio.traversal.set_options(sigma="data")
    mean, std = state.codes.mean(0), state.codes.std(0)
    lo, hi = studio.traversal.slider_range(1)
    assert lo <= mean[1] - 2.0 * std[1] + 1e-5 and hi >= mean[1] + 2.0 * std[1] - 1e-5

    frames = studio.traversal.animate(int(order[0]), steps=7)
    assert studio.player.animation_kind == "traversal" and len(frames) == 7
    np.testing.assert_allclose(studio.player.frame_codes[:, order[0]],
                               mean[order[0]] + np.linspace(-2, 2, 7) * std[order[0]], rtol=1e-5, atol=1e-5)


def test_retraining_refreshes_frames_and_keyframes(state):
    studio = state.studio
    studio.interpolation.add_index_keyframe(0)
    studio.interpolation.add_index_keyframe(1)
    before = studio.player.frames.copy()
    weights = {k: v + 0.05 for k, v in state.model.state_dict().items()}
    state.apply_weights(weights)
    assert not np.allclose(before, studio.player.frames)
    np.testing.assert_allclose(studio.player.frames, vl.decode(state.model, studio.player.frame_codes), atol=1e-6)
    state.encode()                                # new codes: data keyframes follow them
    np.testing.assert_array_equal(studio.interpolation.keyframes[0].z, state.codes[0])
    np.testing.assert_array_equal(studio.player.frame_codes[0], state.codes[0])


def test_conditional_label_and_label_sweep(make_trained_document):
    state = make_trained_document("cvae", latent_dim=3, num_classes=10)
    studio = state.studio
    assert studio.context.conditional and studio.context.num_labels == 10
    z = state.codes[7]
    frames = studio.labels.animate(z)
    assert studio.player.animation_kind == "labels" and studio.player.captions == [str(i) for i in range(10)]
    np.testing.assert_allclose(frames, vl.decode(state.model, np.repeat(z[None], 10, 0), np.arange(10)), atol=1e-6)

    studio.interpolation.add_index_keyframe(1)
    studio.interpolation.add_index_keyframe(2)
    studio.context.set_decode_label(4)
    np.testing.assert_allclose(studio.player.frames, vl.decode(state.model, studio.player.frame_codes, 4), atol=1e-6)
    studio.arithmetic.set_expression("#3")
    np.testing.assert_allclose(studio.arithmetic.result_image, vl.decode(state.model, state.codes[3:4], 4)[0], atol=1e-6)
    studio.context.set_decode_label(2)
    np.testing.assert_allclose(studio.arithmetic.result_image, vl.decode(state.model, state.codes[3:4], 2)[0], atol=1e-6)
    pin = studio.arithmetic.pin_result()
    assert pin.label == 2


def test_export_from_state_writes_what_the_player_shows(state, tmp_path):
    import imageio.v3 as iio

    studio = state.studio
    studio.interpolation.add_index_keyframe(0)
    studio.interpolation.add_index_keyframe(42)
    studio.interpolation.set_steps(8)
    studio.player.set_pingpong(True)
    path = studio.player.export(tmp_path / "a.gif", upscale=2)
    written = iio.imread(path, index=None)
    expected = studio.player.display_frames(upscale=2)
    assert written.shape[0] == len(expected) == 14
    np.testing.assert_array_equal(written[..., 0] if written.ndim == 4 else written, expected)
    # the same call the dialog makes
    export_animation(studio.player.frames, tmp_path / "b.png", **studio.player.export_options(upscale=1), grid_columns=7)
    assert iio.imread(tmp_path / "b.png").shape[:2] == (2 * 8, 7 * 8)


def test_a_model_of_another_size_clears_what_it_cannot_decode(state, digits):
    studio = state.studio
    started = []
    studio.player.animation_started.connect(started.append)
    studio.interpolation.add_index_keyframe(0)
    studio.interpolation.add_code_keyframe(state.codes[3], name="a code")
    studio.arithmetic.set_expression("#1 + #2")
    studio.attributes.set_sides(AttributeSide("label", 1), AttributeSide("label", 2))
    studio.attributes.set_base(studio.context.operand_from_code(state.codes[4]))
    assert started == ["interpolation"]
    state.encode()                                # new codes: the animation is rebuilt quietly
    assert started == ["interpolation"] and studio.player.frame_count == studio.interpolation.steps

    bigger = build_model("mlp", image_shape=digits.image_shape, latent_dim=6, hidden=(16,))
    state.set_model(bigger)
    assert studio.interpolation.keyframes == [] and studio.player.frames is None
    assert studio.arithmetic.result_z is None and studio.attributes.base is None
    assert studio.traversal.code.shape == (6,)
    state.encode()
    assert studio.arithmetic.result_z.shape == (6,)          # the expression is evaluated again
    np.testing.assert_allclose(studio.arithmetic.result_z, state.codes[1] + state.codes[2], atol=1e-5)
