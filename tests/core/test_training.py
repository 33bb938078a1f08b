import numpy as np
import pytest
import torch

from vae_core import (NonFiniteLossError, TrainConfig, build_model, fit, iter_training,
                      load_checkpoint, save_checkpoint)
from vae_core.training import ShapeMismatchError, kl_weight


def _mlp(data, latent_dim=4):
    return build_model("mlp", image_shape=data.image_shape, latent_dim=latent_dim, hidden=(64,))


def test_short_training_lowers_the_loss(digits):
    torch.manual_seed(0)
    model = _mlp(digits)
    before = model.eval().loss(torch.from_numpy(digits.test.images))["loss"].item()
    reports = list(iter_training(model, digits, TrainConfig(epochs=4, batch_size=64, lr=3e-3)))
    epochs = [r for r in reports if r.kind == "epoch"]
    assert len(epochs) == 4
    test_elbo = [r.test["neg_elbo"] for r in epochs]
    assert test_elbo[-1] < test_elbo[0] < before
    assert epochs[-1].step == epochs[-1].total_steps
    assert set(epochs[-1].weights) == set(model.state_dict())
    # The snapshot is a copy: training on must not change it.
    assert all(w.device.type == "cpu" for w in epochs[-1].weights.values())


def test_training_is_deterministic_with_a_seed(digits):
    histories = []
    for _ in range(2):
        torch.manual_seed(123)  # model init
        model = _mlp(digits)
        histories.append(fit(model, digits, TrainConfig(epochs=2, batch_size=128, seed=7)))
    strip = lambda h: [{k: v for k, v in e.items() if k not in ("seconds", "images_per_sec")} for e in h]
    assert strip(histories[0]) == strip(histories[1])


def test_nan_loss_stops_with_a_clear_error_and_keeps_good_weights(digits):
    from dataclasses import replace

    images = digits.train.images.copy()
    images[:] = np.nan  # the very first batch is poisoned
    bad = replace(digits, train=replace(digits.train, images=images))
    model = _mlp(digits)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(NonFiniteLossError, match="last good weights"):
        list(iter_training(model, bad, TrainConfig(epochs=1)))
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_model_that_does_not_fit_the_data_is_refused(digits):
    model = build_model("mlp", image_shape=(1, 28, 28), latent_dim=2)
    with pytest.raises(ShapeMismatchError, match="1×28×28"):
        next(iter_training(model, digits, TrainConfig(epochs=1)))


def test_kl_annealing_schedules():
    lin = TrainConfig(beta=2.0, kl_anneal="linear", warmup_epochs=2)
    assert kl_weight(lin, 0, 10, 100) == 0
    assert kl_weight(lin, 10, 10, 100) == pytest.approx(1.0)
    assert kl_weight(lin, 50, 10, 100) == 2.0
    cyc = TrainConfig(beta=1.0, kl_anneal="cyclical", anneal_cycles=4)
    weights = [kl_weight(cyc, s, 10, 100) for s in range(100)]
    assert weights[0] == 0 and weights[6] == pytest.approx(0.48) and weights[13] == 1.0 and weights[25] == 0
    assert max(weights) == 1.0


def test_resume_continues_the_history(digits, tmp_path):
    model = _mlp(digits)
    config = TrainConfig(epochs=2, batch_size=128)
    gen = iter_training(model, digits, config)
    history, optimizer_state = [], None
    for report in gen:
        if report.kind == "epoch":
            history.append(report.history_entry)
            optimizer_state = report.optimizer_state
    save_checkpoint(tmp_path / "c", model, dataset=digits, history=history, optimizer_state=optimizer_state)
    ckpt = load_checkpoint(tmp_path / "c")
    assert ckpt.optimizer_state is not None
    more = fit(ckpt.model, digits, config, history=ckpt.history, optimizer_state=ckpt.optimizer_state)
    assert [e["epoch"] for e in more] == [1, 2, 3, 4]
    assert more[-1]["test_neg_elbo"] < more[1]["test_neg_elbo"]


def test_epoch_reports_carry_the_history_row_and_a_copy_of_the_optimizer_state(digits):
    model = _mlp(digits)
    gen = iter_training(model, digits, TrainConfig(epochs=2, batch_size=128, lr=3e-3))
    epochs, steps = [], []
    while True:
        try:
            report = next(gen)
        except StopIteration as done:
            history = done.value
            break
        (epochs if report.kind == "epoch" else steps).append(report)
    assert all(r.history_entry is None and r.optimizer_state is None for r in steps)
    # The rows handed out at each epoch are exactly the history the loop returns.
    assert [r.history_entry for r in epochs] == history
    first, last = epochs
    assert first.history_entry["epoch"] == 1 and last.history_entry["epoch"] == 2
    assert last.history_entry["step"] == last.step
    assert last.history_entry["train_loss"] == last.losses["loss"]
    assert last.history_entry["test_neg_elbo"] == last.test["neg_elbo"]
    # Adam's step count after epoch 1 is the number of optimizer steps so far, and the
    # epoch-1 copy does not move when training goes on (Adam updates in place).
    step_of = lambda r: [float(s["step"]) for s in r.optimizer_state["state"].values()]
    assert set(step_of(first)) == {float(first.step)}
    assert set(step_of(last)) == {float(last.step)}
    assert len(first.optimizer_state["state"]) == len(list(model.parameters()))
    moment = next(iter(first.optimizer_state["state"].values()))["exp_avg"]
    assert moment.device.type == "cpu"
    assert not torch.equal(moment, next(iter(last.optimizer_state["state"].values()))["exp_avg"])
