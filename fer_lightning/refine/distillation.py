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

from fer_lightning.checkpoints import (
    atomic_torch_save,
    checkpoint_paths,
    load_network,
    resolve_checkpoint,
    writable_file,
)
from fer_lightning.emotions import EMOTIONS
from fer_lightning.errors import ConfigError, TeacherTargetsError
from fer_lightning.evaluation import positive_int, predict_log_probs, split_faces
from fer_lightning.tta import TTA_MODES, normalise_modes
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
    # every setting is checked before the teachers run over 35,887 faces, so a typo cannot waste that
    tta, batch_size = _one_tta_mode(cfg.get("tta")), positive_int(cfg, "batch_size")
    threads = positive_int(cfg, "threads", optional=True)
    output = writable_file(cfg.output, "the teacher targets (output=)")
    checkpoints = [str(resolve_checkpoint(p)) for p in checkpoint_paths(cfg.checkpoints)]
    if not checkpoints:
        raise TeacherTargetsError("teacher targets need at least one teacher: checkpoints=[<ckpt>, ...]")
    nets = [load_network(path, expected_classes=EMOTIONS)[0] for path in checkpoints]
    datamodule = hydra.utils.instantiate(cfg.data)
    report: dict[str, Any] = {"checkpoints": checkpoints, "tta": tta}
    with intra_op_threads(threads):
        for split in ("train", "public", "private"):
            images, labels = split_faces(datamodule, split)
            probs = ensemble_probs(nets, images, tta, batch_size)
            report[f"{split}/ensemble_acc"] = round(float((probs.argmax(1) == labels).float().mean()), 4)
            log.info("teacher ensemble on %s: acc %.4f (%d faces)", split, report[f"{split}/ensemble_acc"], len(labels))
            if split == "train":
                train_probs, train_labels = probs.float(), labels.long().clone()
    atomic_torch_save({"probs": train_probs, "labels": train_labels, "meta": report}, output)
    log.info("teacher targets for %d Training faces written to %s", len(train_labels), output)
    return report


def _one_tta_mode(tta: Any) -> str | None:
    """The teachers' single TTA mode (``tta=hflip``) or None; a list of several is refused, not silently cut."""
    modes = normalise_modes(tta)
    if len(modes) > 1:
        raise ConfigError(f"tta={modes}: teacher targets take one TTA mode ({', '.join(TTA_MODES)}) or null")
    return modes[0] if modes else None
