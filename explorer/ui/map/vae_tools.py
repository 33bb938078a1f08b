"""What only a VAE map shows, installed on a :class:`~explorer.ui.map.panel.MapPanel`.

``install_vae_tools(panel)`` adds to the map's toolbar: *Posterior* (the hovered point's
q(z|x) as ellipses or a cloud, :mod:`~explorer.ui.map.posterior`), *Holes* (the prior's mass
without data, :mod:`~explorer.ui.map.holes`), *Your image…* (also drop a file on the map or
paste with Ctrl+V, :mod:`~explorer.ui.map.own_image`) and *Inpaint…* (the hovered data point,
or the last one hovered, in :class:`~explorer.ui.map.inpaint_dialog.InpaintDialog`).
"""

from __future__ import annotations

from PySide6 import QtCore, QtGui, QtWidgets
from superqt.utils import signals_blocked

from explorer.ui.map.holes import HolesOverlayView
from explorer.ui.map.inpaint_dialog import InpaintDialog
from explorer.ui.map.own_image import OwnImageOverlay
from explorer.ui.map.posterior import PosteriorCloudOverlay
from explorer.ui.qt_utils import Connections

IMAGE_FILTER = "Images (*.png *.jpg *.jpeg *.bmp *.gif *.webp *.tif *.tiff);;All files (*)"


class VaeTools(QtCore.QObject):
    """The posterior, holes, own-image and inpainting tools of one map panel."""

    def __init__(self, panel):
        super().__init__(panel)
        self.panel = panel
        self.state = state = panel.state
        view = panel.view
        self.cloud = PosteriorCloudOverlay(state, view, self)
        self.holes = HolesOverlayView(state, view, self)
        self.own_image = OwnImageOverlay(state, view, self)
        self.own_image.inpaint_requested = self.open_inpaint
        self.inpaint_dialog: InpaintDialog | None = None
        self.last_index: int | None = None

        self.posterior_check = QtWidgets.QCheckBox("Posterior")
        self.posterior_check.setObjectName("posterior_check")
        self.posterior_check.setToolTip(
            "Draw the hovered point's posterior q(z|x): its 1σ and 2σ ellipses on latent dims and PCA (exact), "
            "a cloud of samples pushed through UMAP")
        self.posterior_check.toggled.connect(state.map.posterior.set_enabled)
        self.holes_check = QtWidgets.QCheckBox("Holes")
        self.holes_check.setObjectName("holes_check")
        self.holes_check.setToolTip(
            "Shade where the prior N(0, I) has mass and the encoded data has none (log p(z) − log q(z)): "
            "random samples from the prior land there, off the data")
        self.holes_check.toggled.connect(state.map.holes.set_enabled)
        self.image_button = QtWidgets.QToolButton(text="Your image…")
        self.image_button.setObjectName("own_image_button")
        self.image_button.setToolTip("Encode an image of yours and show it on the map with its reconstruction and "
                                     "log-likelihood (or drop an image file on the map, or paste one with Ctrl+V)")
        self.image_button.clicked.connect(self.choose_image)
        self.inpaint_button = QtWidgets.QToolButton(text="Inpaint…")
        self.inpaint_button.setObjectName("inpaint_button")
        self.inpaint_button.setToolTip("Erase part of the hovered data point's image (or the last one hovered) "
                                       "and let the model fill it in")
        self.inpaint_button.clicked.connect(lambda: self.open_inpaint())
        bar = panel.bar2.layout()
        separator = QtWidgets.QFrame()
        separator.setFrameShape(QtWidgets.QFrame.Shape.VLine)
        separator.setFrameShadow(QtWidgets.QFrame.Shadow.Sunken)
        for w in (separator, self.posterior_check, self.holes_check, self.image_button, self.inpaint_button):
            bar.addWidget(w)

        paste = QtGui.QShortcut(QtGui.QKeySequence(QtGui.QKeySequence.StandardKey.Paste), panel)
        paste.setContext(QtCore.Qt.ShortcutContext.WidgetWithChildrenShortcut)
        paste.activated.connect(self.own_image.paste)
        self._connections = Connections(self)
        self._connections.connect(state.map.hovered_index_changed, self._on_map_hovered_index_changed)
        self._connections.connect(state.map.posterior.enabled_changed, self._on_posterior_enabled_changed)
        self._connections.connect(state.map.holes.enabled_changed, self._on_holes_enabled_changed)
        self._connections.connect(state.dataset_changed, self._on_document_dataset_changed)

    def _on_map_hovered_index_changed(self, index) -> None:
        if index is not None:
            self.last_index = index

    def _on_document_dataset_changed(self, *args) -> None:
        self.last_index = None

    def _on_posterior_enabled_changed(self, on: bool) -> None:
        with signals_blocked(self.posterior_check):
            self.posterior_check.setChecked(on)
        reason = self.state.map.posterior.available
        if on and reason is not None and self.state.codes is not None:
            self.state.post_message("warning", f"No posterior to draw: {reason[0].lower()}{reason[1:]}")

    def _on_holes_enabled_changed(self, on: bool) -> None:
        with signals_blocked(self.holes_check):
            self.holes_check.setChecked(on)

    def choose_image(self) -> None:
        path, _ = QtWidgets.QFileDialog.getOpenFileName(self.panel, "Your image", "", IMAGE_FILTER)
        if path:
            self.own_image.open(path)

    def open_inpaint(self, image=None, label=None, name: str | None = None) -> InpaintDialog | None:
        """Open the inpainting editor on ``image`` (default: the hovered or last hovered data point)."""
        state = self.state
        if state.model is None or state.images is None:
            state.post_message("warning", "Open a model and a dataset first: there is nothing to inpaint with.")
            return None
        if image is None:
            index = state.map.hovered_index if state.map.hovered_index is not None else self.last_index
            if index is None or not (0 <= index < len(state.images)):
                index = 0
            image = state.float_images(index)
            if state.labels is not None:
                label = int(state.labels[index])
            name = f"#{index:,}"
        if label is None and getattr(state.model, "conditional", False):
            label = int(state.studio.decode_label)
        if self.inpaint_dialog is not None:
            self.inpaint_dialog.close()
        dialog = InpaintDialog(state, image, label=label, name=name or "image", parent=self.panel.window())
        dialog.setAttribute(QtCore.Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.destroyed.connect(lambda *_: setattr(self, "inpaint_dialog", None))
        self.inpaint_dialog = dialog
        dialog.show()
        return dialog


def install_vae_tools(panel) -> VaeTools:
    """Add the posterior, holes, own-image and inpainting tools to ``panel`` (a MapPanel)."""
    return VaeTools(panel)
