"""The command line's objectives and model families, run in-process through ``vae_core.cli.main``."""

import json

import pytest

from vae_core import load_checkpoint
from vae_core.cli import main

COMMON = ["--dataset", "digits", "--epochs", "1", "--batch-size", "256", "--threads", "1", "--quiet"]


def run(argv, capsys):
    """Exit status, stdout and the non-empty stderr lines of one command."""
    try:
        status = main([str(a) for a in argv])
    except SystemExit as exc:  # argparse's own usage errors
        status = exc.code
    out, err = capsys.readouterr()
    return status, out, [line for line in err.splitlines() if line.strip()]


@pytest.mark.parametrize("argv, expected", [
    (["--model", "hvae", "--latent-dim", "3", "--lower-dims", "12", "6", "--depth", "1", "--map-layer", "2"],
     {"lower_dims": (12, 6), "depth": 1, "map_layer": "2", "hidden": (24, 12, 6)}),
    (["--model", "iaf", "--latent-dim", "3", "--hidden", "32", "--flow-steps", "3"], {"flow_steps": 3}),
    (["--model", "vaegan", "--latent-dim", "3", "--gan-weight", "0.25", "--feature-weight", "2"],
     {"gan_weight": 0.25, "feature_weight": 2.0}),
])
def test_each_new_model_trains_one_epoch_with_its_options(argv, expected, tmp_path, capsys):
    out = tmp_path / "model"
    status, _, err = run(["train", *COMMON, *argv, "--out", out], capsys)
    assert status == 0, err
    ckpt = load_checkpoint(out)
    assert ckpt.model_name == argv[1]
    for name, value in expected.items():
        assert getattr(ckpt.config, name) == value
    assert len(ckpt.history) == 1


@pytest.mark.parametrize("argv, terms, settings", [
    (["--objective", "iwae", "--samples", "3"], {"neg_elbo"}, {"samples": 3}),
    (["--objective", "iwae"], {"neg_elbo"}, {"samples": 5}),
    (["--objective", "tcvae", "--alpha", "0.5", "--beta", "4", "--gamma", "2"], {"mi", "tc", "dim_kl"},
     {"alpha": 0.5, "beta": 4.0, "gamma": 2.0}),
    (["--model", "hvae", "--objective", "iwae", "--samples", "2"], {"neg_elbo"}, {"samples": 2}),
])
def test_each_objective_trains_one_epoch_and_records_its_terms(argv, terms, settings, tmp_path, capsys):
    out = tmp_path / "model"
    status, _, err = run(["train", *COMMON, "--latent-dim", "2", "--hidden", "32", *argv, "--out", out], capsys)
    assert status == 0, err
    ckpt = load_checkpoint(out)
    assert ckpt.train_config["objective"] == argv[argv.index("--objective") + 1]
    for name, value in settings.items():
        assert ckpt.train_config[name] == value
    assert {f"train_{t}" for t in terms} <= set(ckpt.history[0])


@pytest.fixture(scope="module")
def small_checkpoint(tmp_path_factory):
    out = tmp_path_factory.mktemp("family-cli") / "iaf"
    assert main(["train", *COMMON, "--model", "iaf", "--latent-dim", "2", "--hidden", "32", "--out", str(out)]) == 0
    return out


def test_evaluate_iwae_is_reproducible_by_seed(small_checkpoint, capsys):
    argv = ["evaluate", small_checkpoint, "--iwae-k", "40", "--json", "--quiet"]
    first, second, other = (json.loads(run([*argv, "--seed", seed], capsys)[1]) for seed in ("7", "7", "8"))
    assert first.pop("seconds").keys() == second.pop("seconds").keys() == {"elbo", "iwae", "reconstruction"}
    assert first == second
    assert first["iwae_nll"] != other["iwae_nll"]
    assert first["iwae_k"] == 40
    # The bound is tighter than the single-sample ELBO (on average over the test set).
    assert first["iwae_nll"] < first["neg_elbo"]


def test_evaluate_iwae_matches_the_library(small_checkpoint, capsys, digits):
    from vae_core.metrics import iwae_nll

    result = json.loads(run(["evaluate", small_checkpoint, "--iwae-k", "30", "--seed", "3", "--json", "--quiet"],
                            capsys)[1])
    direct = iwae_nll(load_checkpoint(small_checkpoint).model, digits.test, 30, seed=3)
    assert result["iwae_nll"] == pytest.approx(direct["nll"], rel=1e-12)


def test_evaluate_shows_a_progress_bar_unless_quiet(small_checkpoint, capsys):
    status, _, err = run(["evaluate", small_checkpoint, "--iwae-k", "5"], capsys)
    assert status == 0
    assert any("IWAE k=5" in line and "img" in line for line in err)


@pytest.mark.parametrize("argv, words", [
    (["--objective", "iwae", "--samples", "0"], ["--samples", "1 to 100000", "got 0"]),
    (["--objective", "tcvae", "--alpha", "nan"], ["--alpha", "0 to 1000"]),
    (["--objective", "tcvae", "--gamma", "-1"], ["--gamma"]),
    (["--samples", "4"], ["--samples", "iwae only"]),
    (["--objective", "iwae", "--alpha", "2"], ["--alpha", "tcvae only"]),
    (["--model", "iaf", "--flow-steps", "65"], ["--flow-steps", "0 to 64"]),
    (["--model", "hvae", "--lower-dims", "0"], ["--lower-dims"]),
    (["--model", "hvae", "--map-layer", "middle"], ["--map-layer", "top, all"]),
    (["--model", "hvae", "--map-layer", "3"], ["map_layer 3", "2 stochastic layers"]),
    (["--model", "hvae", "--lower-dims", "8", "4", "--hidden", "16", "16"], ["one hidden width per layer"]),
    (["--model", "vaegan", "--gan-weight", "inf"], ["--gan-weight"]),
    (["--flow-steps", "2"], ["--flow-steps", "--model iaf only"]),
    (["--model", "iaf", "--gan-weight", "1"], ["--gan-weight", "vaegan only"]),
    (["--model", "iaf", "--objective", "tcvae"], ["tcvae", "Gaussian posterior"]),
])
def test_bad_values_exit_2_with_one_line(argv, words, tmp_path, capsys):
    status, _, err = run(["train", *COMMON, "--latent-dim", "2", *argv, "--out", tmp_path / "x"], capsys)
    assert status == 2
    assert len(err) == 1, err
    for word in words:
        assert word in err[0]
    assert not (tmp_path / "x").exists()


def test_resume_refuses_another_family_setting(small_checkpoint, tmp_path, capsys):
    status, _, err = run(["train", *COMMON, "--resume", small_checkpoint, "--flow-steps", "5",
                          "--out", tmp_path / "y"], capsys)
    assert status == 2 and len(err) == 1 and "--flow-steps 5 differs" in err[0]
