"""Pixel samples of p(x|z) beside the decoded mean, in the Decoder panel.

The decoder's image is the mean of the likelihood p(x|z); what the model generates is a
sample of it: independent Bernoulli pixels, or Gaussian noise of ``gaussian_std`` per pixel.
The difference is why VAE images look blurry (the mean averages the noise away). The
samples come from :func:`vae_core.latent.likelihood_samples` applied to the image the
Decoder panel already decoded, so they cost no decoding; they follow the cursor at most
every ``REFRESH_MS`` so that the hover path does not pay for them.
"""

from __future__ import annotations

from PySide6 import QtCore, QtWidgets

from explorer.ui.qt_utils import Connections

PIXEL_SAMPLES = 4
REFRESH_MS = 60


class PixelSamplesBox(QtWidgets.QWidget):
    """A toggle and a row: the mean of p(x|z) at the cursor, then ``PIXEL_SAMPLES`` draws of it."""

    def __init__(self, state, decoder, parent=None):
        super().__init__(parent)
        from explorer.ui.map.decoder_view import ImagePane

        self.state = state
        self.decoder = decoder
        self.seed = 0
        self.toggle = QtWidgets.QCheckBox("Pixel samples of p(x|z)")
        self.toggle.setObjectName("pixel_samples_toggle")
        self.toggle.setToolTip(
            "Beside the decoded image (the MEAN of p(x|z)), pixels drawn from p(x|z) itself: on/off pixels for a "
            "Bernoulli likelihood, the mean plus per-pixel noise for a Gaussian one. The mean averages that noise "
            "away, which is why VAE decodings look blurry.")
        self.toggle.toggled.connect(self._on_toggle_toggled)
        self.row = QtWidgets.QWidget()
        row = QtWidgets.QHBoxLayout(self.row)
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(4)
        self.mean_pane = ImagePane(minimum=32)
        self.mean_pane.setToolTip("The mean of p(x|z) at the cursor (what the decoder shows)")
        self.sample_panes = []
        for _ in range(PIXEL_SAMPLES):
            pane = ImagePane(minimum=32)
            pane.setToolTip("Pixels drawn from p(x|z) at the cursor")
            self.sample_panes.append(pane)
        for pane in (self.mean_pane, *self.sample_panes):
            pane.setMaximumSize(56, 56)
            row.addWidget(pane)
        row.addStretch(1)
        self.caption = QtWidgets.QLabel("")
        self.caption.setWordWrap(True)
        self.row.setVisible(False)
        self.caption.setVisible(False)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addWidget(self.toggle)
        layout.addWidget(self.row)
        layout.addWidget(self.caption)
        self._timer = QtCore.QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(REFRESH_MS)
        self._timer.timeout.connect(self.refresh)
        self._connections = Connections(self)
        self._connections.connect(state.map.cursor_changed, self._on_map_cursor_changed)
        self.samples = None

    def _on_toggle_toggled(self, on: bool) -> None:
        self.row.setVisible(on)
        self.caption.setVisible(on)
        if on:
            self.refresh()

    def _on_map_cursor_changed(self, z) -> None:
        if self.toggle.isChecked() and z is not None and not self._timer.isActive():
            self._timer.start()

    def refresh(self) -> None:
        """Draw new pixel samples around the decoder's current mean image."""
        from vae_core.latent import likelihood_samples

        mean = self.decoder.preview_image
        model = self.state.model
        if mean is None or model is None:
            return
        try:
            self.samples = likelihood_samples(model, mean, PIXEL_SAMPLES, seed=self.seed)
        except ValueError as exc:
            self.caption.setText(str(exc))
            return
        self.mean_pane.set_image(mean)
        for pane, image in zip(self.sample_panes, self.samples):
            pane.set_image(image)
        config = model.config
        if config.likelihood == "bernoulli":
            text = "mean · then Bernoulli pixel draws"
        else:
            text = f"mean · then mean + N(0, {config.gaussian_std:g}²) noise per pixel"
        self.caption.setText(f"<small>{text}</small>")
