"""Sample quality: Fréchet distance and precision/recall in a dataset's own feature space.

The features are the 128-d penultimate layer of a small convolutional classifier trained on
the dataset's labels (:class:`FeatureNet`), once per dataset, seed and image shape, and
cached on disk. **These numbers are not comparable with Inception-based FID** or with
precision/recall in Inception or VGG features: a different network gives a different
space, so compare models only on the same dataset with the same feature network (same
dataset spec and options, same seed). Unlabeled datasets have no such classifier; the
metrics are then unavailable (:class:`~vae_core.errors.DatasetError`).

* Fréchet distance (Heusel et al., 2017): ‖μ_r − μ_g‖² + Tr(Σ_r + Σ_g − 2 (Σ_r Σ_g)^½)
  between Gaussians fitted to the two feature sets, with ``scipy.linalg.sqrtm``.
* Precision and recall (Kynkäänniemi et al., 2019): each feature vector gets a ball reaching
  its k-th nearest neighbour in its own set (k = 3); precision is the share of generated
  samples inside some real ball, recall the share of real samples inside some generated ball.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from vae_core.errors import ConfigError, DatasetError
from vae_core.metrics.pixels import unit_float

#: Neighbour whose distance sets each ball's radius (Kynkäänniemi et al., 2019).
PR_K = 3
#: Bump when the network or its training changes: cached networks of another version are retrained.
FEATURE_NET_VERSION = 1
FEATURE_DIM = 128
NOT_COMPARABLE = ("feature space of a classifier trained on this dataset: not comparable with "
                  "Inception-based FID or with other datasets")


def frechet_distance(features_a, features_b) -> float:
    """Fréchet distance between Gaussians fitted to two ``N×F`` feature sets.

    Means and covariances (unbiased, ``np.cov``) in float64; the matrix square root's tiny
    imaginary part from rounding is dropped, and a singular product gets ε·I added to both
    covariances (as the reference TTUR implementation does).
    """
    from scipy import linalg

    a = np.asarray(features_a, dtype=np.float64)
    b = np.asarray(features_b, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or min(len(a), len(b)) < 2:
        raise ConfigError("Fréchet distance needs two N×F feature arrays with the same F and N ≥ 2.")
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a = np.atleast_2d(np.cov(a, rowvar=False))
    cov_b = np.atleast_2d(np.cov(b, rowvar=False))
    with warnings.catch_warnings():
        # A singular product (fewer samples than features) warns; the check below handles it.
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        root = linalg.sqrtm(cov_a @ cov_b)
    if not np.isfinite(root).all():
        eps = 1e-6 * np.eye(len(cov_a))
        root = linalg.sqrtm((cov_a + eps) @ (cov_b + eps))
    root = np.real(root)
    diff = mu_a - mu_b
    return float(max(diff @ diff + np.trace(cov_a) + np.trace(cov_b) - 2.0 * np.trace(root), 0.0))


def _kth_radii(features: torch.Tensor, k: int, chunk: int) -> torch.Tensor:
    radii = []
    for start in range(0, len(features), chunk):
        d = torch.cdist(features[start:start + chunk], features)
        # The k+1-th smallest distance: the first is the point itself (0).
        radii.append(d.kthvalue(k + 1, dim=1).values)
    return torch.cat(radii)


def _covered(queries: torch.Tensor, centres: torch.Tensor, radii: torch.Tensor, chunk: int) -> torch.Tensor:
    out = []
    for start in range(0, len(queries), chunk):
        d = torch.cdist(queries[start:start + chunk], centres)
        out.append((d <= radii[None, :]).any(dim=1))
    return torch.cat(out)


def precision_recall(real_features, fake_features, k: int = PR_K, *, chunk: int = 1024) -> dict:
    """Improved precision and recall (Kynkäänniemi et al., 2019) of two ``N×F`` feature sets.

    The real manifold is the union of balls around each real vector reaching its k-th
    nearest real neighbour; precision is the share of fake vectors inside it. Recall swaps
    the roles. Distances are Euclidean, in float64, computed ``chunk`` rows at a time.

    Returns
    -------
    dict
        ``precision``, ``recall`` (in [0, 1]) and ``k``.
    """
    real = torch.as_tensor(np.asarray(real_features, dtype=np.float64))
    fake = torch.as_tensor(np.asarray(fake_features, dtype=np.float64))
    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
        raise ConfigError("Precision and recall need two N×F feature arrays with the same F.")
    if int(k) != k or k < 1 or min(len(real), len(fake)) <= k:
        raise ConfigError(f"k must be a whole number from 1 to one less than the smaller set's size, not {k!r}.")
    k = int(k)
    real_radii = _kth_radii(real, k, chunk)
    fake_radii = _kth_radii(fake, k, chunk)
    precision = _covered(fake, real, real_radii, chunk).double().mean().item()
    recall = _covered(real, fake, fake_radii, chunk).double().mean().item()
    return {"precision": float(precision), "recall": float(recall), "k": k}


class FeatureNet(nn.Module):
    """A small CNN classifier whose 128-d penultimate layer is the feature space.

    Two stride-2 3×3 convolutions (32, 64 channels), a 4×4 adaptive average pool, a
    128-unit ReLU layer (the features) and a linear classifier. Small enough to train in
    a minute or two on a CPU, and works at any image size from 8×8.
    """

    def __init__(self, channels: int, num_classes: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, 32, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(32, 64, 3, stride=2, padding=1), nn.ReLU(),
            nn.AdaptiveAvgPool2d(4), nn.Flatten(),
            nn.Linear(64 * 16, FEATURE_DIM), nn.ReLU())
        self.head = nn.Linear(FEATURE_DIM, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def default_cache_dir() -> Path:
    """``$LATENT_EXPLORER_CACHE/feature-nets``, or ``~/.cache/latent-explorer/feature-nets``."""
    root = os.environ.get("LATENT_EXPLORER_CACHE")
    return (Path(root) if root else Path.home() / ".cache" / "latent-explorer") / "feature-nets"


def _cache_key(data, seed: int, epochs: int) -> str:
    identity = {"spec": data.spec, "options": data.options, "image_shape": list(data.image_shape),
                "classes": list(data.class_names), "seed": int(seed), "epochs": int(epochs),
                "train_size": len(data.train), "version": FEATURE_NET_VERSION}
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:20]


def feature_net(data, *, seed: int = 0, epochs: int = 3, cache_dir=None, batch_size: int = 128,
                device="cpu", progress=None) -> tuple[FeatureNet, dict]:
    """The dataset's feature classifier: loaded from the cache, or trained and cached.

    Trained with Adam (lr 1e-3) for ``epochs`` epochs on the train split, seeded by
    ``seed`` (weights, order), so the same dataset and seed give the same network. The
    cache file is named by a hash of the dataset's spec and options, the seed, the epochs
    and :data:`FEATURE_NET_VERSION`; its metadata records them and the test accuracy.

    Parameters
    ----------
    data : DatasetSplits
        A labeled dataset.
    cache_dir : path, optional
        Defaults to :func:`default_cache_dir`.
    progress : callable, optional
        ``progress(done, total)`` in training batches.

    Returns
    -------
    (FeatureNet, dict)
        The network (eval mode, on ``device``) and its metadata (``accuracy``, ``seed``,
        ``epochs``, ``spec``, ``path``, ``cached``: whether it came from the cache).

    Raises
    ------
    DatasetError
        For an unlabeled dataset.
    """
    from safetensors.torch import load_file, save_file

    if data.num_classes < 2 or data.train.labels is None:
        raise DatasetError(f"Sample quality needs a labeled dataset to train its feature classifier; "
                           f"{data.spec} has no class labels.")
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    path = folder / f"{_cache_key(data, seed, epochs)}.safetensors"
    channels = data.image_shape[0]
    if path.is_file():
        try:
            from safetensors import safe_open

            with safe_open(str(path), framework="pt") as handle:
                meta = json.loads(handle.metadata()["feature_net"])
            with torch.random.fork_rng(devices=[]):
                net = FeatureNet(channels, data.num_classes)
            net.load_state_dict(load_file(str(path)))
            meta.update(path=str(path), cached=True)
            return net.to(device).eval(), meta
        except Exception:  # a damaged cache file is retrained, never trusted
            pass
    # A private RNG stream: training the classifier must not move the caller's torch seed.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = _train_feature_net(data, channels, epochs, batch_size, seed, device, progress)
    net.eval()
    accuracy = _accuracy(net, data.test if len(data.test) else data.train, device)
    meta = {"spec": data.spec, "options": data.options, "seed": int(seed), "epochs": int(epochs),
            "accuracy": accuracy, "version": FEATURE_NET_VERSION}
    tmp = None
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
        save_file({k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}, tmp,
                  metadata={"feature_net": json.dumps(meta, default=str)})
        os.replace(tmp, path)
    except OSError:
        # An unwritable cache costs a retraining next time, not this result.
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
    meta.update(path=str(path), cached=False)
    return net, meta


def _train_feature_net(data, channels, epochs, batch_size, seed, device, progress) -> FeatureNet:
    net = FeatureNet(channels, data.num_classes).to(device)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    rng = np.random.default_rng(seed)
    images, labels = data.train.images, data.train.labels
    steps = epochs * -(-len(images) // batch_size)
    done = 0
    net.train()
    for _ in range(epochs):
        order = rng.permutation(len(images))
        for start in range(0, len(images), batch_size):
            idx = np.sort(order[start:start + batch_size])
            x = torch.from_numpy(unit_float(images[idx])).to(device)
            y = torch.from_numpy(np.asarray(labels[idx], dtype=np.int64)).to(device)
            loss = nn.functional.cross_entropy(net(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            done += 1
            if progress is not None:
                progress(done, steps)
    return net


@torch.inference_mode()
def _accuracy(net: FeatureNet, split, device) -> float:
    correct = 0
    for start in range(0, len(split.images), 1000):
        x = torch.from_numpy(unit_float(split.images[start:start + 1000])).to(device)
        correct += int((net(x).argmax(1).cpu().numpy() == split.labels[start:start + 1000]).sum())
    return correct / max(1, len(split.images))


@torch.inference_mode()
def features_of(net: FeatureNet, images, *, batch_size: int = 1000, device="cpu") -> np.ndarray:
    """The ``N×128`` features of ``images`` (``N×C×H×W`` in [0, 1]) in float64."""
    out = [net.features(torch.from_numpy(unit_float(images[s:s + batch_size])).to(device))
           .double().cpu().numpy() for s in range(0, len(images), batch_size)]
    return np.concatenate(out) if out else np.zeros((0, FEATURE_DIM))


@torch.inference_mode()
def generate(model, n: int, *, seed: int = 0, labels=None, batch_size: int = 500) -> np.ndarray:
    """``n`` images sampled from ``model``'s prior (seeded); a conditional model gets ``labels``."""
    generator = torch.Generator().manual_seed(seed)
    was_training = model.training
    model.eval()
    out = []
    try:
        for start in range(0, n, batch_size):
            count = min(batch_size, n - start)
            y = None
            if getattr(model, "conditional", False):
                y = torch.from_numpy(np.asarray(labels[start:start + count], dtype=np.int64)).to(model.device)
            out.append(model.sample(count, y, generator=generator).clamp(0, 1).float().cpu().numpy())
    finally:
        if was_training:
            model.train()
    return np.concatenate(out)


