"""Per-point measures of the whole of MNIST: how long the map's Colour by waits for them.

Encodes MNIST's 70,000 images with ``mlp`` 784-400-20 (untrained: the cost does not depend
on the weights) and times ``vae_core.measures.compute_measures`` with the map's settings
(IWAE with k = 16, HDBSCAN clusters on the codes), the work ``explorer.jobs.measures`` does in
the background. Goal (issue #13): under a minute on this 2-core machine.

Usage: python bench/bench_measures.py [--threads 2] [--k 16] [--write]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from bench._common import machine, mnist_root_or_say, write_section  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--k", type=int, default=16)
    p.add_argument("--write", action="store_true", help="write the section of docs/BENCHMARKS.md")
    args = p.parse_args(argv)
    root = mnist_root_or_say()
    if root is None:
        return 0
    import torch

    from vae_core import build_model, load_dataset
    from vae_core.latent import encode_dataset
    from vae_core.measures import compute_measures

    torch.set_num_threads(args.threads)
    images = load_dataset("mnist", root).all().images
    torch.manual_seed(0)
    model = build_model("mlp", image_shape=images.shape[1:], latent_dim=20, hidden=(400,)).eval()
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    mu, logvar = encode_dataset(model, images)
    encode = time.perf_counter() - start
    start, cpu = time.perf_counter(), time.process_time()
    measures = compute_measures(model, images, codes=mu, logvar=logvar, k=args.k)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    names = ", ".join(measures.values)
    text = (f"`python bench/bench_measures.py --threads {args.threads} --k {args.k} --write` on {machine()}; "
            f"load average {load_before:.1f} before.\n\n"
            f"All per-point measures of MNIST's {len(images):,} images ({names}; IWAE with k = {args.k}, HDBSCAN "
            f"on the codes) for `mlp` 784-400-20 with {args.threads} torch threads: **{wall:.1f} s** of wall time "
            f"({cpu:.1f} s of CPU), after encoding in {encode:.1f} s. Goal: under a minute. In the window the same "
            "work runs in `MeasuresJob`, off the GUI thread, with a progress bar.")
    print(text)
    if args.write:
        write_section("Per-point measures (Colour by)", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
