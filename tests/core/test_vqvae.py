"""The VQ-VAE: exact quantization, codebook upkeep, its prior over code grids and their CLI."""

import dataclasses
import itertools
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from vae_core import TrainConfig, build_model, evaluate, iter_training, load_checkpoint, save_checkpoint
from vae_core.errors import ConfigError, ShapeMismatchError
from vae_core.models.vqvae import perplexity, usage_counts
from vae_core.objectives import check_objective
from vae_core.prior import PriorConfig, train_prior

REPO = Path(__file__).resolve().parents[2]


def _small(data, n=256):
    return dataclasses.replace(data, train=dataclasses.replace(data.train, images=data.train.images[:n],
                                                               labels=data.train.labels[:n]))


def _model(data, **config):
    torch.manual_seed(0)
    settings = dict(image_shape=data.image_shape, latent_dim=3, codebook_size=16, prior_width=16, prior_heads=2)
    settings.update(config)
    return build_model("vqvae", **settings)


def _with_random_prior(model, seed=0):
    """Give the prior random, non-trivial weights and mark it trained."""
    torch.manual_seed(seed)
    with torch.no_grad():
        for p in model.prior.parameters():
            p.normal_(0, 0.5)
        model.prior_steps.fill_(1)
    return model.eval()


@pytest.fixture(scope="module")
def trained(digits):
    """A vqvae trained 2 epochs on digits with a prior fitted 2 epochs."""
    model = _model(digits)
    history = [r.history_entry for r in iter_training(model, digits, TrainConfig(epochs=2, batch_size=64, lr=3e-3))
               if r.kind == "epoch"]
    prior_reports = list(train_prior(model, digits, PriorConfig(epochs=2, batch_size=64, lr=3e-3)))
    return model.eval(), history, prior_reports


# -- quantization ------------------------------------------------------------------------------
def test_grid_and_map_code_shapes(digits):
    model = _model(digits)
    assert model.grid_shape == (4, 4) and model.latent_dim == 4 * 4 * 3
    assert build_model("vqvae", image_shape=(1, 28, 28)).grid_shape == (7, 7)
    x = torch.from_numpy(digits.test.images[:5])
    mu, logvar = model.encode(x)
    assert mu.shape == (5, 48) and torch.isnan(logvar).all()
    # Position-major layout: position (r, c) owns numbers (r·cols + c)·D … + D − 1.
    grid = model.encoder(x)
    assert torch.equal(mu.view(5, 4, 4, 3)[:, 1, 2], grid[:, :, 1, 2])
    samples = model.sample_posterior(x, 3)
    assert samples.shape == (3, 5, 48) and all(torch.equal(s, mu) for s in samples)


def test_quantize_gives_the_nearest_codebook_row_exactly(digits):
    model = _model(digits, codebook_size=32)
    with torch.no_grad():
        model.quantizer.codebook = torch.randn(32, 3)
    z = torch.randn(20, model.latent_dim) * 1.5
    indices, quantized = model.quantize(z)
    assert indices.shape == (20, 4, 4) and indices.dtype == torch.int64
    codebook = model.codebook
    vectors = quantized.view(-1, 3)
    # Every quantized vector IS the codebook row its index names (bitwise).
    assert torch.equal(vectors, codebook[indices.view(-1)])
    # ... and that row is the nearest one by brute force in float64.
    distances = ((z.view(-1, 1, 3).double() - codebook.view(1, 32, 3).double()) ** 2).sum(-1)
    assert torch.equal(indices.view(-1), distances.argmin(1))
    # A code made of codebook rows snaps to itself.
    again, same = model.quantize(quantized)
    assert torch.equal(again, indices) and torch.equal(same, quantized)


def test_close_entries_far_from_the_origin_snap_to_themselves(digits):
    model = _model(digits)
    with torch.no_grad():
        codebook = torch.randn(16, 3)
        codebook[4] = torch.tensor([1000.0, 1000.0, 1000.0])
        codebook[9] = torch.tensor([1000.0, 1000.0, 1000.0625])  # ‖e‖² rounds away 0.06² in float32
        model.quantizer.codebook = codebook
    grid = torch.arange(16).view(1, 4, 4)
    indices, quantized = model.quantize(model.codes_from_indices(grid))
    assert torch.equal(indices, grid) and torch.equal(quantized, model.codes_from_indices(grid))


