"""Tests for vae_core.export: frame preparation and GIF/MP4/WebP/APNG/PNG writers."""

import imageio.v3 as iio
import numpy as np
import pytest
from PIL import Image

from vae_core.export import (
    SUPPORTED_EXTENSIONS, compose_grid, export_animation, prepare_frames, to_uint8_frames,
)


def gray_frames(t=5, h=9, w=7, seed=0):
    """Distinct float frames in vae_core's T×1×H×W layout."""
    rng = np.random.default_rng(seed)
    frames = rng.random((t, 1, h, w)).astype(np.float32)
    frames[:, 0, 0, 0] = np.linspace(0, 1, t)  # consecutive frames always differ
    return frames


def webp_frames(path):
    with Image.open(path) as im:
        out = []
        for i in range(im.n_frames):
            im.seek(i)
            out.append(np.asarray(im.convert("RGB")))
        return np.stack(out)


# ---------------------------------------------------------------- preparation
def test_to_uint8_layouts_agree():
    f = gray_frames()
    ref = to_uint8_frames(f)
    assert ref.shape == (5, 9, 7) and ref.dtype == np.uint8
    np.testing.assert_array_equal(to_uint8_frames(f[:, 0]), ref)
    np.testing.assert_array_equal(to_uint8_frames(np.moveaxis(f, 1, -1)), ref)
    np.testing.assert_array_equal(to_uint8_frames(ref), ref)
    np.testing.assert_array_equal(ref, np.round(f[:, 0] * 255).astype(np.uint8))
    rgb = to_uint8_frames(np.repeat(f, 3, axis=1))
    assert rgb.shape == (5, 9, 7, 3)
    assert to_uint8_frames(np.full((2, 3, 3), 7.0)).max() == 255  # clipped
    with pytest.raises(ValueError, match="channel"):
        to_uint8_frames(np.zeros((2, 5, 6, 7)))
    with pytest.raises(ValueError, match="no frames"):
        to_uint8_frames(np.zeros((0, 4, 4)))


def test_prepare_frames_pingpong_upscale_size_captions():
    f = gray_frames(t=5)
    assert len(prepare_frames(f, pingpong=True)) == 8  # 2T - 2
    pp = prepare_frames(f, pingpong=True)
    np.testing.assert_array_equal(pp[5], pp[3])
    np.testing.assert_array_equal(pp[7], pp[1])
    assert prepare_frames(f, upscale=4).shape == (5, 36, 28)
    up = prepare_frames(f, upscale=3)
    np.testing.assert_array_equal(up[:, ::3, ::3], to_uint8_frames(f))
    assert prepare_frames(f, size=(20, 30)).shape == (5, 30, 20)
    cap = prepare_frames(f, upscale=10, captions=[f"#{i}" for i in range(5)], pingpong=True)
    assert cap.shape[0] == 8 and cap.shape[2] == 70 and cap.shape[1] > 90
    np.testing.assert_array_equal(cap[:, :90], prepare_frames(f, upscale=10, pingpong=True))
    strip = cap[:, 90:]
    assert strip.max() > 128  # text was drawn
    np.testing.assert_array_equal(strip[6], strip[2])  # captions follow the ping-pong order
    assert not np.array_equal(strip[0], strip[1])
    with pytest.raises(ValueError, match="captions"):
        prepare_frames(f, captions=["a", "b"])
    with pytest.raises(ValueError, match="either"):
        prepare_frames(f, upscale=2, size=(3, 3))
    with pytest.raises(ValueError, match="upscale must be a whole number"):
        prepare_frames(f, upscale=1.5)


def test_compose_grid():
    frames = np.arange(5 * 2 * 3, dtype=np.uint8).reshape(5, 2, 3)
    row = compose_grid(frames)
    assert row.shape == (2, 15)
    grid = compose_grid(frames, 2, gap=1, background=9)
    assert grid.shape == (3 * 2 + 2, 2 * 3 + 1)
    np.testing.assert_array_equal(grid[6:8, 0:3], frames[4])
    assert (grid[6:8, 4:] == 9).all()


