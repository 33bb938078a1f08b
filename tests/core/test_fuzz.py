"""Property-based fuzzing of everything a user can hand to vae_core.

Every generated command line either works (exit 0) or exits with status 2 and exactly
one line on stderr; a training whose loss turns NaN may exit 1, also with one line. Every
generated checkpoint document either loads or raises CheckpointError. An exception of
any other kind escapes :func:`vae_core.cli.main` (or :func:`load_checkpoint`) and fails
the test with its traceback: that is a bug the fuzzer found.

The commands run in-process (``vae_core.cli.main(argv)`` with stderr captured), which is
what keeps the whole module well under a minute on two cores; ``test_cli.py`` runs the
real subprocesses.

CI runs a fixed set of examples (``derandomize=True``). For a longer, random run::

    LE_FUZZ_EXAMPLES=2000 python -m pytest tests/core/test_fuzz.py

``LE_FUZZ_EXAMPLES`` sets the examples per test (default 25) and switches to random
draws when set.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
from pathlib import Path

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, event, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from vae_core import CheckpointError, load_checkpoint, save_checkpoint  # noqa: E402
from vae_core.checkpoint import CONFIG_FILE, HISTORY_FILE, OPTIMIZER_FILE, read_checkpoint_info  # noqa: E402
from vae_core.cli import main  # noqa: E402
from vae_core.errors import ResourceError  # noqa: E402

_EXAMPLES = os.environ.get("LE_FUZZ_EXAMPLES")
FUZZ = settings(
    max_examples=int(_EXAMPLES or 25),
    derandomize=_EXAMPLES is None,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much],
)

# Text that has broken number parsers before: NaN, infinities, overflow, odd spellings.
NASTY = ["0", "-1", "-0", "nan", "NaN", "inf", "-inf", "1e309", "-1e309", "1e-320", "", " ", "abc", "1_0",
         "0x10", "2**70", str(2**70), str(2**64), str(2**63 - 1), "9" * 40, "1e6", "1.5", "-2.5", "٣", "+3"]


def nasty_values(cheap_valid: list[str]) -> st.SearchStrategy[str]:
    """Bad values of every kind, plus a few valid ones that run quickly."""
    bad = st.one_of(
        st.sampled_from(NASTY),
        st.integers(min_value=-(2**80), max_value=-1).map(str),
        st.integers(min_value=2**31, max_value=2**80).map(str),
        st.floats(allow_nan=True, allow_infinity=True).map(repr),
        st.text(max_size=6),
    )
    return st.one_of(st.sampled_from(cheap_valid), bad) if cheap_valid else bad


def run_main(argv: list[str]) -> tuple[int, str]:
    """``main(argv)`` in-process: (exit status, stderr). Other exceptions propagate."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            status = main([str(a) for a in argv])
        except SystemExit as exc:  # argparse
            status = exc.code if isinstance(exc.code, int) else 2
    return status, err.getvalue()


def assert_works_or_one_line(status: int, stderr: str, allowed=(0, 2)) -> None:
    event(f"exit {status}")
    assert status in allowed, (status, stderr)
    assert "Traceback" not in stderr
    if status != 0:
        lines = [line for line in stderr.splitlines() if line.strip() and not line.startswith("warning:")]
        assert len(lines) == 1, stderr
        assert "error:" in lines[0], stderr


@pytest.fixture(autouse=True)
def _small_machine(monkeypatch):
    # Pretend to have 2 GiB so that a generated size which would fit the test machine's
    # memory, but takes minutes to fill, is refused like on a small laptop.
    monkeypatch.setattr("vae_core.resources.available_memory", lambda: 2 * 1024**3)


# -- train ---------------------------------------------------------------------------------
TRAIN_BASE = ["train", "--dataset", "digits", "--epochs", "1", "--latent-dim", "2", "--hidden", "8",
              "--batch-size", "512", "--threads", "1", "--quiet"]

TRAIN_OPTIONS = {
    "--epochs": nasty_values(["1"]),
    "--batch-size": nasty_values(["300", "5000"]),
    "--latent-dim": nasty_values(["1", "3"]),
    "--hidden": nasty_values(["4", "16"]),
    "--beta": nasty_values(["0", "4", "1000"]),
    "--warmup-epochs": nasty_values(["0.5", "3"]),
    "--lr": nasty_values(["1e-3", "10"]),
    "--seed": nasty_values(["7", "4294967295"]),
    "--image-size": nasty_values(["4", "6"]),
    "--threads": nasty_values(["1"]),
    "--channels": nasty_values(["1", "3"]),
    "--kl-anneal": nasty_values(["linear", "cyclical"]),
    "--model": nasty_values(["conv", "cvae"]),
}


