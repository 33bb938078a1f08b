"""Datasets at full size: uint8 storage, the folder decode cache, dSprites."""
import dataclasses
import os

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import SHARED_DATA
from vae_core import TrainConfig, build_model, fit
from vae_core import dsprites
from vae_core.data import DatasetError, DatasetSplits, ImageDataset, load_dataset, to_unit_float
from vae_core.latent import encode_dataset
from vae_core.metrics import evaluate


# --------------------------------------------------------------------------- the pixel rule


def test_to_unit_float_is_value_over_255_for_bytes_in_numpy_and_torch():
    raw = np.arange(256, dtype=np.uint8).reshape(1, 1, 16, 16)
    expected = np.arange(256, dtype=np.float32).reshape(1, 1, 16, 16) / np.float32(255.0)
    from_numpy = to_unit_float(raw)
    from_torch = to_unit_float(torch.from_numpy(raw))
    assert from_numpy.dtype == np.float32 and from_torch.dtype == torch.float32
    assert np.array_equal(from_numpy, expected)            # bit for bit, not approximately
    assert np.array_equal(from_torch.numpy(), expected)
    assert from_numpy[0, 0, 15, 15] == 1.0 and from_numpy[0, 0, 0, 0] == 0.0
    floats = np.linspace(0, 1, 7, dtype=np.float32)
    assert to_unit_float(floats) is floats                  # float pixels are already in [0, 1]
    assert to_unit_float(floats.astype(np.float64)).dtype == np.float32


def test_image_dataset_batch_and_floats_follow_the_rule():
    raw = np.random.default_rng(0).integers(0, 256, (10, 1, 4, 4), dtype=np.uint8)
    data = ImageDataset(raw, None)
    assert np.array_equal(data.floats([3, 1]), raw[[3, 1]].astype(np.float32) / np.float32(255))
    batch = data.batch(slice(2, 5))
    assert batch.dtype == torch.float32 and batch.shape == (3, 1, 4, 4)
    assert np.array_equal(batch.numpy(), data.floats(slice(2, 5)))
    assert data.floats(4).shape == (1, 4, 4)


def _as_float_splits(splits: DatasetSplits) -> DatasetSplits:
    """The same data stored as float32, the way every dataset was stored before."""
    train = dataclasses.replace(splits.train, images=splits.train.floats())
    test = dataclasses.replace(splits.test, images=splits.test.floats())
    return dataclasses.replace(splits, train=train, test=test, _all=None)


@pytest.fixture(scope="module")
def small_shapes():
    data = load_dataset("shapes:16", seed=1)
    keep = lambda split, n: dataclasses.replace(split, images=split.images[:n], labels=split.labels[:n])  # noqa: E731
    return dataclasses.replace(data, train=keep(data.train, 300), test=keep(data.test, 100), _all=None,
                               factors=None)


def test_shapes_are_stored_as_bytes(small_shapes):
    assert small_shapes.train.images.dtype == np.uint8
    assert set(np.unique(small_shapes.train.images).tolist()) == {0, 255}


def test_training_on_bytes_equals_training_on_floats(small_shapes):
    floats = _as_float_splits(small_shapes)
    config = TrainConfig(epochs=1, batch_size=64, seed=3)
    weights = []
    for data in (small_shapes, floats):
        torch.manual_seed(0)
        model = build_model("mlp", image_shape=data.image_shape, latent_dim=3, hidden=(32,))
        fit(model, data, config)
        weights.append(model.state_dict())
    for name in weights[0]:
        assert torch.equal(weights[0][name], weights[1][name]), name


def test_evaluation_and_encoding_read_bytes_as_floats(small_shapes):
    floats = _as_float_splits(small_shapes)
    torch.manual_seed(0)
    model = build_model("mlp", image_shape=small_shapes.image_shape, latent_dim=3, hidden=(32,))
    a = evaluate(model, small_shapes.test, iwae_k=3)
    b = evaluate(model, floats.test, iwae_k=3)
    assert a == b
    mu_bytes, _ = encode_dataset(model, small_shapes.test.images)
    mu_floats, _ = encode_dataset(model, floats.test.images)
    assert np.array_equal(mu_bytes, mu_floats)