def test_decoding_an_edited_index_grid(digits):
    model = _model(digits).eval()
    with torch.no_grad():
        codebook = torch.randn(16, 3)
        codebook[7] = codebook[2]  # a duplicate row (dead-code restarts can copy one vector twice)
        model.quantizer.codebook = codebook
        x = torch.from_numpy(digits.test.images[:4])
        grid = model.encode_indices(x)
        edited = grid.clone()
        edited[:, 0, :] = 5
        edited[:, 3, 1] = 7
        by_indices = model.decode_indices(edited)
        by_code = model.decode(model.codes_from_indices(edited))
        assert torch.equal(by_indices, by_code)
        assert not torch.equal(by_indices, model.decode_indices(grid))
        assert torch.equal(model.decode_indices(grid), model.decode(model.encode(x)[0]))
        # decode snaps, decode_unquantized does not.
        mu = model.encode(x)[0]
        assert not torch.equal(model.decode_unquantized(mu), model.decode(mu))
        assert torch.equal(model.decode_unquantized(model.codes_from_indices(grid)), model.decode(mu))
        assert model.decode_indices(grid[0]).shape == (1, 1, 8, 8)
    with pytest.raises(ShapeMismatchError, match="4×4"):
        model.decode_indices(torch.zeros(1, 3, 4, dtype=torch.long))
    with pytest.raises(ConfigError, match="from 0 to 15"):
        model.decode_indices(torch.full((1, 4, 4), 16))
    with pytest.raises(ShapeMismatchError, match="48 numbers"):
        model.decode(torch.zeros(2, 47))


def _crafted_codebook(model, far_cluster_size):
    cb = model.quantizer._codebook
    with torch.no_grad():
        embed = torch.full((8, 2), 100.0)
        embed[0] = torch.tensor([0.0, 0.0])
        embed[1] = torch.tensor([1.0, 1.0])
        sizes = torch.full((8,), far_cluster_size)
        sizes[:2] = 10.0
        cb.embed.copy_(embed.unsqueeze(0))
        cb.cluster_size.copy_(sizes.unsqueeze(0))
        cb.embed_avg.copy_((embed * sizes[:, None]).unsqueeze(0))


@pytest.mark.parametrize("threshold", [1.0, 0.0])
def test_dead_codes_are_restarted_at_batch_vectors(threshold):
    model = build_model("vqvae", image_shape=(1, 8, 8), latent_dim=2, codebook_size=8, ema_decay=0.9,
                        dead_code_threshold=threshold)
    _crafted_codebook(model, far_cluster_size=1.0)
    torch.manual_seed(0)
    batch = torch.cat([torch.randn(32, 2) * 0.1, 1 + torch.randn(32, 2) * 0.1]).unsqueeze(0)
    model.quantizer.train()
    with torch.no_grad():
        _, indices, _ = model.quantizer(batch)
    assert set(indices.unique().tolist()) == {0, 1}  # only two codes were near the data
    codebook = model.codebook
    if threshold == 0:  # no restarts: the far codes stay far
        assert (codebook[2:].abs() > 50).all()
        return
    # Each dead code now is one of the batch's vectors, and the batch uses it.
    for j in range(2, 8):
        assert (codebook[j] == batch[0]).all(1).any(), j
    model.eval()
    counts = usage_counts(model.quantize(batch.reshape(4, -1))[0], 8)
    assert (counts[2:] > 0).all()
    assert (codebook[:2] - torch.tensor([[0.0, 0.0], [1.0, 1.0]])).abs().max() < 0.2  # the live codes were kept


