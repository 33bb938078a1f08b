"""UMAP on the map: from the click to the first layout on screen, and to the final one, in a fresh process.

Every measurement is a new interpreter (``--child``) that shows the real
:class:`~explorer.ui.map.panel.MapPanel` with 70,000 MNIST codes (``mlp`` 784-400-20 trained
one epoch, PCA layout) and then clicks UMAP (``panel.set_projection("umap")``, the app's
default settings: fit on 20,000 codes with exact neighbours, the rest placed). The clock
starts at the click. It stops

* at the first layout on screen: ``MapJobs.intermediate_layout_applied`` followed by a
  synchronous repaint of the map (umap's initial layout of the codes);
* at the final layout: ``MapJobs.layout_applied``.

Nothing is warmed before the click: the fitting process is started by it, imports umap and
compiles what numba has not cached. The numba cache is stated per row: *empty* is a new
``NUMBA_CACHE_DIR`` (the first UMAP ever on a machine), *filled* is the folder the empty run
left behind (every later session), and *filled by --precompile* is a new folder filled only by
``latent-explorer --precompile``, the step ``scripts/bootstrap.sh`` runs once after installing. The baseline is the same click, in the same run, in the code
of ``--baseline-repo`` (the previous release, whose map shows nothing new until the fit ends),
with the filled cache.

The codes are computed once and kept in ``.cache/bench/`` (training is not what is measured).

Usage: python bench/bench_umap.py [--baseline-repo ../main] [--write]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CODES = REPO / ".cache" / "bench" / "mnist_mlp784-400-20_epoch1_codes.npy"


# ---------------------------------------------------------------------------------------------
# The measured process
# ---------------------------------------------------------------------------------------------
def child(codes_path: str, out_path: str, repo: str) -> None:
    """Runs in a fresh interpreter with ``repo`` first on the path; writes its timings as JSON."""
    sys.path.insert(0, repo)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    import numpy as np
    import torch
    from PySide6 import QtWidgets

    torch.set_num_threads(1)
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication([])
    import explorer
    from bench.bench_map import build_state, make_host   # of `repo`: the panel as that version builds it
    from vae_core import build_model, load_dataset

    assert Path(explorer.__file__).resolve().is_relative_to(Path(repo).resolve()), explorer.__file__
    data = load_dataset("mnist", str(Path(repo).parent / "shared" / "data"))
    codes = np.load(codes_path)
    torch.manual_seed(0)   # the layout depends on the codes only; the model decodes the hovered points
    model = build_model("mlp", image_shape=data.image_shape, latent_dim=codes.shape[1], hidden=(400,),
                        likelihood=data.likelihood)
    state = build_state(data, model, codes)
    host, panel, _ = make_host(state)
    assert panel.jobs.wait(600), "the PCA layout did not finish"
    panel.view.finish_animation()
    for _ in range(20):
        app.processEvents()
    times: dict = {"intermediate": []}
    view = panel.view
    t0 = 0.0

    def on_intermediate():
        view.viewport().repaint()
        times["intermediate"].append(time.perf_counter() - t0)

    def on_final():
        view.viewport().repaint()
        times["final"] = time.perf_counter() - t0

    if hasattr(panel.jobs, "intermediate_layout_applied"):
        panel.jobs.intermediate_layout_applied.connect(on_intermediate)
    panel.jobs.layout_applied.connect(on_final)
    cpu0 = os.times()
    t0 = time.perf_counter()
    panel.set_projection("umap")
    deadline = t0 + 1800
    while "final" not in times and time.perf_counter() < deadline:
        app.processEvents()
        time.sleep(0.002)
    from explorer.jobs.umap_fit import shared_fit_process

    shared_fit_process().close()   # so that the fitting process's CPU time is counted below
    cpu1 = os.times()
    times["gui_cpu"] = (cpu1.user + cpu1.system) - (cpu0.user + cpu0.system)
    times["fit_cpu"] = (cpu1.children_user + cpu1.children_system) - (cpu0.children_user + cpu0.children_system)
    times["kind"] = state.map.projection.kind if state.map.projection is not None else None
    times["n"] = int(len(codes))
    Path(out_path).write_text(json.dumps(times))
    host.close()


# ---------------------------------------------------------------------------------------------
# The driver
# ---------------------------------------------------------------------------------------------
def prepare_codes(root: Path, epochs: int) -> Path:
    if CODES.exists():
        return CODES
    import numpy as np
    import torch

    from vae_core import TrainConfig, build_model, fit, load_dataset
    from vae_core.latent import encode_dataset

    data = load_dataset("mnist", str(root))
    torch.manual_seed(0)
    model = build_model("mlp", image_shape=data.image_shape, latent_dim=20, hidden=(400,), likelihood=data.likelihood)
    fit(model, data, TrainConfig(epochs=epochs, batch_size=128, num_threads=1, device="cpu"))
    model.eval()
    codes, _ = encode_dataset(model, data.all().images)
    CODES.parent.mkdir(parents=True, exist_ok=True)
    np.save(CODES, np.ascontiguousarray(codes, dtype=np.float32))
    return CODES


def measure(repo: Path, numba_dir: Path, codes: Path) -> dict:
    env = dict(os.environ, NUMBA_CACHE_DIR=str(numba_dir), OMP_NUM_THREADS="1", QT_QPA_PLATFORM="offscreen")
    env.pop("PYTHONPATH", None)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "times.json"
        load = os.getloadavg()[0]
        started = time.perf_counter()
        subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child", str(codes), str(out), str(repo)],
                       cwd=repo, env=env, check=True)
        result = json.loads(out.read_text())
    result["process_s"] = time.perf_counter() - started
    result["load_before"] = load
    result["load_after"] = os.getloadavg()[0]
    return result


def precompile(repo: Path, numba_dir: Path) -> float:
    """What ``scripts/bootstrap.sh`` runs once after installing; its wall time."""
    env = dict(os.environ, NUMBA_CACHE_DIR=str(numba_dir), OMP_NUM_THREADS="1")
    env.pop("PYTHONPATH", None)
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "explorer", "--precompile"], cwd=repo, env=env, check=True)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", nargs=3, metavar=("CODES", "OUT", "REPO"), help=argparse.SUPPRESS)
    parser.add_argument("--baseline-repo", default=str(REPO.parent / "main"),
                        help="checkout of the previous release to measure in the same run ('' to skip)")
    parser.add_argument("--train-epochs", type=int, default=1)
    parser.add_argument("--write", action="store_true", help="update the section in docs/BENCHMARKS.md")
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return 0

    sys.path.insert(0, str(REPO))
    from bench._common import data_root, machine, write_section

    root = data_root()
    if root is None:
        print("MNIST not found (looked in ../shared/data): skipping the UMAP benchmark.")
        return 0
    codes = prepare_codes(root, args.train_epochs)
    rows = []
    with tempfile.TemporaryDirectory() as cache:
        cache = Path(cache) / "numba"
        cache.mkdir()
        rows.append(("this version", "empty", measure(REPO, cache, codes)))
        print(rows[-1], flush=True)
        rows.append(("this version", "filled", measure(REPO, cache, codes)))
        print(rows[-1], flush=True)
        installed = cache.parent / "installed"
        installed.mkdir()
        precompile_s = precompile(REPO, installed)
        rows.append(("this version", f"filled by `--precompile` at install ({precompile_s:.0f} s)",
                     measure(REPO, installed, codes)))
        print(rows[-1], flush=True)
        baseline = Path(args.baseline_repo) if args.baseline_repo else None
        if baseline is not None and (baseline / "explorer" / "jobs" / "umap_fit.py").exists():
            rows.append((f"baseline: {_commit(baseline)}, before live layouts", "filled", measure(baseline, cache, codes)))
            print(rows[-1], flush=True)

    def first(r):
        return f"**{r['intermediate'][0]:.1f} s**" if r["intermediate"] else "– (nothing until the end)"

    table = ["| code | numba cache | first layout on screen | layouts shown while optimising | final layout "
             "| CPU: fitting process / GUI process | load average before → after |",
             "|---|---|---|---|---|---|---|"]
    for name, state, r in rows:
        table.append(f"| {name} | {state} | {first(r)} | {len(r['intermediate'])} | {r['final']:.1f} s "
                     f"| {r['fit_cpu']:.0f} s / {r['gui_cpu']:.0f} s | {r['load_before']:.1f} → {r['load_after']:.1f} |")
    ours = rows[1][2]
    installed = rows[2][2]
    lines = [
        f"`python bench/bench_umap.py --write` ({machine()}). 70,000 MNIST codes (`mlp` 784-400-20, one epoch); "
        "the map panel's default UMAP settings (fit on 20,000 codes, exact 15 nearest neighbours, 200 epochs, the "
        "other 50,000 codes placed by their nearest fitted codes). Each row is a fresh GUI process: the clock starts "
        "at the click on UMAP, which also starts the fitting process (nothing pre-warmed). *empty*: a new "
        "`NUMBA_CACHE_DIR`, the first UMAP on a machine; *filled*: the folder the empty run left behind, every later "
        "session. The machine is shared: load averages are on 2 cores, so wall times are pessimistic by about the "
        "load over 2.",
        "",
        *table,
        "",
        (f"With a filled cache the first layout is on screen {ours['intermediate'][0]:.1f} s after the click "
         f"(goal: 15 s) and the points then glide into place for {ours['final'] - ours['intermediate'][0]:.0f} s."
         if ours["intermediate"] else "No intermediate layout was shown."),
        "",
        (f"The first UMAP after installing with `scripts/bootstrap.sh`, which runs `latent-explorer --precompile` "
         f"once into an empty cache, shows its first layout {installed['intermediate'][0]:.1f} s after the click."
         if installed["intermediate"] else ""),
    ]
    body = "\n".join(lines)
    print(body)
    if args.write:
        write_section("UMAP on the map", body)
        print("updated docs/BENCHMARKS.md")
    return 0


def _commit(repo: Path) -> str:
    try:
        return subprocess.run(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return repo.name


if __name__ == "__main__":
    raise SystemExit(main())
