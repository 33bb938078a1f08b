"""Command line: ``python -m vae_core {train,evaluate,interpolate,arithmetic}``.

Errors the user can fix (bad arguments, missing data, a checkpoint that does not fit)
print one line and exit with status 2; nothing prints a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from vae_core.errors import CLIError

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line instead of usage + error
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    from vae_core.data import DATASET_SPECS
    from vae_core.registry import list_models
    from vae_core.training import DEVICES, KL_ANNEALING

    parser = _Parser(prog="python -m vae_core", description="Train, evaluate and explore variational autoencoders.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    specs = "; ".join(f"{name}: {desc}" for name, desc in DATASET_SPECS)

    train = sub.add_parser("train", help="train a model and write a checkpoint",
                           description="Train a VAE. The checkpoint is rewritten after every epoch, so an "
                                       "interrupted run keeps its last finished epoch. Under torchrun the same "
                                       "command trains with DistributedDataParallel.")
    train.add_argument("--dataset", required=True, metavar="SPEC", help=f"dataset spec ({specs})")
    _data_options(train)
    train.add_argument("--model", default="mlp", choices=list_models(), help="model architecture (default: mlp)")
    train.add_argument("--latent-dim", type=int, default=20, metavar="N", help="latent dimensions (default: 20)")
    train.add_argument("--hidden", type=int, nargs="+", metavar="N",
                       help="hidden sizes: layers for mlp/cvae (default 400), fully-connected width for conv")
    train.add_argument("--likelihood", choices=["bernoulli", "gaussian"],
                       help="decoder likelihood (default: suggested by the dataset)")
    train.add_argument("--beta", type=float, default=1.0, help="KL weight, β-VAE (default: 1)")
    train.add_argument("--kl-anneal", choices=KL_ANNEALING, default="none", help="KL warm-up schedule")
    train.add_argument("--warmup-epochs", type=float, default=0.0, help="epochs of linear KL warm-up")
    train.add_argument("--epochs", type=int, default=10, help="epochs (default: 10)")
    train.add_argument("--batch-size", type=int, default=128, help="batch size (default: 128)")
    train.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (default: 1e-3)")
    train.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    train.add_argument("--device", choices=DEVICES, default="auto", help="device (default: auto)")
    train.add_argument("--threads", type=int, metavar="N", help="torch CPU threads")
    train.add_argument("--resume", metavar="CHECKPOINT", help="continue training this checkpoint")
    train.add_argument("--out", required=True, metavar="CHECKPOINT",
                       help="output checkpoint: a folder, or a single FILE.safetensors")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.set_defaults(handler=_cmd_train)

    ev = sub.add_parser("evaluate", help="evaluate a checkpoint on a dataset",
                        description="Negative ELBO, its terms, active units and (with --iwae-k) the "
                                    "importance-weighted log-likelihood bound, all in nats per image.")
    ev.add_argument("checkpoint", metavar="CHECKPOINT")
    ev.add_argument("--dataset", metavar="SPEC", help="dataset spec (default: the one the checkpoint was trained on)")
    _data_options(ev)
    ev.add_argument("--split", choices=["test", "train"], default="test")
    ev.add_argument("--iwae-k", type=int, metavar="K", help="importance samples for the IWAE bound (e.g. 100 or 5000)")
    ev.add_argument("--batch-size", type=int, default=500)
    ev.add_argument("--device", choices=DEVICES, default="auto")
    ev.add_argument("--seed", type=int, default=0)
    ev.add_argument("--json", action="store_true", help="print one JSON object")
    ev.set_defaults(handler=_cmd_evaluate)

    try:
        from vae_core.cli_latent import add_commands
    except ImportError:  # the latent-space commands are optional for a minimal install
        pass
    else:
        add_commands(sub)
    return parser


def _data_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-root", metavar="DIR", help="where torchvision datasets live or are downloaded to")
    p.add_argument("--image-size", type=int, metavar="N", help="side length for folder:/shapes datasets")
    p.add_argument("--channels", type=int, choices=[1, 3], help="1 = grayscale, 3 = RGB (folder: datasets)")


def load_data_from_args(args, spec: str | None = None, options: dict | None = None):
    """Load the dataset named on the command line (shared by all subcommands)."""
    from vae_core.data import load_dataset

    opts = dict(options or {})
    if getattr(args, "image_size", None):
        opts["image_size"] = args.image_size
    if getattr(args, "channels", None):
        opts["channels"] = args.channels
    known = {"image_size", "channels", "seed", "test_fraction"}
    return load_dataset(spec or args.dataset, args.data_root, **{k: v for k, v in opts.items() if k in known})


def load_checkpoint_for(args, *, dataset_required: bool = True):
    """Load ``args.checkpoint`` and the dataset (given or remembered); check they fit."""
    from vae_core.checkpoint import load_checkpoint
    from vae_core.training import check_compatible

    ckpt = load_checkpoint(args.checkpoint)
    spec = getattr(args, "dataset", None)
    options = None
    if not spec and ckpt.dataset:
        spec, options = ckpt.dataset.get("spec"), ckpt.dataset.get("options")
    if not spec:
        if dataset_required:
            raise CLIError("The checkpoint does not say which dataset it was trained on: pass --dataset.")
        return ckpt, None
    data = load_data_from_args(args, spec, options)
    check_compatible(ckpt.model, data)
    return ckpt, data


# -- train ----------------------------------------------------------------------------------
def _cmd_train(args) -> int:
    import torch

    from vae_core.checkpoint import load_checkpoint, save_checkpoint
    from vae_core.registry import build_model
    from vae_core.training import TrainConfig, iter_training, resolve_device

    rank, world, local_rank = _init_distributed(args.device)
    data = load_data_from_args(args)
    config = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, beta=args.beta,
                         kl_anneal=args.kl_anneal, warmup_epochs=args.warmup_epochs, seed=args.seed,
                         device=args.device, num_threads=args.threads)
    if world > 1 and resolve_device(args.device).type == "cuda":
        config.device = "cuda"
        torch.cuda.set_device(local_rank)
    history, optimizer_state = [], None
    if args.resume:
        ckpt = load_checkpoint(args.resume)
        model, history, optimizer_state = ckpt.model, ckpt.history, ckpt.optimizer_state
    else:
        # Seed before building: the initial weights are part of a reproducible run.
        torch.manual_seed(args.seed)
        model = build_model(args.model, **_model_config(args, data))

    bar = None
    if rank == 0 and not args.quiet:
        from tqdm import tqdm

        bar = tqdm(total=config.epochs * 1, unit="step", dynamic_ncols=True, file=sys.stderr)
    out = Path(args.out)
    gen = iter_training(model, data, config, history=history, optimizer_state=optimizer_state)
    history = list(history)
    try:
        for report in gen:
            if bar is not None:
                if bar.total != report.total_steps - len(history) * 0:
                    bar.total = report.total_steps
                bar.n = report.step
                bar.set_description(f"epoch {report.epoch + 1}/{report.epochs}")
                postfix = {"loss": f"{report.losses['loss']:.2f}", "kl": f"{report.losses['kl']:.2f}",
                           "img/s": f"{report.images_per_sec:.0f}"}
                if report.test:
                    postfix["test"] = f"{report.test['neg_elbo']:.2f}"
                bar.set_postfix(postfix, refresh=True)
            if report.kind == "epoch":
                from vae_core.training import _history_entry

                history.append(_history_entry(report))
                if rank == 0:
                    save_checkpoint(out, model, dataset=data, history=history, train_config=config,
                                    optimizer_state=model._optimizer.state_dict())
    except KeyboardInterrupt:
        gen.close()
        if bar is not None:
            bar.close()
        print(f"interrupted; {out} holds the last finished epoch" if history else "interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        if bar is not None:
            bar.close()
        if world > 1:
            torch.distributed.destroy_process_group()
    if rank == 0:
        last = history[-1] if history else {}
        if "test_neg_elbo" in last:
            print(f"saved {out}  (test negative ELBO {last['test_neg_elbo']:.2f} nats)", file=sys.stderr)
    return 0


def _model_config(args, data) -> dict:
    config = {"image_shape": tuple(data.image_shape), "latent_dim": args.latent_dim,
              "likelihood": args.likelihood or data.likelihood}
    if args.model == "cvae":
        if data.num_classes < 2:
            raise CLIError(f"The cvae model needs a labelled dataset; {data.spec} has no labels.")
        config["num_classes"] = data.num_classes
    if args.hidden:
        config["hidden"] = args.hidden[0] if args.model == "conv" else tuple(args.hidden)
    return config


def _init_distributed(device: str) -> tuple[int, int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1, 0
    import torch
    import torch.distributed as dist

    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = device in ("auto", "cuda") and torch.cuda.is_available()
    dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return dist.get_rank(), dist.get_world_size(), local_rank


# -- evaluate -------------------------------------------------------------------------------
def _cmd_evaluate(args) -> int:
    from vae_core.metrics import evaluate
    from vae_core.training import resolve_device

    ckpt, data = load_checkpoint_for(args)
    device = resolve_device(args.device)
    model = ckpt.model.to(device)
    split = data.test if args.split == "test" else data.train
    result = evaluate(model, split, batch_size=args.batch_size, iwae_k=args.iwae_k, device=device, seed=args.seed)
    result.update({"dataset": data.spec, "split": args.split, "images": len(split), "model": ckpt.model_name})
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{ckpt.model_name} on {data.spec} ({args.split}, {len(split)} images), nats per image:")
        print(f"  negative ELBO  {result['neg_elbo']:.3f}")
        print(f"  reconstruction {result['recon']:.3f}")
        print(f"  KL             {result['kl']:.3f}")
        print(f"  active units   {result['active_units']} / {model.latent_dim}")
        if "iwae_nll" in result:
            print(f"  IWAE NLL (k={args.iwae_k}) {result['iwae_nll']:.3f}")
    return 0


def main(argv: list[str] | None = None) -> int:
    from vae_core.checkpoint import CheckpointError
    from vae_core.data import DatasetError

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except (CLIError, DatasetError, CheckpointError, ValueError, FileNotFoundError) as exc:
        print(f"{parser.prog} {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except RuntimeError as exc:  # e.g. NaN loss, out of memory: explain in one line
        print(f"{parser.prog} {args.command}: error: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 1