def test_ema_moves_live_codes_towards_their_vectors():
    model = build_model("vqvae", image_shape=(1, 8, 8), latent_dim=2, codebook_size=8, ema_decay=0.5,
                        dead_code_threshold=0.0)
    _crafted_codebook(model, far_cluster_size=1.0)
    batch = torch.full((1, 10, 2), 0.4)  # all nearest to code 0 at (0, 0)
    model.quantizer.train()
    with torch.no_grad():
        model.quantizer(batch)
    cb = model.quantizer._codebook
    # cluster_size ← 0.5·10 + 0.5·10; embed_avg ← 0.5·0 + 0.5·(10·0.4); then Laplace smoothing.
    assert cb.cluster_size[0, 0].item() == pytest.approx(10.0)
    assert cb.embed_avg[0, 0].tolist() == pytest.approx([2.0, 2.0])
    total = cb.cluster_size.sum().item()
    smoothed = (10.0 + 1e-5) / (total + 8 * 1e-5) * total
    assert model.codebook[0].tolist() == pytest.approx([2.0 / smoothed] * 2, rel=1e-5)


def test_perplexity_is_exp_entropy_of_usage():
    indices = torch.tensor([[0, 0, 0, 1]])
    counts = usage_counts(indices, 5)
    assert counts.tolist() == [3, 1, 0, 0, 0]
    entropy = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    assert perplexity(counts).item() == pytest.approx(math.exp(entropy), rel=1e-12)
    assert perplexity(torch.tensor([4, 4, 4, 4])).item() == pytest.approx(4.0)
    assert perplexity(torch.tensor([0, 9, 0])).item() == pytest.approx(1.0)


def test_loss_terms_and_training_report_codebook_statistics(digits):
    model = _model(digits)
    x = torch.from_numpy(digits.test.images[:16])
    terms = model.loss(x)
    assert {"loss", "recon", "kl", "commitment", "codebook_usage", "perplexity", "kl_per_dim"} <= set(terms)
    assert terms["kl"].item() == pytest.approx(16 * math.log(16), rel=1e-6)  # uniform prior: L·log K
    assert torch.allclose(terms["loss"], terms["recon"] + terms["kl"] + terms["commitment"])
    assert terms["kl_per_dim"].shape == (model.latent_dim,)
    reports = list(iter_training(model, _small(digits), TrainConfig(epochs=1, batch_size=64)))
    last = reports[-1]
    assert {"codebook_usage", "perplexity", "commitment"} <= set(last.losses)
    assert {"test_codebook_usage", "test_perplexity", "train_perplexity"} <= set(last.history_entry)
    assert 1 <= last.test["codebook_usage"] <= 16


def test_commitment_term_pulls_the_encoder_to_its_codes(digits):
    model = _model(digits, commitment_weight=0.5).eval()
    x = torch.from_numpy(digits.test.images[:8])
    terms = model.loss(x)
    with torch.no_grad():
        mu = model.encode(x)[0]
        by_hand = 0.5 * (mu - model.quantize(mu)[1]).pow(2).sum(1).mean()
    assert terms["commitment"].item() == pytest.approx(by_hand.item(), rel=1e-5)
    weight = model.encoder[-1].weight
    (grad,) = torch.autograd.grad(terms["commitment"], weight)
    assert grad.abs().sum() > 0


def test_every_parameter_but_the_prior_trains_and_codebook_loss_without_ema(digits):
    model = _model(digits, ema=False).train()
    x = torch.from_numpy(digits.test.images[:32])
    terms = model.loss(x)
    assert "codebook" in terms
    terms["loss"].backward()
    for name, p in model.named_parameters():
        if name.startswith("prior."):
            assert not p.requires_grad and p.grad is None, name
        else:
            assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert model.quantizer.codebook.requires_grad


def test_objectives_that_need_a_sampled_posterior_are_refused(digits):
    model = _model(digits)
    check_objective(model, "elbo")
    with pytest.raises(ValueError, match="point mass"):
        check_objective(model, "iwae")
    with pytest.raises(ValueError, match="posterior"):
        check_objective(model, "tcvae")


