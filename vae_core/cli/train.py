"""The ``train`` and ``evaluate`` subcommands."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

from vae_core.checkpoint import load_checkpoint, save_checkpoint
from vae_core.cli.common import (EXIT_INTERRUPTED, add_data_options, add_model_source, add_optimisation_options,
                                 float_range, int_range, load_data_from_args, load_model_for, print_warnings)
from vae_core.cli.family import add_family_options, check_resume_family, model_settings, objective_settings
from vae_core.cli.metrics import add_metric_options, check_metric_input, print_metrics, run_metrics
from vae_core.data import DATASET_SPECS, DatasetSplits
from vae_core.errors import CLIError
from vae_core.metrics import IWAE_K_MAX, evaluate, iwae_nll
from vae_core.objectives import check_objective
from vae_core.resources import check_writable
from vae_core.registry import build_model, list_models, model_config_class
from vae_core.training import DEVICES, KL_ANNEALING, LIMITS, SEED_MAX, TrainConfig, iter_training, resolve_device

__all__ = ["add_commands", "add_train_options", "train_config", "new_model", "build_training", "cmd_train",
           "cmd_evaluate"]


def add_commands(subparsers) -> None:
    """Add the ``train`` and ``evaluate`` subcommands to an argparse subparsers object."""
    train = subparsers.add_parser(
        "train", help="train a model and write a checkpoint",
        description="Train a VAE. The checkpoint is rewritten after every epoch, so an interrupted run keeps "
                    "its last finished epoch. Under torchrun the same command trains with "
                    "DistributedDataParallel.")
    add_train_options(train)
    train.add_argument("--resume", metavar="CHECKPOINT", help="continue training this checkpoint")
    train.add_argument("--out", required=True, metavar="CHECKPOINT",
                       help="output checkpoint: a folder, or a single FILE.safetensors")
    train.add_argument("--tensorboard", metavar="DIR",
                       help="also log losses, test metrics, per-dimension KL, reconstructions and prior samples "
                            "to this TensorBoard run folder (view with: tensorboard --logdir DIR)")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.set_defaults(handler=cmd_train)

    ev = subparsers.add_parser(
        "evaluate", help="evaluate a checkpoint on a dataset",
        description="Negative ELBO, its terms, active units and (with --iwae-k) the importance-weighted "
                    "log-likelihood bound, all in nats per image; reconstruction MSE, PSNR and SSIM; with "
                    "--disentanglement and --sample-quality those scores too. Every metric reports its time "
                    "in seconds.")
    add_model_source(ev)
    ev.add_argument("--dataset", metavar="SPEC", help="dataset spec (default: the one the checkpoint was trained on; "
                                                      "required with --model-file)")
    add_data_options(ev)
    ev.add_argument("--split", choices=["test", "train"], default="test")
    ev.add_argument("--iwae-k", type=int_range(1, IWAE_K_MAX), metavar="K",
                    help=f"importance samples per image for the IWAE log-likelihood bound, 1 to {IWAE_K_MAX} "
                         "(5000 is the usual protocol); batched, with a progress bar and its ETA")
    ev.add_argument("--batch-size", type=int_range(1, 1_000_000), default=500, metavar="N",
                    help="images per batch, 1 to 1000000 (default: 500; the IWAE bound scores at most 100 "
                         "images at a time)")
    ev.add_argument("--device", choices=DEVICES, default="auto")
    ev.add_argument("--seed", type=int_range(0, SEED_MAX), default=0, metavar="S",
                    help=f"seed of the posterior samples, 0 to {SEED_MAX} (default: 0): the same seed gives "
                         "the same numbers")
    ev.add_argument("--quiet", action="store_true", help="no progress bar")
    ev.add_argument("--json", action="store_true", help="print one JSON object")
    add_metric_options(ev)
    ev.set_defaults(handler=cmd_evaluate)


def add_train_options(train) -> None:
    """Add what a run is made of: the dataset, the model, the optimization and family options.

    ``train`` has these and its own ``--resume``, ``--out``, ``--tensorboard`` and
    ``--quiet``; ``sweep`` adds the same options through a wrapper that accepts lists.
    ``train`` is anything with argparse's ``add_argument`` and ``add_argument_group``.
    """
    specs = "; ".join(f"{name}: {desc}" for name, desc in DATASET_SPECS)
    train.add_argument("--dataset", required=True, metavar="SPEC", help=f"dataset spec ({specs})")
    add_data_options(train)
    # --model, --latent-dim, --hidden and --likelihood default to None so that a resumed
    # run can tell an explicit value (which must match the checkpoint) from the default.
    train.add_argument("--model", choices=list_models(), help="model architecture (default: mlp)")
    train.add_argument("--latent-dim", type=int_range(1, 4096), metavar="N",
                       help="latent dimensions, 1 to 4096 (default: 20)")
    train.add_argument("--hidden", type=int_range(1, 65536), nargs="+", metavar="N",
                       help="hidden sizes, each 1 to 65536: layers for mlp/cvae (default 400), "
                            "fully-connected width for conv/vaegan, one width per stochastic layer (or one for all) for hvae")
    train.add_argument("--likelihood", choices=["bernoulli", "gaussian"],
                       help="decoder likelihood (default: suggested by the dataset)")
    train.add_argument("--beta", type=float_range(*LIMITS["beta"]), default=1.0, metavar="B",
                       help="KL weight (β-VAE), 0 to 1000 (default: 1)")
    train.add_argument("--kl-anneal", choices=KL_ANNEALING, default="none", help="KL warm-up schedule")
    train.add_argument("--warmup-epochs", type=float_range(*LIMITS["warmup_epochs"]), default=0.0, metavar="E",
                       help="epochs of linear KL warm-up, 0 to 100000 (default: 0)")
    add_optimisation_options(train, batch_default=128, batch_help="batch size")
    add_family_options(train)


# -- train ----------------------------------------------------------------------------------
def cmd_train(args: argparse.Namespace) -> int:
    """Handler of ``python -m vae_core train``."""
    rank, world, local_rank = _init_distributed(args.device)
    out = Path(args.out)
    if rank == 0:
        # A wrong --out should fail now, not after the first epoch.
        check_writable(out)
    data = load_data_from_args(args)
    config = train_config(args)
    if world > 1 and resolve_device(args.device).type == "cuda":
        config.device = "cuda"
        torch.cuda.set_device(local_rank)
    history, optimizer_state = [], None
    if args.resume:
        ckpt = load_checkpoint(args.resume)
        if rank == 0:
            print_warnings(ckpt)
        _check_resume_options(args, ckpt)
        check_resume_family(args, ckpt)
        model, history, optimizer_state = ckpt.model, ckpt.history, ckpt.optimizer_state
    else:
        model = new_model(args, data)
    try:
        check_objective(model, config.objective, config.samples)
    except ValueError as exc:
        raise CLIError(str(exc)) from None

    logger = _tensorboard_logger(args.tensorboard, model, data) if rank == 0 and args.tensorboard else None
    bar = None
    if rank == 0 and not args.quiet:
        from tqdm import tqdm

        bar = tqdm(total=config.epochs, unit="step", dynamic_ncols=True, file=sys.stderr)
    gen = iter_training(model, data, config, history=history, optimizer_state=optimizer_state)
    history = list(history)
    try:
        for report in gen:
            if logger is not None:
                logger.log_progress(report)
            if bar is not None:
                bar.total = report.total_steps
                bar.n = report.step
                bar.set_description(f"epoch {report.epoch + 1}/{report.epochs}")
                postfix = {"loss": f"{report.losses['loss']:.2f}", "kl": f"{report.losses['kl']:.2f}",
                           "img/s": f"{report.images_per_sec:.0f}"}
                if report.test:
                    postfix["test"] = f"{report.test['neg_elbo']:.2f}"
                bar.set_postfix(postfix, refresh=True)
            if report.kind == "epoch":
                history.append(report.history_entry)
                if rank == 0:
                    save_checkpoint(out, model, dataset=data, history=history, train_config=config,
                                    optimizer_state=report.optimizer_state)
    except KeyboardInterrupt:
        gen.close()
        print(f"interrupted; {out} holds the last finished epoch" if history else "interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    else:
        if world > 1:
            # Every rank leaves together: a rank tearing its process group down while another
            # still talks to it (rank 0 saves the checkpoint last) can abort the other one.
            torch.distributed.barrier()
    finally:
        if bar is not None:
            bar.close()
        if logger is not None:
            logger.close()
        if world > 1:
            torch.distributed.destroy_process_group()
    if rank == 0:
        last = history[-1] if history else {}
        if "test_neg_elbo" in last:
            print(f"saved {out}  (test negative ELBO {last['test_neg_elbo']:.2f} nats)", file=sys.stderr)
    return 0


def train_config(args: argparse.Namespace) -> TrainConfig:
    """The :class:`TrainConfig` of ``train``'s options; a stray objective option is a ``CLIError``."""
    return TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, beta=args.beta,
                       kl_anneal=args.kl_anneal, warmup_epochs=args.warmup_epochs, seed=args.seed,
                       device=args.device, num_threads=args.threads, **objective_settings(args))


