"""Datasets for the VAE engine: one loader, many sources, one in-memory format.

Every source ends up as ``N×C×H×W`` pixel arrays (plus int64 labels or ``None``), split
into train and test, inside a :class:`DatasetSplits`. Pixels are stored as ``uint8``
whenever the source is 8-bit (a 200,000-image 64×64 RGB folder takes 2.4 GB instead of
9.8 GB as float32) and as float32 in ``[0, 1]`` otherwise; :func:`to_unit_float` is the
one rule that turns stored pixels into float32 ``[0, 1]`` (``uint8`` → ``value / 255``,
any other type as it is), and every consumer goes through it, mostly by
:meth:`ImageDataset.batch` (a torch batch) or :meth:`ImageDataset.floats` (NumPy). A dataset
is named by a short *spec* string so checkpoints and the CLI can rebuild it:

=================  ==========================================================
``digits``         scikit-learn's bundled 8×8 digits (offline default)
``mnist``          MNIST via torchvision (official train/test split)
``mnist-binarized`` MNIST for likelihood benchmarks: training images binarized anew each
                   epoch (pixel ~ Bernoulli(intensity)), test images binarized once
``fashion-mnist``  Fashion-MNIST via torchvision
``kmnist``         Kuzushiji-MNIST via torchvision
``cifar10``        CIFAR-10 via torchvision (RGB 32×32)
``folder:PATH``    a folder of your images, one subfolder per class or flat
``npz:PATH``       a NumPy ``.npz`` holding ``x`` and optionally ``y``
``shapes``         procedural dSprites-like shapes with known factors, 64×64
``shapes:32``      the same at 32×32
``dsprites``       dSprites rendered procedurally: its full factor grid, 737,280 binary
                   64×64 images with ground-truth factors (:mod:`vae_core.dsprites`)
``dsprites:N``     a seeded random subset of N dSprites images with their factors
=================  ==========================================================

A folder is decoded once into a cache file that later opens memory-map
(:mod:`vae_core.data_cache`).

``load_dataset(splits.spec, **splits.options)`` rebuilds the same data.
"""
from __future__ import annotations

import os
import socket
from collections.abc import Callable
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vae_core import data_cache, dsprites
from vae_core.dsprites import shape_mask
from vae_core.errors import DatasetError
from vae_core.resources import check_memory

__all__ = [
    "DATASET_SPECS",
    "DatasetError",
    "DatasetSplits",
    "ImageDataset",
    "load_dataset",
    "parse_spec",
    "to_unit_float",
]

ProgressCallback = Callable[[int, int], None]

DATASET_SPECS: list[tuple[str, str]] = [
    ("digits", "Handwritten digits, 8×8 grayscale, 1,797 images (bundled, works offline)"),
    ("mnist", "MNIST handwritten digits, 28×28 grayscale, 70,000 images"),
    ("mnist-binarized", "MNIST binarized for log-likelihood comparisons (train re-sampled every epoch)"),
    ("fashion-mnist", "Fashion-MNIST clothing photos, 28×28 grayscale, 70,000 images"),
    ("kmnist", "Kuzushiji-MNIST cursive Japanese characters, 28×28 grayscale, 70,000 images"),
    ("cifar10", "CIFAR-10 small colour photos, 32×32 RGB, 60,000 images"),
    ("shapes", "Procedural shapes with known factors (dSprites-like), 64×64, 12,000 images"),
    ("shapes:32", "Procedural shapes with known factors (dSprites-like), 32×32, 12,000 images"),
    ("dsprites", "dSprites: 3 shapes × 6 scales × 40 orientations × 32 × 32 positions, 64×64, 737,280 images"),
    ("dsprites:100000", "A seeded random subset of dSprites (any size N as dsprites:N), with its factors"),
    ("folder:PATH", "Your own images: one subfolder per class, or a flat folder (unlabeled)"),
    ("npz:PATH", "A NumPy .npz file with images 'x' and optional labels 'y'"),
]

# Shapes are cheap to generate, so the count is a module constant rather than an
# argument: load_dataset keeps one signature for every source (tests shrink it).
SHAPES_COUNT = 12_000
SHAPES_DEFAULT_SIZE = 64
FOLDER_DEFAULT_SIZE = 64

_KINDS = ("digits", "mnist", "mnist-binarized", "fashion-mnist", "kmnist", "cifar10", "folder", "npz", "shapes",
          "dsprites")
_ALIASES = {
    "fashion_mnist": "fashion-mnist",
    "fashionmnist": "fashion-mnist",
    "cifar-10": "cifar10",
    "cifar_10": "cifar10",
    "dir": "folder",
}
_NEEDS_ARG = ("folder", "npz")


def to_unit_float(pixels):
    """Stored pixels as float32 in ``[0, 1]``: the one rule for every dataset array.

    ``uint8`` pixels are ``value / 255`` (a true float32 division, so NumPy and torch give
    the same bits and MNIST's floats equal what they were when datasets were stored as
    float32); pixels of any other type already lie in ``[0, 1]`` and are only cast.

    Parameters
    ----------
    pixels : np.ndarray or torch.Tensor
        Any shape (a batch, one image, a slice of a memory-mapped array).

    Returns
    -------
    np.ndarray or torch.Tensor
        float32, of the same kind and shape (on the tensor's device). A float32 input is
        returned as it is, not copied.
    """
    if isinstance(pixels, np.ndarray):
        if pixels.dtype == np.uint8:
            out = pixels.astype(np.float32)
            out /= np.float32(255.0)
            return out
        return pixels if pixels.dtype == np.float32 else pixels.astype(np.float32)
    import torch

    if isinstance(pixels, torch.Tensor):
        if pixels.dtype == torch.uint8:
            return pixels.to(torch.float32).div_(255.0)
        return pixels.to(torch.float32)
    return to_unit_float(np.asarray(pixels))


