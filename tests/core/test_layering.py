"""vae_core and the application state must work without Qt (headless servers, CLI, tests)."""

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
