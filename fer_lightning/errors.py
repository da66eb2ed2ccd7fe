"""One hierarchy for the errors a user can fix: the scripts print any :class:`FERError` as one line and exit
1.

Each class also derives from the built-in type callers would naturally catch (``ValueError``,
``FileNotFoundError``, ``RuntimeError``), so library users need not know this module. Anything that is not a
:class:`FERError` is a bug and keeps its traceback.
"""

from __future__ import annotations

from pathlib import Path


class FERError(Exception):
    """Base class: the message names the file, line, key or value at fault and what to do about it."""


class ConfigError(FERError, ValueError):
    """A config value is invalid or two settings contradict each other."""


class FERDataError(FERError, ValueError):
    """A data file is missing or malformed; the message names the file and, where it applies, the line."""


class CheckpointError(FERError, RuntimeError):
    """A checkpoint cannot be used; the message says which file and what is wrong with it."""


class CheckpointNotFoundError(CheckpointError, FileNotFoundError):
    """No checkpoint at the given path (or no default weights shipped yet)."""


class CheckpointMismatchError(CheckpointError):
    """The checkpoint's weights do not fit its network config, or its classes differ from the expected
    ones."""


class UnsafeCheckpointError(CheckpointError):
    """The checkpoint asks to build something that is not an allowed network class: refused, nothing is
    built."""


class TeacherTargetsError(FERError, ValueError):
    """A teacher-targets file cannot be used with this data; the message says why."""


class ImageReadError(FERError, ValueError):
    """A file could not be decoded as an image (missing, truncated, not an image, or too large)."""

    def __init__(self, path: str | Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


class DetectorUnavailableError(FERError, RuntimeError):
    """An optional detector backend's package is not installed."""


class InputError(FERError, ValueError):
    """Inputs given to a script or the API are unusable (nothing readable, wrong array shape or type)."""


class TrainingInterrupted(FERError):
    """Training stopped on a signal (SIGTERM/SIGINT) after saving ``last.ckpt``: the run is resumable, not
    done."""