@FUZZ
@given(data=st.data())
def test_fuzz_train_options(tmp_path_factory, data):
    chosen = data.draw(st.lists(st.sampled_from(sorted(TRAIN_OPTIONS)), min_size=1, max_size=2, unique=True))
    argv = list(TRAIN_BASE)
    for option in chosen:
        value = data.draw(TRAIN_OPTIONS[option], label=option)
        # Both spellings: "--beta=-inf" reaches the type function even for a leading '-'.
        argv += [f"{option}={value}"] if data.draw(st.booleans()) else [option, value]
    out = tmp_path_factory.mktemp("fuzz") / "model"
    status, stderr = run_main([*argv, "--out", out])
    # A legal but unstable setting (lr 10) may end in a NaN loss: exit 1, one line.
    assert_works_or_one_line(status, stderr, allowed=(0, 1, 2))
    if status == 0:
        load_checkpoint(out)


# -- evaluate, interpolate, arithmetic -----------------------------------------------------
@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    out = tmp_path_factory.mktemp("fuzz-ckpt") / "model"
    status, stderr = run_main([*TRAIN_BASE, "--out", out])
    assert status == 0, stderr
    return out


INDEX = st.one_of(st.sampled_from(["0", "5", "1796", "1797", "-1", "x", "9" * 30]), st.integers(-5, 3000).map(str))

EXPRESSIONS = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["#1 - mean(7) + mean(3)", "mean(#1, #2)", "@3", "@\"7\"", "#999999", "1e999*#1",
                     "1e200*#1*1e200", "pin:x", "mean(" * 1500 + "1" + ")" * 1500, "-#1", "--#1", "#1 + ",
                     "mean()", "0.5#3 - 0.25*@1", "mean(mean(1), mean(2))"]),
    st.lists(st.sampled_from(["#1", "#2", "@3", "mean(4)", "2*", "+", "-", "(", ")", ",", "mean(", "0.5", "#"]),
             max_size=8).map(" ".join),
)


@FUZZ
@given(data=st.data())
def test_fuzz_latent_commands(checkpoint, tmp_path_factory, data):
    out_dir = tmp_path_factory.mktemp("fuzz-out")
    command = data.draw(st.sampled_from(["interpolate", "arithmetic", "evaluate"]))
    if command == "interpolate":
        argv = ["interpolate", checkpoint, "--from", data.draw(INDEX), "--to", data.draw(INDEX)]
        options = {"--steps": nasty_values(["2", "5"]), "--fps": nasty_values(["12", "240"]),
                   "--upscale": nasty_values(["1", "3"]), "--columns": nasty_values(["2"]),
                   "--via": INDEX, "--easing": nasty_values(["ease-in-out"]),
                   "--method": nasty_values(["slerp"])}
        ext = data.draw(st.sampled_from([".gif", ".png", ".webp", ".apng", ".txt", ""]))
    elif command == "arithmetic":
        argv = ["arithmetic", checkpoint, "--", data.draw(EXPRESSIONS)]
        options = {"--strength": nasty_values(["0.5", "-2"]), "--upscale": nasty_values(["2"]),
                   "--label": nasty_values(["0"])}
        ext = data.draw(st.sampled_from([".png", ".gif"]))
    else:
        argv = ["evaluate", checkpoint]
        options = {"--iwae-k": nasty_values(["1", "5"]), "--batch-size": nasty_values(["7"]),
                   "--seed": nasty_values(["3"]), "--split": nasty_values(["train", "test"]),
                   "--disentanglement-points": nasty_values(["10"]), "--score-votes": nasty_values(["1"]),
                   "--samples": nasty_values(["4"])}
        # The checkpoint's digits have no factors: --disentanglement must be one line and exit 2.
        if data.draw(st.booleans(), label="--disentanglement"):
            argv.append("--disentanglement")
        ext = None
    chosen = data.draw(st.lists(st.sampled_from(sorted(options)), max_size=2, unique=True))
    opts = []
    for option in chosen:
        opts.append(f"{option}={data.draw(options[option], label=option)}")
    if ext is not None:
        opts += ["--out", out_dir / f"result{ext}"]
    if command == "arithmetic":  # options before "--", the expression after it
        argv = argv[:2] + opts + argv[2:]
    else:
        argv += opts
    status, stderr = run_main(argv)
    assert_works_or_one_line(status, stderr)


