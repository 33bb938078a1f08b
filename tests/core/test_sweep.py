"""``python -m vae_core sweep``: one grid trained in local processes and as Ray tasks gives one
table of real metrics; an interrupted sweep resumes without training finished runs again;
grids that cannot run stop before anything runs."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vae_core.checkpoint import load_checkpoint
from vae_core.cli.parser import main
from vae_core.metrics import evaluate
from vae_core.sweep import plan_grid, read_summary, run_name

REPO = Path(__file__).resolve().parents[2]
# Four runs on digits, one torch thread each, so every run is reproducible whatever runs it.
GRID = ["--dataset", "digits", "--epochs", "2", "--batch-size", "64", "--hidden", "32", "--latent-dim", "2,4",
        "--beta", "0.5,4", "--threads", "1"]
NAMES = ["latent_dim=2,beta=0.5", "latent_dim=2,beta=4", "latent_dim=4,beta=0.5", "latent_dim=4,beta=4"]
# Wall-clock numbers differ between any two runs; everything else must not.
CLOCK = {"train_seconds"}


def sweep_cmd(*args) -> list[str]:
    return [sys.executable, "-m", "vae_core", "sweep", *map(str, args)]


def env() -> dict:
    # Child processes and Ray workers import this checkout's vae_core, wherever they start.
    return {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "RAY_DEDUP_LOGS": "0"}


def run_sweep_cli(*args, timeout=300) -> subprocess.CompletedProcess:
    return subprocess.run(sweep_cmd(*args), cwd=REPO, env=env(), capture_output=True, text=True, timeout=timeout)


def without_clock(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if k not in CLOCK} for row in rows]


@pytest.fixture(scope="module")
def local_sweep(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sweep") / "local"
    result = run_sweep_cli(*GRID, "--jobs", "2", "--out", out)
    assert result.returncode == 0, result.stderr
    return out


def test_local_sweep_writes_one_checkpoint_and_one_row_of_real_metrics_per_run(local_sweep, digits):
    spec = json.loads((local_sweep / "sweep.json").read_text())
    assert spec["grid"]["latent_dim"] == [2, 4] and spec["grid"]["beta"] == [0.5, 4.0]
    assert spec["fixed"]["dataset"] == "digits" and spec["command"][:4] == ["python", "-m", "vae_core", "sweep"]
    assert [r["name"] for r in spec["runs"]] == NAMES

    rows = read_summary(local_sweep)
    assert [r["name"] for r in rows] == NAMES
    with open(local_sweep / "summary.csv", newline="") as fh:
        table = list(csv.DictReader(fh))
    assert [r["name"] for r in table] == NAMES
    for row, line in zip(rows, table):
        assert row["status"] == "done" and "error" not in row
        assert row["model"] == "mlp" and row["epochs"] == 2 and row["hidden"] == [32] and row["threads"] == 1
        assert float(line["neg_elbo"]) == row["neg_elbo"] and line["hidden"] == "32"
        folder = local_sweep / row["checkpoint"]
        assert json.loads((folder / "result.json").read_text()) == row
        ckpt = load_checkpoint(folder)
        assert ckpt.model.latent_dim == row["latent_dim"] and ckpt.train_config["beta"] == row["beta"]
        assert len(ckpt.history) == 2
        # The row holds the saved model's own test metrics: evaluated again, they are the same numbers.
        again = evaluate(ckpt.model, digits.test)
        for key in ("neg_elbo", "recon", "kl", "active_units"):
            assert row[key] == again[key], key
        assert row["neg_elbo"] == pytest.approx(row["recon"] + row["kl"])
    by_name = {r["name"]: r for r in rows}
    for dim in (2, 4):
        # A heavier KL weight buys a lower rate: the β-VAE trade-off the table exists to show.
        assert by_name[f"latent_dim={dim},beta=4"]["kl"] < by_name[f"latent_dim={dim},beta=0.5"]["kl"]


@pytest.mark.slow
def test_the_same_grid_on_a_local_ray_instance_gives_the_same_table(local_sweep, tmp_path):
    out = tmp_path / "ray"
    result = run_sweep_cli(*GRID, "--ray", "local", "--jobs", "2", "--out", out, timeout=400)
    assert result.returncode == 0, result.stderr
    assert "submitting 4 runs to Ray" in result.stderr
    ray_rows = read_summary(out)
    assert without_clock(ray_rows) == without_clock(read_summary(local_sweep))
    assert all((out / r["checkpoint"] / "model.safetensors").is_file() for r in ray_rows)


def _done(out: Path) -> list[str]:
    # Not the hidden folder a checkpoint is written into before its rename (a killed save
    # leaves it behind; the next save of that run removes it).
    return sorted(p.parent.name for p in (out / "runs").glob("*/result.json") if not p.parent.name.startswith("."))


def test_an_interrupted_sweep_resumes_without_training_finished_runs_again(tmp_path):
    out = tmp_path / "resume"
    # One run at a time, long enough that Ctrl+C lands while a later run trains.
    args = ["--dataset", "digits", "--epochs", "6", "--batch-size", "32", "--hidden", "32", "--latent-dim", "2",
            "--beta", "0.5,1,2,4", "--threads", "1", "--jobs", "1", "--out", out]
    # SIGINT as a terminal's sweep has it: a test run started in the background of a
    # non-interactive shell inherits it ignored, and Python then never raises KeyboardInterrupt.
    process = subprocess.Popen(sweep_cmd(*args), cwd=REPO, env=env(), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, start_new_session=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 240
        while not _done(out) and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        # Ctrl+C in a terminal signals the whole process group, the sweep's workers included.
        os.killpg(process.pid, signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, stderr
    assert "run the same command again to resume" in stderr and "Traceback" not in stderr
    finished = _done(out)
    assert 1 <= len(finished) < 4, stderr
    # Only finished runs have a folder; the summary lists exactly them.
    assert sorted(p.name for p in (out / "runs").iterdir() if not p.name.startswith(".")) == finished
    assert sorted(r["name"] for r in read_summary(out)) == finished
    stamps = {name: (out / "runs" / name / "model.safetensors").stat().st_mtime_ns for name in finished}

    result = run_sweep_cli(*args)
    assert result.returncode == 0, result.stderr
    for name, stamp in stamps.items():
        assert (out / "runs" / name / "model.safetensors").stat().st_mtime_ns == stamp, f"{name} was trained again"
    assert f"{len(finished)} of 4 runs already finished" in result.stderr
    rows = read_summary(out)
    assert [r["name"] for r in rows] == [f"beta={b}" for b in ("0.5", "1", "2", "4")]
    assert all(r["status"] == "done" for r in rows)
    started = [line.split(":")[0] for line in result.stderr.splitlines() if line.endswith(": started")]
    assert sorted(started) == sorted(set(r["name"] for r in rows) - set(finished))


BAD_GRIDS = {
    "an option the model does not take": (["--model", "mlp,hvae", "--depth", "3"],
                                          "The run model=mlp cannot train: --depth applies to --model hvae only"),
    "an objective option without its objective": (["--objective", "elbo,iwae", "--samples", "3"],
                                                   "--samples applies to --objective iwae only"),
    "a value out of range": (["--beta", "1,-2"], "argument --beta: must be a finite number from 0 to 1000 (got -2)"),
    "an unknown model": (["--model", "mlp,transformer"], "argument --model: must be one of"),
    "a value listed twice": (["--beta", "1,1.0"], "beta lists 1.0 twice"),
    "an empty value": (["--hidden", "32,"], "--hidden has an empty value between commas"),
    "a model option out of range": (["--latent-dim", "2,0"], "argument --latent-dim: must be a whole number from 1"),
}


@pytest.mark.parametrize("case", list(BAD_GRIDS))
def test_a_grid_that_cannot_run_is_one_sentence_and_exit_2_before_anything_runs(case, tmp_path, capsys):
    extra, expected = BAD_GRIDS[case]
    out = tmp_path / "bad"
    argv = ["sweep", "--dataset", "digits", "--epochs", "1", *extra, "--out", str(out)]
    try:
        status = main(argv)
    except SystemExit as exit_:  # argparse's own errors
        status = exit_.code
    err = capsys.readouterr().err
    assert status == 2
    assert expected in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists()


def test_another_grid_in_a_sweep_folder_is_refused_and_leaves_it_untouched(local_sweep, capsys):
    before = {p: p.stat().st_mtime_ns for p in local_sweep.rglob("*")}
    argv = ["sweep", *[a if a != "0.5,4" else "0.5,2" for a in GRID], "--out", str(local_sweep)]
    assert main(argv) == 2
    assert "holds another sweep" in capsys.readouterr().err
    assert {p: p.stat().st_mtime_ns for p in local_sweep.rglob("*")} == before


def test_a_non_empty_folder_without_a_sweep_is_refused(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("mine")
    assert main(["sweep", "--dataset", "digits", "--beta", "1,2", "--out", str(tmp_path)]) == 2
    assert "is not empty and holds no sweep.json" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_ray_that_is_not_installed_is_one_sentence(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now raises ImportError
    assert main(["sweep", "--dataset", "digits", "--beta", "1,2", "--ray", "auto", "--out", str(tmp_path / "r")]) == 2
    assert "--ray needs the ray package" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_list_options_parse_each_value_with_train_s_own_type(monkeypatch):
    from vae_core.cli.parser import build_parser
    from vae_core.cli.sweep import grid_of

    args = build_parser().parse_args(["sweep", "--dataset", "digits", "--hidden", "512", "256,1024", "--beta",
                                      "0.5,1e-5", "--model", "conv", "--lr", "3e-3", "--out", "x"])
    grid, fixed = grid_of(args)
    assert grid["hidden"] == [[512, 256], [1024]]
    assert grid["beta"] == [0.5, 1e-5] and grid["model"] == ["conv"] and grid["lr"] == [0.003]
    assert grid["epochs"] == [10] and grid["kl_anneal"] == ["none"]  # train's defaults
    assert fixed["dataset"] == "digits" and "beta" not in fixed


def test_run_names_come_from_the_swept_options_and_are_filesystem_safe():
    grid = {"model": ["mlp", "conv"], "beta": [0.5, 1.0, 1e-05], "hidden": [[512, 256]], "seed": [0, 1]}
    runs = plan_grid(grid, {"dataset": "digits"})
    assert len(runs) == 12 and len({r.name for r in runs}) == 12
    assert runs[0].name == "model=mlp,beta=0.5,seed=0"
    assert runs[3].name == "model=mlp,beta=1,seed=1" and runs[5].name == "model=mlp,beta=1e-05,seed=1"
    assert all(r.config["hidden"] == [512, 256] and r.config["dataset"] == "digits" for r in runs)
    assert [r.name for r in plan_grid(grid, {"dataset": "digits"})] == [r.name for r in runs]
    assert run_name({"dataset": "folder:/a b/c"}, ["dataset"]) == "dataset=folder__a_b_c"
    assert plan_grid({}, {"dataset": "digits"})[0].name == "run"


def test_a_run_that_fails_is_a_row_with_its_error_not_an_exception(tmp_path):
    from vae_core.sweep import train_run, write_summary

    run = plan_grid({"beta": [1.0]}, {"dataset": f"npz:{tmp_path / 'missing.npz'}", "epochs": 1})[0]
    row = train_run(run, tmp_path / "out")
    assert row["status"] == "failed" and "missing.npz" in row["error"] and "\n" not in row["error"]
    assert row["beta"] == 1.0 and "checkpoint" not in row
    assert not (tmp_path / "out" / "runs").exists()
    write_summary(tmp_path / "out", [row])
    assert read_summary(tmp_path / "out") == [row]
    with open(tmp_path / "out" / "summary.csv", newline="") as fh:
        (line,) = list(csv.DictReader(fh))
    assert line["status"] == "failed" and line["error"] == row["error"] and line["checkpoint"] == ""


def test_only_a_run_folder_with_its_result_and_the_same_config_counts_as_finished(local_sweep, tmp_path):
    import shutil

    from vae_core.cli.parser import build_parser
    from vae_core.cli.sweep import grid_of
    from vae_core.sweep import finished_result

    grid, fixed = grid_of(build_parser().parse_args(["sweep", *GRID, "--out", "x"]))
    run = plan_grid(grid, fixed)[0]
    shutil.copytree(local_sweep / "runs" / run.name, tmp_path / "runs" / run.name)
    assert finished_result(tmp_path, run)["neg_elbo"] == read_summary(local_sweep)[0]["neg_elbo"]
    # The same name under other fixed options (more epochs) is another run.
    other = plan_grid({**grid, "epochs": [3]}, fixed)[0]
    assert other.name == run.name and finished_result(tmp_path, other) is None
    (tmp_path / "runs" / run.name / "result.json").unlink()
    assert finished_result(tmp_path, run) is None
