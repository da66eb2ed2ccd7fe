"""Offline distillation: an ensemble of trained checkpoints labels the Training faces once, the student learns
from it.

``scripts/teacher_targets.py`` (:mod:`fer_lightning.tasks.teacher_targets`, config
``conf/teacher_targets.yaml``)
averages the teachers' softmax over the *clean* Training faces (optionally with hflip TTA) and writes one
file:
``{"probs": (N, 7) float32, "labels": (N,) int64, "meta": {...}}``. The student then sees augmented faces with
these
targets (``data.teacher_targets=<file>``, ``model.distillation_weight=<w>``). Offline rather than online
because the
teachers' forward passes would double the cost of every CPU epoch, and this recipe's augmentations (a few
pixels of
shift, ±15° rotation, flips) leave the expression, hence the teacher's opinion, essentially unchanged.

Only Training rows are ever labelled: PublicTest (selection) and PrivateTest (report) stay unseen by the
student.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import torch
from torch import nn

from fer_lightning.emotions import EMOTIONS
from fer_lightning.inference import predict_log_probs

log = logging.getLogger(__name__)

#: The splits the teachers are scored on: Training is labelled; PublicTest is where a teacher set may be
#: chosen; PrivateTest is reported for the record, never for choosing.
SPLITS = ("train", "public", "private")


def ensemble_probs(
    nets: Sequence[nn.Module], images: torch.Tensor, tta: str | None = None, batch_size: int = 512
) -> torch.Tensor:
    """Mean softmax (N, 7) of several networks over uint8 faces (N, 1, 48, 48)."""
    total = torch.zeros(len(images), len(EMOTIONS))
    for net in nets:
        total += predict_log_probs(net, images, tta, batch_size).exp()
    return total / len(nets)


def label_training_faces(
    nets: Sequence[nn.Module], datamodule, tta: str | None = None, batch_size: int = 512
) -> tuple[torch.Tensor, torch.Tensor, dict[str, float]]:
    """(ensemble probabilities of the Training faces, their labels, ``{"<split>/ensemble_acc": acc}`` for each
    of :data:`SPLITS`) for the faces of a FER data module."""
    accuracies: dict[str, float] = {}
    for split in SPLITS:
        images, labels = datamodule.faces(split)
        probs = ensemble_probs(nets, images, tta, batch_size)
        accuracies[f"{split}/ensemble_acc"] = round(float((probs.argmax(1) == labels).float().mean()), 4)
        log.info(
            "teacher ensemble on %s: acc %.4f (%d faces)",
            split,
            accuracies[f"{split}/ensemble_acc"],
            len(labels),
        )
        if split == "train":
            train_probs, train_labels = probs.float(), labels.long().clone()
    return train_probs, train_labels, accuracies