def new_model(args: argparse.Namespace, data: DatasetSplits):
    """A freshly initialised model of ``train``'s options for ``data``, seeded by ``--seed``.

    Raises
    ------
    CLIError
        An option of another model family, or a cvae on an unlabelled dataset.
    ConfigError
        A model option out of its range.
    """
    # Seed before building: the initial weights are part of a reproducible run.
    torch.manual_seed(args.seed)
    return build_model(args.model or "mlp", **_model_config(args, data))


def build_training(args: argparse.Namespace, data: DatasetSplits):
    """``(model, config)`` of a new run with ``train``'s options, checked as ``train`` checks them.

    Raises
    ------
    CLIError
        For options that do not go together (an objective the model cannot train with,
        an option of another model family); ``ConfigError`` for values out of range.
    """
    config = train_config(args)
    model = new_model(args, data)
    try:
        check_objective(model, config.objective, config.samples)
    except ValueError as exc:
        raise CLIError(str(exc)) from None
    return model, config


def _tensorboard_logger(folder: str, model, data: DatasetSplits):
    """A TensorBoardLogger for ``folder``, checked before training starts."""
    check_writable(Path(folder) / "events.probe")
    try:
        from vae_core.tensorboard_log import TensorBoardLogger

        return TensorBoardLogger(folder, model, data.test)
    except ImportError as exc:
        raise CLIError(f"{exc} Or leave out --tensorboard.") from None


def _check_resume_options(args: argparse.Namespace, ckpt) -> None:
    # The architecture comes from the resumed checkpoint; an option that asks for another
    # one would otherwise be ignored without a word.
    config = ckpt.config
    hidden = getattr(config, "hidden", None)
    given = {
        "--model": (args.model, ckpt.model_name),
        "--latent-dim": (args.latent_dim, config.latent_dim),
        "--likelihood": (args.likelihood, config.likelihood),
        "--hidden": (None if args.hidden is None else (args.hidden[0] if isinstance(hidden, int) else tuple(args.hidden)),
                     hidden),
    }
    for option, (value, kept) in given.items():
        if value is not None and value != kept:
            shown = " ".join(map(str, value)) if isinstance(value, tuple) else value
            raise CLIError(f"{option} {shown} differs from the resumed checkpoint ({kept}): a resumed run keeps "
                           f"its model; leave out {option} or train a new model without --resume.")


def _model_config(args: argparse.Namespace, data: DatasetSplits) -> dict:
    config = {"image_shape": tuple(data.image_shape), "latent_dim": args.latent_dim or 20,
              "likelihood": args.likelihood or data.likelihood}
    if args.model == "cvae":
        if data.num_classes < 2:
            raise CLIError(f"The cvae model needs a labelled dataset; {data.spec} has no labels.")
        config["num_classes"] = data.num_classes
    model = args.model or "mlp"
    if args.hidden:
        # conv and vaegan take one fully-connected width; the others a size per layer.
        single = isinstance(getattr(model_config_class(model)(), "hidden", None), int)
        config["hidden"] = args.hidden[0] if single else tuple(args.hidden)
    config.update(model_settings(args, model, config["latent_dim"]))
    return config


