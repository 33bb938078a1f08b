"""Build the pretrained default model shipped in ``assets/`` (``make assets``).

Reproducible: the initial weights, the split and the batch order come from the seed, and
training runs on one CPU thread, so the same versions of torch and numpy give the same
weights byte for byte.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(REPO / "assets" / "digits-mlp-2d"), help="checkpoint folder to write")
    parser.add_argument("--epochs", type=int, default=150)
    args = parser.parse_args(argv)

    import torch

    from vae_core import TrainConfig, iter_training, load_dataset, save_checkpoint

    sys.path.insert(0, str(REPO))
    from explorer.state import build_model_for

    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    data = load_dataset("digits", seed=0)
    model = build_model_for(data, "mlp", latent_dim=2, hidden=(256, 128), seed=0)
    config = TrainConfig(epochs=args.epochs, batch_size=64, lr=2e-3, beta=1.0, seed=0, device="cpu", num_threads=1)
    history, optimizer_state = [], None
    for report in iter_training(model, data, config):
        if report.kind == "epoch":
            history.append(report.history_entry)
            optimizer_state = report.optimizer_state
    out = save_checkpoint(args.out, model, dataset=data, history=history, train_config=config,
                          optimizer_state=optimizer_state)
    last = history[-1]
    print(f"wrote {out}: test negative ELBO {last['test_neg_elbo']:.2f} nats, "
          f"{last['test_active_units']} active units", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