@pytest.mark.skipif(not (SHARED_DATA / "MNIST" / "raw").is_dir(), reason="MNIST is not in ../shared/data")
def test_mnist_is_stored_as_bytes_and_reads_as_the_old_floats():
    import torchvision

    data = load_dataset("mnist", data_root=SHARED_DATA)
    assert data.train.images.dtype == np.uint8 and data.train.images.nbytes == 60_000 * 784
    raw = torchvision.datasets.MNIST(str(SHARED_DATA), train=True, download=False).data.numpy()
    assert np.array_equal(data.train.images[:, 0], raw)
    # What load_dataset stored before (float32 value / 255), bit for bit.
    assert np.array_equal(data.train.floats(slice(0, 500)), raw[:500, None].astype(np.float32) / np.float32(255.0))
    binarized = load_dataset("mnist-binarized", data_root=SHARED_DATA)
    assert binarized.test.images.dtype == np.uint8
    assert set(np.unique(binarized.test.images).tolist()) == {0, 255}
    assert set(np.unique(binarized.test.floats()).tolist()) == {0.0, 1.0}


# --------------------------------------------------------------------------- folder cache


def _png(path, value, size=12, rgb=False):
    arr = np.full((size, size, 3) if rgb else (size, size), value, dtype=np.uint8)
    Image.fromarray(arr, "RGB" if rgb else "L").save(path)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv("LATENT_EXPLORER_CACHE", str(folder))
    return folder


@pytest.fixture
def picture_folder(tmp_path):
    root = tmp_path / "pictures"
    for cls, value in (("cats", 30), ("dogs", 220)):
        (root / cls).mkdir(parents=True)
        for i in range(6):
            _png(root / cls / f"{i}.png", value + i, rgb=cls == "dogs")
    # One coloured picture makes the folder RGB.
    Image.fromarray(np.dstack([np.full((12, 12), v, np.uint8) for v in (200, 40, 90)]), "RGB").save(
        root / "dogs" / "0.png")
    (root / "cats" / "broken.png").write_bytes(b"not a png at all")
    return root


def _is_memory_mapped(array: np.ndarray) -> bool:
    while array is not None:
        if isinstance(array, np.memmap):
            return True
        array = array.base if isinstance(array.base, np.ndarray) else None
    return False


def test_second_open_of_a_folder_is_memory_mapped_and_equal(cache, picture_folder):
    seen = []
    first = load_dataset(f"folder:{picture_folder}", image_size=8, test_fraction=0.25,
                         progress=lambda done, total: seen.append((done, total)))
    assert seen[-1] == (13, 13) and len(seen) == 13       # one report per file while decoding
    assert not _is_memory_mapped(first.all().images)
    assert len(list(cache.glob("*.images.npy"))) == 1
    seen.clear()
    second = load_dataset(f"folder:{picture_folder}", image_size=8, test_fraction=0.25,
                          progress=lambda done, total: seen.append((done, total)))
    assert seen == [(13, 13)]
    for a, b in ((first.all(), second.all()), (first.train, second.train), (first.test, second.test)):
        assert _is_memory_mapped(b.images)
        assert np.array_equal(a.images, b.images) and np.array_equal(a.labels, b.labels)
    # The splits are views of the one mapped array, and training reads it.
    assert np.shares_memory(second.all().images, second.train.images)
    assert (second.spec, second.options, second.class_names, second.skipped, second.likelihood, second.image_shape) == \
           (first.spec, first.options, first.class_names, first.skipped, first.likelihood, first.image_shape)
    assert second.skipped == 1 and second.image_shape == (3, 8, 8)
    model = build_model("mlp", image_shape=second.image_shape, latent_dim=2, hidden=(8,))
    fit(model, second, TrainConfig(epochs=1, batch_size=4))
    # Writing to the copy-on-write map never reaches the file.
    second.train.images[...] = 0
    again = load_dataset(f"folder:{picture_folder}", image_size=8, test_fraction=0.25)
    assert np.array_equal(again.all().images, first.all().images)


def test_other_options_get_their_own_cache_entry(cache, picture_folder):
    a = load_dataset(f"folder:{picture_folder}", image_size=8, channels=1, seed=0)
    b = load_dataset(f"folder:{picture_folder}", image_size=8, channels=1, seed=1)
    assert len(list(cache.glob("*.images.npy"))) == 2
    assert a.image_shape == b.image_shape == (1, 8, 8)
    again = load_dataset(f"folder:{picture_folder}", image_size=8, channels=1, seed=1)
    assert _is_memory_mapped(again.all().images) and np.array_equal(again.all().images, b.all().images)


