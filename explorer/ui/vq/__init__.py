"""The window's views of models with a discrete code grid (vqvae): :func:`install_vq`.

* :mod:`~explorer.ui.vq.codebook` — the Codebook panel (usage, code tiles, map of vectors);
* :mod:`~explorer.ui.vq.grid_editor` — the Code Grid Editor panel;
* :mod:`~explorer.ui.vq.prior_panel` — the Code Prior panel (Train prior, temperature, completion).

Their state is ``state.vq`` (:mod:`explorer.state.vq`); the Decoder panel's changed-cells
line, the interpolation's snap toggle and the Samples view's prior samples read it too.
"""

from __future__ import annotations

from PySide6.QtCore import Qt

from explorer.ui.vq.codebook import CodebookPanel
from explorer.ui.vq.grid_editor import CodeGridEditorPanel
from explorer.ui.vq.prior_panel import PriorPanel

__all__ = ["VQDocks", "install_vq"]


class VQDocks:
    """The three code-grid panels of a window, docked on the right, tabbed together.

    They are hidden until a model with a code grid is loaded, then shown once (the user
    may close them again; View ▸ Panels lists them).
    """

    def __init__(self, window) -> None:
        self.window = window
        state = window.state
        self.codebook = CodebookPanel(state)
        self.editor = CodeGridEditorPanel(state)
        self.prior = PriorPanel(state)
        right = Qt.DockWidgetArea.RightDockWidgetArea
        self.docks = {
            "codebook": window.add_panel_dock("Codebook", self.codebook, right, "codebook", shortcut="",
                                              visible=False, tip="Every code of a vqvae: usage, what it draws, "
                                                                 "a map of the code vectors"),
            "code_grid_editor": window.add_panel_dock("Code Grid Editor", self.editor, right, "code_grid_editor",
                                                      shortcut="", visible=False,
                                                      tip="Paint an image's grid of codes and see it decoded"),
            "code_prior": window.add_panel_dock("Code Prior", self.prior, right, "code_prior", shortcut="",
                                                visible=False, tip="Train the prior over code grids, sample and "
                                                                   "complete grids"),
        }
        window.tabifyDockWidget(self.docks["codebook"], self.docks["code_grid_editor"])
        window.tabifyDockWidget(self.docks["code_grid_editor"], self.docks["code_prior"])
        self._shown = False
        state.model_changed.connect(self._on_state_model_changed)
        window.sample_view.tile_clicked.connect(self._on_sample_view_tile_clicked)
        self._on_state_model_changed(state.model)

    def _on_state_model_changed(self, _model) -> None:
        if self._shown or not self.window.state.vq.codebook.available:
            return
        self._shown = True
        for dock in self.docks.values():
            dock.show()
        self.docks["code_grid_editor"].raise_()

    def _on_sample_view_tile_clicked(self, index: int) -> None:
        """A prior sample opens in the grid editor (its grid drawn again: same seed, same grid)."""
        state, view = self.window.state, self.window.sample_view
        if not state.vq.sampling.available:
            return
        grids = state.vq.sampling.sample_grids(view.rows * view.sample_columns)
        if 0 <= index < len(grids):
            state.vq.editor.set_grid(grids[index], f"sample {index + 1}")
            self.docks["code_grid_editor"].show()
            self.docks["code_grid_editor"].raise_()


def install_vq(window) -> VQDocks:
    """Add the code-grid panels to ``window`` (``window.vq_docks``)."""
    window.vq_docks = VQDocks(window)
    return window.vq_docks
