"""Greedy weight soup: average the weights of checkpoints that share a starting point, judged on PublicTest.

Why: checkpoints fine-tuned from the same weights (epochs of one fine-tune, or fine-tunes with other seeds)
stay in one basin, so their weight average is a network that behaves like a small ensemble at the cost of one
("model soups", Wortsman et al. 2022). The greedy recipe keeps an ingredient only when the average improves
the selection split, so adding candidates cannot make the result worse on it. Every candidate average gets its
BatchNorm statistics re-measured on clean Training faces first (:mod:`fer_lightning.refine.precise_bn`):
averaged weights do not fit averaged running statistics. Only Training faces (no labels) and PublicTest are
read; PrivateTest stays for the report.

``scripts/soup.py`` (:mod:`fer_lightning.tasks.soup`) runs :func:`greedy_soup` and writes the soup as a
weights file.
"""

from __future__ import annotations

import glob
import logging
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from fer_lightning.checkpoints import load_weights_into
from fer_lightning.errors import CheckpointError
from fer_lightning.refine.precise_bn import recalibrate_batchnorm
from fer_lightning.refine.scoring import selection_figures

log = logging.getLogger(__name__)


def average_states(states: Sequence[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Uniform average of floating-point entries; integer ones (BatchNorm's batch counters) come from the
    first."""
    first = states[0]
    return {
        k: torch.stack([s[k] for s in states]).mean(0) if v.is_floating_point() else v.clone()
        for k, v in first.items()
    }


def greedy_soup(
    net: nn.Module,
    candidates: Sequence[str | Path],
    train_images: torch.Tensor,
    val_images: torch.Tensor,
    val_labels: torch.Tensor,
) -> tuple[list[Path], dict[str, float]]:
    """Rank ``candidates`` by PublicTest loss (each with precise BN), then add them best-first to a uniform
    weight average, keeping each only if the recalibrated average lowers the PublicTest loss. ``net`` (their
    common architecture) ends up holding the soup; returns its members and PublicTest figures."""
    states: dict[Path, dict[str, torch.Tensor]] = {}
    ranked: list[tuple[float, float, Path]] = []
    for path in dict.fromkeys(Path(c) for c in candidates):  # unique, in order
        load_weights_into(net, path)
        states[path] = {k: v.clone() for k, v in net.state_dict().items()}
        recalibrate_batchnorm(net, train_images)
        ranked.append((*selection_figures(net, val_images, val_labels), path))
        log.info("PublicTest %s + precise BN: acc %.4f, loss %.4f", path, ranked[-1][1], ranked[-1][0])
    ranked.sort(key=lambda r: r[0])
    best_loss, best_acc, first = ranked[0]
    members = [first]
    for _, _, path in ranked[1:]:
        net.load_state_dict(average_states([states[m] for m in [*members, path]]))
        recalibrate_batchnorm(net, train_images)
        loss, acc = selection_figures(net, val_images, val_labels)
        kept = loss < best_loss
        log.info(
            "soup of %d + %s: PublicTest acc %.4f, loss %.4f -> %s",
            len(members),
            path,
            acc,
            loss,
            "kept" if kept else "left out",
        )
        if kept:
            members.append(path)
            best_loss, best_acc = loss, acc
    net.load_state_dict(average_states([states[m] for m in members]))
    recalibrate_batchnorm(net, train_images)
    return members, {
        "soup/public_loss_best_single": ranked[0][0],
        "soup/public_acc_best_single": ranked[0][1],
        "soup/public_loss": best_loss,
        "soup/public_acc": best_acc,
        "soup/members": float(len(members)),
    }


def expand_checkpoints(patterns: Sequence[str]) -> list[Path]:
    """Paths and glob patterns (``run/checkpoints/epoch_*.ckpt``) → files, in order; a pattern matching
    nothing is an error rather than a silently smaller soup."""
    paths: list[Path] = []
    for pattern in patterns:
        matches = sorted(glob.glob(str(pattern))) if glob.has_magic(str(pattern)) else [str(pattern)]
        if not matches:
            raise CheckpointError(
                f"soup: no checkpoint matches {pattern!r}; check the folder and the pattern"
            )
        paths.extend(Path(m) for m in matches)
    return paths
