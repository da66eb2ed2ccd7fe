"""``scripts/teacher_targets.py``: the teachers' ensemble labels the Training faces; one file for
distillation.

Config ``conf/teacher_targets.yaml``; the file format is described in
:mod:`fer_lightning.refine.distillation`.
"""

from __future__ import annotations

import logging
from typing import Any

import hydra
from omegaconf import DictConfig

from fer_lightning.utils.config_checks import checkpoint_paths
from fer_lightning.utils.io import writable_file
from fer_lightning.checkpoints import (
    load_network,
    resolve_checkpoint,
)
from fer_lightning.emotions import EMOTIONS
from fer_lightning.errors import ConfigError, TeacherTargetsError
from fer_lightning.inference import TTA_MODES, normalise_modes
from fer_lightning.refine.distillation import label_training_faces
from fer_lightning.utils.config_checks import positive_int
from fer_lightning.utils.io import save_torch
from fer_lightning.utils.threads import intra_op_threads

log = logging.getLogger(__name__)


def run(cfg: DictConfig) -> dict[str, Any]:
    """Label the Training split with the teachers' ensemble, write ``cfg.output``; the report holds each
    split's ensemble accuracy (PublicTest is where a teacher set may be chosen; PrivateTest is for the
    record)."""
    # every setting is checked before the teachers run over 35,887 faces, so a typo cannot waste that
    tta, batch_size = _one_tta_mode(cfg.get("tta")), positive_int(cfg, "batch_size")
    threads = positive_int(cfg, "threads", optional=True)
    output = writable_file(cfg.output, "the teacher targets (output=)")
    checkpoints = [str(resolve_checkpoint(p)) for p in checkpoint_paths(cfg.checkpoints)]
    if not checkpoints:
        raise TeacherTargetsError("teacher targets need at least one teacher: checkpoints=[<ckpt>, ...]")
    device = cfg.get("device", "auto")
    nets = [load_network(path, expected_classes=EMOTIONS, device=device)[0] for path in checkpoints]
    datamodule = hydra.utils.instantiate(cfg.data)
    with intra_op_threads(threads):
        probs, labels, accuracies = label_training_faces(nets, datamodule, tta, batch_size)
    report: dict[str, Any] = {"checkpoints": checkpoints, "tta": tta, **accuracies}
    save_torch({"probs": probs, "labels": labels, "meta": report}, output)
    log.info("teacher targets for %d Training faces written to %s", len(labels), output)
    return report


def _one_tta_mode(tta: Any) -> str | None:
    """The teachers' single TTA mode (``tta=hflip``) or None; a list of several is refused, not silently
    cut."""
    modes = normalise_modes(tta)
    if len(modes) > 1:
        raise ConfigError(f"tta={modes}: teacher targets take one TTA mode ({', '.join(TTA_MODES)}) or null")
    return modes[0] if modes else None