def sample_quality(model, data, *, num_samples: int = 10_000, k: int = PR_K, seed: int = 0, split: str = "test",
                   cache_dir=None, device="cpu", progress=None) -> dict:
    """Fréchet distance and precision/recall of ``model``'s samples against ``data``'s images.

    Up to ``num_samples`` real images (the first of the split) and as many samples from the
    prior (seeded by ``seed``; a conditional model samples the real images' labels) are
    mapped into the :func:`feature_net` space of ``data``.

    Returns
    -------
    dict
        ``frechet_distance``, ``precision``, ``recall``, ``k``, ``num_samples``, ``seed``,
        ``feature_net`` (its metadata: accuracy, seed, cache path) and ``feature_space``
        (a sentence saying these numbers are not Inception-based FID). Timings:
        ``feature_net_seconds``, ``samples_seconds``.
    """
    if int(num_samples) != num_samples or num_samples < k + 1:
        raise ConfigError(f"num_samples must be a whole number above k = {k}, not {num_samples!r}.")
    started = time.perf_counter()
    net, meta = feature_net(data, seed=seed, cache_dir=cache_dir, device=device, progress=progress)
    net_seconds = time.perf_counter() - started
    real_split = data.test if split == "test" and len(data.test) else data.train
    real_images = real_split.images[:int(num_samples)]
    n = len(real_images)
    if n <= k:
        raise DatasetError(f"Sample quality needs more than {k} real images; the split has {n}.")
    started = time.perf_counter()
    labels = real_split.labels[:n] if real_split.labels is not None else None
    fake_images = generate(model, n, seed=seed, labels=labels)
    samples_seconds = time.perf_counter() - started
    real = features_of(net, real_images, device=device)
    fake = features_of(net, fake_images, device=device)
    result = {"frechet_distance": frechet_distance(real, fake)}
    result.update(precision_recall(real, fake, k))
    result.update(num_samples=n, seed=int(seed), feature_net=meta, feature_space=NOT_COMPARABLE,
                  feature_net_seconds=net_seconds, samples_seconds=samples_seconds)
    return result
