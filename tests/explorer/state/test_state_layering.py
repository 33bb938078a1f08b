"""The state layer stays free of Qt, widgets and jobs, and its tests run where Qt is absent."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
STATE = REPO / "explorer" / "state"
FORBIDDEN_ROOTS = ("PySide6", "PyQt5", "PyQt6", "pyqtgraph", "superqt", "qtpy", "shiboken6")
FORBIDDEN_PACKAGES = ("explorer.ui", "explorer.widgets", "explorer.jobs")
BLOCKED = ("PySide6", "pyqtgraph", "superqt", "shiboken6")


def _imported_modules(path: Path) -> list[tuple[int, str]]:
    """Every module an ``import`` or ``from ... import`` in ``path`` names (relative ones resolved)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = ".".join(path.relative_to(REPO).with_suffix("").parts[:-1])
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parent = ".".join(parts[: len(parts) - node.level + 1])
                base = f"{parent}.{base}" if base else parent
            found.append((node.lineno, base))
            # ``from explorer import widgets`` names the subpackage in the alias
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
    return found


def _violations(root: Path) -> list[str]:
    bad = []
    for path in sorted(root.rglob("*.py")):
        for line, module in _imported_modules(path):
            if module.split(".")[0] in FORBIDDEN_ROOTS or any(
                    module == p or module.startswith(p + ".") for p in FORBIDDEN_PACKAGES):
                bad.append(f"{path.relative_to(REPO)}:{line} imports {module}")
    return bad


def test_no_module_under_explorer_state_imports_qt_widgets_or_jobs():
    modules = list(STATE.rglob("*.py"))
    assert len(modules) >= 10, "the walk found no state modules"
    assert _violations(STATE) == []


def test_the_walk_sees_every_kind_of_forbidden_import(tmp_path, monkeypatch):
    fake = tmp_path / "explorer" / "state"
    (fake / "studio").mkdir(parents=True)
    (fake / "studio" / "bad.py").write_text(
        "def f():\n    from PySide6 import QtCore\n"
        "from ...widgets import pins\n"
        "import shiboken6\n"
        "from explorer import jobs\n")
    (fake / "ok.py").write_text("import numpy\nfrom explorer.state.marks import Pin\n")
    monkeypatch.setattr(sys.modules[__name__], "REPO", tmp_path)
    found = _violations(fake)
    assert all(v.startswith("explorer/state/studio/bad.py:") for v in found)   # ok.py is fine
    assert {int(v.split(":")[1].split()[0]) for v in found} == {2, 3, 4, 5}    # every bad line, nested ones too


_BLOCKER = f'''
import sys

BLOCKED = {BLOCKED!r}


class _NoQt:
    """Importing Qt (or a Qt library) fails, as on a machine without it."""

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{{name}} is blocked: the state tests must run without Qt")
        return None


sys.meta_path.insert(0, _NoQt())
'''


def test_state_tests_pass_where_qt_cannot_be_imported(tmp_path):
    (tmp_path / "sitecustomize.py").write_text(_BLOCKER)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), str(REPO)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env.pop("QT_QPA_PLATFORM", None)
    probe = subprocess.run([sys.executable, "-c", "import PySide6"], env=env, capture_output=True, text=True,
                           timeout=60)
    assert probe.returncode != 0 and "blocked" in probe.stderr, "the blocker does not block"
    # pytest-qt would import Qt when it loads: it is a plugin of the window tests only.
    args = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "-p", "no:pytest-qt",
            "tests/explorer/state", "--deselect", "tests/explorer/state/test_state_layering.py",
            "--deselect", "tests/explorer/state/test_map_state.py::test_fit_process_matches_an_in_process_fit_and_stops"]
    result = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout
