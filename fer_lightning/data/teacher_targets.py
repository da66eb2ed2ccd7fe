"""Teacher-targets files (``scripts/teacher_targets.py`` writes them): soft labels for the Training faces.

Format: ``{"probs": (N, classes) float32, "labels": (N,) int64, "meta": {...}}`` — plain tensors, read with
``weights_only=True``. The labels travel with the probabilities so a file made for other data is refused.
"""

from __future__ import annotations

from pathlib import Path

import torch

from fer_lightning.emotions import NUM_CLASSES
from fer_lightning.errors import TeacherTargetsError


def load_teacher_targets(
    path: str | Path, labels: torch.Tensor, num_classes: int = NUM_CLASSES
) -> torch.Tensor:
    """Teacher probabilities over ``num_classes`` classes for the Training faces whose labels are ``labels``;
    refuses a file made for other data."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise TeacherTargetsError(
            f"teacher targets not found: {path}. Make them with python scripts/teacher_targets.py "
            "'checkpoints=[<ckpt>, ...]' output=<file.pt>"
        )
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
        probs, file_labels = data["probs"], data["labels"]
    except Exception as e:  # unreadable file or missing keys: both mean "not a teacher-targets file"
        raise TeacherTargetsError(f"{path} is not a teacher-targets file ({type(e).__name__}: {e})") from e
    if probs.shape != (len(labels), num_classes) or not torch.equal(file_labels, labels.cpu().long()):
        raise TeacherTargetsError(
            f"{path} was made for other Training data: {tuple(probs.shape)} targets for {len(labels)} faces"
            + ("" if len(file_labels) != len(labels) else " with different labels in the same positions")
        )
    return probs.float()
