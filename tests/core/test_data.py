import numpy as np
import pytest
from PIL import Image

import vae_core.data as data_mod
from vae_core.data import DATASET_SPECS, DatasetError, load_dataset, parse_spec

from pathlib import Path

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def test_digits_is_the_offline_default(digits):
    assert digits.spec == "digits"
    assert digits.image_shape == (1, 8, 8)
    assert len(digits.train) + len(digits.test) == 1797
    assert digits.train.images.dtype == np.float32 and digits.train.images.flags.c_contiguous
    assert 0.0 <= digits.train.images.min() and digits.train.images.max() <= 1.0
    assert digits.class_names == tuple(str(i) for i in range(10))
    assert set(np.unique(digits.test.labels)) == set(range(10))  # stratified split
    all_ = digits.all()
    assert len(all_) == 1797
    assert np.array_equal(all_.images[: len(digits.train)], digits.train.images)


def test_digits_split_is_deterministic_by_seed():
    a, b, c = load_dataset("digits"), load_dataset("digits"), load_dataset("digits", seed=1)
    assert np.array_equal(a.test.images, b.test.images)
    assert not np.array_equal(a.test.images, c.test.images)
    rebuilt = load_dataset(a.spec, **a.options)
    assert np.array_equal(rebuilt.train.labels, a.train.labels)


@pytest.fixture
def small_shapes(monkeypatch):
    monkeypatch.setattr(data_mod, "SHAPES_COUNT", 400)


def test_shapes_are_deterministic_with_aligned_factors(small_shapes):
    a = load_dataset("shapes:32", seed=3)
    b = load_dataset("shapes:32", seed=3)
    c = load_dataset("shapes:32", seed=4)
    assert a.image_shape == (1, 32, 32)
    assert np.array_equal(a.train.images, b.train.images)
    assert not np.array_equal(a.train.images, c.train.images)
    assert a.class_names == ("square", "ellipse", "heart", "triangle")
    n = len(a.train) + len(a.test)
    assert set(a.factors) >= {"shape", "scale", "rotation", "x", "y"}
    assert all(len(v) == n for v in a.factors.values())
    assert np.array_equal(a.factors["shape"], a.all().labels)
    assert set(np.unique(a.all().labels)) == {0, 1, 2, 3}
    # Every image actually contains a shape.
    assert (a.all().floats().reshape(n, -1).max(1) > 0.5).all()
    big = load_dataset("shapes", seed=3)
    assert big.image_shape == (1, 64, 64)


def _write_png(path, value, size=(12, 10), mode="L"):
    arr = np.full((size[1], size[0]) + ((3,) if mode == "RGB" else ()), value, dtype=np.uint8)
    Image.fromarray(arr, mode).save(path)


def test_folder_with_classes_skips_corrupt_files(tmp_path):
    for cls, value in (("cats", 30), ("dogs", 220)):
        (tmp_path / cls).mkdir()
        for i in range(5):
            _write_png(tmp_path / cls / f"{i}.png", value)
    (tmp_path / "cats" / "broken.png").write_bytes(np.random.default_rng(0).bytes(300))
    (tmp_path / "dogs" / "notes.txt").write_text("not an image")
    data = load_dataset(f"folder:{tmp_path}", image_size=16, test_fraction=0.2)
    assert data.class_names == ("cats", "dogs")
    assert data.image_shape == (1, 16, 16)  # all grey → one channel
    assert data.skipped == 2
    everything = data.all()
    assert len(everything) == 10
    assert everything.images.dtype == np.uint8
    assert (everything.images[everything.labels == 0] == 30).all()
    assert np.allclose(everything.floats(everything.labels == 0), 30 / 255, atol=1e-6)
    assert data.spec == f"folder:{tmp_path.resolve()}"


def test_flat_folder_is_unlabelled_and_rgb_when_coloured(tmp_path):
    for i in range(4):
        arr = np.zeros((8, 8, 3), np.uint8)
        arr[..., 0] = 50 * i
        arr[..., 2] = 200
        Image.fromarray(arr, "RGB").save(tmp_path / f"{i}.jpg" if i % 2 else tmp_path / f"{i}.png")
    data = load_dataset(f"folder:{tmp_path}", image_size=8, test_fraction=0.25)
    assert data.train.labels is None and data.class_names == ()
    assert data.image_shape == (3, 8, 8)
    assert data.likelihood == "gaussian"


