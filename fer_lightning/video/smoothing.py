"""Per-track smoothing of class probabilities: the mean of the last ``window`` frames.

One frame's prediction flickers between neighbouring expressions (a blink, a half-open mouth); averaging a few
frames (5 at 30 fps = 1/6 s) steadies the label without hiding a real change for long. ``window=1`` is the
frame's own prediction.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from fer_lightning.errors import ConfigError


class ProbabilitySmoother:
    """Moving average over the last ``window`` probability vectors of one track."""

    def __init__(self, window: int = 5) -> None:
        if not isinstance(window, int) or isinstance(window, bool) or window < 1:
            raise ConfigError(f"smooth_window must be a whole number of frames >= 1, got {window!r}")
        self.recent: deque[np.ndarray] = deque(maxlen=window)

    def add(self, probabilities: np.ndarray) -> np.ndarray:
        """Add this frame's probabilities; returns the smoothed ones (they still sum to 1)."""
        self.recent.append(np.asarray(probabilities, dtype=np.float64))
        return np.mean(self.recent, axis=0) if len(self.recent) > 1 else self.recent[0]