def test_touching_adding_or_removing_a_file_invalidates_the_cache(cache, picture_folder):
    spec = f"folder:{picture_folder}"
    first = load_dataset(spec, image_size=8, test_fraction=0.25)
    target = picture_folder / "cats" / "0.png"
    _png(target, 90)                                          # new content, same size
    st = target.stat()
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    changed = load_dataset(spec, image_size=8, test_fraction=0.25)
    assert not _is_memory_mapped(changed.all().images)       # decoded again
    assert not np.array_equal(changed.all().images, first.all().images)
    assert len(list(cache.glob("*.images.npy"))) == 1        # the entry was replaced, not added to
    assert _is_memory_mapped(load_dataset(spec, image_size=8, test_fraction=0.25).all().images)

    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns + 9_000_000_000))   # touch only
    assert not _is_memory_mapped(load_dataset(spec, image_size=8, test_fraction=0.25).all().images)

    _png(picture_folder / "dogs" / "new.png", 128, rgb=True)
    added = load_dataset(spec, image_size=8, test_fraction=0.25)
    assert not _is_memory_mapped(added.all().images) and len(added.all()) == len(first.all()) + 1

    (picture_folder / "cats" / "broken.png").unlink()
    removed = load_dataset(spec, image_size=8, test_fraction=0.25)
    assert not _is_memory_mapped(removed.all().images) and removed.skipped == 0


def test_a_damaged_cache_entry_is_decoded_again(cache, picture_folder):
    spec = f"folder:{picture_folder}"
    first = load_dataset(spec, image_size=8)
    images_file = next(cache.glob("*.images.npy"))
    images_file.write_bytes(images_file.read_bytes()[:100])     # truncated
    again = load_dataset(spec, image_size=8)
    assert not _is_memory_mapped(again.all().images)
    assert np.array_equal(again.all().images, first.all().images)
    assert _is_memory_mapped(load_dataset(spec, image_size=8).all().images)


def test_cache_can_be_turned_off_and_an_unwritable_cache_costs_only_speed(tmp_path, monkeypatch, picture_folder):
    monkeypatch.setenv("LATENT_EXPLORER_CACHE", "off")
    load_dataset(f"folder:{picture_folder}", image_size=8)
    assert not _is_memory_mapped(load_dataset(f"folder:{picture_folder}", image_size=8).all().images)
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    monkeypatch.setenv("LATENT_EXPLORER_CACHE", str(blocker / "cache"))   # cannot be created
    data = load_dataset(f"folder:{picture_folder}", image_size=8)
    assert len(data.all()) == 12


