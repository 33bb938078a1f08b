"""``evaluate``'s reconstruction, disentanglement and sample-quality metrics, each timed."""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from vae_core.cli.common import int_range
from vae_core.errors import CLIError, DatasetError

__all__ = ["add_metric_options", "check_metric_input", "run_metrics", "print_metrics"]

POINTS_MAX = 10_000_000


def add_metric_options(ev: argparse.ArgumentParser) -> None:
    """Add ``--disentanglement``, ``--sample-quality`` and their sizes to the ``evaluate`` parser."""
    ev.add_argument("--disentanglement", action="store_true",
                    help="MIG, SAP, DCI, FactorVAE and beta-VAE scores against the dataset's ground-truth "
                         "factors (datasets with factors only: shapes, dsprites); continuous factors are cut "
                         "into 20 bins")
    ev.add_argument("--disentanglement-points", type=int_range(10, POINTS_MAX), default=15_000, metavar="N",
                    help="codes scored by MIG, SAP and DCI, drawn from the whole dataset (default: 15000; SAP "
                         "and DCI train on 2/3 and test on 1/3, disentanglement_lib's 10000 + 5000)")
    ev.add_argument("--score-votes", type=int_range(1, POINTS_MAX), default=10_000, metavar="N",
                    help="training votes (FactorVAE) and points (beta-VAE), each a batch of 64 sampled "
                         "images; half as many again evaluate them (default: 10000, as disentanglement_lib)")
    ev.add_argument("--sample-quality", action="store_true",
                    help="Frechet distance and precision/recall (k=3) of prior samples against the split, "
                         "in the features of a small classifier trained once on this dataset's labels and "
                         "cached (NOT comparable with Inception-based FID)")
    ev.add_argument("--samples", type=int_range(4, POINTS_MAX), default=10_000, metavar="N",
                    help="real images and prior samples compared by --sample-quality (default: 10000, at "
                         "most the split's size)")
    ev.add_argument("--cache-dir", metavar="DIR",
                    help="where --sample-quality keeps its feature classifiers (default: "
                         "$LATENT_EXPLORER_CACHE/feature-nets or ~/.cache/latent-explorer/feature-nets)")


def check_metric_input(model, data, args: argparse.Namespace) -> None:
    """Refuse impossible requests before any metric runs, with one sentence."""
    if args.disentanglement:
        if not data.factors:
            raise DatasetError(f"--disentanglement needs a dataset with ground-truth factors (shapes, dsprites); "
                               f"{data.spec} has none.")
        if getattr(model, "conditional", False):
            raise CLIError("--disentanglement needs an unconditional model: a conditional model's code depends "
                           "on the label as well as on the image.")
    if args.sample_quality and (data.num_classes < 2 or data.train.labels is None):
        raise DatasetError(f"--sample-quality needs a labeled dataset to train its feature classifier; "
                           f"{data.spec} has no class labels.")


def _timed(seconds: dict, name: str, fn, *a, **kw):
    started = time.perf_counter()
    out = fn(*a, **kw)
    seconds[name] = time.perf_counter() - started
    return out


def run_metrics(model, data, split, args: argparse.Namespace, device, seconds: dict) -> dict:
    """The reconstruction metrics always, the others when asked; ``seconds`` gets each one's time."""
    from vae_core.metrics import reconstruction_quality

    out = {"reconstruction": _timed(seconds, "reconstruction", reconstruction_quality, model, split,
                                    batch_size=args.batch_size, device=device)}
    if args.disentanglement:
        out["disentanglement"] = _disentanglement(model, data, args, device, seconds)
    if args.sample_quality:
        out["sample_quality"] = _sample_quality(model, data, args, device, seconds)
    return out


def _disentanglement(model, data, args, device, seconds: dict) -> dict:
    from vae_core.metrics import (DatasetFactorSampler, beta_vae_score, dci, factor_matrix, factor_vae_score, mig,
                                  model_representation, mutual_info_matrix, sap)

    all_factors, names = factor_matrix(data.factors)
    images = data.all().images
    rng = np.random.default_rng(args.seed)
    n = min(args.disentanglement_points, len(images))
    rows = np.sort(rng.choice(len(images), size=n, replace=False))
    represent = model_representation(model, device=device, batch_size=args.batch_size)
    codes = _timed(seconds, "encode", represent, images[rows])
    factors = all_factors[rows]
    out = {"factors": list(names), "points": int(n)}
    out["mutual_info"] = _timed(seconds, "mutual_info", mutual_info_matrix, codes, factors).tolist()
    out["mig"] = _timed(seconds, "mig", mig, codes, factors)
    out["sap"] = _timed(seconds, "sap", sap, codes, factors, seed=args.seed)
    out["dci"] = _timed(seconds, "dci", dci, codes, factors, seed=args.seed)
    sampler = DatasetFactorSampler(images, all_factors, names)
    votes = dict(num_train=args.score_votes, num_eval=max(1, args.score_votes // 2), seed=args.seed)
    out["factor_vae"] = _timed(seconds, "factor_vae", factor_vae_score, sampler, represent,
                               num_variance_estimate=min(10_000, len(images)), **votes)
    out["beta_vae"] = _timed(seconds, "beta_vae", beta_vae_score, sampler, represent, **votes)
    return out


def _sample_quality(model, data, args, device, seconds: dict) -> dict:
    from vae_core.metrics import sample_quality

    bar = None
    if not args.quiet:
        from tqdm import tqdm

        bar = tqdm(unit="batch", desc="feature classifier (once per dataset)", dynamic_ncols=True, file=sys.stderr)

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.update(done - bar.n)

    try:
        out = _timed(seconds, "sample_quality", sample_quality, model, data, num_samples=args.samples,
                     seed=args.seed, split=args.split, cache_dir=args.cache_dir, device=device,
                     progress=progress if bar is not None else None)
    finally:
        if bar is not None:
            bar.close()
    return out


def print_metrics(result: dict, seconds: dict) -> None:
    """The text report of :func:`run_metrics`' results."""
    rec = result.get("reconstruction")
    if rec:
        print(f"reconstruction ({rec['num_images']} images, pixels in [0, 1]):")
        print(f"  MSE  {rec['mse']:.5f}")
        print(f"  PSNR {rec['psnr']:.2f} dB")
        print(f"  SSIM {rec['ssim']:.4f}")
    dis = result.get("disentanglement")
    if dis:
        print(f"disentanglement ({dis['points']} codes; factors: {', '.join(dis['factors'])}):")
        print(f"  MIG   {dis['mig']:.4f}")
        print(f"  SAP   {dis['sap']:.4f}")
        dci = dis["dci"]
        print(f"  DCI   disentanglement {dci['disentanglement']:.4f}, completeness {dci['completeness']:.4f}, "
              f"informativeness {dci['informativeness']:.4f}")
        print(f"  FactorVAE score {dis['factor_vae']['eval_accuracy']:.4f} "
              f"({dis['factor_vae']['num_active_dims']} active dimensions)")
        print(f"  beta-VAE score  {dis['beta_vae']['eval_accuracy']:.4f}")
    sq = result.get("sample_quality")
    if sq:
        net = sq["feature_net"]
        print(f"sample quality ({sq['num_samples']} samples; {sq['feature_space']}; classifier accuracy "
              f"{net['accuracy']:.3f}, {'cached' if net['cached'] else 'trained now'}):")
        print(f"  Frechet distance {sq['frechet_distance']:.3f}")
        print(f"  precision {sq['precision']:.4f}, recall {sq['recall']:.4f} (k={sq['k']})")
    print("seconds: " + ", ".join(f"{name} {value:.2f}" for name, value in seconds.items()))