@dataclass(frozen=True, eq=False, repr=False)
class ImageDataset:
    """Images and optional labels held in memory (or memory-mapped from a cache file).

    Attributes
    ----------
    images : np.ndarray
        ``N×C×H×W`` stored pixels: ``uint8`` (read as ``value / 255``) for 8-bit sources,
        float32 in ``[0, 1]`` for the others (digits' 17 grey levels, float npz files).
        Read them through :meth:`batch` or :meth:`floats` (or :func:`to_unit_float`),
        never by dividing by hand. May be a copy-on-write ``np.memmap``.
    labels : np.ndarray or None
        int64 array of length ``N``, or ``None`` when the data is unlabeled.
    binarize : bool
        The images are intensities to binarize while training: every epoch draws each
        pixel from Bernoulli(intensity) anew (dynamic binarization, as in the IWAE
        paper's MNIST protocol), seeded by :func:`vae_core.training.binarization_seed`.
    """

    images: np.ndarray
    labels: np.ndarray | None
    binarize: bool = False

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __repr__(self) -> str:
        labeled = "labeled" if self.labels is not None else "unlabeled"
        return (f"ImageDataset(n={len(self)}, image_shape={tuple(self.images.shape[1:])}, "
                f"dtype={self.images.dtype}, {labeled})")

    def floats(self, index=slice(None)) -> np.ndarray:
        """The images at ``index`` (an int, slice or index array) as float32 in ``[0, 1]``.

        Only the selected images are converted, so this is cheap for a batch or a
        thumbnail and costs ``4 × N × C × H × W`` bytes for everything.
        """
        return to_unit_float(self.images[index])

    def batch(self, index=slice(None), device=None):
        """The images at ``index`` as a float32 torch tensor in ``[0, 1]``, on ``device``.

        The stored pixels travel to the device first and are converted there (a quarter
        of the bytes for ``uint8``). A read-only buffer (a memory map) is copied, which
        torch requires.
        """
        import torch

        chunk = self.images[index]
        if isinstance(chunk, np.ndarray) and not chunk.flags.writeable:
            chunk = chunk.copy()
        tensor = torch.as_tensor(chunk)
        if device is not None:
            tensor = tensor.to(device)
        return to_unit_float(tensor)


@dataclass(frozen=True, eq=False, repr=False)
class DatasetSplits:
    """A loaded dataset: train and test splits plus what is needed to rebuild it.

    Attributes
    ----------
    spec : str
        Canonical spec (lower-case kind, absolute paths).
    options : dict
        Keyword arguments for :func:`load_dataset` that rebuild identical data:
        ``image_size``, ``channels``, ``seed`` and ``test_fraction``.
    train, test : ImageDataset
        The two splits.
    image_shape : tuple of int
        ``(C, H, W)``.
    class_names : tuple of str
        Human-readable class names indexed by label; ``()`` when unlabeled.
    likelihood : str
        Suggested decoder likelihood, ``"bernoulli"`` or ``"gaussian"``.
    skipped : int
        Files in a ``folder:`` source that were not used (unreadable, not images,
        or loose files beside class subfolders).
    factors : dict of str to np.ndarray or None
        Ground-truth generative factors, aligned with :meth:`all` (one entry per image,
        train then test); ``None`` for data without known factors. ``shapes``: ``shape``
        (int, 4 classes) and the continuous ``scale``, ``rotation``, ``x``, ``y`` (float32).
        ``dsprites``: the int64 *indices* into its grid, ``shape`` (3 values), ``scale`` (6),
        ``orientation`` (40), ``pos_x`` (32), ``pos_y`` (32); their values are in
        :data:`vae_core.dsprites.FACTOR_VALUES`.
    """

    spec: str
    options: dict
    train: ImageDataset
    test: ImageDataset
    image_shape: tuple[int, int, int]
    class_names: tuple[str, ...]
    likelihood: str
    skipped: int = 0
    factors: dict[str, np.ndarray] | None = None
    _all: ImageDataset | None = field(default=None, repr=False, compare=False)

    def all(self) -> ImageDataset:
        """Return train then test together.

        Returns
        -------
        ImageDataset
            ``len(train) + len(test)`` images in train-then-test order, the order
            that :attr:`factors` follows. Loaded datasets keep their splits as views
            of this array, so it comes without a copy; splits replaced afterwards
            (``dataclasses.replace``) are concatenated anew.
        """
        whole = self._all
        if whole is not None and _views_of(whole, self.train, self.test):
            return whole
        images = np.concatenate([self.train.images, self.test.images], axis=0)
        if self.train.labels is None or self.test.labels is None:
            return ImageDataset(images, None)
        return ImageDataset(images, np.concatenate([self.train.labels, self.test.labels]))

    @property
    def num_classes(self) -> int:
        """Number of classes (0 when unlabeled)."""
        return len(self.class_names)

    def __repr__(self) -> str:
        return (
            f"DatasetSplits(spec={self.spec!r}, train={len(self.train)}, test={len(self.test)}, "
            f"image_shape={self.image_shape}, num_classes={self.num_classes}, "
            f"likelihood={self.likelihood!r}, skipped={self.skipped})"
        )


def _views_of(whole: ImageDataset, train: ImageDataset, test: ImageDataset) -> bool:
    n = len(train)
    return (_rows_of(train.images, whole.images, 0) and _rows_of(test.images, whole.images, n)
            and n + len(test) == len(whole)
            and (whole.labels is None) == (train.labels is None) == (test.labels is None)
            and (whole.labels is None or (_rows_of(train.labels, whole.labels, 0)
                                          and _rows_of(test.labels, whole.labels, n))))


def _rows_of(part: np.ndarray, whole: np.ndarray, start: int) -> bool:
    """Whether ``part`` is the very memory of ``whole[start:start + len(part)]``.

    Compared by address rather than by ``.base``, which NumPy points at the owner of the
    memory: a memory map's views and views of views would otherwise not be recognised.
    """
    return (isinstance(part, np.ndarray) and isinstance(whole, np.ndarray) and part.dtype == whole.dtype
            and part.shape[1:] == whole.shape[1:] and part.strides == whole.strides
            and start + len(part) <= len(whole)
            and part.__array_interface__["data"][0] == whole.__array_interface__["data"][0] + start * whole.strides[0])


# --------------------------------------------------------------------------- specs


def _valid_specs_text() -> str:
    return ", ".join(name for name, _ in DATASET_SPECS)


