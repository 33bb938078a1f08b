"""``latent-explorer --smoke`` as users and CI run it: a real process, settings and temporary
files kept away from the user's, damaged checkpoints refused with one line and status 2."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
UNLOADABLE = ("truncated_weights", "config_of_wrong_types", "config_not_an_object", "absurd_latent_dim",
              "config_not_json", "truncated_single_file")
SIDE_FILE_DAMAGED = ("bad_history", "history_of_wrong_rows", "truncated_optimizer")


@pytest.fixture
def private_home(tmp_path):
    """HOME, the XDG folders and TMPDIR of a user who has never run the app."""
    dirs = {name: tmp_path / name for name in ("home", "config", "tmp")}
    for folder in dirs.values():
        folder.mkdir()
    env = {**os.environ, "HOME": str(dirs["home"]), "XDG_CONFIG_HOME": str(dirs["config"]),
           "TMPDIR": str(dirs["tmp"]), "QT_QPA_PLATFORM": "offscreen", "OMP_NUM_THREADS": "1"}
    env.pop("LATENT_EXPLORER_DEFAULT_MODEL", None)
    return env, dirs


def smoke(env, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "explorer", "--smoke", *map(str, args)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=180)


def files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*"))


def assert_one_error_line(result, name="") -> None:
    assert result.returncode == 2, (name, result.returncode, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, (name, result.stderr)
    assert lines[0].startswith("latent-explorer: error: "), (name, lines)
    assert "Traceback" not in result.stderr and "unexpectedly" not in result.stderr, (name, result.stderr)


def test_smoke_leaves_no_settings_file_and_no_temporary_folder(private_home):
    env, dirs = private_home
    result = smoke(env)
    assert result.returncode == 0, result.stderr
    assert "latent-explorer --smoke: ok" in result.stderr
    assert files_under(dirs["config"]) == []                 # the native QSettings file went here before
    assert [p for p in files_under(dirs["home"]) if ".config" in p.parts] == []
    assert files_under(dirs["tmp"]) == []                     # and an empty le-smoke-* folder here


def test_smoke_refuses_damaged_checkpoints_with_one_line(private_home, damaged_checkpoints):
    env, dirs = private_home
    for name in UNLOADABLE:
        result = smoke(env, damaged_checkpoints[name])
        assert_one_error_line(result, name)
        assert "Could not open the checkpoint" in result.stderr, (name, result.stderr)
    assert files_under(dirs["config"]) == [] and files_under(dirs["tmp"]) == []


def test_smoke_opens_checkpoints_with_damaged_side_files_with_a_warning(private_home, damaged_checkpoints):
    env, _ = private_home
    for name in SIDE_FILE_DAMAGED:
        result = smoke(env, damaged_checkpoints[name])
        assert result.returncode == 0, (name, result.stderr)
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        warnings = [line for line in lines if line.startswith("latent-explorer: warning: ")]
        assert len(warnings) == 1, (name, lines)
        assert lines == [*warnings, "latent-explorer --smoke: ok"], (name, lines)
        assert "Traceback" not in result.stderr


def _fuzz_helpers():
    """The JSON mutations of the core fuzz tests (tests/core/test_fuzz.py), reused here."""
    spec = importlib.util.spec_from_file_location("core_fuzz_strategies", REPO / "tests" / "core" / "test_fuzz.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_fuzzed_config_documents_open_or_give_a_sentence(tmp_path_factory):
    """What the app's open path makes of generated config.json documents: the model opens,
    or the error is one the library documents, shown as a sentence without class names.

    In-process (milliseconds an example) rather than a process each (seconds); the tests
    above show that the process turns such an error into one line and status 2.
    """
    pytest.importorskip("hypothesis")
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from explorer.jobs.training import expected_error, friendly_error
    from explorer.state import read_checkpoint

    fuzz = _fuzz_helpers()
    example = REPO / "assets" / "digits-mlp-2d"
    document = json.loads((example / "config.json").read_text())
    outcomes = []

    @settings(max_examples=30, derandomize=True, deadline=None, database=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(data=st.data())
    def check(data):
        folder = tmp_path_factory.mktemp("fuzzed") / "c"
        shutil.copytree(example, folder)
        (folder / "config.json").write_text(json.dumps(fuzz._mutate(document, data)))
        try:
            checkpoint, _ = read_checkpoint(folder)
        except Exception as exc:  # noqa: BLE001 - what the window's task would catch
            text = friendly_error(exc, "Opening the checkpoint")
            assert expected_error(exc), (type(exc), exc)
            assert "unexpectedly" not in text and type(exc).__name__ not in text, text
            assert "\n" not in text and text.endswith("."), text
            outcomes.append("refused")
        else:
            assert all(isinstance(note, str) and note for note in checkpoint.warnings)
            outcomes.append("opened")

    check()
    assert "refused" in outcomes    # the mutations do break documents


@pytest.mark.slow
def test_precompile_fills_the_numba_cache_with_all_a_map_umap_compiles(tmp_path):
    """``--precompile`` (run once by scripts/bootstrap.sh) leaves nothing cacheable for the first UMAP."""
    cache = tmp_path / "numba"
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache), "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-m", "explorer", "--precompile"], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    compiled = files_under(cache)
    assert any("umap" in p.name and p.suffix == ".nbc" for p in compiled), compiled
    # The map's default UMAP (exact neighbours, watched layouts, codes beyond max_fit placed)
    # on codes of another size and width, in a new process: numba finds all it needs.
    fit = ("import numpy as np; from vae_core.projection import make_projection; "
           "codes = np.random.default_rng(1).standard_normal((2600, 5)).astype(np.float32); "
           "make_projection('umap', n_neighbors=15, min_dist=0.1, max_fit=2000, n_epochs=30)"
           ".fit(codes, intermediate=lambda xy: None)")
    result = subprocess.run([sys.executable, "-c", fit], cwd=REPO, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    assert files_under(cache) == compiled