# -- checkpoint documents ------------------------------------------------------------------
JSON = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
              st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=8)),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=4)),
    max_leaves=12,
)


@pytest.fixture(scope="module")
def good_checkpoint(tmp_path_factory):
    import torch

    from vae_core import TrainConfig, build_model

    torch.manual_seed(0)
    model = build_model("mlp", image_shape=(1, 8, 8), latent_dim=2, hidden=(8,))
    optimizer = torch.optim.Adam(model.parameters())
    model.loss(torch.rand(4, 1, 8, 8))["loss"].backward()
    optimizer.step()
    root = tmp_path_factory.mktemp("good")
    kwargs = dict(dataset={"spec": "digits", "options": {"seed": 0}}, train_config=TrainConfig(epochs=2),
                  history=[{"epoch": 1, "step": 3, "train_loss": 40.0}], optimizer_state=optimizer.state_dict())
    return save_checkpoint(root / "folder", model, **kwargs), save_checkpoint(root / "one.safetensors", model, **kwargs)


def _mutate(document, data):
    """Replace, delete or add one value somewhere in a JSON document."""
    if not isinstance(document, (dict, list)) or not document or data.draw(st.integers(0, 3)) == 0:
        return data.draw(JSON, label="replacement")
    if isinstance(document, dict):
        key = data.draw(st.sampled_from(sorted(document)), label="key")
        action = data.draw(st.sampled_from(["replace", "delete", "descend"]))
        if action == "delete":
            return {k: v for k, v in document.items() if k != key}
        value = _mutate(document[key], data) if action == "descend" else data.draw(JSON, label="value")
        return {**document, key: value}
    index = data.draw(st.integers(0, len(document) - 1))
    return [*document[:index], _mutate(document[index], data), *document[index + 1:]]


def _loads_or_refuses(path) -> None:
    try:
        ckpt = load_checkpoint(path)
    except (CheckpointError, ResourceError) as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    assert all(isinstance(note, str) for note in ckpt.warnings)
    # A loaded history is always numbered 1, 2, 3, ... (resumed epochs continue from it).
    assert [row["epoch"] for row in ckpt.history] == list(range(1, len(ckpt.history) + 1))


@FUZZ
@given(data=st.data())
def test_fuzz_folder_checkpoint_documents(good_checkpoint, tmp_path_factory, data):
    folder = tmp_path_factory.mktemp("mut") / "c"
    shutil.copytree(good_checkpoint[0], folder)
    target = data.draw(st.sampled_from([CONFIG_FILE, CONFIG_FILE, HISTORY_FILE, OPTIMIZER_FILE]))
    if target == OPTIMIZER_FILE:
        raw = (folder / target).read_bytes()
        cut = data.draw(st.integers(0, len(raw) - 1))
        (folder / target).write_bytes(raw[:cut])
    else:
        document = json.loads((folder / target).read_text())
        mutated = _mutate(document, data)
        (folder / target).write_text(json.dumps(mutated))
    _loads_or_refuses(folder)
    try:
        read_checkpoint_info(folder)
    except CheckpointError:
        pass


@FUZZ
@given(data=st.data())
def test_fuzz_single_file_metadata(good_checkpoint, tmp_path_factory, data):
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    source = good_checkpoint[1]
    with safe_open(str(source), framework="pt") as fh:
        metadata = dict(fh.metadata())
    key = data.draw(st.sampled_from(["latent_explorer", "history"]))
    if data.draw(st.booleans()):
        metadata[key] = json.dumps(_mutate(json.loads(metadata[key]), data))
    else:
        metadata[key] = data.draw(st.text(max_size=20))
    path = tmp_path_factory.mktemp("mut") / "c.safetensors"
    save_file(load_file(str(source)), str(path), metadata=metadata)
    _loads_or_refuses(path)


def test_fuzz_runs_as_a_real_process_too(checkpoint, tmp_path):
    """Two of the fuzzed cases, run as users run them: one line on stderr, status 2."""
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for argv in (["train", "--dataset", "digits", "--warmup-epochs", "nan", "--out", tmp_path / "x"],
                 ["arithmetic", checkpoint, "mean(" * 1500 + "1" + ")" * 1500, "--out", tmp_path / "a.png"]):
        result = subprocess.run([sys.executable, "-m", "vae_core", *map(str, argv)], cwd=repo, env=env,
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 2, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert "Traceback" not in result.stderr