def test_evaluate_reports_usage_perplexity_and_the_bound(trained, digits):
    model, _, _ = trained
    result = evaluate(model, digits.test)
    counts = model.code_usage(digits.test)
    assert counts.sum() == len(digits.test) * 16
    assert result["codebook_usage"] == int((counts > 0).sum())
    p = counts[counts > 0] / counts.sum()
    assert result["perplexity"] == pytest.approx(math.exp(-(p * np.log(p)).sum()), rel=1e-9)
    x = torch.from_numpy(digits.test.images)
    with torch.no_grad():
        code_nll = model.code_nll(model.encode_indices(x)).double().mean().item()
    assert result["prior_trained"] and result["kl"] == pytest.approx(code_nll, rel=1e-5)
    assert result["neg_elbo"] == pytest.approx(result["recon"] + result["kl"], rel=1e-9)
    # Pixels stored as bytes (MNIST, folders) are read as value/255, like everywhere else.
    stored = np.round(digits.test.images * 255).astype(np.uint8)
    np.testing.assert_array_equal(model.code_usage(stored), model.code_usage(stored.astype(np.float32) / 255))


# -- the prior ---------------------------------------------------------------------------------
def test_prior_nll_is_the_sum_of_per_position_log_softmax(digits):
    model = _with_random_prior(_model(digits))
    generator = torch.Generator().manual_seed(3)
    grids = torch.randint(16, (5, 4, 4), generator=generator)
    with torch.no_grad():
        got = model.code_nll(grids)
        direct = torch.zeros(5, dtype=torch.float64)
        seq = grids.view(5, -1)
        for i in range(16):
            # The conditional at position i must not see position i or later: scramble them.
            scrambled = seq.clone()
            scrambled[:, i:] = torch.randint(16, (5, 16 - i), generator=generator)
            logits = model.prior.logits(scrambled)[:, i].double()
            direct -= torch.log_softmax(logits, -1).gather(1, seq[:, i : i + 1]).squeeze(1)
    assert torch.allclose(got.double(), direct, rtol=1e-5, atol=1e-5)
    assert got.min() > 0


def test_prior_is_normalised_over_every_grid():
    model = build_model("vqvae", image_shape=(1, 2, 3), latent_dim=2, codebook_size=3, prior_width=8,
                        prior_heads=2)
    assert model.grid_shape == (2, 3)
    _with_random_prior(model)
    grids = torch.tensor(list(itertools.product(range(3), repeat=6))).view(-1, 2, 3)
    with torch.no_grad():
        total = torch.logsumexp(-model.code_nll(grids).double(), 0).exp().item()
    assert total == pytest.approx(1.0, abs=1e-5)


def test_uniform_prior_before_training(digits):
    model = _model(digits)
    assert not model.prior_trained
    grids = torch.randint(16, (3, 4, 4))
    assert torch.allclose(model.code_nll(grids), torch.full((3,), 16 * math.log(16)))
    codes = model.sample_codes(200, seed=1)
    assert codes.shape == (200, 4, 4) and usage_counts(codes, 16).min() > 0


def test_sampling_and_completing_code_grids(digits):
    model = _with_random_prior(_model(digits))
    a = model.sample_codes(6, temperature=1.0, seed=4)
    assert a.shape == (6, 4, 4) and a.dtype == torch.int64 and 0 <= a.min() and a.max() < 16
    assert torch.equal(a, model.sample_codes(6, temperature=1.0, seed=4))
    assert not torch.equal(a, model.sample_codes(6, temperature=1.0, seed=5))
    # Near zero temperature every draw is the most likely code: seeds no longer matter.
    assert torch.equal(model.sample_codes(3, temperature=1e-4, seed=1), model.sample_codes(3, temperature=1e-4, seed=2))
    partial = torch.randint(16, (4, 4, 4))
    for rows in range(5):
        done = model.complete_codes(partial, rows, temperature=1.0, seed=rows)
        assert torch.equal(done[:, :rows], partial[:, :rows])
        if rows < 4:
            assert not torch.equal(done[:, rows:], partial[:, rows:])
    assert model.complete_codes(partial[0], 2).shape == (1, 4, 4)
    with pytest.raises(ConfigError, match="rows_kept"):
        model.complete_codes(partial, 5)
    with pytest.raises(ConfigError, match="temperature"):
        model.sample_codes(2, temperature=0.0)
    images = model.sample(3, generator=torch.Generator().manual_seed(0))
    assert images.shape == (3, 1, 8, 8) and 0 <= images.min() and images.max() <= 1


