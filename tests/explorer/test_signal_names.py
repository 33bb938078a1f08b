"""Signals are named ``*_changed`` or in the past tense, in every module of the application.

The check reads the source (no Qt needed): every class attribute assigned a ``Signal(...)``
(psygnal's or Qt's) is an event that happened, so its name says what happened.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# Irregular past participles that read naturally as events: the map's "selection_drawn",
# and "found" for searches. Add one only when a real signal needs it.
IRREGULAR_PAST = frozenset({"drawn", "found"})


def signal_attributes(path: Path) -> list[tuple[int, str]]:
    """``(line, name)`` of every ``name = Signal(...)`` / ``QtCore.Signal(...)`` in a class body."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if not isinstance(node, ast.ClassDef):
            continue
        for statement in node.body:
            value = statement.value if isinstance(statement, (ast.Assign, ast.AnnAssign)) else None
            if not isinstance(value, ast.Call):
                continue
            func = value.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if called != "Signal":
                continue
            targets = statement.targets if isinstance(statement, ast.Assign) else [statement.target]
            found += [(statement.lineno, t.id) for t in targets if isinstance(t, ast.Name)]
    return found


def well_named(name: str) -> bool:
    last = name.rsplit("_", 1)[-1]
    return name.endswith("_changed") or (len(last) > 2 and last.endswith("ed")) or last in IRREGULAR_PAST


def badly_named(root: Path) -> list[str]:
    return [f"{path.relative_to(root.parent)}:{line} {name}"
            for path in sorted(root.rglob("*.py")) for line, name in signal_attributes(path) if not well_named(name)]


def test_every_signal_of_the_application_is_named_as_an_event():
    count = sum(len(signal_attributes(p)) for p in (REPO / "explorer").rglob("*.py"))
    assert count >= 50, "the walk found too few signals to be looking at the right files"
    assert badly_named(REPO / "explorer") == []


def test_the_check_finds_each_kind_of_bad_name(tmp_path):
    package = tmp_path / "explorer"
    package.mkdir()
    (package / "bad.py").write_text(
        "from psygnal import Signal\nfrom PySide6 import QtCore\n\n"
        "class A:\n"
        "    done = Signal(object)\n"                 # a state, not an event
        "    sig_status = QtCore.Signal(str)\n"      # pyqtgraph's prefix style
        "    picked_with = Signal(str, object)\n"
        "    value_changed = Signal(int)\n"
        "    frame_clicked: object = Signal(int)\n"
        "    nearest_found = Signal()\n"
        "    size = 3\n")
    assert [b.split()[-1] for b in badly_named(package)] == ["done", "sig_status", "picked_with"]
