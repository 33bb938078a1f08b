"""State of the interpolation / arithmetic studio (no Qt)."""

from __future__ import annotations

import numpy as np
from psygnal import Signal


class StudioState:
    keyframes_changed = Signal()
    frames_changed = Signal()             # self.frame_codes / self.frames recomputed
    current_frame_changed = Signal(int)
    decode_label_changed = Signal(int)

    def __init__(self, owner) -> None:
        self.owner = owner
        self.keyframes: list = []          # operands (Pin or data index) in order
        self.frame_codes: np.ndarray | None = None   # T×d
        self.frames: np.ndarray | None = None        # T×C×H×W
        self.current_frame = 0
        self.decode_label = 0              # label used to decode with conditional models

    def set_decode_label(self, label: int) -> None:
        if label != self.decode_label:
            self.decode_label = int(label)
            self.decode_label_changed.emit(self.decode_label)