def _iwae(model, split, args: argparse.Namespace, device) -> dict:
    # k = 5000 on a 10k-image test set is a long job: batched, with a progress bar and an ETA.
    bar = None
    if not args.quiet:
        from tqdm import tqdm

        bar = tqdm(total=len(split), unit="img", desc=f"IWAE k={args.iwae_k}", dynamic_ncols=True, file=sys.stderr)

    def progress(done: int, total: int) -> None:
        bar.update(done - bar.n)

    try:
        out = iwae_nll(model, split, args.iwae_k, seed=args.seed, batch_size=min(args.batch_size, 100),
                       device=device, progress=progress if bar is not None else None)
    finally:
        if bar is not None:
            bar.close()
    return {"iwae_nll": out["nll"], "iwae_k": out["k"]}


def _init_distributed(device: str) -> tuple[int, int, int]:
    # torchrun sets WORLD_SIZE/LOCAL_RANK; a plain run trains in this one process.
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1, 0
    import torch.distributed as dist

    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = device in ("auto", "cuda") and torch.cuda.is_available()
    dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return dist.get_rank(), dist.get_world_size(), local_rank


# -- evaluate -------------------------------------------------------------------------------
def cmd_evaluate(args: argparse.Namespace) -> int:
    """Handler of ``python -m vae_core evaluate``."""
    model, name, data = load_model_for(args)
    device = resolve_device(args.device)
    model = model.to(device)
    split = data.test if args.split == "test" else data.train
    if len(split) == 0:
        raise CLIError(f"The {args.split} split of {data.spec} has no images: evaluate on the other split "
                       "(--split) or another dataset.")
    check_metric_input(model, data, args)
    seconds: dict = {}
    started = time.perf_counter()
    result = evaluate(model, split, batch_size=args.batch_size, device=device, seed=args.seed)
    seconds["elbo"] = time.perf_counter() - started
    if args.iwae_k:
        started = time.perf_counter()
        result.update(_iwae(model, split, args, device))
        seconds["iwae"] = time.perf_counter() - started
    result.update(run_metrics(model, data, split, args, device, seconds))
    result.update({"dataset": data.spec, "split": args.split, "images": len(split), "model": name,
                   "seconds": seconds})
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{name} on {data.spec} ({args.split}, {len(split)} images), nats per image:")
        print(f"  negative ELBO  {result['neg_elbo']:.3f}")
        print(f"  reconstruction {result['recon']:.3f}")
        print(f"  KL             {result['kl']:.3f}")
        print(f"  active units   {result['active_units']} / {model.latent_dim}")
        if "codebook_usage" in result:
            prior = "learned prior" if result["prior_trained"] else "uniform prior"
            print(f"  codebook usage {result['codebook_usage']} / {result['codebook_size']} codes")
            print(f"  perplexity     {result['perplexity']:.2f}")
            print(f"  prior NLL of the codes ({prior}) {result['kl']:.3f}")
            print(f"  NLL bound, reconstruction + prior NLL ({prior}) {result['neg_elbo']:.3f}")
        if "iwae_nll" in result:
            print(f"  IWAE NLL (k={args.iwae_k}) {result['iwae_nll']:.3f}")
        print_metrics(result, seconds)
    return 0
