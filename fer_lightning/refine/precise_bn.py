"""Precise BatchNorm: re-estimate a trained network's BatchNorm statistics from the clean Training faces.

Why: the running statistics a checkpoint carries were accumulated during training — from augmented batches
(random erasing, affine warps) and, with the EMA callback, averaged over ~1,000 steps of weights that kept
changing — so they are not the statistics the final weights see on real faces. One pass over the clean Training
faces with :func:`torch.optim.swa_utils.update_bn` (a cumulative average, not a momentum one) replaces them with
exact population statistics ("precise BN", as in pycls and detectron2). No label is used and nothing is learned,
so PublicTest stays a fair selection split. Measured on the session-3 EMA checkpoint: PublicTest 65.53 → 65.87 %,
eval loss 0.9536 → 0.9418 (docs/results.md).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytorch_lightning as pl
import torch
from torch import nn
from torch.optim.swa_utils import update_bn

from fer_lightning.checkpoints import (
    atomic_torch_save,
    load_weights_into,
    read_checkpoint,
    replace_network_state,
    resolve_checkpoint,
)
from fer_lightning.data.transforms import to_model_input

log = logging.getLogger(__name__)


def has_batchnorm(net: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in net.modules())


def _batches(images: torch.Tensor, batch_size: int, device: torch.device) -> Iterator[torch.Tensor]:
    images = images if images.ndim == 4 else images.unsqueeze(1)  # (N, 48, 48) → (N, 1, 48, 48)
    for start in range(0, len(images), batch_size):
        batch = to_model_input(images[start : start + batch_size].to(device))
        yield batch.contiguous(memory_format=torch.channels_last)  # the layout the networks run fastest in


def recalibrate_batchnorm(net: nn.Module, images: torch.Tensor, batch_size: int = 256) -> nn.Module:
    """Replace ``net``'s BatchNorm running statistics by those of ``images`` (uint8 faces, unaugmented); in place.

    The pass is in order (no shuffling) and deterministic; ``net`` keeps its train/eval mode.
    """
    if len(images) == 0:
        raise ValueError("precise BatchNorm needs faces to measure statistics on, got none")
    if not has_batchnorm(net):
        log.warning("precise BatchNorm: %s has no BatchNorm layer, nothing to recalibrate", type(net).__name__)
        return net
    device = next(net.parameters()).device
    update_bn(_batches(torch.as_tensor(images), batch_size, device), net)
    return net


def write_recalibrated_checkpoint(source: str | Path, net: nn.Module, out_path: str | Path) -> Path:
    """A copy of checkpoint ``source`` (Lightning ``.ckpt`` or weights file) holding ``net``'s state, atomically."""
    data = read_checkpoint(source)
    replace_network_state(data, net.state_dict(), source)
    return atomic_torch_save(data, out_path)