def test_cache_folder_defaults_to_xdg(monkeypatch, tmp_path):
    from vae_core.data_cache import cache_dir

    monkeypatch.delenv("LATENT_EXPLORER_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cache_dir() == tmp_path / "latent-explorer" / "folders"


# --------------------------------------------------------------------------- dSprites


def test_dsprites_factor_grid_is_the_originals():
    assert dsprites.COUNT == 3 * 6 * 40 * 32 * 32 == 737_280
    everything = dsprites.factor_indices(np.arange(dsprites.COUNT))
    assert list(everything) == ["shape", "scale", "orientation", "pos_x", "pos_y"]
    assert [len(np.unique(v)) for v in everything.values()] == [3, 6, 40, 32, 32]
    # The original's order: shape varies slowest, pos_y fastest.
    assert [int(everything[n][1]) for n in everything] == [0, 0, 0, 0, 1]
    assert [int(everything[n][32]) for n in everything] == [0, 0, 0, 1, 0]
    assert [int(everything[n][-1]) for n in everything] == [2, 5, 39, 31, 31]
    assert np.array_equal(dsprites.grid_index(everything), np.arange(dsprites.COUNT))
    values = dsprites.FACTOR_VALUES
    assert np.allclose(values["scale"], [0.5, 0.6, 0.7, 0.8, 0.9, 1.0])
    assert values["orientation"][0] == 0 and np.isclose(values["orientation"][-1], 2 * np.pi)
    assert values["pos_x"][0] == 0 and values["pos_x"][-1] == 1 and len(values["pos_y"]) == 32


def test_dsprites_shifted_templates_equal_direct_rasterisation():
    indices = np.random.default_rng(0).choice(dsprites.COUNT, 300, replace=False)
    rendered = dsprites.render(indices)
    assert rendered.dtype == np.uint8 and rendered.shape == (300, 1, 64, 64)
    for k, i in enumerate(indices):
        assert np.array_equal(rendered[k, 0], dsprites.render_direct(int(i))), int(i)


def _image(shape=0, scale=5, orientation=0, pos_x=0, pos_y=0):
    index = dsprites.grid_index({"shape": [shape], "scale": [scale], "orientation": [orientation],
                                 "pos_x": [pos_x], "pos_y": [pos_y]})
    return dsprites.render(index)[0, 0] > 0


def test_dsprites_factors_mean_what_they_say():
    rows, cols = np.nonzero(_image(pos_x=0, pos_y=0))
    # A square at orientation 0 is centred on pixel 16; every position step is one pixel,
    # x to the right and y downwards.
    assert rows.mean() == cols.mean() == 16.0
    rows, cols = np.nonzero(_image(pos_x=31, pos_y=7))
    assert cols.mean() == 16 + 31 and rows.mean() == 16 + 7
    areas = [_image(scale=s).sum() for s in range(6)]
    assert all(a < b for a, b in zip(areas, areas[1:]))
    assert areas[-1] / areas[0] == pytest.approx(4.0, rel=0.15)    # area grows with scale²
    side = _image(scale=5).any(0).sum()
    assert side == 19          # 2 × 0.8 × 0.18 × 64 = 18.4 pixels wide: 19 pixel centres inside
    # Orientation 2π is orientation 0 (the original repeats it too); π/4 turns the square.
    assert np.array_equal(_image(orientation=0), _image(orientation=39))
    assert not np.array_equal(_image(orientation=0), _image(orientation=5))
    square, ellipse, heart = (_image(shape=s, pos_x=15, pos_y=15) for s in range(3))
    assert not np.array_equal(square, ellipse) and not np.array_equal(ellipse, heart)
    # Every shape at the largest scale and every orientation stays whole at the edges.
    corners = dsprites.grid_index({"shape": np.repeat([0, 1, 2], 80), "scale": np.full(240, 5),
                                   "orientation": np.tile(np.arange(40).repeat(2), 3),
                                   "pos_x": np.tile([0, 31], 120), "pos_y": np.tile([0, 31], 120)})
    border = dsprites.render(corners)[:, 0]
    assert not border[:, [0, -1], :].any() and not border[:, :, [0, -1]].any()


def test_dsprites_subset_is_seeded_and_carries_its_factors():
    a = load_dataset("dsprites:500", seed=2, test_fraction=0.2)
    assert a.spec == "dsprites:500" and a.image_shape == (1, 64, 64) and a.likelihood == "bernoulli"
    assert len(a.train) == 400 and len(a.test) == 100
    assert a.class_names == ("square", "ellipse", "heart")
    whole = a.all()
    assert whole.images.dtype == np.uint8
    assert list(a.factors) == ["shape", "scale", "orientation", "pos_x", "pos_y"]
    assert all(v.dtype == np.int64 and len(v) == 500 for v in a.factors.values())
    # The factors describe the images next to them.
    assert np.array_equal(dsprites.render(dsprites.grid_index(a.factors)), whole.images)
    assert np.array_equal(a.factors["shape"], whole.labels)
    assert len(np.unique(dsprites.grid_index(a.factors))) == 500
    b = load_dataset(a.spec, **a.options)
    assert np.array_equal(b.all().images, whole.images)
    c = load_dataset("dsprites:500", seed=3, test_fraction=0.2)
    assert not np.array_equal(dsprites.grid_index(c.factors), dsprites.grid_index(a.factors))


def test_dsprites_specs_are_checked():
    for bad in ("dsprites:0", "dsprites:800000", "dsprites:many"):
        with pytest.raises(DatasetError, match="dsprites"):
            load_dataset(bad)
    with pytest.raises(DatasetError, match="64×64"):
        load_dataset("dsprites:10", image_size=32)
    assert load_dataset("dsprites:1,000", test_fraction=0.1).spec == "dsprites:1000"


@pytest.mark.slow
def test_full_dsprites_spec_plans_the_whole_grid(monkeypatch):
    """The full spec asks the renderer for every grid point once (without rendering them)."""
    asked = {}

    def fake_render(indices, progress=None, out=None):
        asked["indices"] = np.asarray(indices)
        return np.zeros((len(indices), 1, 64, 64), dtype=np.uint8)

    monkeypatch.setattr(dsprites, "render", fake_render)
    data = load_dataset("dsprites", test_fraction=0.1)
    assert data.spec == "dsprites" and len(data.all()) == dsprites.COUNT
    assert np.array_equal(np.sort(asked["indices"]), np.arange(dsprites.COUNT))
    assert np.array_equal(dsprites.grid_index(data.factors), asked["indices"])
