"""Latent-space operations on MNIST: encode, projections, KNN inverse, decode latency, export.

Measures, with threads pinned (torch intra-op threads = ``--threads``, default 1, and
BLAS/OpenMP pools limited to 1 through threadpoolctl; one thread is also what keeps the
numbers steady on a shared 2-core machine):

* encode throughput of all 70,000 images through the 784-400-20 ``mlp`` encoder;
* PCA and UMAP fit times for 10k and 70k codes (70k UMAP is skipped with ``--quick``);
* KNNInverse look-ups per second (single point, batched) and its round-trip error;
* exact k-NN (``NeighborIndex``) single-query latency over the 70k codes;
* decode latency of one 28×28 image (median and p95 over 2,000 calls);
* GIF and MP4 export time for 120 frames.

Usage: python bench/bench_latent.py [--quick] [--threads 1] [--train-epochs 1] [--write]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("NUMBA_CACHE_DIR", str(REPO / ".cache" / "numba"))

import torch  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from bench._common import data_root, machine, write_section  # noqa: E402


def timed(fn, repeat=1):
    """(best seconds, last result) over ``repeat`` runs."""
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def rel_error(pred, codes, spread):
    return float(np.linalg.norm(pred - codes, axis=1).mean() / spread)


def bench_inverse(rows, label, embedding, codes, rng):
    from scipy.spatial import cKDTree

    from vae_core.projection import KNNInverse

    build, inv = timed(lambda: KNNInverse(embedding, codes))
    spread = float(np.linalg.norm(codes - codes.mean(0), axis=1).mean())
    lo, hi = embedding.min(0), embedding.max(0)
    singles = rng.uniform(lo, hi, (2000, 2))
    start = time.perf_counter()
    for p in singles:
        inv(p)
    single_rate = len(singles) / (time.perf_counter() - start)
    batch = rng.uniform(lo, hi, (200_000, 2))
    t_batch, _ = timed(lambda: inv(batch), repeat=3)
    t_rt, back = timed(lambda: inv(embedding))
    rows.append((f"KNNInverse build ({label})", f"{build * 1e3:.0f} ms", "cKDTree + global linear fit"))
    rows.append((f"KNNInverse single look-ups ({label})", f"{single_rate:,.0f} /s", "one 2D point per call"))
    rows.append((f"KNNInverse batched look-ups ({label})", f"{len(batch) / t_batch:,.0f} /s", "200k points per call"))
    rows.append((f"KNNInverse round-trip error ({label})", f"{rel_error(back, codes, spread):.3f}",
                 "mean ‖inverse(xy_i) − z_i‖ / mean ‖z_i − z̄‖"))
    # Held-out: how well a map position predicts the code of a point the inverse never saw.
    perm = rng.permutation(len(codes))
    cut = int(0.9 * len(codes))
    train, test = perm[:cut], perm[cut:]
    held = KNNInverse(embedding[train], codes[train])(embedding[test])
    _, nn = cKDTree(embedding[train]).query(embedding[test])
    rows.append((f"KNNInverse held-out error ({label})", f"{rel_error(held, codes[test], spread):.3f}",
                 f"10% held out; nearest-neighbour baseline {rel_error(codes[train][nn], codes[test], spread):.3f}"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="skip the 70k UMAP fit")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    parser.add_argument("--train-epochs", type=int, default=1,
                        help="train the mlp this many epochs first so codes have structure (0 = untrained)")
    parser.add_argument("--write", action="store_true", help="write the section into docs/BENCHMARKS.md")
    args = parser.parse_args()

    root = data_root()
    if root is None:
        print("MNIST not found under ../shared/data (or $LATENT_EXPLORER_DATA): skipping.")
        return 0

    from vae_core import TrainConfig, build_model, fit, load_dataset
    from vae_core.export import export_animation
    from vae_core.latent import NeighborIndex, decode, encode_dataset, interpolate
    from vae_core.projection import PCAProjection, UMAPProjection, warm_up_umap

    torch.set_num_threads(args.threads)
    wall0, cpu0 = time.perf_counter(), time.process_time()
    rng = np.random.default_rng(0)
    rows: list[tuple[str, str, str]] = []
    data = load_dataset("mnist", root)
    images = data.all().images
    model = build_model("mlp", image_shape=data.image_shape, latent_dim=20)
    if args.train_epochs:
        fit(model, data, TrainConfig(epochs=args.train_epochs, seed=0, device="cpu", num_threads=args.threads))
    model.eval()

    with threadpool_limits(1):
        t_enc, (codes, _) = timed(lambda: encode_dataset(model, images), repeat=3)
        rows.append(("Encode 70,000 images (mlp 784-400-20)", f"{t_enc:.2f} s",
                     f"{len(images) / t_enc:,.0f} images/s, batch 2048"))
        print(rows[-1], flush=True)

        for n in (10_000, 70_000):
            t, _ = timed(lambda: PCAProjection().fit(codes[:n]), repeat=3)
            rows.append((f"PCA fit, {n // 1000}k codes", f"{t * 1e3:.0f} ms", "NumPy SVD"))

        t_import, _ = timed(lambda: __import__("umap"))
        rows.append(("import umap", f"{t_import:.1f} s", "with NUMBA_CACHE_DIR=.cache/numba populated"))
        t_warm = warm_up_umap()
        rows.append(("warm_up_umap() (once per process)", f"{t_warm:.1f} s",
                     "numba compilation numba cannot cache (pynndescent, graph construction)"))
        print(rows[-1], flush=True)
        t_u10, u10 = timed(lambda: UMAPProjection().fit(codes[:10_000]))
        rows.append(("UMAP fit, 10k codes", f"{t_u10:.1f} s",
                     "exact k-NN (NeighborIndex) + umap layout, 500 epochs (umap default ≤10k)"))
        print(rows[-1], flush=True)
        bench_inverse(rows, "10k", u10.embedding, codes[:10_000], rng)
        if not args.quick:
            t_u70, u70 = timed(lambda: UMAPProjection().fit(codes))
            rows.append(("UMAP fit, 70k codes", f"{t_u70:.1f} s",
                         "pynndescent k-NN, fit on 50k (max_fit), 200 epochs, umap.transform of 20k"))
            print(rows[-1], flush=True)
            bench_inverse(rows, "70k", u70.embedding, codes, rng)

        index = NeighborIndex(codes)
        queries = codes[rng.integers(0, len(codes), 500)] + 0.01
        start = time.perf_counter()
        for q in queries:
            index.query(q, k=8)
        rows.append(("Exact 8-NN query over 70k codes", f"{(time.perf_counter() - start) / len(queries) * 1e3:.2f} ms",
                     "NeighborIndex, one query per call"))

        lat = []
        for i in range(2000):
            z = codes[i]
            start = time.perf_counter()
            decode(model, z)
            lat.append(time.perf_counter() - start)
        lat = np.array(lat) * 1e3
        rows.append(("Decode one 28×28 image", f"{np.median(lat):.3f} ms median",
                     f"p95 {np.percentile(lat, 95):.3f} ms over 2,000 calls"))

        path = interpolate(codes[[0, 1, 2, 3]], 120, method="slerp", easing="ease-in-out")
        frames = decode(model, path)
        out_dir = REPO / ".cache" / "bench"
        out_dir.mkdir(parents=True, exist_ok=True)
        for ext in (".gif", ".mp4"):
            t, out = timed(lambda: export_animation(frames, out_dir / f"bench{ext}", fps=24, upscale=4), repeat=2)
            rows.append((f"Export 120 frames to {ext[1:].upper()}", f"{t:.2f} s",
                         f"112×112 px, {out.stat().st_size / 1024:.0f} KiB"))

    # On a shared machine the process may get far less than the threads it asked for.
    share = (time.process_time() - cpu0) / (time.perf_counter() - wall0) / args.threads
    table = ["| Operation | Result | Notes |", "|---|---|---|"]
    table += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    body = (f"Machine: {machine()}. torch threads: {args.threads}; BLAS/OpenMP pools limited to 1 "
            f"(threadpoolctl). Model: mlp 784-400-20 trained {args.train_epochs} epoch(s) on MNIST; codes are "
            f"posterior means of all 70,000 images. CPU share: the process used {share:.0%} of its "
            f"{args.threads} thread(s) on average over the run (other jobs shared the cores; lower "
            f"means the timings are pessimistic).\n"
            f"Command: `python bench/bench_latent.py{' --quick' if args.quick else ''}"
            f"{'' if args.threads == 1 else f' --threads {args.threads}'}`.\n\n" + "\n".join(table))
    print()
    print(body)
    if args.write:
        write_section("Latent operations", body)
        print("\nwrote docs/BENCHMARKS.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
