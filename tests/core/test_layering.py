"""Layering rules, checked on the source: vae_core and the application state must work
without Qt, vae_core has no import cycle, and no module borrows another module's private
names."""

import ast
import subprocess
import sys
from pathlib import Path


REPO = Path(__file__).resolve().parents[2]

CHECK = """
import importlib, pkgutil, sys
import vae_core, explorer.state
for package in (vae_core, explorer.state):
    for mod in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        if mod.name != "vae_core.__main__":
            importlib.import_module(mod.name)
qt = sorted(m for m in sys.modules if m.split(".")[0] in ("PySide6", "PyQt5", "PyQt6", "pyqtgraph", "superqt", "qtpy",
                                                            "shiboken6"))
print(",".join(qt))
"""


def test_core_and_state_never_import_qt():
    result = subprocess.run([sys.executable, "-c", CHECK], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""


# -- static import graph -----------------------------------------------------------------
def package_modules(root: Path, package: str) -> dict[str, Path]:
    """Dotted module name -> source file, for every ``.py`` file of ``package`` under ``root``."""
    modules = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def module_imports(name: str, path: Path, known: set[str]) -> list[tuple[str, list[str], int]]:
    """``(imported module, names taken from it, line)`` for every import statement in the file.

    Imports inside functions count too: a lazy import only hides a cycle until the function
    runs. ``from pkg import sub`` points at the module ``pkg.sub`` when that is a module.
    """
    is_package = path.name == "__init__.py"
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, [], node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module
            names = [alias.name for alias in node.names]
            submodules = [n for n in names if f"{target}.{n}" in known]
            found += [(f"{target}.{n}", [], node.lineno) for n in submodules]
            rest = [n for n in names if n not in submodules]
            if rest:
                found.append((target, rest, node.lineno))
    return found


def import_cycles(modules: dict[str, Path]) -> list[list[str]]:
    """Every import cycle among ``modules``, as module lists that start and end at one module."""
    known = set(modules)
    graph = {name: sorted({target for target, _, _ in module_imports(name, path, known) if target in known})
             for name, path in modules.items()}
    cycles, state, stack = [], {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in graph[node]:
            if state.get(nxt) == "open":
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for node in graph:
        if node not in state:
            visit(node)
    return cycles


def private_imports(modules: dict[str, Path]) -> list[str]:
    """``from other_module import _name`` statements (dunder names are public protocol)."""
    known = set(modules)
    found = []
    for name, path in modules.items():
        for target, names, line in module_imports(name, path, known):
            if target == name:
                continue
            for imported in names:
                if imported.startswith("_") and not (imported.startswith("__") and imported.endswith("__")):
                    found.append(f"{name} (line {line}) imports {imported} from {target}")
    return found


def _toy_package(tmp_path: Path) -> dict[str, Path]:
    pkg = tmp_path / "toy"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("from toy.a import run\n")
    (pkg / "a.py").write_text("def run():\n    from . import b  # lazy, still an edge\n    return b\n")
    (pkg / "b.py").write_text("from toy.sub import c\nfrom .sub.c import _secret, __version__\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "c.py").write_text("from ..a import run\n_secret = 1\n__version__ = '1'\n")
    (pkg / "d.py").write_text("from toy.sub import c\n")
    return package_modules(tmp_path, "toy")


def test_the_checks_find_lazy_and_relative_cycles_and_private_imports(tmp_path):
    modules = _toy_package(tmp_path)
    assert set(modules) == {"toy", "toy.a", "toy.b", "toy.d", "toy.sub", "toy.sub.c"}
    assert import_cycles(modules) == [["toy.a", "toy.b", "toy.sub.c", "toy.a"]]
    assert private_imports(modules) == ["toy.b (line 2) imports _secret from toy.sub.c"]


def test_vae_core_has_no_import_cycle():
    cycles = import_cycles(package_modules(REPO, "vae_core"))
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_vae_core_imports_no_private_name_from_another_module():
    found = private_imports(package_modules(REPO, "vae_core"))
    assert not found, "\n".join(found)


def test_explorer_imports_no_private_name_from_another_module():
    found = private_imports(package_modules(REPO, "explorer"))
    assert not found, "\n".join(found)
