"""The per-point measures in the window: colour by, filter, search, outliers, selection (see :func:`install_measures`)."""

from __future__ import annotations

from PySide6 import QtCore

from explorer.jobs.measures import MeasuresJob
from explorer.ui.map.colour_by import ColourKey, MapColouring, MeasuresPanel
from explorer.ui.map.outliers import OutliersPanel
from explorer.ui.map.selection_view import SelectionView
from explorer.ui.qt_utils import Connections


class MeasureDocks(QtCore.QObject):
    """The measures job, the map's colouring and colour key, and the three docks."""

    def __init__(self, map_docks) -> None:
        window = map_docks.window
        super().__init__(window)
        state = window.state
        panel = map_docks.panel
        self.job = MeasuresJob(state, self)
        self.job.message_posted.connect(state.post_message)
        self.colouring = MapColouring(panel.view, state)
        self.key = ColourKey(self.colouring)
        panel.body.addWidget(self.key)
        self.panel = MeasuresPanel(state, panel.view, self.colouring, self.job)
        self.outliers = OutliersPanel(state, panel.view)
        self.selection = SelectionView(state)
        self._class_legend = panel.legend
        # The class toggles are the key while the labels colour the map; another column has its own.
        self._connections = Connections(self)
        self._connections.connect_all([(state.measures.colour_by_changed, self._sync_legend),
                                       (state.dataset_changed, self._sync_legend)])
        self._sync_legend()

        add = window.add_panel_dock
        right = QtCore.Qt.DockWidgetArea.RightDockWidgetArea
        bottom = QtCore.Qt.DockWidgetArea.BottomDockWidgetArea
        self.docks = {
            "measures": add("Colour and Filter", self.panel, right, "map_measures",
                            tip="Colour the map by a per-point measure, filter it with a histogram, search it"),
            "outliers": add("Outliers", self.outliers, right, "map_outliers",
                            tip="The least likely or worst reconstructed data points; click one to find it"),
            "selection": add("Selection", self.selection, bottom, "map_selection",
                             tip="The selected points as images and a table; export them"),
        }
        d = self.docks
        window.tab_docks((window.docks.get("samples"), right, [d["measures"], d["outliers"]]),
                         (map_docks.docks.get("groups"), bottom, [d["selection"]]))
        map_docks.docks.get("pins", d["selection"]).raise_()
        state.marks.selection_changed.connect(self._on_marks_selection_changed)

    def _sync_legend(self, *args) -> None:
        state = self._class_legend.state
        self._class_legend.setVisible(state.labels is not None and state.measures.colour_by == "label")

    def _on_marks_selection_changed(self, indices) -> None:
        if len(indices):
            self.docks["selection"].raise_()


def install_measures(map_docks) -> MeasureDocks:
    """Add colour by, filter, search, outliers and the selection view to the map's window."""
    window = map_docks.window
    window.measure_docks = MeasureDocks(map_docks)
    return window.measure_docks
