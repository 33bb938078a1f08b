"""The state tests run without Qt: this conftest (and the one above it) must never import
PySide6, pyqtgraph, superqt or shiboken6. ``test_layering.py`` runs this folder in a
subprocess where those imports fail, to keep it so."""