def selection_figures(net: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> tuple[float, float]:
    """(plain cross-entropy, accuracy) of ``net`` on the selection split's faces."""
    from fer_lightning.evaluation import predict_log_probs, split_metrics  # evaluation imports plotting: keep it lazy

    log_probs = predict_log_probs(net, images, batch_size=256)
    m = split_metrics(log_probs, labels.cpu(), [str(c) for c in range(log_probs.shape[1])])
    return m["loss"], m["acc"]


def select_with_precise_bn(net: nn.Module, candidates: list[str | Path], train_images: torch.Tensor,
                           val_images: torch.Tensor, val_labels: torch.Tensor) -> tuple[Path, dict[str, float]]:
    """Score each saved checkpoint (e.g. the selected one and the last one) on the selection split as saved and after
    precise BN; load the one with the lowest PublicTest loss (plain cross-entropy) into ``net`` and return its path.

    A recalibrated winner is written beside its source as ``<name>_precise_bn.<ext>``. Why the last checkpoint
    competes: a checkpoint's stale statistics can hide that later weights are as good — measured on the session-3
    run, epoch 250 recalibrated (loss 0.9405) beat the epoch picked with its saved statistics (0.9536; 0.9419
    recalibrated).
    """
    scored: list[tuple[float, float, Path, bool, dict]] = []  # (loss, acc, source, recalibrated, network state)
    for path in dict.fromkeys(Path(c) for c in candidates):  # unique, in order
        load_weights_into(net, path)
        scored.append((*selection_figures(net, val_images, val_labels), path, False, {}))
        recalibrate_batchnorm(net, train_images)
        state = {k: v.clone() for k, v in net.state_dict().items()}
        scored.append((*selection_figures(net, val_images, val_labels), path, True, state))
    for loss, acc, path, recal, _ in scored:
        log.info("PublicTest %s%s: acc %.4f, loss %.4f", path.name, " + precise BN" if recal else "", acc, loss)
    loss, acc, path, recal, state = min(scored, key=lambda s: s[0])
    load_weights_into(net, path)
    metrics = {"precise_bn/public_loss_selected": scored[0][0], "precise_bn/public_acc_selected": scored[0][1],
               "precise_bn/public_loss_chosen": loss, "precise_bn/public_acc_chosen": acc,
               "precise_bn/recalibrated": float(recal)}
    if not recal:
        return path, metrics
    net.load_state_dict(state)
    out = recalibrated_path(path)
    write_recalibrated_checkpoint(path, net, out)
    log.info("chosen on PublicTest: %s (%d clean Training faces for the statistics)", out.name, len(train_images))
    return out, metrics


def recalibrated_path(path: Path) -> Path:
    """Where :func:`select_with_precise_bn` writes a recalibrated winner: ``<name>_precise_bn.<ext>`` beside it."""
    return path.with_name(f"{path.stem}_precise_bn{path.suffix}")


def precise_bn_checkpoints(cfg) -> tuple[Path, dict[str, float]]:
    """``scripts/precise_bn.py``: :func:`select_with_precise_bn` over ``cfg.checkpoints`` (same architecture) with the
    faces of ``cfg.data``; the first checkpoint is the one selected during training."""
    from fer_lightning.checkpoints import CheckpointError, checkpoint_paths, load_network, writable_file
    from fer_lightning.evaluation import positive_int
    from fer_lightning.utils.threads import intra_op_threads

    threads = positive_int(cfg, "threads", optional=True)
    paths = [resolve_checkpoint(p) for p in checkpoint_paths(cfg.checkpoints)]
    if not paths:
        raise CheckpointError("precise BN needs at least one checkpoint: checkpoints=[<selected.ckpt>,<last.ckpt>]")
    for path in paths:  # any of them may win: check now that its recalibrated copy can be written
        writable_file(recalibrated_path(path), f"the recalibrated copy of {path}")
    net, _ = load_network(paths[0])
    train_images, val_images, val_labels = selection_faces(cfg.data)
    with intra_op_threads(threads):
        return select_with_precise_bn(net, paths, train_images, val_images, val_labels)


def selection_faces(data_cfg, num_faces: int | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(Training faces for the statistics — ``num_faces`` of them, see :func:`fixed_subset` —, selection-split faces,
    their labels) from a data config: what the offline selection scripts need."""
    import hydra

    datamodule = hydra.utils.instantiate(data_cfg)
    datamodule.setup()
    val_images, val_labels = datamodule.tensors[datamodule.val_splits[0]]
    return fixed_subset(datamodule.tensors["train"][0], num_faces), val_images, val_labels


def fixed_subset(images: torch.Tensor, num_faces: int | None, seed: int = 0) -> torch.Tensor:
    """``num_faces`` of ``images`` drawn at random with ``seed`` (in their original order); all when None or more."""
    if num_faces is None or num_faces >= len(images):
        return images
    pick = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))[:num_faces]
    return images[pick.sort().values.to(images.device)]


class PreciseBatchNorm(pl.Callback):
    """Before every validation, re-estimate the validated network's BatchNorm statistics on ``num_faces`` clean
    Training faces (a fixed random subset), so PublicTest — and the checkpoint picked on it — judges the weights
    rather than stale statistics; checkpoints then carry the recalibrated statistics.

    It runs at the first validation batch, i.e. after every ``on_validation_epoch_start`` hook: with
    ``EMAWeightAveraging`` the averaged weights are in place by then, whatever the callbacks' order. Training is
    unaffected (train-mode BatchNorm uses batch statistics). DDP ranks compute identical statistics from the same
    faces. Cost: one forward pass over ``num_faces`` per validation.
    """

    def __init__(self, num_faces: int | None = 4096, batch_size: int = 256, seed: int = 0) -> None:
        self.num_faces, self.batch_size, self.seed = num_faces, batch_size, seed
        self._faces: torch.Tensor | None = None

    def _training_faces(self, trainer: pl.Trainer) -> torch.Tensor:
        if self._faces is None:
            tensors = getattr(trainer.datamodule, "tensors", None)
            if not tensors or "train" not in tensors:
                raise RuntimeError("PreciseBatchNorm needs FERDataModule's in-memory Training faces (datamodule.tensors)")
            self._faces = fixed_subset(tensors["train"][0], self.num_faces, self.seed)
        return self._faces

    def on_validation_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch, batch_idx: int,
                                  dataloader_idx: int = 0) -> None:
        if batch_idx == 0 and dataloader_idx == 0 and not trainer.sanity_checking:
            recalibrate_batchnorm(pl_module.net, self._training_faces(trainer), self.batch_size)
