"""``scripts/precise_bn.py``: choose between saved checkpoints on PublicTest, each as saved and with precise
BN.

Config ``conf/precise_bn.yaml``; the first of ``checkpoints`` is the one selected during training. A
recalibrated winner is written beside its source (:func:`fer_lightning.refine.scoring.recalibrated_path`).
"""

from __future__ import annotations

from pathlib import Path

import hydra
from omegaconf import DictConfig

from fer_lightning.utils.config_checks import checkpoint_paths
from fer_lightning.utils.io import writable_file
from fer_lightning.checkpoints import load_network, resolve_checkpoint
from fer_lightning.errors import CheckpointError
from fer_lightning.refine.scoring import recalibrated_path, select_with_precise_bn, selection_faces
from fer_lightning.utils.config_checks import positive_int
from fer_lightning.utils.threads import intra_op_threads


def run(cfg: DictConfig) -> tuple[Path, dict[str, float]]:
    """:func:`select_with_precise_bn` over ``cfg.checkpoints`` (same architecture) with the faces of
    ``cfg.data``: (the chosen checkpoint's path, PublicTest figures)."""
    threads = positive_int(cfg, "threads", optional=True)
    paths = [resolve_checkpoint(p) for p in checkpoint_paths(cfg.checkpoints)]
    if not paths:
        raise CheckpointError(
            "precise BN needs at least one checkpoint: checkpoints=[<selected.ckpt>,<last.ckpt>]"
        )
    for path in paths:  # any of them may win: check now that its recalibrated copy can be written
        writable_file(recalibrated_path(path), f"the recalibrated copy of {path}")
    net, _ = load_network(paths[0], device=cfg.get("device", "auto"))
    train_images, val_images, val_labels = selection_faces(hydra.utils.instantiate(cfg.data))
    with intra_op_threads(threads):
        return select_with_precise_bn(net, paths, train_images, val_images, val_labels)
