"""Dialogs: errors with technical details on request, the unsaved-changes question, shortcuts.

Error dialogs are window-modal and opened with ``open()``, never ``exec()``: the event
loop keeps running (training progress, tests) while the message is on screen.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QFont, QFontDatabase, QGuiApplication
from PySide6.QtWidgets import (QAbstractItemView, QDialog, QDialogButtonBox, QHBoxLayout, QHeaderView, QLabel,
                               QMessageBox, QPlainTextEdit, QPushButton, QStyle, QTableWidget, QTableWidgetItem,
                               QVBoxLayout, QWidget)

__all__ = ["ErrorDialog", "show_error", "ask_save_changes", "ask_run_code", "ShortcutsDialog"]


class ErrorDialog(QDialog):
    """A short message for people, with the technical details behind a "Details…" button.

    Parameters
    ----------
    title : str
        Window title, e.g. "Could not open the checkpoint".
    text : str
        One or two sentences saying what happened and what to do.
    details : str, optional
        A traceback or the original error, shown on request and copyable.
    level : {"error", "warning", "info"}
    """

    def __init__(self, parent: QWidget | None, title: str, text: str, details: str = "", *, level: str = "error") -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self.setObjectName("ErrorDialog")
        self.setWindowModality(Qt.WindowModality.WindowModal)
        self.text = text
        self.details = details or ""
        icon_kind = {"error": QStyle.StandardPixmap.SP_MessageBoxCritical,
                     "warning": QStyle.StandardPixmap.SP_MessageBoxWarning}.get(level, QStyle.StandardPixmap.SP_MessageBoxInformation)
        icon = QLabel()
        size = self.style().pixelMetric(QStyle.PixelMetric.PM_MessageBoxIconSize)
        icon.setPixmap(self.style().standardIcon(icon_kind).pixmap(size, size))
        icon.setAlignment(Qt.AlignmentFlag.AlignTop)
        heading = QLabel(title)
        font = QFont(heading.font())
        font.setBold(True)
        font.setPointSizeF(font.pointSizeF() * 1.1)
        heading.setFont(font)
        self.message = QLabel(text)
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.message.setMinimumWidth(380)
        text_col = QVBoxLayout()
        text_col.addWidget(heading)
        text_col.addWidget(self.message)
        top = QHBoxLayout()
        top.addWidget(icon)
        top.addLayout(text_col, 1)

        self.details_view = QPlainTextEdit(self.details)
        self.details_view.setReadOnly(True)
        self.details_view.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.details_view.setMinimumHeight(180)
        self.details_view.setVisible(False)
        self.details_view.setToolTip("Technical details, for a bug report")

        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok)
        buttons.accepted.connect(self.accept)
        self.details_button = QPushButton("Details…")
        self.details_button.setCheckable(True)
        self.details_button.setToolTip("Show the technical details")
        self.details_button.toggled.connect(self._toggle_details)
        self.copy_button = QPushButton("Copy")
        self.copy_button.setToolTip("Copy the message and the details to the clipboard")
        self.copy_button.clicked.connect(self._copy)
        self.copy_button.setVisible(False)
        if self.details:
            buttons.addButton(self.details_button, QDialogButtonBox.ButtonRole.ActionRole)
            buttons.addButton(self.copy_button, QDialogButtonBox.ButtonRole.ActionRole)

        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.details_view, 1)
        layout.addWidget(buttons)

    def _toggle_details(self, shown: bool) -> None:
        self.details_view.setVisible(shown)
        self.copy_button.setVisible(shown)
        self.details_button.setText("Hide Details" if shown else "Details…")
        self.adjustSize()

    def _copy(self) -> None:
        QGuiApplication.clipboard().setText(f"{self.text}\n\n{self.details}")


def show_error(parent: QWidget | None, title: str, text: str, details: str = "", *, level: str = "error") -> ErrorDialog:
    """Open an :class:`ErrorDialog` without blocking; returns it (it deletes itself when closed)."""
    dialog = ErrorDialog(parent, title, text, details, level=level)
    dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    dialog.open()
    return dialog


def ask_save_changes(parent: QWidget | None, name: str, doing: str = "closing") -> str:
    """Ask whether to save unsaved training: returns ``"save"``, ``"discard"`` or ``"cancel"``."""
    box = QMessageBox(parent)
    box.setIcon(QMessageBox.Icon.Warning)
    box.setWindowTitle("Unsaved Model")
    box.setText(f"The model “{name}” has trained since it was last saved.")
    box.setInformativeText(f"Save it before {doing}? Unsaved training is lost otherwise.")
    box.setStandardButtons(QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard
                           | QMessageBox.StandardButton.Cancel)
    box.setDefaultButton(QMessageBox.StandardButton.Save)
    answer = box.exec()
    return {QMessageBox.StandardButton.Save: "save", QMessageBox.StandardButton.Discard: "discard"}.get(
        QMessageBox.StandardButton(answer), "cancel")


def ask_run_code(parent: QWidget | None, path) -> bool:
    """Ask before an adapter file's code runs; True when the user allows it.

    The window asks once per file content (it remembers the SHA-256 of the files allowed),
    so an edited file is asked about again.
    """
    box = QMessageBox(parent)
    box.setIcon(QMessageBox.Icon.Warning)
    box.setWindowTitle("Run This Model Code?")
    box.setText(f"Opening “{Path(path).name}” runs the Python code in it, with your permissions.")
    box.setInformativeText(f"{path}\n\nOpen it only if you wrote it or trust where it came from. You are asked "
                           "again if the file changes.")
    run = box.addButton("Run and Open", QMessageBox.ButtonRole.AcceptRole)
    box.addButton(QMessageBox.StandardButton.Cancel)
    box.setDefaultButton(QMessageBox.StandardButton.Cancel)
    box.exec()
    return box.clickedButton() is run


class ShortcutsDialog(QDialog):
    """Every menu action with a shortcut, read from the window's menus."""

    def __init__(self, parent: QWidget, menus) -> None:
        super().__init__(parent)
        self.setWindowTitle("Keyboard Shortcuts")
        rows = []
        for menu in menus:
            title = menu.title().replace("&", "")
            for action in menu.actions():
                if action.menu() is not None or action.isSeparator():
                    continue
                keys = action.shortcut().toString(action.shortcut().SequenceFormat.NativeText)
                if keys:
                    rows.append((title, action.text().replace("&", "").rstrip("…"), keys))
        table = QTableWidget(len(rows), 3)
        table.setHorizontalHeaderLabels(["Menu", "Command", "Shortcut"])
        table.verticalHeader().setVisible(False)
        table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        for r, row in enumerate(rows):
            for c, value in enumerate(row):
                table.setItem(r, c, QTableWidgetItem(value))
        table.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        table.resizeColumnsToContents()
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(table)
        layout.addWidget(buttons)
        self.resize(520, 460)