def parse_spec(spec: str) -> tuple[str, str | None]:
    """Split a dataset spec into its kind and argument.

    Parameters
    ----------
    spec : str
        For example ``"digits"``, ``"shapes:32"`` or ``"folder:/data/cats"``. Only the
        first colon separates, so Windows paths such as ``folder:C:\\pics`` work.

    Returns
    -------
    kind : str
        One of ``digits``, ``mnist``, ``fashion-mnist``, ``kmnist``, ``cifar10``,
        ``folder``, ``npz``, ``shapes``.
    arg : str or None
        The text after the colon, or ``None`` when there is none.

    Raises
    ------
    DatasetError
        If the kind is unknown or a required argument is missing or unexpected.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise DatasetError(f"No dataset was given; valid specs are {_valid_specs_text()}.")
    head, sep, tail = spec.strip().partition(":")
    kind = _ALIASES.get(head.strip().lower(), head.strip().lower())
    arg = tail.strip() if sep else None
    if kind not in _KINDS:
        if os.path.isdir(os.path.expanduser(spec)):
            raise DatasetError(f"Unknown dataset {spec!r}: to use a folder of images write folder:{spec}.")
        if spec.lower().endswith(".npz"):
            raise DatasetError(f"Unknown dataset {spec!r}: to use a NumPy file write npz:{spec}.")
        raise DatasetError(f"Unknown dataset {spec!r}; valid specs are {_valid_specs_text()}.")
    if kind in _NEEDS_ARG and not arg:
        raise DatasetError(f"The {kind} dataset needs a path, as in {kind}:PATH.")
    if kind not in _NEEDS_ARG and kind not in ("shapes", "dsprites") and arg:
        raise DatasetError(f"The {kind} dataset takes no argument, but {spec!r} was given.")
    return kind, arg or None


def _default_data_root() -> Path:
    env = os.environ.get("LATENT_EXPLORER_DATA")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "latent-explorer" / "data"


# --------------------------------------------------------------------------- public entry


def load_dataset(
    spec: str,
    data_root: str | os.PathLike | None = None,
    *,
    image_size: int | None = None,
    channels: int | None = None,
    seed: int = 0,
    test_fraction: float = 0.15,
    progress: ProgressCallback | None = None,
) -> DatasetSplits:
    """Load a dataset by spec into memory, split into train and test.

    Parameters
    ----------
    spec : str
        Which data; see :data:`DATASET_SPECS` (``digits``, ``mnist``, ``fashion-mnist``,
        ``kmnist``, ``cifar10``, ``folder:PATH``, ``npz:PATH``, ``shapes``, ``shapes:32``).
    data_root : str or path-like, optional
        Where torchvision datasets live (and get downloaded to). Defaults to
        ``$LATENT_EXPLORER_DATA`` or ``~/.cache/latent-explorer/data``. Unused by the
        other sources; ``folder:``/``npz:`` paths are relative to the working directory.
    image_size : int, optional
        Square side length. ``None`` keeps the native size (8 for digits, 28 for the
        MNIST family, 32 for CIFAR-10, the array size for npz), uses 64 for folders and
        64 for ``shapes`` (unless the spec says ``shapes:32``). Built-in datasets are
        resampled when a different size is asked for; non-square images are
        centre-cropped first.
    channels : {None, 1, 3}, optional
        ``None`` keeps the source's channels; folders become 1 channel when every image
        is grayscale and 3 otherwise. 3→1 uses ITU-R 601 luminance; 1→3 repeats.
    seed : int
        Seeds the train/test split of sources without an official one and the
        ``shapes`` generator.
    test_fraction : float
        Fraction of images held out for test, in ``[0, 1)``; the split is stratified by
        class when there are labels. Ignored by sources with an official split
        (mnist, fashion-mnist, kmnist, cifar10).
    progress : callable, optional
        Called as ``progress(done, total)`` while loading; an exception raised from it
        propagates, which a caller may use to cancel.

    Returns
    -------
    DatasetSplits
        With a canonical ``spec`` and ``options`` such that
        ``load_dataset(splits.spec, **splits.options)`` rebuilds the same data.

    Raises
    ------
    DatasetError
        For an unknown spec, missing data that cannot be downloaded, an empty or
        missing folder, a malformed npz file or invalid options. The message is one
        human-readable sentence.
    """
    kind, arg = parse_spec(spec)
    image_size = _check_image_size(image_size)
    if channels not in (None, 1, 3):
        raise DatasetError(f"channels must be 1 or 3, not {channels!r}.")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise DatasetError(f"seed must be an integer, not {seed!r}.")
    seed = int(seed)
    try:
        test_fraction = float(test_fraction)
    except (TypeError, ValueError):
        raise DatasetError(f"test_fraction must be a number, not {test_fraction!r}.") from None
    if not 0.0 <= test_fraction < 1.0:
        raise DatasetError(f"test_fraction must be at least 0 and below 1, not {test_fraction}.")

    common = dict(image_size=image_size, channels=channels, seed=seed, test_fraction=test_fraction,
                  progress=progress)
    if kind == "digits":
        return _load_digits(**common)
    if kind in _TORCHVISION:
        root = Path(data_root).expanduser() if data_root is not None else _default_data_root()
        return _load_torchvision(kind, root, **common)
    if kind == "mnist-binarized":
        root = Path(data_root).expanduser() if data_root is not None else _default_data_root()
        return _load_mnist_binarized(root, **common)
    if kind == "folder":
        return _load_folder(arg, **common)
    if kind == "npz":
        return _load_npz(arg, **common)
    if kind == "dsprites":
        return _load_dsprites(arg, **common)
    return _load_shapes(arg, **common)


def _check_image_size(image_size) -> int | None:
    if image_size is None:
        return None
    if isinstance(image_size, bool) or not isinstance(image_size, (int, np.integer)):
        raise DatasetError(f"image_size must be a whole number of pixels, not {image_size!r}.")
    if not 4 <= int(image_size) <= 1024:
        raise DatasetError(f"image_size must be between 4 and 1024 pixels, not {image_size}.")
    return int(image_size)


# --------------------------------------------------------------------------- shared helpers


def _split_indices(n: int, labels: np.ndarray | None, test_fraction: float,
                   seed) -> tuple[np.ndarray, np.ndarray]:
    """Seeded train/test index split, stratified by label when there are labels.

    ``seed`` is anything ``np.random.default_rng`` accepts (int or SeedSequence).
    """
    if test_fraction > 0 and n < 2:
        raise DatasetError(f"The dataset has only {n} image{'s' if n != 1 else ''}: at least 2 are needed to hold "
                           "one out for testing: add images to the dataset.")
    rng = np.random.default_rng(seed)
    n_test = int(round(test_fraction * n))
    if test_fraction > 0 and n >= 2:
        # A tiny folder should still get a test image, and never lose its last train one.
        n_test = min(max(n_test, 1), n - 1)
    if labels is None:
        order = rng.permutation(n)
        return order[n_test:], order[:n_test]
    classes, counts = np.unique(labels, return_counts=True)
    # Largest-remainder allocation keeps the test size exact while each class gets
    # its proportional share.
    exact = counts * (n_test / n)
    quota = np.floor(exact).astype(np.int64)
    extra = n_test - int(quota.sum())
    if extra > 0:
        quota[np.argsort(-(exact - quota), kind="stable")[:extra]] += 1
    train_parts, test_parts = [], []
    for cls, q in zip(classes, quota):
        members = rng.permutation(np.flatnonzero(labels == cls))
        test_parts.append(members[:q])
        train_parts.append(members[q:])
    # Shuffle across classes so the first images of a split show every class.
    train = rng.permutation(np.concatenate(train_parts))
    test = rng.permutation(np.concatenate(test_parts))
    return train, test


def _quantise(images: np.ndarray) -> np.ndarray:
    """Float pixels in [0, 1] → ``uint8`` (``x · 255`` rounded half up), for 8-bit sources
    that were resampled or converted in float and are stored as bytes again."""
    scaled = images * np.float32(255.0)
    scaled += np.float32(0.5)
    np.floor(scaled, out=scaled)
    return np.clip(scaled, 0, 255, out=scaled).astype(np.uint8)


def _luminance(images: np.ndarray) -> np.ndarray:
    """N×3×H×W → N×1×H×W with ITU-R 601 weights (what PIL's ``convert('L')`` uses).

    ``uint8`` in, ``uint8`` out (rounded half up, as PIL does), in chunks so that a large
    folder never holds a float copy of itself.
    """
    weights = np.array([0.299, 0.587, 0.114], dtype=np.float32).reshape(1, 3, 1, 1)
    if images.dtype != np.uint8:
        grey = (images * weights).sum(axis=1, keepdims=True, dtype=np.float32)
        # The float32 weights sum to a hair over 1, which would let white exceed 1.0.
        return np.clip(grey, 0.0, 1.0, out=grey)
    out = np.empty((len(images), 1, *images.shape[2:]), dtype=np.uint8)
    for start in range(0, len(images), 4096):
        chunk = images[start:start + 4096].astype(np.float32)
        grey = (chunk * weights).sum(axis=1, keepdims=True, dtype=np.float32)
        grey += np.float32(0.5)
        out[start:start + 4096] = np.clip(np.floor(grey), 0, 255)
    return out


def _set_channels(images: np.ndarray, channels: int | None) -> np.ndarray:
    have = images.shape[1]
    if channels is None or channels == have:
        return images
    if channels == 1:
        return _luminance(images)
    return np.repeat(images, 3, axis=1)


def _resize(images: np.ndarray, size: int) -> np.ndarray:
    """Centre-crop to square and resample N×C×H×W images to ``size``×``size``.

    The result keeps the input's type: ``uint8`` images are resampled in float and
    rounded back to bytes.
    """
    n, _, h, w = images.shape
    if h == w == size:
        return images
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    images = images[:, :, top:top + side, left:left + side]
    if side == size:
        return images
    byte_images = images.dtype == np.uint8
    check_memory((1.0 if byte_images else 4.0) * n * images.shape[1] * size * size,
                 f"Resizing {n:,} images to {size}×{size} pixels", "use a smaller image size")
    import torch
    import torch.nn.functional as F

    out = np.empty((n, images.shape[1], size, size), dtype=np.uint8 if byte_images else np.float32)
    # Chunked so that resizing 70k images does not hold a second full float copy.
    for start in range(0, n, 4096):
        chunk = torch.from_numpy(np.ascontiguousarray(to_unit_float(images[start:start + 4096])))
        resized = F.interpolate(chunk, size=(size, size), mode="bilinear", align_corners=False,
                                antialias=size < side).clamp_(0.0, 1.0).numpy()
        out[start:start + 4096] = _quantise(resized) if byte_images else resized
    return out


def _build(spec: str, images: np.ndarray, labels: np.ndarray | None, *, train_idx=None,
           test_idx=None, class_names=(), likelihood: str, options: dict, skipped: int = 0,
           factors: dict[str, np.ndarray] | None = None) -> DatasetSplits:
    """Assemble a DatasetSplits from all images and the split indices.

    The images are stored once, in train-then-test order; the splits are views of that
    array, so :meth:`DatasetSplits.all` costs nothing (the app asks for it on its GUI
    thread) and the data takes no extra memory.
    """
    order = np.concatenate([train_idx, test_idx])
    n_train = len(train_idx)
    if np.array_equal(order, np.arange(len(images))):
        ordered = np.ascontiguousarray(images)
        ordered_labels = labels
    else:
        ordered = np.ascontiguousarray(images[order])
        ordered_labels = None if labels is None else labels[order]
    if ordered_labels is not None:
        ordered_labels = np.ascontiguousarray(ordered_labels, dtype=np.int64)
    everything = ImageDataset(ordered, ordered_labels)
    train = ImageDataset(ordered[:n_train], None if ordered_labels is None else ordered_labels[:n_train])
    test = ImageDataset(ordered[n_train:], None if ordered_labels is None else ordered_labels[n_train:])
    if factors is not None:
        factors = {name: np.ascontiguousarray(values[order]) for name, values in factors.items()}
    return DatasetSplits(
        spec=spec,
        options=options,
        train=train,
        test=test,
        image_shape=tuple(int(s) for s in images.shape[1:]),
        class_names=tuple(class_names) if labels is not None else (),
        likelihood=likelihood,
        skipped=int(skipped),
        factors=factors,
        _all=everything,
    )


def _options(image_size, channels, seed, test_fraction) -> dict:
    return {"image_size": image_size, "channels": channels, "seed": seed,
            "test_fraction": test_fraction}


def _report(progress: ProgressCallback | None, done: int, total: int) -> None:
    if progress is not None:
        progress(done, total)


# --------------------------------------------------------------------------- digits


def _load_digits(*, image_size, channels, seed, test_fraction, progress) -> DatasetSplits:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    # Pixel values are counts 0..16 of a 4×4 block of the original 32×32 bitmap.
    images = (bunch.images.astype(np.float32) / 16.0)[:, None, :, :]
    labels = bunch.target.astype(np.int64)
    size = image_size or images.shape[-1]
    images = _set_channels(_resize(images, size), channels)
    train_idx, test_idx = _split_indices(len(images), labels, test_fraction, seed)
    _report(progress, 1, 1)
    return _build("digits", images, labels, train_idx=train_idx, test_idx=test_idx,
                  class_names=[str(i) for i in range(10)], likelihood="bernoulli",
                  options=_options(size, images.shape[1], seed, test_fraction))


# --------------------------------------------------------------------------- torchvision

# kind -> (torchvision class, display name, where the files go under data_root, likelihood)
_TORCHVISION = {
    "mnist": ("MNIST", "MNIST", "MNIST/raw", "bernoulli"),
    "fashion-mnist": ("FashionMNIST", "Fashion-MNIST", "FashionMNIST/raw", "bernoulli"),
    "kmnist": ("KMNIST", "Kuzushiji-MNIST", "KMNIST/raw", "bernoulli"),
    "cifar10": ("CIFAR10", "CIFAR-10", "cifar-10-batches-py", "gaussian"),
}

# urllib has no timeout by default, so a firewall that drops packets would hang an
# "offline" download for minutes instead of failing.
_DOWNLOAD_SOCKET_TIMEOUT = 30.0


def _open_torchvision(cls, root: Path, name: str, where: str):
    """Instantiate both splits, downloading only when they are not already on disk."""
    try:
        return cls(root=str(root), train=True, download=False), cls(root=str(root), train=False,
                                                                    download=False)
    except Exception:  # torchvision reports missing files as a bare RuntimeError
        pass
    folder = root / where
    if _torchvision_files_present(cls, root):
        # The files are there but do not read: "not found" would send the user looking
        # in the wrong place, and a download would not replace them.
        raise DatasetError(
            f"{name} files in {folder} are there but could not be read (truncated or damaged?): "
            "delete them to download again, or replace them with complete copies."
        )
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(_DOWNLOAD_SOCKET_TIMEOUT)
    try:
        return cls(root=str(root), train=True, download=True), cls(root=str(root), train=False,
                                                                   download=True)
    except Exception:
        # Whatever went wrong (URLError, checksum, read-only root...), the user's fix is
        # the same: put the files in place or point at another root.
        raise DatasetError(
            f"{name} was not found in {root} and could not be downloaded (offline?). "
            f"Put it under {root / where} or pass --data-root."
        ) from None
    finally:
        socket.setdefaulttimeout(previous)


def _torchvision_files_present(cls, root: Path) -> bool:
    """Whether torchvision sees its files under ``root`` (so loading failed on their content)."""
    try:
        probe = cls.__new__(cls)
        probe.root = str(root)
        probe.train = True
        if hasattr(probe, "_check_exists"):  # MNIST family: every file exists
            return bool(probe._check_exists())
        return all((root / probe.base_folder / name).is_file() for name, _ in probe.train_list + probe.test_list)
    except Exception:
        return False


def _human_class_name(name: str) -> str:
    # MNIST's names read "0 - zero"; the digit alone is what people expect to see.
    head, sep, _ = name.partition(" - ")
    return head if sep and head.isdigit() else name


def _tv_arrays(ds) -> tuple[np.ndarray, np.ndarray]:
    data = ds.data
    data = data.numpy() if hasattr(data, "numpy") else np.asarray(data)
    targets = ds.targets
    targets = targets.numpy() if hasattr(targets, "numpy") else np.asarray(targets)
    if data.ndim == 3:
        data = data[:, None, :, :]
    else:  # CIFAR stores N×H×W×C
        data = data.transpose(0, 3, 1, 2)
    return data, targets.astype(np.int64)


def _load_torchvision(kind: str, root: Path, *, image_size, channels, seed, test_fraction,
                      progress) -> DatasetSplits:
    cls_name, name, where, likelihood = _TORCHVISION[kind]
    _report(progress, 0, 2)
    try:
        import torchvision.datasets as tvd
    except Exception:
        raise DatasetError(f"{name} needs torchvision, which could not be imported.") from None
    train_ds, test_ds = _open_torchvision(getattr(tvd, cls_name), root, name, where)
    _report(progress, 1, 2)
    (x_train, y_train), (x_test, y_test) = _tv_arrays(train_ds), _tv_arrays(test_ds)
    # Kept as bytes (to_unit_float reads them as value / 255, the float32 values
    # these datasets had when they were stored as floats).
    images = np.concatenate([x_train, x_test]).astype(np.uint8, copy=False)
    labels = np.concatenate([y_train, y_test])
    size = image_size or images.shape[-1]
    images = _set_channels(_resize(images, size), channels)
    n_train = len(x_train)
    _report(progress, 2, 2)
    return _build(kind, images, labels, train_idx=np.arange(n_train),
                  test_idx=np.arange(n_train, len(images)),
                  class_names=[_human_class_name(c) for c in train_ds.classes],
                  likelihood=likelihood,
                  options=_options(size, images.shape[1], seed, test_fraction))


def _load_mnist_binarized(root: Path, *, image_size, channels, seed, test_fraction, progress) -> DatasetSplits:
    """MNIST with the binarization protocol of likelihood papers (Burda et al., 2016).

    The test set is binarized once, from ``seed``, so every evaluation scores the same
    binary images; the training set keeps its intensities and is flagged for dynamic
    binarization, which the training loop applies per batch.
    """
    if channels not in (None, 1):
        raise DatasetError("mnist-binarized is grayscale: it takes channels=1 only.")
    splits = _load_torchvision("mnist", root, image_size=image_size, channels=channels, seed=seed,
                               test_fraction=test_fraction, progress=progress)
    test = splits.test.images  # a view of the whole array: all() sees the binary test set too
    rng = np.random.default_rng(seed)
    # Compared with value / 255, so the draws are those of the float32 days; 0/255 bytes
    # read back as exactly 0 and 1.
    test[...] = np.where(rng.random(test.shape, dtype=np.float32) < to_unit_float(test), 255, 0)
    train = ImageDataset(splits.train.images, splits.train.labels, binarize=True)
    return dataclasses.replace(splits, spec="mnist-binarized", train=train)


# --------------------------------------------------------------------------- folder


def _walk_files(directory: Path) -> list[Path]:
    """All non-hidden files under ``directory``, sorted by relative path."""
    found = []
    for dirpath, dirnames, filenames in os.walk(directory):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        found.extend(Path(dirpath) / f for f in filenames if not f.startswith("."))
    return sorted(found, key=lambda p: p.relative_to(directory).as_posix())


def _read_image(path: Path, size: int) -> np.ndarray | None:
    """Read one file as an RGB uint8 ``size×size×3`` array, or ``None`` if unusable."""
    from PIL import Image, ImageOps

    try:
        with Image.open(path) as img:
            # Let JPEG decode at a reduced scale; big photos then load many times faster.
            img.draft("RGB", (size, size))
            img = ImageOps.exif_transpose(img)
            if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
                # Transparent pixels are composited onto white, as image viewers show them.
                rgba = img.convert("RGBA")
                img = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                img.alpha_composite(rgba)
            img = img.convert("RGB")
            img = ImageOps.fit(img, (size, size), method=Image.Resampling.LANCZOS)
            return np.asarray(img, dtype=np.uint8)
    except Exception:
        # PIL raises a zoo of types for bad files (UnidentifiedImageError, OSError,
        # DecompressionBombError, SyntaxError, ValueError, struct.error...); any of them
        # means "skip this file", never "abort the whole folder".
        return None


def _load_folder(arg: str, *, image_size, channels, seed, test_fraction, progress) -> DatasetSplits:
    root = Path(arg).expanduser().resolve()
    if not root.exists():
        raise DatasetError(f"The folder {root} does not exist.")
    if not root.is_dir():
        raise DatasetError(f"{root} is not a folder; use npz:{root} for a NumPy file.")
    size = image_size or FOLDER_DEFAULT_SIZE

    try:
        entries = sorted(root.iterdir(), key=lambda p: p.name)
    except OSError:
        raise DatasetError(f"The folder {root} could not be read.") from None
    loose = [p for p in entries if p.is_file() and not p.name.startswith(".")]
    subdirs = [p for p in entries if p.is_dir() and not p.name.startswith(".")]
    per_class = [(d.name, _walk_files(d)) for d in subdirs]
    total = len(loose) + sum(len(files) for _, files in per_class)
    spec = f"folder:{root}"
    fingerprint = data_cache.folder_fingerprint(root, loose + [f for _, files in per_class for f in files])
    cache_options = {"image_size": size, "channels": channels, "seed": seed, "test_fraction": test_fraction}
    cached = data_cache.read_cached(root, fingerprint, cache_options)
    if cached is not None:
        _report(progress, total, total)
        n = len(cached.images)
        return _build(spec, cached.images, cached.labels, train_idx=np.arange(cached.n_train),
                      test_idx=np.arange(cached.n_train, n), class_names=cached.class_names,
                      likelihood=cached.likelihood, options=_options(size, cached.channels, seed, test_fraction),
                      skipped=cached.skipped)
    # RGB bytes while reading, then one reordered copy of up to 3 channels.
    check_memory((3 + 3) * float(total) * size * size, f"Loading {total:,} images at {size}×{size} pixels",
                 "use a smaller image size")
    done = 0
    skipped = 0
    pixels: list[np.ndarray] = []
    labels: list[int] = []
    class_names: list[str] = []

    # Labelling rule (as torchvision's ImageFolder): each subfolder holding at least one
    # readable image is a class, and loose files beside them are not used (counted in
    # `skipped`). Without such subfolders, the loose images form an unlabeled dataset.
    for name, files in per_class:
        got = 0
        for path in files:
            arr = _read_image(path, size)
            if arr is None:
                skipped += 1
            else:
                pixels.append(arr)
                labels.append(len(class_names))
                got += 1
            done += 1
            _report(progress, done, total)
        if got:
            class_names.append(name)
    labeled = bool(class_names)
    for path in loose:
        arr = None if labeled else _read_image(path, size)
        if arr is None:
            skipped += 1
        else:
            pixels.append(arr)
        done += 1
        _report(progress, done, total)

    if not pixels:
        if total == 0:
            raise DatasetError(f"The folder {root} contains no files.")
        raise DatasetError(f"None of the {total} files in {root} could be read as an image.")

    rgb = np.stack(pixels)  # N×H×W×3 uint8
    pixels.clear()
    requested_channels = channels
    if channels is None:
        # Grayscale files decode with R == G == B, as do RGB files of grey pictures; both
        # are better modelled with one channel.
        channels = 1 if (np.all(rgb[..., 0] == rgb[..., 1]) and np.all(rgb[..., 1] == rgb[..., 2])) else 3
    images = rgb.transpose(0, 3, 1, 2)
    # R == G == B here, so channel 0 is the luminance exactly.
    images = images[:, :1] if channels == 1 and requested_channels is None else _set_channels(images, channels)
    label_arr = np.asarray(labels, dtype=np.int64) if labeled else None
    train_idx, test_idx = _split_indices(len(images), label_arr, test_fraction, seed)
    splits = _build(spec, images, label_arr, train_idx=train_idx, test_idx=test_idx,
                    class_names=class_names, likelihood=_guess_likelihood(images),
                    options=_options(size, channels, seed, test_fraction), skipped=skipped)
    whole = splits.all()
    data_cache.write_cached(root, fingerprint, cache_options, whole.images, whole.labels, n_train=len(splits.train),
                            class_names=splits.class_names, skipped=skipped, likelihood=splits.likelihood)
    return splits


def _guess_likelihood(images: np.ndarray) -> str:
    """Bernoulli for mostly black-and-white grayscale data, Gaussian otherwise."""
    if images.shape[1] != 1:
        return "gaussian"
    flat = images.reshape(-1)
    if flat.size > 2_000_000:
        flat = flat[:: flat.size // 2_000_000 + 1]
    flat = to_unit_float(flat)
    # Line art and scanned digits have few mid-tones; grayscale photos are mostly mid-tones.
    midtones = np.count_nonzero((flat > 0.1) & (flat < 0.9)) / max(flat.size, 1)
    return "bernoulli" if midtones < 0.3 else "gaussian"


# --------------------------------------------------------------------------- npz


def _npz_images(x: np.ndarray, path: Path) -> np.ndarray:
    """Validate ``x`` from an npz file and return N×C×H×W stored pixels.

    8-bit data (``uint8``, wider integers up to 255, booleans) is stored as ``uint8``;
    16-bit and float data as float32 in [0, 1].
    """
    if x.ndim == 3:
        x = x[:, None, :, :]
    elif x.ndim == 4:
        if x.shape[1] in (1, 3):  # channels-first, PyTorch's convention, wins ties
            pass
        elif x.shape[-1] in (1, 3):
            x = x.transpose(0, 3, 1, 2)
        else:
            raise DatasetError(
                f"The images in {path} have shape {x.shape}, but need 1 or 3 channels "
                "(N×C×H×W or N×H×W×C)."
            )
    else:
        raise DatasetError(
            f"The images 'x' in {path} have {x.ndim} dimensions, but must be N×H×W, N×C×H×W or N×H×W×C."
        )
    if len(x) == 0:
        raise DatasetError(f"The file {path} contains no images.")
    if x.dtype == np.bool_:
        return x.astype(np.uint8) * np.uint8(255)
    if np.issubdtype(x.dtype, np.integer):
        # uint8 is the common case; wider integer types that still hold 8-bit values
        # (as int64 from a careless conversion) are read the same way.
        if int(x.min()) < 0:
            raise DatasetError(f"The images in {path} contain negative integer pixel values.")
        top_value = int(x.max())
        if top_value <= 255:
            return x.astype(np.uint8, copy=False)
        if x.dtype == np.uint16 or (top_value <= 65535 and x.dtype.itemsize == 2):
            top = 65535.0  # 16-bit images: more levels than a byte holds, so floats
        else:
            # Dividing by the type's maximum would turn every image black without a word.
            raise DatasetError(f"The images in {path} have integer pixel values up to {top_value}: integer "
                               "pixels must be 0–255 (or uint16); scale them, or store floats in [0, 1].")
        out = x.astype(np.float32)
        out /= np.float32(top)
        return out
    if np.issubdtype(x.dtype, np.floating):
        out = x.astype(np.float32)
        if not np.all(np.isfinite(out)):
            raise DatasetError(f"The images in {path} contain NaN or infinite values.")
        low, high = float(out.min()), float(out.max())
        # Rounding noise around [0, 1] is clipped; real values outside are refused, not clipped away.
        if low < -1e-3 or high > 1.0 + 1e-3:
            hint = " (divide by 255, or store them as uint8)" if high <= 255.0 and low >= 0 else ""
            raise DatasetError(f"The float images in {path} range from {low:g} to {high:g}, but float pixels "
                               f"must lie in [0, 1]{hint}.")
        return np.clip(out, 0.0, 1.0, out=out)
    raise DatasetError(f"The images in {path} have unsupported type {x.dtype}; use uint8 or float.")


def _npz_labels(y: np.ndarray, n: int, names, path: Path) -> tuple[np.ndarray, list[str]]:
    y = np.asarray(y)
    if y.ndim != 1 or len(y) != n:
        raise DatasetError(f"The labels 'y' in {path} must be one per image ({n}), but have shape {y.shape}.")
    if np.issubdtype(y.dtype, np.floating) and np.all(np.isfinite(y)) and np.all(y == np.round(y)):
        y = y.astype(np.int64)
    if not (np.issubdtype(y.dtype, np.integer) or y.dtype == np.bool_):
        raise DatasetError(f"The labels 'y' in {path} must be whole numbers, not {y.dtype}.")
    y = y.astype(np.int64)
    if names is not None:
        names = [str(s) for s in np.asarray(names).reshape(-1)]
        if y.min() < 0 or y.max() >= len(names):
            raise DatasetError(
                f"The labels in {path} must lie between 0 and {len(names) - 1} to match its class_names."
            )
        return y, names
    values = np.unique(y)
    if np.array_equal(values, np.arange(len(values))):
        return y, [str(v) for v in values]
    # Conditional models need labels 0..K-1; keep the original values as the names.
    return np.searchsorted(values, y).astype(np.int64), [str(v) for v in values]


def _load_npz(arg: str, *, image_size, channels, seed, test_fraction, progress) -> DatasetSplits:
    path = Path(arg).expanduser().resolve()
    if not path.is_file():
        raise DatasetError(f"The file {path} does not exist.")
    try:
        with np.load(path, allow_pickle=False) as npz:
            keys = set(npz.files)
            if "x" not in keys:
                found = ", ".join(sorted(keys)) or "nothing"
                raise DatasetError(f"The file {path} has no array named 'x' (it holds {found}).")
            x = npz["x"]
            y = npz["y"] if "y" in keys else None
            names = npz["class_names"] if "class_names" in keys else None
    except DatasetError:
        raise
    except Exception:
        # Not a zip, truncated, or object arrays that would need pickle (refused on
        # purpose: unpickling runs arbitrary code).
        raise DatasetError(f"The file {path} could not be read as a NumPy .npz without pickled objects.") from None

    images = _npz_images(x, path)
    labels, class_names = (None, []) if y is None else _npz_labels(y, len(images), names, path)
    h, w = images.shape[-2:]
    if image_size is not None:
        images = _resize(images, image_size)
    images = _set_channels(images, channels)
    train_idx, test_idx = _split_indices(len(images), labels, test_fraction, seed)
    _report(progress, 1, 1)
    # None for non-square native images: "keep as is" rebuilds them identically.
    size = image_size or (int(h) if h == w else None)
    return _build(f"npz:{path}", images, labels, train_idx=train_idx, test_idx=test_idx,
                  class_names=class_names, likelihood=_guess_likelihood(images),
                  options=_options(size, images.shape[1], seed, test_fraction))


# --------------------------------------------------------------------------- shapes

_SHAPE_NAMES = ("square", "ellipse", "heart", "triangle")
# Radius of a scale-1 shape as a fraction of the image side.
_SHAPE_RADIUS = 0.18
# Furthest any shape reaches from its centre, in radii, at any rotation (the square's
# corner at 0.8·√2 is the worst), so positions can keep every shape inside the frame.
_SHAPE_EXTENT = 1.15
_SHAPE_SCALE_RANGE = (0.5, 1.0)
def _render_shapes(shape, scale, rotation, x, y, size: int, progress=None) -> np.ndarray:
    """Rasterise shapes at pixel centres into a binary ``uint8`` N×1×S×S array (0 or 255)."""
    n = len(shape)
    out = np.empty((n, 1, size, size), dtype=np.uint8)
    centres = np.arange(size, dtype=np.float32) + np.float32(0.5)
    radius = (_SHAPE_RADIUS * size * scale).astype(np.float32)
    margin = _SHAPE_EXTENT * _SHAPE_RADIUS * size * _SHAPE_SCALE_RANGE[1]
    cx = (margin + x * (size - 2 * margin)).astype(np.float32)
    cy = (margin + y * (size - 2 * margin)).astype(np.float32)
    # Dividing cos/sin by the radius folds scaling into the rotation.
    cos = (np.cos(rotation) / radius).astype(np.float32)
    sin = (np.sin(rotation) / radius).astype(np.float32)
    # Chunks keep the B×S×S temporaries around 16 MB whatever the image size.
    chunk = max(1, (1 << 22) // (size * size))
    done = 0
    for kind in range(len(_SHAPE_NAMES)):
        members = np.flatnonzero(shape == kind)
        for start in range(0, len(members), chunk):
            idx = members[start:start + chunk]
            dx = centres[None, None, :] - cx[idx, None, None]
            dy_up = cy[idx, None, None] - centres[None, :, None]  # image rows grow downwards
            c, s = cos[idx, None, None], sin[idx, None, None]
            p = c * dx + s * dy_up
            q = c * dy_up - s * dx
            out[idx, 0] = shape_mask(kind, p, q) * np.uint8(255)
            done += len(idx)
            _report(progress, done, n)
    return out


def _load_shapes(arg, *, image_size, channels, seed, test_fraction, progress) -> DatasetSplits:
    size = SHAPES_DEFAULT_SIZE
    if arg is not None:
        try:
            size = int(arg)
        except ValueError:
            raise DatasetError(f"The shapes size must be a number of pixels, as in shapes:32, not {arg!r}.") from None
        size = _check_image_size(size)
        if image_size is not None and image_size != size:
            raise DatasetError(f"The spec shapes:{size} conflicts with image_size={image_size}.")
    elif image_size is not None:
        size = image_size
    if size < 16:
        raise DatasetError(f"Shapes need at least 16×16 pixels to be recognisable, not {size}.")

    check_memory(1.0 * SHAPES_COUNT * size * size * (channels or 1),
                 f"Generating {SHAPES_COUNT:,} shapes at {size}×{size} pixels", "use a smaller image size")
    # Independent streams: reusing one seed for both would correlate the split with
    # the factors (the first draws of each would be the same bits).
    factor_seed, split_seed = np.random.SeedSequence(seed).spawn(2)
    rng = np.random.default_rng(factor_seed)
    n = SHAPES_COUNT
    factors = {
        "shape": rng.integers(0, len(_SHAPE_NAMES), size=n).astype(np.int64),
        "scale": rng.uniform(*_SHAPE_SCALE_RANGE, size=n).astype(np.float32),
        "rotation": rng.uniform(0.0, 2.0 * np.pi, size=n).astype(np.float32),
        "x": rng.uniform(0.0, 1.0, size=n).astype(np.float32),
        "y": rng.uniform(0.0, 1.0, size=n).astype(np.float32),
    }
    images = _render_shapes(factors["shape"], factors["scale"], factors["rotation"],
                            factors["x"], factors["y"], size, progress)
    images = _set_channels(images, channels)
    labels = factors["shape"]
    train_idx, test_idx = _split_indices(n, labels, test_fraction, split_seed)
    spec = "shapes" if size == SHAPES_DEFAULT_SIZE else f"shapes:{size}"
    return _build(spec, images, labels, train_idx=train_idx, test_idx=test_idx,
                  class_names=_SHAPE_NAMES, likelihood="bernoulli",
                  options=_options(size, images.shape[1], seed, test_fraction),
                  factors=factors)


# --------------------------------------------------------------------------- dsprites


def _load_dsprites(arg, *, image_size, channels, seed, test_fraction, progress) -> DatasetSplits:
    """dSprites' full grid, or a seeded random subset of ``arg`` images (see vae_core.dsprites)."""
    count = dsprites.COUNT
    if arg is not None:
        try:
            count = int(arg.replace(",", "").replace("_", ""))
        except ValueError:
            raise DatasetError(f"The dsprites subset size must be a number of images, as in dsprites:100000, "
                               f"not {arg!r}.") from None
        if not 1 <= count <= dsprites.COUNT:
            raise DatasetError(f"dsprites has {dsprites.COUNT:,} images: a subset takes 1 to {dsprites.COUNT:,}, "
                               f"not {count:,}.")
    if image_size not in (None, dsprites.IMAGE_SIZE):
        raise DatasetError(f"dsprites images are {dsprites.IMAGE_SIZE}×{dsprites.IMAGE_SIZE} pixels; "
                           f"image_size={image_size} is not available.")
    check_memory(float(count) * dsprites.IMAGE_SIZE ** 2 * (channels or 1),
                 f"Rendering {count:,} dSprites images", "use a subset such as dsprites:100000")
    subset_seed, split_seed = np.random.SeedSequence(seed).spawn(2)
    if count == dsprites.COUNT:
        indices = np.arange(count, dtype=np.int64)
    else:
        # Sorted, so a subset keeps the original's order (shape slowest, pos_y fastest).
        indices = np.sort(np.random.default_rng(subset_seed).choice(dsprites.COUNT, count, replace=False))
    factors = dsprites.factor_indices(indices)
    labels = factors["shape"]
    train_idx, test_idx = _split_indices(count, labels, test_fraction, split_seed)
    order = np.concatenate([train_idx, test_idx])
    # Rendered straight into train-then-test order: reordering afterwards would copy 3 GB.
    images = dsprites.render(indices[order], progress=progress)
    images = _set_channels(images, channels)
    n_train = len(train_idx)
    spec = "dsprites" if count == dsprites.COUNT else f"dsprites:{count}"
    return _build(spec, images, labels[order], train_idx=np.arange(n_train), test_idx=np.arange(n_train, count),
                  class_names=dsprites.SHAPE_NAMES, likelihood="bernoulli",
                  options=_options(dsprites.IMAGE_SIZE, images.shape[1], seed, test_fraction),
                  factors={name: values[order] for name, values in factors.items()})