def test_train_prior_learns_the_codes(trained):
    model, _, reports = trained
    epochs = [r for r in reports if r.kind == "epoch"]
    assert [r.epoch for r in epochs] == [0, 1]
    assert model.prior_trained and int(model.prior_steps) == epochs[-1].step
    test = epochs[-1].test
    assert test["code_nll"] < 0.8 * test["uniform_code_nll"]
    assert epochs[-1].history_entry["test_code_nll"] == test["code_nll"]
    assert any(k.startswith("prior.") for k in epochs[-1].weights)
    assert not any(p.requires_grad for p in model.prior.parameters())


def test_train_prior_refuses_other_models(digits, tmp_path):
    mlp = build_model("mlp", image_shape=digits.image_shape, latent_dim=2)
    with pytest.raises(ConfigError, match="vqvae"):
        next(train_prior(mlp, digits))
    with pytest.raises(ConfigError, match="epochs"):
        PriorConfig(epochs=0)


def test_cancelling_training_and_prior_training(digits):
    model = _model(digits)
    gen = iter_training(model, digits, TrainConfig(epochs=50, batch_size=8, yield_interval=0.0))
    reports = list(itertools.islice(gen, 3))
    gen.close()
    assert [r.kind for r in reports] == ["step"] * 3 and not model.training
    weights = {k: v.clone() for k, v in model.state_dict().items() if not k.startswith("prior")}
    gen = train_prior(model, digits, PriorConfig(epochs=50, batch_size=8, yield_interval=0.0))
    reports = list(itertools.islice(gen, 3))
    gen.close()
    assert [r.kind for r in reports] == ["step"] * 3 and reports[-1].step < reports[-1].total_steps
    assert not model.training and not any(p.requires_grad for p in model.prior.parameters())
    # Prior training changed nothing but the prior.
    for key, value in weights.items():
        assert torch.equal(model.state_dict()[key], value), key
    x = torch.from_numpy(digits.test.images[:4])
    assert torch.isfinite(model.loss(x)["loss"])


@pytest.mark.parametrize("layout", ["folder", "file.safetensors"])
def test_checkpoint_round_trip_keeps_ema_buffers_and_prior(trained, digits, tmp_path, layout):
    model, history, _ = trained
    path = save_checkpoint(tmp_path / layout, model, dataset=digits, history=history)
    loaded = load_checkpoint(path).model
    state = model.state_dict()
    assert {"quantizer._codebook.cluster_size", "quantizer._codebook.embed_avg", "prior_steps"} <= set(state)
    assert state.keys() == loaded.state_dict().keys()
    for key, value in loaded.state_dict().items():
        assert torch.equal(value, state[key]), key
    assert loaded.prior_trained
    x = torch.from_numpy(digits.test.images[:8])
    with torch.no_grad():
        grid = model.encode_indices(x)
        assert torch.equal(loaded.encode_indices(x), grid)
        assert torch.equal(loaded.code_nll(grid), model.code_nll(grid))
        assert torch.equal(loaded.decode_indices(grid), model.decode_indices(grid))
    assert torch.equal(loaded.sample_codes(4, seed=9), model.sample_codes(4, seed=9))


# -- command line ----------------------------------------------------------------------------
def _cli(*args):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "vae_core", *map(str, args)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)


