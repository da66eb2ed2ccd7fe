"""Precise BatchNorm: re-estimate a trained network's BatchNorm statistics from the clean Training faces.

Why: the running statistics a checkpoint carries were accumulated during training — from augmented batches
(random erasing, affine warps) and, with the EMA callback, averaged over ~1,000 steps of weights that kept
changing — so they are not the statistics the final weights see on real faces. One pass over the clean
Training faces with :func:`torch.optim.swa_utils.update_bn` (a cumulative average, not a momentum one)
replaces them with exact population statistics ("precise BN", as in pycls and detectron2). No label is used
and nothing is learned, so PublicTest stays a fair selection split. Measured on the EMA checkpoint of
docs/results.md: PublicTest 65.53 → 65.87 %, eval loss 0.9536 → 0.9418.

Used by ``callbacks.PreciseBatchNorm`` (during training), :mod:`fer_lightning.refine.scoring` (choosing
between saved checkpoints) and :mod:`fer_lightning.refine.soup` (every candidate average).
"""

from __future__ import annotations

import logging

import torch
from torch import nn
from torch.optim.swa_utils import update_bn

from fer_lightning.inference import model_batches

log = logging.getLogger(__name__)


def has_batchnorm(net: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in net.modules())


def recalibrate_batchnorm(net: nn.Module, images: torch.Tensor, batch_size: int = 256) -> nn.Module:
    """Replace ``net``'s BatchNorm running statistics by those of ``images`` (uint8 faces, unaugmented); in
    place.

    The pass is in order (no shuffling) and deterministic; ``net`` keeps its train/eval mode.
    """
    if len(images) == 0:
        raise ValueError("precise BatchNorm needs faces to measure statistics on, got none")
    if not has_batchnorm(net):
        log.warning(
            "precise BatchNorm: %s has no BatchNorm layer, nothing to recalibrate", type(net).__name__
        )
        return net
    device = next(net.parameters()).device
    update_bn(model_batches(images, batch_size, device), net)
    return net


def fixed_subset(images: torch.Tensor, num_faces: int | None, seed: int = 0) -> torch.Tensor:
    """``num_faces`` of ``images`` drawn at random with ``seed`` (in their original order); all when None or
    more."""
    if num_faces is None or num_faces >= len(images):
        return images
    pick = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))[:num_faces]
    return images[pick.sort().values.to(images.device)]
