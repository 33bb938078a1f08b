"""The main window's docks: the central panel, dockable panels, the training views and
their default sizes.

:class:`DockLayoutMixin` is one of :class:`~explorer.ui.main_window.MainWindow`'s bases.
"""

from __future__ import annotations

import shiboken6
from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QApplication, QDockWidget, QWidget

from explorer.ui.qt_utils import Deferred
from explorer.ui.training.kl_bars import KLBars
from explorer.ui.training.loss_plot import LossPlot
from explorer.ui.training.model_previews import LatentGridView, ReconstructionView, SampleView
from explorer.ui.training.panel import TrainingPanel


class DockLayoutMixin:
    """Docks and layout of :class:`~explorer.ui.main_window.MainWindow`."""

    def hold_repaints(self) -> None:
        """Hold the repaint of every panel, then let them repaint one per event-loop turn.

        Called before a change that redraws every panel at once (a new model): Qt would
        paint them all in one pass, after the change itself and before the window's timers
        run again (~60 ms of painting on two busy cores). Each panel is repainted whole
        when its turn comes; the turns are those of the :class:`~explorer.ui.qt_utils.TurnQueue`,
        shared with the panels' own deferred work.
        """
        widgets = [self.centralWidget()] + [dock.widget() for dock in self.docks.values() if dock.isVisible()]
        held = getattr(self, "_held_repaints", None)
        if held is None:
            held = self._held_repaints = []
            self._release_repaint = Deferred(self._release_one_repaint, self)
        for widget in widgets:
            if widget is not None and widget.updatesEnabled() and widget not in held:
                widget.setUpdatesEnabled(False)
                held.append(widget)
        if held:
            self._release_repaint.start()

    def _release_one_repaint(self) -> None:
        held = self._held_repaints
        while held:
            widget = held.pop(0)
            if shiboken6.isValid(widget):
                widget.setUpdatesEnabled(True)
                break
        if held:
            self._release_repaint.start()   # behind whatever the panels deferred meanwhile

    def set_central_panel(self, widget: QWidget) -> None:
        """Make ``widget`` the central view (the window takes ownership).

        The view it replaces stays available as a dock (View ▸ Panels), hidden by default.
        """
        previous = self.takeCentralWidget()  # setCentralWidget alone would delete it
        self.setCentralWidget(widget)
        self.central_panel = widget
        if previous is not None and previous is self.latent_grid and "latent_grid" not in self.docks:
            dock = self.add_panel_dock("Latent Grid", previous, Qt.DockWidgetArea.RightDockWidgetArea, "latent_grid",
                                       visible=False)
            self.tabifyDockWidget(self.docks["samples"], dock)

    def add_panel_dock(self, title: str, widget: QWidget, area: Qt.DockWidgetArea = Qt.DockWidgetArea.RightDockWidgetArea,
                       object_name: str | None = None, *, shortcut: str | QKeySequence | None = None,
                       visible: bool = True, tip: str = "") -> QDockWidget:
        """Dock ``widget`` in ``area`` and list it in View ▸ Panels.

        Parameters
        ----------
        object_name : str
            Stable name used to save and restore the layout (default: from ``title``).
        shortcut : str or QKeySequence, optional
            Toggles the panel; by default Ctrl+1…Ctrl+9 in the order panels are added.
        visible : bool
            Shown at first (the saved layout wins once there is one).

        Returns
        -------
        QDockWidget
            Also available as ``window.docks[object_name]``.
        """
        object_name = object_name or title.lower().replace(" ", "_")
        if object_name in self.docks:
            raise ValueError(f"A panel named {object_name!r} is already docked.")
        dock = QDockWidget(title, self)
        dock.setObjectName(object_name)
        dock.setWidget(widget)
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetClosable | QDockWidget.DockWidgetFeature.DockWidgetMovable
                         | QDockWidget.DockWidgetFeature.DockWidgetFloatable)
        self.addDockWidget(area, dock)
        toggle = dock.toggleViewAction()
        toggle.setText(title)
        if shortcut is None and self._dock_shortcut <= 9:
            shortcut = f"Ctrl+{self._dock_shortcut}"
            self._dock_shortcut += 1
        if shortcut:
            toggle.setShortcut(QKeySequence(shortcut))
        toggle.setStatusTip(tip or f"Show or hide the {title} panel")
        toggle.setToolTip(tip or f"Show or hide the {title} panel")
        self.menus["Panels"].addAction(toggle)
        self.docks[object_name] = dock
        if not visible:
            dock.hide()
        if self.engine_ready:
            self.restoreDockWidget(dock)  # place it where the saved layout had it
        return dock

    def tab_docks(self, *groups: tuple[QDockWidget | None, Qt.DockWidgetArea, list[QDockWidget]]) -> None:
        """Put each group of docks in one set of tabs and show them.

        Parameters
        ----------
        *groups : (beside, area, docks)
            ``docks`` join ``beside``'s tabs, in order; where ``beside`` is None (that
            panel is not in this window), the first of them starts new tabs in ``area``.
        """
        # Every dock leaves its area before any is tabified: docks still stacked in an area
        # when they become tabs keep Qt (6.12) reserving their height, and the window grows.
        for _beside, _area, docks in groups:
            for dock in docks:
                self.removeDockWidget(dock)
        for beside, area, docks in groups:
            first, *rest = docks
            if beside is not None:
                self.tabifyDockWidget(beside, first)
            else:
                self.addDockWidget(area, first)
            for dock in rest:
                self.tabifyDockWidget(first, dock)   # joins first's tabs, wherever they are
        for _beside, _area, docks in groups:
            for dock in docks:
                dock.show()

    def _build_panels(self) -> None:
        s = self.state
        left, right, bottom = (Qt.DockWidgetArea.LeftDockWidgetArea, Qt.DockWidgetArea.RightDockWidgetArea,
                               Qt.DockWidgetArea.BottomDockWidgetArea)
        # The left column runs the full height: the training form needs it more than the plots below.
        self.setCorner(Qt.Corner.BottomLeftCorner, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.latent_grid = LatentGridView(s)
        self.setCentralWidget(self.latent_grid)
        self.central_panel = self.latent_grid

        self.training_panel = TrainingPanel(s)
        self.training_panel.train_requested.connect(self.start_training)
        self.training_panel.dataset_changed.connect(self._prefetch_for_dataset)
        self.training_panel.pause_requested.connect(self.toggle_pause)
        self.training_panel.stop_requested.connect(self.stop_training)
        self.add_panel_dock("Training", self.training_panel, left, "training",
                            tip="Choose a dataset and a model, train, pause and stop")
        self.loss_plot = LossPlot(s)
        self.add_panel_dock("Loss Curves", self.loss_plot, bottom, "loss_curves",
                            tip="Training and test losses, live")
        self.recon_view = ReconstructionView(s)
        self.add_panel_dock("Reconstructions", self.recon_view, right, "reconstructions",
                            tip="Test images and what the model makes of them, after every epoch")
        self.sample_view = SampleView(s)
        self.add_panel_dock("Samples", self.sample_view, right, "samples",
                            tip="Images decoded from the prior, after every epoch")
        self.kl_bars = KLBars(s)
        self.add_panel_dock("Latent Units", self.kl_bars, bottom, "latent_units",
                            tip="KL per latent dimension: active and collapsed units")
        self.splitDockWidget(self.docks["loss_curves"], self.docks["latent_units"], Qt.Orientation.Horizontal)
        self.resizeDocks([self.docks["training"]], [self.training_panel.minimumSizeHint().width()],
                         Qt.Orientation.Horizontal)
        self.resizeDocks([self.docks["reconstructions"]], [430], Qt.Orientation.Horizontal)
        self.resizeDocks([self.docks["reconstructions"], self.docks["samples"]], [200, 460], Qt.Orientation.Vertical)
        self.resizeDocks([self.docks["loss_curves"]], [290], Qt.Orientation.Vertical)
        self.resizeDocks([self.docks["loss_curves"], self.docks["latent_units"]], [700, 300], Qt.Orientation.Horizontal)

    def _fit_to_screen(self) -> None:
        """Open at a comfortable size: most of the screen, at most 1680×1050."""
        screen = self.screen() or QApplication.primaryScreen()
        if screen is None:
            self.resize(1440, 900)
            return
        area = screen.availableGeometry()
        width, height = min(1680, int(area.width() * 0.92)), min(1050, int(area.height() * 0.92))
        # Never larger than the screen's usable area, even if the minimum size asks for more.
        hint = self.minimumSizeHint()
        self.resize(min(area.width(), max(width, hint.width())), min(area.height(), max(height, hint.height())))

    def _arrange_docks(self) -> None:
        """Sizes for the default layout once every panel is docked (a saved layout overrides them).

        The map (central) gets the most room; the bottom row about a quarter of the height,
        the side columns what their panels need; the training form its full height when the
        left column has room for it.
        """
        area = Qt.DockWidgetArea
        shown = [d for d in self.docks.values() if not d.isHidden() and not d.isFloating()]

        def first(where):
            return next((d for d in shown if self.dockWidgetArea(d) == where), None)

        width, height = self.width(), self.height()
        bottom, right, left = first(area.BottomDockWidgetArea), first(area.RightDockWidgetArea), first(area.LeftDockWidgetArea)
        if bottom is not None:
            self.resizeDocks([bottom], [max(bottom.minimumSizeHint().height(), int(height * 0.27))], Qt.Orientation.Vertical)
        if right is not None:
            self.resizeDocks([right], [max(right.minimumSizeHint().width(), int(width * 0.24))], Qt.Orientation.Horizontal)
        training = self.docks["training"]
        if left is not None:
            self.resizeDocks([training], [self.training_panel.minimumSizeHint().width() + 12], Qt.Orientation.Horizontal)
        below = [d for d in shown if d is not training and self.dockWidgetArea(d) == area.LeftDockWidgetArea]
        if below:  # the training form first; what shares its column gets the rest
            want = min(self.training_panel.sizeHint().height(), int(height * 0.62))
            self.resizeDocks([training, below[0]], [want, max(1, height - want)], Qt.Orientation.Vertical)

    def reset_layout(self) -> None:
        self.restoreState(self._default_layout)
        for dock in self.docks.values():
            if dock.objectName() != "latent_grid":
                dock.show()