def test_cli_train_train_prior_and_evaluate(tmp_path):
    out = tmp_path / "vq"
    result = _cli("train", "--dataset", "digits", "--model", "vqvae", "--latent-dim", "4", "--epochs", "1",
                  "--batch-size", "64", "--threads", "1", "--quiet", "--out", out)
    assert result.returncode == 0, result.stderr
    (out / "pins.json").write_text("[]")  # a map side file must survive the prior being added
    result = _cli("train-prior", out, "--epochs", "1", "--threads", "1", "--quiet")
    assert result.returncode == 0, result.stderr
    assert "test code NLL" in result.stderr
    assert (out / "pins.json").read_text() == "[]"
    ckpt = load_checkpoint(out)
    assert ckpt.model.prior_trained and [e["epoch"] for e in ckpt.history] == [1]
    result = _cli("evaluate", out, "--device", "cpu")
    assert result.returncode == 0, result.stderr
    for text in ("codebook usage", "perplexity", "prior NLL of the codes (learned prior)", "NLL bound"):
        assert text in result.stdout

    for args, message in [
        (("train-prior", tmp_path / "missing"), "No checkpoint"),
        (("train-prior", out, "--epochs", "0"), "--epochs"),
        (("train-prior", out, "--lr", "nan"), "--lr"),
        (("train", "--dataset", "digits", "--model", "vqvae", "--hidden", "64", "--out", tmp_path / "x"),
         "Unknown setting"),
    ]:
        result = _cli(*args)
        assert result.returncode == 2, (args, result.stderr)
        assert message in result.stderr and result.stderr.count("\n") == 1, result.stderr


def test_cli_train_prior_refuses_a_gaussian_model(trained_digits_checkpoint):
    result = _cli("train-prior", trained_digits_checkpoint, "--epochs", "1")
    assert result.returncode == 2
    assert "needs a vqvae checkpoint" in result.stderr and result.stderr.count("\n") == 1


def test_cli_vqvae_options_reach_the_model_and_bad_ones_are_one_line(tmp_path):
    out = tmp_path / "vq"
    result = _cli("train", "--dataset", "digits", "--model", "vqvae", "--latent-dim", "3", "--epochs", "1",
                  "--codebook-size", "12", "--commitment-weight", "0.5", "--ema", "off", "--ema-decay", "0.9",
                  "--dead-code-threshold", "0", "--prior-width", "24", "--prior-layers", "1", "--prior-heads", "3",
                  "--batch-size", "128", "--threads", "1", "--quiet", "--out", out)
    assert result.returncode == 0, result.stderr
    config = load_checkpoint(out).model.config
    assert (config.latent_dim, config.codebook_size, config.commitment_weight, config.ema, config.ema_decay,
            config.dead_code_threshold, config.prior_width, config.prior_layers, config.prior_heads) == \
        (3, 12, 0.5, False, 0.9, 0.0, 24, 1, 3)
    base = ("train", "--dataset", "digits", "--epochs", "1", "--out", tmp_path / "x")
    for args, message in [
        ((*base, "--model", "vqvae", "--codebook-size", "1"), "--codebook-size"),
        ((*base, "--model", "vqvae", "--ema", "maybe"), "on or off"),
        ((*base, "--model", "vqvae", "--ema-decay", "0"), "--ema-decay"),
        ((*base, "--model", "vqvae", "--prior-width", "10", "--prior-heads", "4"), "multiple of prior_heads"),
        ((*base, "--model", "conv", "--codebook-size", "16"), "applies to --model vqvae only"),
    ]:
        result = _cli(*args)
        assert result.returncode == 2, (args, result.stderr)
        assert message in result.stderr and result.stderr.count("\n") == 1, result.stderr


def test_vqvae_model_options_cover_its_config_and_check_their_ranges():
    from vae_core.model_options import family_config, options_for
    from vae_core.models.vqvae import VQVAEConfig

    chosen = {o.name for o in options_for("vqvae")}
    # Every setting of VQVAEConfig but the shared ones and the conv stages is offered.
    own = {f.name for f in dataclasses.fields(VQVAEConfig)} - {"image_shape", "latent_dim", "likelihood",
                                                                "gaussian_std", "channels"}
    assert chosen == own
    assert family_config("vqvae", {"ema": "off", "codebook_size": 8}) == {"ema": False, "codebook_size": 8}
    for values, message in [({"ema_decay": 0.0}, "> 0"), ({"ema": "sometimes"}, "on or off"),
                            ({"codebook_size": 70_000}, "from 2 to 65536"),
                            ({"prior_width": 30, "prior_heads": 4}, "multiple")]:
        with pytest.raises(ConfigError, match=message):
            family_config("vqvae", values)
