"""Training quality and speed on MNIST / Fashion-MNIST.

* throughput of ``iter_training`` vs a plain hand-written PyTorch loop of the same
  784-400-20 model, epochs interleaved so both see the same machine load;
* test negative ELBO and IWAE estimate after 10 epochs for ``mlp`` and ``conv``.

Usage: python bench/bench_training.py [--epochs 10] [--threads 1] [--skip-conv] [--write]
"""

from __future__ import annotations

import argparse
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1]))
from bench._common import data_root, machine, write_section  # noqa: E402
from vae_core import TrainConfig, build_model, evaluate, iter_training, load_dataset  # noqa: E402


def plain_epoch(model, images, optimizer, batch_size, generator) -> float:
    """The loop a researcher would write by hand: no reports, no checks."""
    model.train()
    n = images.shape[0]
    order = torch.randperm(n, generator=generator)
    start = time.perf_counter()
    for b in range(0, n, batch_size):
        x = images[order[b:b + batch_size]]
        mu, logvar = model.encode(x)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        logits = model.decode_logits(z)
        recon = F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / x.shape[0]
        kl = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum() / x.shape[0]
        loss = recon + kl
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return n / (time.perf_counter() - start)


def throughput_and_quality(data, epochs: int, iwae_k: int):
    torch.manual_seed(0)
    ours = build_model("mlp", image_shape=(1, 28, 28), latent_dim=20)
    torch.manual_seed(0)
    plain = build_model("mlp", image_shape=(1, 28, 28), latent_dim=20)
    # The hand-written loop holds float32 images, as a researcher's tensors usually are;
    # iter_training gathers the stored uint8 pixels and converts each batch.
    images = torch.from_numpy(data.train.floats())
    opt = torch.optim.Adam(plain.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(0)
    config = TrainConfig(epochs=epochs, batch_size=128, lr=1e-3, seed=0)
    training = iter_training(ours, data, config)
    ours_ips, plain_ips = [], []
    for epoch in range(epochs):
        plain_ips.append(plain_epoch(plain, images, opt, 128, gen))
        for report in training:
            if report.kind == "epoch":
                ours_ips.append(report.images_per_sec)
                break
        print(f"  epoch {epoch + 1}: ours {ours_ips[-1]:.0f} img/s, plain {plain_ips[-1]:.0f} img/s, "
              f"test -ELBO {report.test['neg_elbo']:.2f}", flush=True)
    training.close()
    # Medians resist a noisy neighbour on a shared machine.
    med = lambda v: sorted(v)[len(v) // 2]
    metrics = evaluate(ours, data.test, iwae_k=iwae_k, batch_size=500)
    return med(ours_ips), med(plain_ips), metrics


def train_and_eval(name, data, epochs, iwae_k):
    torch.manual_seed(0)
    model = build_model(name, image_shape=tuple(data.image_shape), latent_dim=20)
    start = time.perf_counter()
    for report in iter_training(model, data, TrainConfig(epochs=epochs, batch_size=128, lr=1e-3, seed=0)):
        if report.kind == "epoch":
            print(f"  {name} epoch {report.epoch + 1}: test -ELBO {report.test['neg_elbo']:.2f} "
                  f"({report.images_per_sec:.0f} img/s)", flush=True)
    seconds = time.perf_counter() - start
    return evaluate(model, data.test, iwae_k=iwae_k, batch_size=500), seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--iwae-k", type=int, default=100)
    parser.add_argument("--skip-conv", action="store_true")
    parser.add_argument("--write", action="store_true", help="update docs/BENCHMARKS.md")
    args = parser.parse_args()
    root = data_root()
    if root is None:
        print("MNIST not found (../shared/data or $LATENT_EXPLORER_DATA): skipping.")
        return 0
    torch.set_num_threads(args.threads)
    rows = []
    mnist = load_dataset("mnist", root)
    print("MNIST mlp: ours vs plain loop", flush=True)
    ours, plain, mlp_metrics = throughput_and_quality(mnist, args.epochs, args.iwae_k)
    rows.append(("MNIST", "mlp 784-400-20", mlp_metrics, None))
    conv_metrics = None
    if not args.skip_conv:
        conv_metrics, secs = train_and_eval("conv", mnist, args.epochs, args.iwae_k)
        rows.append(("MNIST", "conv", conv_metrics, secs))
    fashion = load_dataset("fashion-mnist", root)
    fm, secs = train_and_eval("mlp", fashion, args.epochs, args.iwae_k)
    rows.append(("Fashion-MNIST", "mlp 784-400-20", fm, secs))
    if not args.skip_conv:
        fc, secs = train_and_eval("conv", fashion, args.epochs, args.iwae_k)
        rows.append(("Fashion-MNIST", "conv", fc, secs))

    lines = [
        f"Machine: {machine()}. `python bench/bench_training.py --epochs {args.epochs} --threads {args.threads} "
        f"--iwae-k {args.iwae_k}`; torch pinned to {args.threads} thread(s); batch 128, Adam 1e-3, seed 0.",
        "",
        "### Throughput: `iter_training` vs a plain hand-written loop (same 784-400-20 model, epochs interleaved)",
        "",
        "| loop | images/s (median epoch) |",
        "|---|---|",
        f"| plain PyTorch loop (baseline) | {plain:.0f} |",
        f"| `vae_core.iter_training` | {ours:.0f} |",
        f"| **ratio** | **{ours / plain:.3f}×** (target ≥ 0.95×) |",
        "",
        f"### Test-set quality after {args.epochs} epochs (nats per image, lower is better)",
        "",
        f"| dataset | model | −ELBO | recon | KL | active units | IWAE NLL (k={args.iwae_k}) |",
        "|---|---|---|---|---|---|---|",
    ]
    for dataset, model, m, _ in rows:
        lines.append(f"| {dataset} | {model} | {m['neg_elbo']:.2f} | {m['recon']:.2f} | {m['kl']:.2f} | "
                     f"{m['active_units']}/20 | {m['iwae_nll']:.2f} |")
    lines += ["", "References: the classic 784-400-20 MLP VAE reaches about 105 nats −ELBO on MNIST after 10 "
              "epochs; the published 1-layer VAE figure (Burda et al., 2016) is 86.76 nats, after 3,280 epochs "
              "and with k=5000 importance samples — not comparable with 10 epochs, listed for scale."]
    text = "\n".join(lines)
    print(text)
    if args.write:
        write_section("Training (vae_core)", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