# ---------------------------------------------------------------- writers
def test_gif_round_trip_is_lossless_for_grayscale(tmp_path):
    f = gray_frames(t=6)
    prepared = prepare_frames(f, pingpong=True, upscale=2)
    path = export_animation(f, tmp_path / "a.gif", fps=10, pingpong=True, upscale=2)
    props = iio.improps(path, index=None)
    assert props.n_images == 10 and props.shape[1:3] == (18, 14)
    decoded = iio.imread(path, index=None)
    decoded = decoded[..., 0] if decoded.ndim == 4 else decoded
    np.testing.assert_array_equal(decoded, prepared)
    with Image.open(path) as im:
        assert im.info.get("loop") == 0 and im.info.get("duration") == 100


def test_gif_without_loop_plays_once(tmp_path):
    path = export_animation(gray_frames(), tmp_path / "once.gif", loop=False)
    with Image.open(path) as im:
        assert "loop" not in im.info


def test_mp4_frame_count_size_and_even_padding(tmp_path):
    f = gray_frames(t=7, h=9, w=7)
    path = export_animation(f, tmp_path / "a.mp4", fps=12, upscale=3)  # 27×21: odd sides
    frames = iio.imread(path, index=None)
    assert frames.shape[:3] == (7, 28, 22)
    prepared = prepare_frames(f, upscale=3).astype(float)
    assert np.abs(frames[:, :27, :21, 0] - prepared).mean() < 12  # lossy but faithful


def test_webp_and_apng(tmp_path):
    f = gray_frames(t=4)
    prepared = prepare_frames(f, upscale=2, pingpong=True)
    webp = webp_frames(export_animation(f, tmp_path / "a.webp", upscale=2, pingpong=True))
    assert webp.shape == (6, 18, 14, 3)
    np.testing.assert_array_equal(webp[..., 0], prepared)  # lossless
    apng = iio.imread(export_animation(f, tmp_path / "a.apng", upscale=2, pingpong=True), index=None)
    assert apng.shape[:3] == (6, 18, 14)
    np.testing.assert_array_equal(apng if apng.ndim == 3 else apng[..., 0], prepared)


def test_png_strip_and_grid(tmp_path):
    f = gray_frames(t=5)
    strip = iio.imread(export_animation(f, tmp_path / "strip.png", upscale=2))
    np.testing.assert_array_equal(strip, compose_grid(prepare_frames(f, upscale=2)))
    assert strip.shape == (18, 5 * 14)
    grid = iio.imread(export_animation(f, tmp_path / "grid.png", grid_columns=2, gap=1))
    assert grid.shape == (3 * 9 + 2, 2 * 7 + 1)


def test_rgb_gif_close(tmp_path):
    rng = np.random.default_rng(1)
    f = rng.random((3, 3, 8, 8)).astype(np.float32)
    decoded = iio.imread(export_animation(f, tmp_path / "rgb.gif"), index=None)
    assert decoded.shape[:3] == (3, 8, 8)
    assert np.abs(decoded[..., :3].astype(float) - prepare_frames(f)).mean() < 40


def test_unknown_extension_and_atomic_write(tmp_path):
    with pytest.raises(ValueError, match=r"\.gif, \.mp4, \.webp, \.apng, \.png"):
        export_animation(gray_frames(), tmp_path / "a.avi")
    assert set(SUPPORTED_EXTENSIONS) == {".gif", ".mp4", ".webp", ".apng", ".png"}
    seen = []
    export_animation(gray_frames(t=4), tmp_path / "sub" / "p.gif", progress=lambda d, t: seen.append((d, t)))
    assert seen[-1][0] == seen[-1][1] and [d for d, _ in seen] == sorted(d for d, _ in seen)
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["p.gif"]  # no temp file left behind
    (tmp_path / "keep.gif").write_bytes(b"old")
    with pytest.raises(ValueError):
        export_animation(np.zeros((0, 4, 4)), tmp_path / "keep.gif")
    assert (tmp_path / "keep.gif").read_bytes() == b"old"
