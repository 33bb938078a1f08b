"""A β sweep on MNIST traced as a rate–distortion curve, drawn by the window's Runs panel.

Runs ``python -m vae_core sweep`` (``mlp`` 784-400-10, Bernoulli, batch 128, Adam 1e-3,
seed 0, ``--epochs`` epochs, β in ``--betas``) into ``--out`` (resumable: finished runs are
skipped), reads the folder as the Runs panel does (``explorer.state.runs``) and renders the
panel's rate–distortion plot offscreen to ``docs/screenshots/rate-distortion-mnist.png``:
the rate is each run's test KL, the distortion its test reconstruction term, both in nats
per image. Skipped cleanly when MNIST is not in ``../shared/data``.

Usage: python bench/bench_rate_distortion.py [--epochs 3] [--betas 0.25,0.5,1,2,4,8]
                                             [--jobs 2] [--write]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from bench._common import machine, mnist_root_or_say, write_section  # noqa: E402

PICTURE = REPO / "docs" / "screenshots" / "rate-distortion-mnist.png"


def run_sweep(args, root: Path) -> None:
    cmd = [sys.executable, "-m", "vae_core", "sweep", "--dataset", "mnist", "--data-root", str(root),
           "--model", "mlp", "--latent-dim", "10", "--hidden", "400", "--epochs", str(args.epochs),
           "--batch-size", "128", "--beta", args.betas, "--jobs", str(args.jobs), "--threads", "1",
           "--out", str(args.out), "--quiet"]
    subprocess.run(cmd, cwd=REPO, check=True)


def render(folder: Path, picture: Path) -> None:
    """The Runs panel on ``folder``, its rate–distortion tab grabbed to ``picture``."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtWidgets import QApplication

    from explorer.ui.experiments.runs import RunsPanel

    app = QApplication.instance() or QApplication([])
    panel = RunsPanel()
    panel.runs.open(folder)
    panel.resize(1000, 700)
    panel.show()
    for _ in range(20):
        app.processEvents()
        time.sleep(0.02)
    picture.parent.mkdir(parents=True, exist_ok=True)
    panel.grab().save(str(picture))
    panel.close()


def report(args, table) -> str:
    from explorer.state.runs import curves

    rows = ["| β | rate: test KL (nats) | distortion: test reconstruction (nats) | test −ELBO | active units |",
            "|---|---|---|---|---|"]
    order = sorted(range(len(table.runs)), key=lambda i: table.runs[i].number("beta"))
    for i in order:
        r = table.runs[i]
        rows.append(f"| {r.number('beta'):g} | {r.number('kl'):.2f} | {r.number('recon'):.2f} | "
                    f"{r.number('neg_elbo'):.2f} | {r.value('active_units')} |")
    joined = len(curves(table, "beta"))
    seconds = [r.number("train_seconds") for r in table.runs]
    return "\n".join([
        f"`python bench/bench_rate_distortion.py --epochs {args.epochs} --betas {args.betas} --jobs {args.jobs} "
        f"--write` on {machine()}; each run trained for {min(seconds):.0f}–{max(seconds):.0f} s of wall time "
        f"(1 torch thread, {args.jobs} runs at once, on a machine shared with other jobs).",
        "",
        f"A β sweep of `mlp` 784-400-10 on MNIST (Bernoulli, batch 128, Adam 1e-3, seed 0, {args.epochs} epochs "
        "each), written by `python -m vae_core sweep` and opened in the Runs panel, which joins runs that "
        f"differ only in β into one curve ({joined} curve here). Rate is the test KL, distortion the test "
        "reconstruction term: raising β trades distortion for rate along the curve, as the β-VAE and "
        "rate–distortion papers (Alemi et al., 2018) describe.",
        "",
        f"![Rate–distortion curve of the β sweep in the Runs panel](screenshots/{PICTURE.name})",
        "",
        *rows,
    ])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--betas", default="0.25,0.5,1,2,4,8")
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--out", type=Path, default=REPO / "runs" / "rd-mnist")
    p.add_argument("--write", action="store_true", help="write the section of docs/BENCHMARKS.md and the picture")
    args = p.parse_args(argv)
    root = mnist_root_or_say()
    if root is None:
        return 0
    run_sweep(args, root)
    from explorer.state.runs import read_runs

    table = read_runs(args.out)
    text = report(args, table)
    print(text)
    if args.write:
        render(args.out, PICTURE)
        write_section("Rate–distortion of a β sweep on MNIST", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
