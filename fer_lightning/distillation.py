"""Offline distillation: an ensemble of trained checkpoints labels the Training faces once, the student learns from it.

``write_teacher_targets(cfg)`` (what ``scripts/teacher_targets.py`` runs, config ``conf/teacher_targets.yaml``)
averages the teachers' softmax over the *clean* Training faces (optionally with hflip TTA) and writes one file:
``{"probs": (N, 7) float32, "labels": (N,) int64, "meta": {...}}``. The student then sees augmented faces with these
targets (``data.teacher_targets=<file>``, ``model.distillation_weight=<w>``). Offline rather than online because the
teachers' forward passes would double the cost of every CPU epoch, and this recipe's augmentations (a few pixels of
shift, ±15° rotation, flips) leave the expression, hence the teacher's opinion, essentially unchanged.

Only Training rows are ever labelled: PublicTest (selection) and PrivateTest (report) stay unseen by the student.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import hydra
import torch
from omegaconf import DictConfig
from torch import nn

from fer_lightning.checkpoints import atomic_torch_save, load_network, resolve_checkpoint
from fer_lightning.data.teacher_targets import TeacherTargetsError
from fer_lightning.emotions import EMOTIONS
from fer_lightning.evaluation import predict_log_probs, split_faces
from fer_lightning.utils.threads import intra_op_threads

log = logging.getLogger(__name__)


def ensemble_probs(nets: Sequence[nn.Module], images: torch.Tensor, tta: str | None = None,
                   batch_size: int = 512) -> torch.Tensor:
    """Mean softmax (N, 7) of several networks over uint8 faces (N, 1, 48, 48)."""
    total = torch.zeros(len(images), len(EMOTIONS))
    for net in nets:
        total += predict_log_probs(net, images, tta, batch_size).exp()
    return total / len(nets)


def write_teacher_targets(cfg: DictConfig) -> dict[str, Any]:
    """Label the Training split with the teachers' ensemble; report each split's ensemble accuracy (PublicTest is
    where a teacher set may be chosen; PrivateTest is printed for the record, never for choosing)."""
    checkpoints = [str(resolve_checkpoint(p)) for p in cfg.checkpoints]
    if not checkpoints:
        raise TeacherTargetsError("teacher targets need at least one teacher: checkpoints=[<ckpt>, ...]")
    nets = [load_network(path, expected_classes=EMOTIONS)[0] for path in checkpoints]
    datamodule = hydra.utils.instantiate(cfg.data)
    report: dict[str, Any] = {"checkpoints": checkpoints, "tta": cfg.get("tta")}
    with intra_op_threads(cfg.get("threads")):
        for split in ("train", "public", "private"):
            images, labels = split_faces(datamodule, split)
            probs = ensemble_probs(nets, images, cfg.get("tta"), cfg.batch_size)
            report[f"{split}/ensemble_acc"] = round(float((probs.argmax(1) == labels).float().mean()), 4)
            log.info("teacher ensemble on %s: acc %.4f (%d faces)", split, report[f"{split}/ensemble_acc"], len(labels))
            if split == "train":
                train_probs, train_labels = probs.float(), labels.long().clone()
    atomic_torch_save({"probs": train_probs, "labels": train_labels, "meta": report}, cfg.output)
    log.info("teacher targets for %d Training faces written to %s", len(train_labels), cfg.output)
    return report
