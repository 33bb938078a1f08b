"""A model written elsewhere, opened in the window; Export ▸ Model…; TensorBoard from the panel."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("pytestqt")

from PySide6.QtCore import Qt  # noqa: E402

from explorer.ui.training.panel import TrainingOptions  # noqa: E402

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def _example_module():
    spec = importlib.util.spec_from_file_location("example_pytorch_mnist_vae", EXAMPLES / "pytorch_mnist_vae.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def trained_example(tmp_path_factory):
    """The PyTorch examples VAE trained by its own loop for a few steps on digits at 28×28,
    its weights saved with torch.save, and a copy of its adapter file (tests edit the copy)."""
    from vae_core.data import load_dataset

    images = torch.from_numpy(load_dataset("digits", image_size=28).train.images)
    example = _example_module()
    torch.manual_seed(0)
    model = example.VAE()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(150):
        x = images[torch.randint(0, len(images), (64,))]
        out, mu, logvar = model(x)
        loss = example.loss_function(out, x, mu, logvar)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    folder = tmp_path_factory.mktemp("own-model")
    weights = folder / "model.pt"
    torch.save(model.state_dict(), weights)
    return model, weights


@pytest.fixture
def adapter_copy(tmp_path):
    target = tmp_path / "my_vae.py"
    shutil.copy(EXAMPLES / "pytorch_mnist_vae.py", target)
    return target


def _choose_files(monkeypatch, *paths):
    """File ▸ Open Model Code… asks for the adapter, then for the weights: answer in turn."""
    answers = iter([(str(p), "") for p in paths])
    monkeypatch.setattr("explorer.ui.main_window.QFileDialog.getOpenFileName", lambda *a, **k: next(answers))


def _trust(monkeypatch, answer=True):
    asked = []

    def ask(_parent, path):
        asked.append(Path(path))
        return answer

    monkeypatch.setattr("explorer.ui.main_window.ask_run_code", ask)
    return asked


def _open_code(qtbot, window, monkeypatch, adapter, weights):
    _choose_files(monkeypatch, adapter, weights)
    with qtbot.waitSignal(window.state.model_changed, timeout=60_000):
        window.actions["open_code"].trigger()


def test_open_model_code_maps_decodes_and_disables_what_it_cannot_do(qtbot, make_main_window, monkeypatch,
                                                                       trained_example, adapter_copy):
    own, weights = trained_example
    window = make_main_window()
    asked = _trust(monkeypatch)
    _open_code(qtbot, window, monkeypatch, adapter_copy, weights)
    state = window.state
    assert asked == [adapter_copy.resolve()]
    assert state.model.name == "pytorch-examples-vae" and state.model.latent_dim == 20
    # The Training panel's digits, resampled to the 28×28 images the model reads.
    assert state.dataset.spec == "digits" and state.dataset.image_shape == (1, 28, 28)
    assert window.windowTitle().startswith("pytorch-examples-vae")
    assert "pytorch-examples-vae" in window.model_label.text() and "my_vae.py" in window.model_label.text()

    # The map shows the adapted model's codes: exactly its own encoder's means.
    qtbot.waitUntil(lambda: state.codes is not None, timeout=30_000)
    with torch.no_grad():
        mu, logvar = own.encode(torch.from_numpy(state.images).view(-1, 784))
    np.testing.assert_allclose(state.codes, mu.numpy(), atol=1e-5)
    np.testing.assert_allclose(state.logvar, logvar.numpy(), atol=1e-5)
    docks = window.map_docks
    qtbot.waitUntil(lambda: state.map.ready, timeout=30_000)
    qtbot.waitUntil(lambda: docks.panel.view.points.has_render, timeout=10_000)

    # Hovering decodes with the adapted model: what its own decoder gives for the inverse point.
    seen = docks.decoder.decode_count
    x, y = (float(v) for v in state.map.projection.transform(state.codes[:1])[0])
    docks.panel.view.hover_at(x, y)
    qtbot.waitUntil(lambda: docks.decoder.decode_count > seen, timeout=5_000)
    z = state.map.cursor_z
    with torch.no_grad():
        expected = own.decode(torch.from_numpy(np.atleast_2d(z)).float()).view(1, 28, 28).numpy()
    np.testing.assert_allclose(docks.decoder.preview_image, expected, atol=1e-5)

    # Train, Continue, Save: disabled, and the tooltip says why.
    reason = state.model.limitations["train"]
    panel = window.training_panel
    assert not panel.train_button.isEnabled() and reason in panel.train_button.toolTip()
    assert not window.actions["train"].isEnabled() and reason in window.actions["train"].toolTip()
    assert not panel.continue_radio.isEnabled() and panel.continue_radio.toolTip() == reason
    for name in ("save", "save_as"):
        assert not window.actions[name].isEnabled()
        assert window.actions[name].toolTip() == state.model.limitations["checkpoint"]
    assert window.actions["export_model"].isEnabled()

    # Back to one of ours: everything is enabled again.
    from vae_core import build_model

    state.set_model(build_model("mlp", image_shape=(1, 28, 28), latent_dim=2, hidden=(16,)))
    assert panel.train_button.isEnabled() and window.actions["save_as"].isEnabled()
    assert panel.train_button.toolTip() == "Start training with these settings (Ctrl+T)"


def test_the_run_code_question_is_asked_once_per_file_content(qtbot, make_main_window, monkeypatch,
                                                              trained_example, adapter_copy):
    _, weights = trained_example
    window = make_main_window()
    asked = _trust(monkeypatch)
    _open_code(qtbot, window, monkeypatch, adapter_copy, weights)
    first = window.state.model
    _open_code(qtbot, window, monkeypatch, adapter_copy, weights)
    assert len(asked) == 1 and window.state.model is not first

    # Another window with the same settings remembers the answer too.
    other = make_main_window(settings=window.settings)
    _open_code(qtbot, other, monkeypatch, adapter_copy, weights)
    assert len(asked) == 1

    # An edited file is asked about again; declining opens nothing and runs nothing.
    adapter_copy.write_text(adapter_copy.read_text() + "\nNAME = 'edited'\n")
    declined = _trust(monkeypatch, answer=False)
    _choose_files(monkeypatch, adapter_copy, weights)
    shown = window.state.model
    window.actions["open_code"].trigger()
    qtbot.wait(200)
    assert declined == [adapter_copy.resolve()] and window.state.model is shown and not window.busy
    allowed = _trust(monkeypatch)
    _open_code(qtbot, window, monkeypatch, adapter_copy, weights)
    assert allowed == [adapter_copy.resolve()] and window.state.model.name == "edited"


@pytest.mark.parametrize("change, expected", [
    ("def encode(model, x):\n    return model.encode(x.view(-1, 784))[0][:, :3]\n",
     "encode in my_vae.py returned mu of shape 2×3 for 2 images; expected 2×20"),
    ("raise RuntimeError('no GPU here')\n", "Importing my_vae.py failed (line"),
    ("IMAGE_SHAPE = (3, 32, 32)\n", "but the dataset has"),
])
def test_a_broken_adapter_gives_one_sentence_in_an_error_dialog(qtbot, make_main_window, monkeypatch,
                                                                trained_example, adapter_copy, change, expected):
    _, weights = trained_example
    window = make_main_window()
    _trust(monkeypatch)
    adapter_copy.write_text(adapter_copy.read_text() + "\n" + change)
    _choose_files(monkeypatch, adapter_copy, weights)
    window.actions["open_code"].trigger()
    qtbot.waitUntil(lambda: window.last_error is not None, timeout=30_000)
    title, text, _details = window.last_error
    assert title == "Could not open the model code"
    assert expected in text and "\n" not in text and "Traceback" not in text
    assert window.state.model is None


def test_wrong_weights_give_one_sentence(qtbot, make_main_window, monkeypatch, tmp_path, adapter_copy):
    from vae_core import build_model

    weights = tmp_path / "other.pt"
    torch.save(build_model("mlp", image_shape=(1, 28, 28), latent_dim=2, hidden=(8,)).state_dict(), weights)
    window = make_main_window()
    _trust(monkeypatch)
    _choose_files(monkeypatch, adapter_copy, weights)
    window.actions["open_code"].trigger()
    qtbot.waitUntil(lambda: window.last_error is not None, timeout=30_000)
    assert window.last_error[1].startswith("The weights in other.pt do not fit the adapter's model")


def test_export_model_writes_onnx_and_torchscript(qtbot, make_main_window, tmp_path, digits):
    onnxruntime = pytest.importorskip("onnxruntime")
    from vae_core import build_model

    window = make_main_window()
    state = window.state
    torch.manual_seed(0)
    state.set_dataset(digits)
    state.set_model(build_model("mlp", image_shape=digits.image_shape, latent_dim=3, hidden=(16,)))
    window.actions["export_model"].trigger()
    dialog = window.model_export_dialog
    assert dialog.formats() == ["onnx", "torchscript"]
    dialog.folder_edit.setText(str(tmp_path / "out"))
    with qtbot.waitSignal(dialog.exported, timeout=120_000) as done:
        qtbot.mouseClick(dialog.export_button, Qt.MouseButton.LeftButton)
        assert dialog.running and not dialog.export_button.isEnabled()
    names = sorted(p.name for p in done.args[0])
    assert names == ["decoder.onnx", "decoder.pt", "encoder.onnx", "encoder.pt", "manifest.json"]
    assert all(p.is_file() for p in done.args[0])
    assert str(tmp_path / "out") in dialog.status.text()

    z = np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32)
    expected = state.decode(z)
    session = onnxruntime.InferenceSession(str(tmp_path / "out" / "decoder.onnx"))
    np.testing.assert_allclose(session.run(None, {"z": z})[0], expected, atol=1e-5)
    scripted = torch.jit.load(str(tmp_path / "out" / "decoder.pt"))
    np.testing.assert_allclose(scripted(torch.from_numpy(z)).numpy(), expected, atol=1e-5)
    dialog.reject()


def test_tensorboard_checkbox_logs_the_run(qtbot, make_main_window, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    window = make_main_window()
    panel = window.training_panel
    panel.set_options(TrainingOptions(dataset="digits", model="mlp", latent_dim=2, hidden=(32,), batch_size=64,
                                      lr=3e-3, seed=0, epochs=2, tensorboard=True, tensorboard_dir=str(tmp_path)))
    assert panel.tensorboard_check.isChecked() and panel.tensorboard_edit.isEnabled()
    options = panel.options()
    assert options.tensorboard and options.tensorboard_dir == str(tmp_path)
    assert TrainingOptions.from_dict(options.to_dict()) == options   # persisted with the other settings
    with qtbot.waitSignal(window.state.training_finished, timeout=120_000) as finished:
        qtbot.mouseClick(panel.train_button, Qt.MouseButton.LeftButton)
    assert finished.args == ["completed"]
    runs = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert len(runs) == 1 and runs[0].name.startswith("digits-mlp-")
    events = EventAccumulator(str(runs[0]), size_guidance={"scalars": 0, "images": 0})
    events.Reload()
    tags = events.Tags()
    test = [e.value for e in events.Scalars("test/neg_elbo")]
    assert len(test) == 2
    np.testing.assert_allclose(test, [h["test_neg_elbo"] for h in window.state.history], rtol=1e-5)
    assert {"train/loss", "train/kl", "test_kl_per_dim/z00", "test_kl_per_dim/z01"} <= set(tags["scalars"])
    assert {"reconstructions", "samples"} <= set(tags["images"])
    assert len(events.Images("samples")) == 2
