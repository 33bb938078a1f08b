"""Screenshot scenes of the map's VAE tools (``scripts/screenshots.py --only vae``).

Trains a 2-D MNIST model (digits without MNIST) from the Training panel, then shows a
posterior ellipse with posterior and pixel samples in the Decoder panel
(``map-posterior.png``), the holes overlay (``map-holes.png``), an image of the user's on the
map (``map-own-image.png``) and the inpainting editor after a run (``inpainting.png``).
Each step waits for what it shows, so the script doubles as an end-to-end check.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6 import QtCore, QtGui


def _handwritten_digit(path: Path, text: str = "3") -> Path:
    """A black digit on white paper, as a phone photo of a note would give (not MNIST's style)."""
    image = QtGui.QImage(220, 220, QtGui.QImage.Format.Format_RGB32)
    image.fill(QtGui.QColor(250, 248, 240))
    painter = QtGui.QPainter(image)
    painter.setRenderHint(QtGui.QPainter.RenderHint.Antialiasing)
    font = QtGui.QFont("DejaVu Sans", 130)
    font.setBold(True)
    painter.setFont(font)
    painter.setPen(QtGui.QColor(20, 20, 30))
    painter.drawText(image.rect(), QtCore.Qt.AlignmentFlag.AlignCenter, text)
    painter.end()
    image.save(str(path))
    return path


def stage_vae_scenes(window, data_root: str, work: Path, shot, wait_until, pause_for) -> None:
    """Take the four shots (see the module docstring)."""
    from PySide6.QtTest import QTest

    from explorer.ui.training.panel import TrainingOptions

    state, panel, maps = window.state, window.training_panel, window.map_docks
    view, tools, decoder = maps.panel.view, maps.panel.vae_tools, maps.decoder
    mnist = (Path(data_root) / "MNIST" / "raw").exists()
    options = (TrainingOptions(dataset="mnist", data_root=data_root, model="mlp", latent_dim=2, hidden=(512, 256),
                               epochs=4, batch_size=128, lr=1e-3, seed=0)
               if mnist else
               TrainingOptions(dataset="digits", model="mlp", latent_dim=2, hidden=(256, 128), epochs=60,
                               batch_size=64, lr=2e-3, seed=0))
    state._set_dirty(False)
    panel.set_options(options)
    panel.train_button.click()
    wait_until(lambda: state.training_status == "running", 120, "training to start")
    wait_until(lambda: state.training_status == "idle", 1800, "the model to train")
    wait_until(lambda: state.codes is not None and state.map.ready and not maps.panel.jobs.busy
               and not view.animating and not window.encoder.busy, 120, "the map")
    pause_for(1.0)

    def hover(index: int) -> None:
        pixel = view.mapFromScene(view.vb.mapViewToScene(QtCore.QPointF(*state.map.xy[index])))
        QTest.mouseMove(view.viewport(), pixel + QtCore.QPoint(30, 30))
        pause_for(0.05)
        QTest.mouseMove(view.viewport(), pixel)
        wait_until(lambda: state.map.hovered_index is not None, 5, "a hovered data point")
        pause_for(0.4)

    # The Decoder panel gets the height its posterior and pixel samples need.
    training = window.docks.get("training")
    if training is not None:
        window.resizeDocks([training, maps.docks["decoder"]], [200, 1000], QtCore.Qt.Orientation.Vertical)
        pause_for(0.3)

    # 1. The posterior: a point with a wide posterior, zoomed so its ellipses read.
    sigma = np.exp(0.5 * state.logvar).prod(1)
    xy = state.map.xy
    rect = view.vb.viewRect()
    inside = np.flatnonzero((np.abs(xy[:, 0] - rect.center().x()) < 0.3 * rect.width())
                            & (np.abs(xy[:, 1] - rect.center().y()) < 0.3 * rect.height()))
    index = int(inside[np.argsort(sigma[inside])[int(0.9 * len(inside))]])
    centre, span = xy[index], 0.3 * np.array([rect.width(), rect.height()])
    view.vb.setRange(xRange=(centre[0] - span[0] / 2, centre[0] + span[0] / 2),
                     yRange=(centre[1] - span[1] / 2, centre[1] + span[1] / 2), padding=0)
    pause_for(0.5)
    tools.posterior_check.setChecked(True)
    decoder.samples_toggle.setChecked(True)
    decoder.pixel_samples.toggle.setChecked(True)
    hover(index)
    wait_until(lambda: tools.cloud.item.shape is not None, 5, "the posterior ellipse")
    wait_until(lambda: decoder.samples_index == state.map.hovered_index, 5, "the posterior samples")
    wait_until(lambda: decoder.pixel_samples.samples is not None, 5, "the pixel samples")
    shot(window, "map-posterior.png")
    tools.posterior_check.setChecked(False)
    decoder.samples_toggle.setChecked(False)
    decoder.pixel_samples.toggle.setChecked(False)

    # 2. The holes, on the whole map.
    view.reset_view()
    pause_for(0.5)
    tools.holes_check.setChecked(True)
    wait_until(lambda: state.map.holes.result is not None and not tools.holes.job.busy, 120, "the holes overlay")
    pause_for(0.5)
    shot(maps.panel, "map-holes.png")

    # 3. An image of the user's: a dark digit on light paper, inverted to the dataset's style.
    tools.own_image.open(_handwritten_digit(work / "my-three.png"))
    wait_until(lambda: tools.own_image.task is None and state.map.own_image.result is not None, 300,
               "your image to be scored")
    pause_for(0.5)
    shot(maps.panel, "map-own-image.png")
    tools.holes_check.setChecked(False)
    state.map.own_image.clear()

    # 4. The inpainting editor on a data point with its lower half erased.
    hover(int(inside[len(inside) // 2]))
    tools.inpaint_button.click()
    dialog = tools.inpaint_dialog
    wait_until(dialog.isVisible, 5, "the inpainting editor")
    dialog._erase_bottom_half()
    dialog.steps_spin.setValue(40)
    done = []
    dialog.run_finished.connect(lambda: done.append(True))
    dialog.fill_button.click()
    wait_until(lambda: done, 120, "the inpainting run")
    dialog.resize(700, 560)
    pause_for(0.4)
    shot(dialog, "inpainting.png")
    dialog.close()
