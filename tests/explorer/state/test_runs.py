"""Reading folders of runs (no Qt): a sweep's summary, plain checkpoint folders, curves."""

from __future__ import annotations

import json
import math
import shutil

import pytest

from explorer.state.runs import (
    RunsFolderError,
    RunsState,
    checkpoint_row,
    column_role,
    curves,
    is_runs_folder,
    read_runs,
)


def test_a_sweep_folder_reads_as_its_summary_with_each_runs_checkpoint(sweep_folder):
    summary = json.loads((sweep_folder / "summary.json").read_text())
    table = read_runs(sweep_folder)
    assert table.source == "summary" and is_runs_folder(sweep_folder)
    assert [r.name for r in table.runs] == [row["name"] for row in summary]
    for run, row in zip(table.runs, summary):
        assert run.values == row
        assert run.path == sweep_folder / "runs" / row["name"]
    # bookkeeping, then settings (model, beta, latent size, seed), then metrics
    assert table.columns == ("name", "status", "model", "beta", "latent_dim", "seed",
                             "neg_elbo", "recon", "kl", "active_units", "train_seconds")
    assert table.settings_columns() == ["model", "beta", "latent_dim", "seed"]
    assert table.is_numeric("beta") and not table.is_numeric("model")


def test_a_checkpoints_row_is_its_settings_and_last_test_metrics(sweep_folder):
    from vae_core import load_checkpoint

    path = sweep_folder / "runs" / "mlp-beta4-seed1"
    ckpt = load_checkpoint(path)
    row = checkpoint_row(path)
    last = ckpt.history[-1]
    assert row["name"] == "mlp-beta4-seed1" and row["model"] == "mlp" and row["dataset"] == "digits"
    assert row["beta"] == 4.0 and row["seed"] == 1 and row["latent_dim"] == 2 and row["hidden"] == "32"
    assert row["neg_elbo"] == last["test_neg_elbo"] and row["recon"] == last["test_recon"]
    assert row["kl"] == last["test_kl"] and row["active_units"] == last["test_active_units"]
    assert row["epochs_trained"] == 3
    assert row["train_seconds"] == pytest.approx(sum(e["seconds"] for e in ckpt.history))
    assert "kl_per_dim" not in row   # lists are not table cells


def test_a_plain_folder_of_checkpoints_gives_the_same_numbers(sweep_folder, tmp_path):
    from vae_core import load_checkpoint, save_checkpoint

    plain = tmp_path / "plain"
    plain.mkdir()
    shutil.copytree(sweep_folder / "runs" / "mlp-beta1-seed0", plain / "a")
    one = load_checkpoint(sweep_folder / "runs" / "mlp-beta0.25-seed1")
    save_checkpoint(plain / "b.safetensors", one.model, history=one.history, train_config=one.train_config)
    (plain / "notes.txt").write_text("not a run")
    table = read_runs(plain)
    assert table.source == "checkpoints" and not is_runs_folder(plain)
    assert [r.name for r in table.runs] == ["a", "b"]
    assert [r.path for r in table.runs] == [plain / "a", plain / "b.safetensors"]
    summary = {row["name"]: row for row in json.loads((sweep_folder / "summary.json").read_text())}
    for run, name in zip(table.runs, ("mlp-beta1-seed0", "mlp-beta0.25-seed1")):
        for column in ("beta", "seed", "neg_elbo", "recon", "kl", "active_units"):
            assert run.value(column) == summary[name][column], column


def test_a_run_not_yet_in_the_summary_is_read_from_its_checkpoint(sweep_folder, tmp_path):
    folder = shutil.copytree(sweep_folder, tmp_path / "interrupted")
    rows = json.loads((folder / "summary.json").read_text())
    (folder / "summary.json").write_text(json.dumps(rows[:-1]))
    table = read_runs(folder)
    assert [r.name for r in table.runs] == [r["name"] for r in rows]
    late = table.runs[-1]
    assert late.path == folder / "runs" / rows[-1]["name"]
    assert late.value("kl") == rows[-1]["kl"] and late.value("recon") == rows[-1]["recon"]


@pytest.mark.parametrize("content, words", [
    ("{not json", "cannot be read as JSON"),
    ('{"a": 1}', "not a list of runs"),
    ('[{"status": "finished"}]', "has no name"),
    ('[{"name": "x"}, {"name": "x"}]', "appears twice"),
])
def test_a_bad_summary_is_one_sentence(tmp_path, content, words):
    (tmp_path / "summary.json").write_text(content)
    with pytest.raises(RunsFolderError, match=words):
        read_runs(tmp_path)


