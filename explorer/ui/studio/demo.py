"""Stage the studio in a running window: an interpolation picked on the map, an arithmetic
edit, traversals, and an exported GIF. ``scripts/screenshots.py`` calls
:func:`stage_studio_scenes` to make the README's studio pictures; everything goes through
the same state, docks and export dialog a user drives.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def clear_example(codes, labels, label: int, *, k: int = 15, candidates: int = 400, seed: int = 0) -> int:
    """A point of class ``label`` deep inside its cluster: most of its ``k`` nearest codes
    share its label (ties: nearest to the class centroid)."""
    from vae_core.latent import NeighborIndex

    idx = np.flatnonzero(labels == label)
    rng = np.random.default_rng(seed)
    cand = idx if len(idx) <= candidates else rng.choice(idx, candidates, replace=False)
    neighbours, _ = NeighborIndex(codes).query(codes[cand], k + 1)
    purity = (labels[neighbours[:, 1:]] == label).mean(1)
    dist = ((codes[cand] - codes[idx].mean(0)) ** 2).sum(1)
    return int(cand[np.lexsort((dist, -purity))[0]])


def stage_studio_scenes(window, shot, wait_until, pause_for, *, examples_dir=None, gif_name="interpolation.gif",
                        traversal_training=None):
    """Make the studio screenshots on ``window``'s current model (and export a GIF).

    Parameters
    ----------
    window
        A shown :class:`~explorer.ui.main_window.MainWindow` with a labelled dataset and a model.
    shot
        ``shot(widget, file_name)`` saves a screenshot.
    wait_until, pause_for
        ``wait_until(condition, timeout, what)`` and ``pause_for(seconds)`` process events.
    examples_dir
        Where the exported GIF goes (skipped when None).
    traversal_training
        :class:`~explorer.state.training.TrainingOptions` of a model to train (by
        clicking Train) before the traversal picture, e.g. one with more latent
        dimensions than the current one, some of them collapsed. None keeps the model.

    Returns
    -------
    Path or None
        The exported GIF.
    """
    state, studio, docks = window.state, window.state.studio, window.studio_docks
    wait_until(lambda: state.codes is not None and state.map.ready and not window.busy, 180, "the map")
    codes, labels = state.codes, state.labels
    if labels is None:
        raise ValueError("The studio scenes need a labelled dataset.")

    # 1. Interpolation: keyframes picked by clicking data points on the map.
    studio.interpolation.clear_keyframes()
    docks.docks["interpolation"].raise_()
    studio.picking.set_target("keyframes")
    for label in (1, 7, 0, 6):
        i = clear_example(codes, labels, label)
        state.map.pick(tuple(float(v) for v in state.map.xy[i]), index=i)
    studio.picking.set_target(None)
    studio.interpolation.set_method("slerp")
    studio.interpolation.set_easing("ease-in-out")
    studio.interpolation.set_steps(31)
    studio.player.set_pingpong(False)
    studio.player.set_fps(15)
    studio.player.set_current_frame(13)
    docks.docks["player"].raise_()
    pause_for(0.5)
    shot(window, "studio-interpolation.png")

    gif = None
    if examples_dir is not None:
        dialog = docks.open_export_dialog()
        dialog.set_format("gif")
        dialog.size_radio.setChecked(False)
        dialog.upscale_radio.setChecked(True)
        h, w = dialog.frame_shape()
        dialog.upscale_spin.setValue(max(1, 112 // max(h, w)))
        dialog.captions_check.setChecked(False)
        studio.player.set_pingpong(True)
        dialog.set_path(Path(examples_dir) / gif_name)
        dialog.start_export()
        wait_until(lambda: dialog.job is None, 120, "the GIF export")
        gif = dialog.last_path
        shot(dialog, "studio-export.png")
        dialog.close()
        studio.player.set_pingpong(False)

    # 2. Latent arithmetic: a 1, minus the mean 1, plus the mean 0 (that 1's style, as a 0).
    docks.docks["arithmetic"].raise_()
    one = clear_example(codes, labels, 1, seed=1)
    studio.arithmetic.set_strength(1.0)
    studio.arithmetic.set_expression(f"#{one} − mean(1) + mean(0)")
    pause_for(0.5)
    shot(window, "studio-arithmetic.png")

    # 3. Traversals around a data point: the sliders and the grid.
    if traversal_training is not None:
        panel = window.training_panel
        panel.set_options(traversal_training)
        panel.train_button.click()
        wait_until(lambda: state.training_status == "running", 120, "training to start")
        wait_until(lambda: state.training_status == "idle", 600, "training to finish")
        d = traversal_training.latent_dim
        wait_until(lambda: state.codes is not None and state.codes.shape[1] == d and state.map.ready
                   and not window.busy, 180, "the new codes")
        codes, labels = state.codes, state.labels
    docks.docks["traversals"].raise_()
    studio.traversal.set_code(codes[clear_example(codes, labels, 2)])
    studio.traversal.set_options(steps=9, span=3.0)
    dock = docks.docks["traversals"]
    dock.setFloating(True)
    dock.resize(660, 820)
    pause_for(0.8)
    shot(dock, "studio-traversals.png")
    dock.setFloating(False)
    docks.docks["interpolation"].raise_()
    pause_for(0.3)
    return gif
