"""``evaluate``'s reconstruction, disentanglement and sample-quality metrics, run through ``vae_core.cli.main``."""

import json

import numpy as np
import pytest

from vae_core import load_checkpoint, load_dataset
from vae_core.cli import main
from vae_core.metrics import (factor_matrix, mig, model_representation, mutual_info_matrix, reconstruction_quality,
                              sap)


def run(argv, capsys):
    try:
        status = main([str(a) for a in argv])
    except SystemExit as exc:
        status = exc.code
    out, err = capsys.readouterr()
    return status, out, [line for line in err.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def shapes_checkpoint(tmp_path_factory):
    out = tmp_path_factory.mktemp("metrics-cli") / "shapes"
    assert main(["train", "--dataset", "shapes:32", "--latent-dim", "4", "--hidden", "32", "--epochs", "1",
                 "--batch-size", "256", "--threads", "1", "--quiet", "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def digits_checkpoint(tmp_path_factory):
    out = tmp_path_factory.mktemp("metrics-cli") / "digits"
    assert main(["train", "--dataset", "digits", "--latent-dim", "2", "--hidden", "32", "--epochs", "1",
                 "--batch-size", "256", "--threads", "1", "--quiet", "--out", str(out)]) == 0
    return out


def test_evaluate_json_has_every_metric_timed_and_matching_the_library(shapes_checkpoint, tmp_path, capsys):
    status, out, err = run(["evaluate", shapes_checkpoint, "--disentanglement", "--disentanglement-points", 400,
                            "--score-votes", 10, "--sample-quality", "--samples", 150, "--cache-dir", tmp_path,
                            "--seed", 2, "--json", "--quiet"], capsys)
    assert status == 0, err
    result = json.loads(out)
    assert set(result["seconds"]) >= {"elbo", "reconstruction", "encode", "mutual_info", "mig", "sap", "dci",
                                      "factor_vae", "beta_vae", "sample_quality"}
    assert all(value >= 0 for value in result["seconds"].values())
    # The same numbers as the library on the same rows (seeded draw of 400 of all images).
    model = load_checkpoint(shapes_checkpoint).model
    data = load_dataset("shapes:32")
    factors, names = factor_matrix(data.factors)
    rows = np.sort(np.random.default_rng(2).choice(len(factors), size=400, replace=False))
    codes = model_representation(model)(data.all().images[rows])
    dis = result["disentanglement"]
    assert dis["factors"] == list(names) and dis["points"] == 400
    assert dis["mig"] == pytest.approx(mig(codes, factors[rows]))
    assert dis["sap"] == pytest.approx(sap(codes, factors[rows], seed=2))
    np.testing.assert_allclose(dis["mutual_info"], mutual_info_matrix(codes, factors[rows]))
    assert set(dis["dci"]) >= {"disentanglement", "completeness", "informativeness"}
    assert 0 <= dis["factor_vae"]["eval_accuracy"] <= 1 and 0 <= dis["beta_vae"]["eval_accuracy"] <= 1
    sq = result["sample_quality"]
    assert sq["num_samples"] == 150 and "not comparable" in sq["feature_space"]
    assert {"frechet_distance", "precision", "recall"} <= set(sq)


def test_evaluate_prints_the_metrics_as_text(digits_checkpoint, tmp_path, capsys):
    status, out, err = run(["evaluate", digits_checkpoint, "--sample-quality", "--samples", 100,
                            "--cache-dir", tmp_path, "--quiet"], capsys)
    assert status == 0, err
    for text in ("PSNR", "SSIM", "Frechet distance", "not comparable", "seconds: elbo"):
        assert text in out
    status, out, err = run(["evaluate", digits_checkpoint, "--json"], capsys)
    expected = reconstruction_quality(load_checkpoint(digits_checkpoint).model, load_dataset("digits").test)
    assert json.loads(out)["reconstruction"] == pytest.approx(expected)


def test_evaluate_refuses_metrics_the_data_cannot_give(digits_checkpoint, tmp_path, capsys):
    status, out, err = run(["evaluate", digits_checkpoint, "--disentanglement", "--json"], capsys)
    assert status == 2 and out == "" and len(err) == 1
    assert "ground-truth factors" in err[0] and "Traceback" not in err[0]
    digits = load_dataset("digits")
    unlabeled = tmp_path / "unlabeled.npz"
    np.savez(unlabeled, x=(digits.test.images[:60, 0] * 255).astype(np.uint8))
    status, out, err = run(["evaluate", digits_checkpoint, "--dataset", f"npz:{unlabeled}", "--sample-quality"],
                           capsys)
    assert status == 2 and out == "" and len(err) == 1
    assert "no class labels" in err[0]
