"""VQ-VAE against the conv VAE on MNIST and Fashion-MNIST, at equal epochs.

For each dataset, a ``vqvae`` and a ``conv`` VAE are trained for the same number of
epochs, epochs interleaved (one of each in turn) so that both see the same machine load,
with the same torch thread count pinned for both. Reported:

* reconstruction error on the test set: mean squared error per pixel of the
  reconstruction from the map code (the conv VAE's posterior mean, the vqvae's snapped
  grid), and ``evaluate``'s ``recon`` (Bernoulli negative log-likelihood, nats per image);
* the vqvae's codebook usage (entries used on the test set) and perplexity;
* the prior's NLL of the test code grids in nats (learned prior after ``--prior-epochs``,
  and the uniform prior the VQ-VAE trained with), and the resulting bound on −log p(x)
  against the conv VAE's negative ELBO;
* training throughput in images/s of each model and their ratio measured in the same run.

Usage: python bench/bench_vqvae.py [--epochs 2] [--prior-epochs 2] [--threads 1]
       [--train-size 10000] [--write]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time

import numpy as np
import torch

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1]))
from bench._common import data_root, machine, write_section  # noqa: E402
from vae_core import TrainConfig, build_model, evaluate, iter_training, load_dataset  # noqa: E402
from vae_core.prior import PriorConfig, train_prior  # noqa: E402

SECTION = "VQ-VAE against the conv VAE"


def _subset(data, n: int | None):
    if not n or n >= len(data.train):
        return data
    train = dataclasses.replace(data.train, images=data.train.images[:n], labels=data.train.labels[:n])
    return dataclasses.replace(data, train=train)


@torch.inference_mode()
def _mse(model, images: np.ndarray) -> float:
    """Mean squared error per pixel of the reconstruction from the map code."""
    total = 0.0
    for start in range(0, len(images), 1000):
        x = torch.from_numpy(images[start:start + 1000])
        total += float((model.decode(model.encode(x)[0]) - x).pow(2).sum())
    return total / images.size


def run_dataset(spec: str, root, args) -> dict:
    data = _subset(load_dataset(spec, root), args.train_size)
    models = {}
    for name, config in (("conv", dict(latent_dim=args.conv_latent)),
                         ("vqvae", dict(latent_dim=args.code_dim, codebook_size=args.codebook_size))):
        torch.manual_seed(0)
        models[name] = build_model(name, image_shape=data.image_shape, **config)
    config = TrainConfig(epochs=args.epochs, batch_size=128, lr=1e-3, seed=0, num_threads=args.threads)
    runs = {name: iter_training(model, data, config) for name, model in models.items()}
    speed = {name: [] for name in models}
    for _epoch in range(args.epochs):
        for name, run in runs.items():  # one epoch of each in turn: the same machine load
            for report in run:
                if report.kind == "epoch":
                    speed[name].append(report.images_per_sec)
                    break
    row = {"train": len(data.train), "test": len(data.test)}
    for name, model in models.items():
        model.eval()
        row[name] = evaluate(model, data.test)
        row[name]["mse"] = _mse(model, data.test.images)
        row[name]["images_per_sec"] = float(np.median(speed[name]))
    vq = models["vqvae"]
    start = time.perf_counter()
    reports = [r for r in train_prior(vq, data, PriorConfig(epochs=args.prior_epochs, batch_size=128, lr=1e-3,
                                                            num_threads=args.threads)) if r.kind == "epoch"]
    row["prior_seconds"] = time.perf_counter() - start
    row["prior_test"] = reports[-1].test
    row["vqvae_with_prior"] = evaluate(vq.eval(), data.test)
    return row


def report(rows: dict, args, seconds: float) -> str:
    lines = [f"Machine: {machine()}; torch threads pinned to {args.threads} for both models; run under "
             f"`nice -n 10` on a machine shared with other work, in {seconds / 60:.1f} minutes.",
             "",
             f"Command: `nice -n 10 python bench/bench_vqvae.py --epochs {args.epochs} --prior-epochs "
             f"{args.prior_epochs} --threads {args.threads} --train-size {args.train_size} --write`",
             "",
             f"Both models train {args.epochs} epochs (batch 128, Adam 1e-3, seed 0) on the first "
             f"{args.train_size} training images, epochs interleaved; `conv` with a {args.conv_latent}-d latent, "
             f"`vqvae` with a {args.codebook_size}-entry codebook of {args.code_dim}-d vectors on a 7×7 grid. "
             "Test set: the full 10,000 images. Reconstruction MSE is per pixel, from the map code (conv: the "
             "posterior mean; vqvae: the snapped grid); recon is Bernoulli nats per image.",
             "",
             "| dataset | model | recon MSE | recon (nats) | −log p(x) bound (nats) | codebook usage | perplexity "
             "| train images/s |",
             "|---|---|---|---|---|---|---|---|"]
    for spec, row in rows.items():
        conv, vq, vqp = row["conv"], row["vqvae"], row["vqvae_with_prior"]
        lines.append(f"| {spec} | conv | {conv['mse']:.4f} | {conv['recon']:.1f} | {conv['neg_elbo']:.1f} (ELBO) "
                     f"| – | – | {conv['images_per_sec']:.0f} |")
        lines.append(f"| {spec} | vqvae | {vq['mse']:.4f} | {vq['recon']:.1f} | {vqp['neg_elbo']:.1f} "
                     f"(learned prior; uniform: {vq['neg_elbo']:.1f}) | {vq['codebook_usage']} / "
                     f"{vq['codebook_size']} | {vq['perplexity']:.1f} | {vq['images_per_sec']:.0f} "
                     f"({vq['images_per_sec'] / conv['images_per_sec']:.2f}× conv) |")
    lines += ["", f"Prior over the test code grids after {args.prior_epochs} epochs (nats per image):", "",
              "| dataset | learned prior NLL | uniform prior NLL | prior training (s) |", "|---|---|---|---|"]
    for spec, row in rows.items():
        test = row["prior_test"]
        lines.append(f"| {spec} | {test['code_nll']:.1f} | {test['uniform_code_nll']:.1f} | "
                     f"{row['prior_seconds']:.0f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--prior-epochs", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--train-size", type=int, default=10000)
    parser.add_argument("--codebook-size", type=int, default=256)
    parser.add_argument("--code-dim", type=int, default=16)
    parser.add_argument("--conv-latent", type=int, default=16)
    parser.add_argument("--datasets", nargs="+", default=["mnist", "fashion-mnist"])
    parser.add_argument("--write", action="store_true", help="write the section of docs/BENCHMARKS.md")
    args = parser.parse_args()
    root = data_root()
    if root is None:
        sys.exit("MNIST is not in shared/data (set LATENT_EXPLORER_DATA).")
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    rows = {}
    for spec in args.datasets:
        rows[spec] = run_dataset(spec, root, args)
        brief = {name: {k: v for k, v in values.items() if k != "kl_per_dim"} if isinstance(values, dict) else values
                 for name, values in rows[spec].items()}
        print(spec, brief, flush=True)
    text = report(rows, args, time.perf_counter() - start)
    print(text)
    if args.write:
        write_section(SECTION, text)


if __name__ == "__main__":
    main()
