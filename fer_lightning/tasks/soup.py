"""``scripts/soup.py``: a greedy weight soup of checkpoints, judged on PublicTest, written as a weights file.

Config ``conf/soup.yaml``. The file's ``meta`` lists the soup's members and its PublicTest figures.
"""

from __future__ import annotations

import logging
from pathlib import Path

import hydra
from omegaconf import DictConfig

from fer_lightning.utils.config_checks import checkpoint_paths
from fer_lightning.utils.io import writable_file
from fer_lightning.checkpoints import (
    load_network,
    network_parts,
    save_weights,
)
from fer_lightning.errors import CheckpointError
from fer_lightning.refine.scoring import selection_faces
from fer_lightning.refine.soup import expand_checkpoints, greedy_soup
from fer_lightning.utils.config_checks import positive_int
from fer_lightning.utils.threads import intra_op_threads

log = logging.getLogger(__name__)


def run(cfg: DictConfig) -> tuple[Path, list[Path], dict[str, float]]:
    """:func:`greedy_soup` over ``cfg.checkpoints`` with the faces of ``cfg.data``; writes the soup to
    ``cfg.output``. Returns (that file, the soup's members, PublicTest figures)."""
    # every setting is checked before the minutes of scoring, so a typo cannot waste them
    num_faces, threads = (
        positive_int(cfg, "num_faces", optional=True),
        positive_int(cfg, "threads", optional=True),
    )
    output = writable_file(cfg.output, "the soup (output=)")
    paths = expand_checkpoints(checkpoint_paths(cfg.checkpoints))
    if not paths:
        raise CheckpointError(
            "a soup needs checkpoints: 'checkpoints=[<run>/checkpoints/epoch_*.ckpt,<other.ckpt>]'"
        )
    net, classes = load_network(paths[0], device=cfg.get("device", "auto"))
    train_images, val_images, val_labels = selection_faces(hydra.utils.instantiate(cfg.data), num_faces)
    with intra_op_threads(threads):
        members, metrics = greedy_soup(net, paths, train_images, val_images, val_labels)
    net_config = network_parts(members[0])[0]
    meta = {
        "soup_members": [str(m) for m in members],
        "precise_bn_faces": len(train_images),
        **{k.removeprefix("soup/"): v for k, v in metrics.items() if k != "soup/members"},
    }
    out = save_weights(net_config, net.state_dict(), classes, output, meta)
    log.info("soup of %d checkpoints -> %s", len(members), out)
    return out, members, metrics
