"""Light and dark looks: the Qt palette, and matching colours for pyqtgraph plots.

The window follows the system's colour scheme by default (Fusion style, which reads the
platform's light/dark preference on Windows, macOS and GNOME/KDE). The View menu can force
light or dark. Plots read their colours from the widget palette through
:func:`plot_colors`, so they follow whichever is active; widgets re-apply them on
``QEvent.PaletteChange``. :func:`class_colors` gives the class colours of the map, its
legend and the decoder, brightened on dark backgrounds.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication

from explorer.ui.qt_utils import is_dark

THEMES = ("system", "light", "dark")

# Curve colours readable on both backgrounds (light variant, dark variant).
_SERIES = {
    "loss": ("#1f6fb4", "#62a8f0"),
    "recon": ("#e07b10", "#ffad5c"),
    "kl": ("#2b9a3e", "#6fd17c"),
    "test": ("#c62828", "#ff6b6b"),
    "beta": ("#7b5bb6", "#b79cf0"),
    "active": ("#1f6fb4", "#62a8f0"),
    "collapsed": ("#9e9e9e", "#6b6b6b"),
}


def series_color(name: str, palette: QPalette | None = None) -> QColor:
    light, dark = _SERIES[name]
    return QColor(dark if is_dark(palette) else light)


def plot_colors(palette: QPalette | None = None) -> dict[str, QColor]:
    """Background, foreground (axes, text) and grid colours for a plot in ``palette``."""
    palette = palette or QGuiApplication.palette()
    base = palette.color(QPalette.ColorRole.Base)
    text = palette.color(QPalette.ColorRole.Text)
    grid = QColor(text)
    grid.setAlpha(40)
    muted = QColor(text)
    muted.setAlpha(150)
    return {"background": base, "foreground": text, "grid": grid, "muted": muted}


# Class colours on the map, its legend and the decoder's label swatch.
UNLABELED_COLOR = (86, 156, 214)
TAB10 = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75),
         (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207)]
# Slightly brighter than matplotlib's tab10 so that classes read on a dark background.
PALETTE = [tuple(min(255, int(c * 1.18 + 18)) for c in rgb) for rgb in TAB10]


def class_colors(n: int, dark: bool = True) -> list[tuple[int, int, int]]:
    """``n`` distinct RGB colours: tab10 first (brightened on dark backgrounds), then golden-angle hues."""
    colors = list((PALETTE if dark else TAB10)[:n])
    k = 0
    while len(colors) < n:
        hue = (0.13 + k * 0.618034) % 1.0
        c = QColor.fromHsvF(hue, 0.65, 0.95 if dark else 0.8)
        colors.append((c.red(), c.green(), c.blue()))
        k += 1
    return colors


def dark_palette() -> QPalette:
    """A restrained dark palette for Fusion (used when dark is forced)."""
    p = QPalette()
    window, base, alt, text = QColor(45, 45, 48), QColor(30, 30, 32), QColor(52, 52, 56), QColor(225, 225, 225)
    disabled = QColor(125, 125, 125)
    accent = QColor(66, 135, 222)
    role = QPalette.ColorRole
    for r, c in ((role.Window, window), (role.WindowText, text), (role.Base, base), (role.AlternateBase, alt),
                 (role.ToolTipBase, QColor(60, 60, 64)), (role.ToolTipText, text), (role.Text, text),
                 (role.Button, window), (role.ButtonText, text), (role.BrightText, QColor(255, 90, 90)),
                 (role.Highlight, accent), (role.HighlightedText, QColor(255, 255, 255)),
                 (role.Link, QColor(110, 170, 255)), (role.PlaceholderText, disabled),
                 (role.Light, QColor(70, 70, 74)), (role.Midlight, QColor(60, 60, 64)), (role.Mid, QColor(40, 40, 42)),
                 (role.Dark, QColor(25, 25, 27)), (role.Shadow, QColor(10, 10, 10))):
        p.setColor(r, c)
    for r in (role.WindowText, role.Text, role.ButtonText):
        p.setColor(QPalette.ColorGroup.Disabled, r, disabled)
    p.setColor(QPalette.ColorGroup.Disabled, role.Highlight, QColor(80, 80, 80))
    return p


def apply_theme(app: QApplication, theme: str = "system") -> None:
    """Use Fusion with the system palette, or force ``light`` / ``dark``."""
    if theme not in THEMES:
        theme = "system"
    if app.style().name().lower() != "fusion":
        app.setStyle("Fusion")
    hints = app.styleHints()
    if theme == "dark":
        hints.setColorScheme(Qt.ColorScheme.Dark)
        app.setPalette(dark_palette())
    elif theme == "light":
        hints.setColorScheme(Qt.ColorScheme.Light)
        app.setPalette(app.style().standardPalette())
    else:
        hints.unsetColorScheme()
        if hints.colorScheme() == Qt.ColorScheme.Dark and not is_dark(app.style().standardPalette()):
            app.setPalette(dark_palette())
        else:
            app.setPalette(app.style().standardPalette())
