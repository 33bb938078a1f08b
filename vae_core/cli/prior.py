"""The ``train-prior`` subcommand: fit a VQ-VAE checkpoint's prior over code grids."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from vae_core.checkpoint import CONFIG_FILE, HISTORY_FILE, OPTIMIZER_FILE, WEIGHTS_FILE, save_checkpoint
from vae_core.cli.common import EXIT_INTERRUPTED, add_data_options, add_optimisation_options, load_checkpoint_for
from vae_core.errors import CLIError, OutputError
from vae_core.prior import PriorConfig, train_prior
from vae_core.resources import check_writable

__all__ = ["add_commands", "cmd_train_prior"]


def add_commands(subparsers) -> None:
    """Add the ``train-prior`` subcommand to an argparse subparsers object."""
    cmd = subparsers.add_parser(
        "train-prior", help="fit the prior over code grids of a vqvae checkpoint",
        description="Encode the dataset to code grids with a trained vqvae and fit its autoregressive prior "
                    "(a small causal transformer). The checkpoint is rewritten after every epoch with the prior "
                    "inside; evaluate then reports the prior's NLL of the codes and the bound on -log p(x).")
    cmd.add_argument("checkpoint", metavar="CHECKPOINT", help="a vqvae checkpoint (folder or .safetensors)")
    cmd.add_argument("--dataset", metavar="SPEC", help="dataset spec (default: the one the checkpoint was trained on)")
    add_data_options(cmd)
    add_optimisation_options(cmd, batch_default=64, batch_help="code grids per step")
    cmd.add_argument("--out", metavar="CHECKPOINT",
                     help="output checkpoint (default: rewrite CHECKPOINT, keeping its other files)")
    cmd.add_argument("--quiet", action="store_true", help="no progress bar")
    cmd.set_defaults(handler=cmd_train_prior)


def _carried_files(path: Path) -> dict[str, bytes]:
    # save_checkpoint rewrites a folder whole; the map's side files (projection, pins,
    # groups) must survive a prior being added to it.
    if not path.is_dir():
        return {}
    standard = {CONFIG_FILE, WEIGHTS_FILE, HISTORY_FILE, OPTIMIZER_FILE}
    files = {}
    for file in sorted(path.iterdir()):
        if file.is_file() and file.name not in standard and not file.name.startswith("."):
            try:
                files[file.name] = file.read_bytes()
            except OSError as exc:
                raise OutputError(f"Could not read {file} to keep it in the checkpoint: {exc.strerror or exc}.") from None
    return files


def cmd_train_prior(args: argparse.Namespace) -> int:
    """Handler of ``python -m vae_core train-prior``."""
    source = Path(args.checkpoint)
    out = Path(args.out) if args.out else source
    check_writable(out)
    ckpt, data = load_checkpoint_for(args)
    if not hasattr(ckpt.model, "prior"):
        raise CLIError(f"{source} holds a {ckpt.model_name!r} model, which has no prior over codes: "
                       "train-prior needs a vqvae checkpoint.")
    config = PriorConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                         device=args.device, num_threads=args.threads)
    extra = _carried_files(source)
    bar = None
    if not args.quiet:
        from tqdm import tqdm

        bar = tqdm(total=config.epochs, unit="step", dynamic_ncols=True, file=sys.stderr)
    gen = train_prior(ckpt.model, data, config)
    last = None
    try:
        for report in gen:
            if bar is not None:
                bar.total = report.total_steps
                bar.n = report.step
                bar.set_description(f"prior epoch {report.epoch + 1}/{report.epochs}")
                postfix = {"code NLL": f"{report.losses['code_nll']:.2f}"}
                if report.test:
                    postfix["test"] = f"{report.test['code_nll']:.2f}"
                bar.set_postfix(postfix, refresh=True)
            if report.kind == "epoch":
                last = report
                save_checkpoint(out, ckpt.model, dataset=ckpt.dataset or data, history=ckpt.history,
                                train_config=ckpt.train_config, optimizer_state=ckpt.optimizer_state,
                                extra_files=extra)
    except KeyboardInterrupt:
        gen.close()
        print(f"interrupted; {out} holds the prior of the last finished epoch" if last else "interrupted",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        if bar is not None:
            bar.close()
    if last is not None and last.test:
        print(f"saved {out}  (test code NLL {last.test['code_nll']:.2f} nats per image; "
              f"{last.test['uniform_code_nll']:.2f} under the uniform prior)", file=sys.stderr)
    else:
        print(f"saved {out}", file=sys.stderr)
    return 0