def test_empty_and_missing_folders_are_clear_errors(tmp_path):
    with pytest.raises(DatasetError, match="no files"):
        load_dataset(f"folder:{tmp_path}")
    (tmp_path / "junk.png").write_bytes(b"garbage")
    with pytest.raises(DatasetError, match="could be read"):
        load_dataset(f"folder:{tmp_path}")
    with pytest.raises(DatasetError, match="does not exist"):
        load_dataset(f"folder:{tmp_path / 'nope'}")


@pytest.mark.parametrize("shape,channels", [((20, 6, 6), 1), ((20, 1, 6, 6), 1), ((20, 6, 6, 3), 3), ((20, 3, 6, 6), 3)])
def test_npz_layouts(tmp_path, shape, channels):
    x = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    y = np.arange(20) % 2
    np.savez(tmp_path / "d.npz", x=x, y=y)
    data = load_dataset(f"npz:{tmp_path / 'd.npz'}", test_fraction=0.25)
    assert data.image_shape == (channels, 6, 6)
    assert len(data.train) == 15 and len(data.test) == 5
    assert data.all().images.dtype == np.uint8       # 8-bit data stays bytes
    assert sorted(data.all().images.reshape(-1).tolist()) == sorted(x.reshape(-1).tolist())
    assert data.num_classes == 2


def test_bad_npz_files_are_clear_errors(tmp_path):
    np.savez(tmp_path / "noX.npz", images=np.zeros((3, 4, 4)))
    with pytest.raises(DatasetError, match="'x'"):
        load_dataset(f"npz:{tmp_path / 'noX.npz'}")
    np.savez(tmp_path / "flat.npz", x=np.zeros((3, 16)))
    with pytest.raises(DatasetError):
        load_dataset(f"npz:{tmp_path / 'flat.npz'}")
    np.savez(tmp_path / "mismatch.npz", x=np.zeros((3, 4, 4)), y=np.zeros(5))
    with pytest.raises(DatasetError):
        load_dataset(f"npz:{tmp_path / 'mismatch.npz'}")
    np.savez(tmp_path / "obj.npz", x=np.array([object()], dtype=object))
    with pytest.raises(DatasetError):
        load_dataset(f"npz:{tmp_path / 'obj.npz'}")


def test_unknown_spec_lists_the_valid_ones():
    with pytest.raises(DatasetError) as info:
        load_dataset("imagenet")
    for name, _ in DATASET_SPECS[:5]:
        assert name in str(info.value)
    assert parse_spec("folder:/tmp/x") == ("folder", "/tmp/x")


def test_missing_torchvision_data_offline_is_a_clear_error(tmp_path, monkeypatch):
    import urllib.error

    import torchvision.datasets as tvd

    def offline(self):
        raise urllib.error.URLError("no network")

    # Hermetic: never reach the network, even on a machine that has one.
    monkeypatch.setattr(tvd.KMNIST, "download", offline)
    with pytest.raises(DatasetError) as info:
        load_dataset("kmnist", tmp_path)
    message = str(info.value)
    assert "could not be downloaded" in message and "--data-root" in message
    assert str(tmp_path / "KMNIST" / "raw") in message
    assert "URLError" not in message and "\n" not in message


@pytest.mark.skipif(not (SHARED_DATA / "MNIST" / "raw").exists(), reason="MNIST not present in ../shared/data")
def test_mnist_from_the_shared_folder():
    data = load_dataset("mnist", SHARED_DATA)
    assert data.image_shape == (1, 28, 28)
    assert len(data.train) == 60_000 and len(data.test) == 10_000
    assert data.num_classes == 10 and data.likelihood == "bernoulli"
    fashion = load_dataset("fashion-mnist", SHARED_DATA)
    assert "Sneaker" in fashion.class_names


def test_all_is_free_for_loaded_data_and_fresh_for_replaced_splits(digits):
    from dataclasses import replace

    whole = digits.all()
    assert whole is digits.all()  # no copy: the splits are views of it
    assert np.shares_memory(whole.images, digits.train.images)
    assert digits.train.images.flags.c_contiguous and digits.test.images.flags.c_contiguous
    zeroed = replace(digits, train=replace(digits.train, images=np.zeros_like(digits.train.images)))
    assert zeroed.all().images[: len(digits.train)].max() == 0
    assert whole.images[: len(digits.train)].max() > 0
