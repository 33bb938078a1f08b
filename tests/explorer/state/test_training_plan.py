"""Planning a run without a window: new or continued model, compatibility, learning rate."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from explorer.state import (ExplorerState, TrainingOptions, TrainingProblem, build_model_for, prepare_run,
                            training_config, with_learning_rate)
from explorer.state.training import load_for_run
from vae_core import load_dataset


@pytest.fixture
def document(digits):
    doc = ExplorerState()
    doc.set_dataset(digits)
    doc.set_model(build_model_for(digits, "mlp", latent_dim=3, hidden=(16,), seed=1),
                  history=[{"epoch": 1}, {"epoch": 2}],
                  optimizer_state={"state": {0: {"step": torch.tensor(5.0)}},
                                   "param_groups": [{"lr": 0.1, "betas": (0.9, 0.999), "params": [0]}]})
    return doc


def test_continuing_keeps_history_and_overrides_the_saved_learning_rate(document, digits):
    options = TrainingOptions(continue_training=True, lr=0.004, epochs=2)
    config = training_config(document, options)
    model = document.model
    run = prepare_run(document, options, digits, config)
    assert document.model is model                      # the open model goes on learning
    assert run.model is not model and run.model.training
    assert run.history == [{"epoch": 1}, {"epoch": 2}] and run.history is not document.history
    assert [g["lr"] for g in run.optimizer_state["param_groups"]] == [0.004]
    assert document.optimizer_state["param_groups"][0]["lr"] == 0.1   # the document's copy is untouched
    assert run.optimizer_state["state"] is document.optimizer_state["state"]


def test_a_new_run_builds_the_model_from_the_options(document, digits):
    options = TrainingOptions(model="mlp", latent_dim=5, hidden=(24, 12), seed=3, lr=0.01)
    run = prepare_run(document, options, digits, training_config(document, options))
    assert document.model.latent_dim == 5 and document.history == [] and not document.dirty
    assert run.history == [] and run.optimizer_state is None
    expected = build_model_for(digits, "mlp", latent_dim=5, hidden=(24, 12), seed=3)
    for key, value in expected.state_dict().items():
        assert torch.equal(value, run.model.state_dict()[key])
    # The run trains its own weights: the document's model (which the window decodes with)
    # shares no storage with it and is not trainable.
    assert run.model is not document.model and run.model.training
    assert all(p.requires_grad for p in run.model.parameters())
    ours = {p.data_ptr() for p in document.model.parameters()}
    assert not ours & {p.data_ptr() for p in run.model.parameters()}
    assert not any(p.requires_grad for p in document.model.parameters())


def test_a_new_model_built_ahead_in_a_worker_is_the_one_that_trains(document, digits):
    options = TrainingOptions(dataset="digits", model="mlp", latent_dim=4, hidden=(20,), seed=7)
    config = training_config(document, options)
    torch.manual_seed(123)
    before = torch.rand(3)
    torch.manual_seed(123)
    data, new = load_for_run(options, config, current=digits)
    assert torch.equal(torch.rand(3), before)          # the caller's random stream is left alone
    assert data is digits                               # the open dataset is not loaded again
    expected = build_model_for(digits, "mlp", latent_dim=4, hidden=(20,), seed=7)
    for key, value in expected.state_dict().items():
        assert torch.equal(value, new.model.state_dict()[key])
        assert torch.equal(value, new.snapshot.state_dict()[key])
    assert not new.snapshot.training and not any(p.requires_grad for p in new.snapshot.parameters())
    run = prepare_run(document, options, data, config, new)
    assert document.model is new.snapshot               # taken as it is: no copy on the GUI thread
    assert run.model is new.model and run.model.training
    assert not {p.data_ptr() for p in run.model.parameters()} & {p.data_ptr() for p in document.model.parameters()}


def test_a_model_that_trains_is_never_taken_as_the_documents_own(document, digits):
    model = build_model_for(digits, "mlp", latent_dim=2, hidden=(8,))
    with pytest.raises(ValueError, match="eval_copy"):
        document.set_model(model, own=True)
    assert document.model.latent_dim == 3


def test_a_continued_runs_copy_made_in_a_worker_trains_while_its_source_is_still_open(document, digits):
    options = TrainingOptions(dataset="digits", continue_training=True, epochs=2)
    config = training_config(document, options)
    model = document.model
    data, ahead = load_for_run(options, config, current=digits, model=model)
    assert data is digits and ahead.source is model
    assert ahead.model is not model and ahead.model.training and all(p.requires_grad for p in ahead.model.parameters())
    assert not {p.data_ptr() for p in model.parameters()} & {p.data_ptr() for p in ahead.model.parameters()}
    for key, value in model.state_dict().items():
        assert torch.equal(value, ahead.model.state_dict()[key])
    run = prepare_run(document, options, digits, config, ahead)
    assert run.model is ahead.model and document.model is model
    # Another model was opened meanwhile: the copy of the former one is not what continues.
    _, stale = load_for_run(options, config, current=digits, model=model)
    document.set_model(build_model_for(digits, "mlp", latent_dim=3, hidden=(16,), seed=2))
    run = prepare_run(document, options, digits, config, stale)
    assert run.model is not stale.model
    for key, value in document.model.state_dict().items():
        assert torch.equal(value, run.model.state_dict()[key])


def test_a_model_that_cannot_be_built_ahead_comes_back_as_the_problem(document, digits):
    for options, title in ((TrainingOptions(dataset="digits", model="iaf", flow_steps=65), "Cannot build this model"),
                           (TrainingOptions(dataset="digits", model="iaf", objective="tcvae"),
                            "This model cannot train with this objective")):
        data, problem = load_for_run(options, options.train_config(), current=digits)
        assert data is digits and isinstance(problem, TrainingProblem) and problem.title == title
    model = document.model
    assert load_for_run(TrainingOptions(dataset="digits", continue_training=True), TrainingOptions().train_config(),
                        current=digits) == (digits, None)
    assert document.model is model


def test_refusals_are_one_sentence_and_change_nothing(document, digits, tmp_path):
    with pytest.raises(TrainingProblem, match="Open a checkpoint first") as info:
        training_config(ExplorerState(), TrainingOptions(continue_training=True))
    assert info.value.level == "info"
    with pytest.raises(TrainingProblem) as info:
        training_config(document, TrainingOptions(batch_size=0))
    assert info.value.title == "Check the training settings"

    images = np.random.default_rng(0).random((40, 1, 6, 6)).astype(np.float32)
    np.savez(tmp_path / "small.npz", x=images)
    other = load_dataset(f"npz:{tmp_path / 'small.npz'}")
    model, data = document.model, document.dataset
    options = TrainingOptions(continue_training=True)
    with pytest.raises(TrainingProblem, match="Choose “New model” to train one for small.npz") as info:
        prepare_run(document, options, other, training_config(document, options))
    assert info.value.title == "This model cannot train on this dataset"
    with pytest.raises(TrainingProblem, match="labelled") as info:   # a cvae needs labels
        prepare_run(document, TrainingOptions(model="cvae"), other, training_config(document, TrainingOptions()))
    assert info.value.title == "Cannot build this model" and "Traceback" in info.value.details
    assert document.model is model and document.dataset is data


def test_with_learning_rate_leaves_an_empty_state_alone():
    assert with_learning_rate(None, 0.1) is None
    assert with_learning_rate({}, 0.1) == {}


# -- objectives and model families -----------------------------------------------------------------
def test_family_options_round_trip_through_the_settings():
    options = TrainingOptions(model="hvae", objective="tcvae", samples=7, alpha=0.5, gamma=3.0, flow_steps=4,
                              lower_dims=(12, 6), map_layer="all", gan_weight=0.25, feature_weight=2.0)
    back = TrainingOptions.from_dict(options.to_dict())
    assert back == options
    assert TrainingOptions.from_dict({"lower_dims": "oops", "objective": "iwae"}).lower_dims == (100,)


def test_objective_settings_reach_the_train_config():
    iwae = TrainingOptions(objective="iwae", samples=7, alpha=9.0).train_config()
    assert (iwae.objective, iwae.samples, iwae.alpha) == ("iwae", 7, 1.0)   # alpha serves tcvae only
    tc = TrainingOptions(objective="tcvae", samples=7, alpha=0.5, gamma=2.0, beta=4.0).train_config()
    assert (tc.samples, tc.alpha, tc.gamma, tc.beta) == (1, 0.5, 2.0, 4.0)


@pytest.mark.parametrize("options, expected", [
    (TrainingOptions(model="hvae", latent_dim=2, hidden=(32,), lower_dims=(8, 4), map_layer="2"),
     {"lower_dims": (8, 4), "hidden": (32, 32, 32), "map_layer": "2"}),
    (TrainingOptions(model="iaf", latent_dim=2, hidden=(16,), flow_steps=3), {"flow_steps": 3, "hidden": (16,)}),
    (TrainingOptions(model="vaegan", latent_dim=2, hidden=(16, 8), gan_weight=0.5, feature_weight=0.0),
     {"gan_weight": 0.5, "feature_weight": 0.0, "hidden": 16}),
])
def test_a_new_run_builds_each_family_from_its_options(options, expected, digits):
    document = ExplorerState()
    run = prepare_run(document, options, digits, training_config(document, options))
    for name, value in expected.items():
        assert getattr(document.model.config, name) == value
    assert run.model.name == options.model


def test_family_and_objective_refusals_change_nothing(document, digits):
    model = document.model
    bad = TrainingOptions(model="iaf", flow_steps=65)
    with pytest.raises(TrainingProblem, match="flow_steps must be a whole number from 0 to 64") as info:
        prepare_run(document, bad, digits, training_config(document, bad))
    assert info.value.title == "Cannot build this model"
    tc = TrainingOptions(model="iaf", objective="tcvae")
    with pytest.raises(TrainingProblem, match="Gaussian posterior") as info:
        prepare_run(document, tc, digits, training_config(document, tc))
    assert info.value.title == "This model cannot train with this objective"
    assert document.model is model