def test_a_folder_without_runs_says_so(tmp_path):
    with pytest.raises(RunsFolderError, match="holds no runs"):
        read_runs(tmp_path)
    with pytest.raises(RunsFolderError, match="is not a folder"):
        read_runs(tmp_path / "missing")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "config.json").write_text("{}")
    with pytest.raises(RunsFolderError, match="could be read"):
        read_runs(tmp_path)


def _grid(folder):
    grid = json.loads((folder / "sweep.json").read_text())["grid"]
    return grid["beta"], grid["seed"]


def test_runs_that_differ_only_in_beta_form_one_curve_each(sweep_folder):
    betas, seeds = _grid(sweep_folder)
    table = read_runs(sweep_folder)
    found = curves(table, "beta")
    assert len(found) == len(seeds)
    for curve in found:
        runs = [table.runs[i] for i in curve]
        assert [r.value("beta") for r in runs] == list(betas)
        assert len({r.value("seed") for r in runs}) == 1
    # grouped by beta instead, each seed's runs form the curves
    assert sorted(len(c) for c in curves(table, "seed")) == [2] * len(betas)


def test_the_runs_state_plots_kl_against_recon_and_chosen_columns(sweep_folder):
    betas, _ = _grid(sweep_folder)
    runs = RunsState()
    seen = []
    runs.table_changed.connect(seen.append)
    table = runs.open(sweep_folder)
    assert seen == [table]
    assert (runs.color_column, runs.x_column, runs.y_column) == ("beta", "beta", "neg_elbo")
    rows, xs, ys = runs.rate_distortion()
    assert rows == list(range(len(table)))
    assert xs == [r.value("kl") for r in table.runs] and ys == [r.value("recon") for r in table.runs]
    # a larger beta buys a smaller rate: the sweep traces a rate–distortion trade-off
    by_beta = {b: [r.value("kl") for r in table.runs if r.value("beta") == b] for b in betas}
    assert max(by_beta[betas[-1]]) < min(by_beta[betas[0]])
    changed = []
    runs.plot_changed.connect(lambda: changed.append(1))
    runs.set_axes(x="seed", y="kl")
    runs.set_color_column("seed")
    assert changed == [1, 1]
    assert runs.points("seed", "kl")[1] == [float(r.value("seed")) for r in table.runs]
    with pytest.raises(ValueError, match="no column"):
        runs.set_color_column("nope")


def test_missing_metrics_leave_a_run_off_the_plots(tmp_path):
    (tmp_path / "summary.json").write_text(json.dumps([
        {"name": "ok", "status": "finished", "beta": 1, "kl": 2.0, "recon": 30.0},
        {"name": "failed", "status": "failed", "beta": 2, "kl": None, "recon": math.inf},
    ]))
    runs = RunsState()
    runs.open(tmp_path)
    assert runs.rate_distortion() == ([0], [2.0], [30.0])
    assert runs.table.runs[1].path is None


def test_column_roles():
    assert [column_role(c) for c in ("name", "beta", "kl", "test_mig", "model")] == \
        ["bookkeeping", "setting", "metric", "metric", "setting"]


def test_the_sweep_commands_summary_reads_with_its_checkpoint_paths(sweep_folder, tmp_path):
    """Rows as ``python -m vae_core sweep`` writes them: status "done", a relative
    ``checkpoint``, machine settings, failed runs with an ``error``."""
    folder = tmp_path / "sweep"
    (folder / "runs").mkdir(parents=True)
    rows = []
    for i, row in enumerate(json.loads((sweep_folder / "summary.json").read_text())):
        name = f"beta={row['beta']:g},seed={row['seed']}"
        shutil.copytree(sweep_folder / "runs" / row["name"], folder / "runs" / name)
        rows.append({"name": name, "status": "done", "checkpoint": f"runs/{name}",
                     **{k: v for k, v in row.items() if k not in ("name", "status")},
                     "data_root": None, "device": "cpu", "threads": 1 + i % 2, "train_loss": 30.0 + i})
    rows.append({"name": "beta=16,seed=0", "status": "failed", "error": "The loss stopped being a number.",
                 "beta": 16.0, "seed": 0, "model": "mlp", "latent_dim": 2, "device": "cpu", "threads": 1})
    rows.append({"name": "outside", "status": "done", "checkpoint": "../../elsewhere", "beta": 1.0})
    (folder / "summary.json").write_text(json.dumps(rows))
    table = read_runs(folder)
    assert table.columns[:4] == ("name", "status", "error", "checkpoint")
    assert table.columns[-3:] == ("data_root", "device", "threads")
    assert "train_loss" in table.metric_columns() and "threads" not in table.settings_columns()
    assert [r.path for r in table.runs[:6]] == [folder / "runs" / r["name"] for r in rows[:6]]
    assert table.runs[6].path is None and table.runs[7].path is None   # failed; outside the folder
    # the machine settings (threads alternate here) do not split the β curves
    assert len(curves(table, "beta")) == 2

