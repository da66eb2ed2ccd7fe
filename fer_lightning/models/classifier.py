"""FERClassifier: the LightningModule around an injected network (loss, metrics, optimiser and schedule)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from omegaconf import Container, OmegaConf
from torch import nn
from torchmetrics.classification import MulticlassAccuracy

from fer_lightning.data.datamodule import FERDataModule
from fer_lightning.emotions import EMOTIONS
from fer_lightning.errors import ConfigError
from fer_lightning.utils.precision import exact_fp32


def network_and_config(net: nn.Module | partial) -> tuple[nn.Module, dict | None]:
    """The network, and the config that rebuilds it (``{"_target_": dotted class name, **its arguments}``,
    what :mod:`fer_lightning.checkpoints` reads back) when ``net`` is a factory: a ``functools.partial`` of
    the network class, as ``_partial_: true`` in conf/model/*.yaml gives. A ready module has no such config
    (``None``)."""
    if isinstance(net, nn.Module):
        return net, None
    if not isinstance(net, partial) or not isinstance(net.func, type) or net.args:
        raise TypeError(
            f"net must be an nn.Module or a partial of a network class with named arguments, got {net!r}"
        )
    # Hydra hands list arguments over as ListConfig: stored as plain lists, checkpoints load with weights_only
    arguments = {
        k: OmegaConf.to_container(v, resolve=True) if isinstance(v, Container) else v
        for k, v in net.keywords.items()
    }
    return net(), {"_target_": f"{net.func.__module__}.{net.func.__qualname__}", **arguments}


def compile_options(setting: bool | str | Mapping[str, Any] | None) -> dict[str, Any] | None:
    """``model.compile`` → ``torch.compile`` keyword arguments (``None``: do not compile). ``true`` = torch's
    default mode, a string = that mode (``reduce-overhead`` captures CUDA graphs), a mapping = the arguments
    themselves. Shapes are static unless the mapping says ``dynamic``: a batch of another size (the last one
    of an epoch) then compiles once more and is cached, instead of switching to dynamic-shape kernels."""
    if setting is None or setting is False:
        return None
    if setting is True:
        return {"dynamic": False}
    if isinstance(setting, str):
        return {"mode": setting, "dynamic": False}
    if isinstance(setting, Mapping):
        return {"dynamic": False, **{str(k): v for k, v in setting.items()}}
    raise ConfigError(f"model.compile must be true/false, a torch.compile mode or a mapping, got {setting!r}")


class FERClassifier(pl.LightningModule):
    """Cross-entropy classifier. Metric names: ``train/{loss,acc}``, ``val/{loss,acc}`` on the selection split
    (PublicTest), ``val/<split>/{loss,acc}`` for every split when several are validated,
    ``test/{loss,acc}``.

    ``classes`` are the names of the network's outputs: taken from the data module at fit start (which must
    label as many classes as the network has outputs), written into every checkpoint, read back on load.
    """

    def __init__(
        self,
        net: nn.Module | partial,
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., Any] | None = None,
        scheduler_interval: str = "epoch",
        label_smoothing: float = 0.0,
        channels_last: bool = True,
        compile: bool | str | Mapping[str, Any] = False,
        distillation_weight: float = 0.0,
    ) -> None:
        super().__init__()
        # optimiser/scheduler factories are config, not weights: keep them out of the checkpoint so it loads
        # with torch.load(weights_only=True)
        # logger=False: the train task logs the whole config (and, at the end, its figures) itself
        self.save_hyperparameters(ignore=["net", "optimizer", "scheduler"], logger=False)
        # hyper_parameters.net_config (a plain dict) is how checkpoint loaders rebuild the network without
        # Lightning or the training config; a network built from a factory records it, a ready module leaves
        # it None
        self.net, self.hparams.net_config = network_and_config(net)
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        num_classes = getattr(self.net, "num_classes", len(EMOTIONS))
        # FER2013's names until a fit (or a loaded checkpoint) says otherwise: the default only for 7 outputs
        self.classes: list[str] | None = list(EMOTIONS) if num_classes == len(EMOTIONS) else None
        self.criterion = nn.CrossEntropyLoss(label_smoothing=label_smoothing)
        if not 0.0 <= distillation_weight <= 1.0:
            raise ValueError(f"distillation_weight must lie in [0, 1], got {distillation_weight}")
        # validate_args=False: preds come from argmax and labels were range-checked when the data was loaded;
        # torchmetrics' per-call checks cost more than the update itself (~0.25 of ~0.55 ms per batch on the
        # CPU)
        accuracy = lambda: MulticlassAccuracy(num_classes, average="micro", validate_args=False)
        self.train_acc = accuracy()
        # one metric object per logged name: the selection split is logged both as val/ and val/<split>/
        self.val_acc = nn.ModuleDict({key: accuracy() for key in ("selection", "public", "private")})
        self.test_acc = accuracy()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.hparams.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.net(x)

    def configure_model(self) -> None:
        if self.hparams.channels_last:  # ~1.7x faster for this network on the CPU, and the layout GPUs prefer
            self.net.to(memory_format=torch.channels_last)
        options = compile_options(self.hparams.compile)
        if options is not None and not isinstance(self.net, torch._dynamo.eval_frame.OptimizedModule):
            self.net = torch.compile(self.net, **options)

    def _step(self, batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        images, labels, *teacher = batch  # teacher: [probabilities (N, C)] when the data module distils
        # fp32 loss even when bf16-mixed computes the logits (the teachers' probabilities stay fp32 too)
        logits = self(images).float()
        loss = self.criterion(logits, labels)
        weight = self.hparams.distillation_weight
        if teacher and weight > 0:
            # cross-entropy against the teachers' probabilities (= KL to them up to a constant), mixed with
            # the labels
            loss = (1 - weight) * loss + weight * F.cross_entropy(logits, teacher[0].float())
        return loss, logits.argmax(1), labels

    def _exact_step(self, batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """:meth:`_step` without autocast or TF32: ``val/loss`` selects the checkpoint and ``test/acc`` is the
        reported figure, so neither may move with the training precision (see utils/precision.py)."""
        with exact_fp32():
            return self._step(batch)

    def _datamodule(self) -> FERDataModule | None:
        """The trainer's FERDataModule; ``None`` when fitting another data module or bare dataloaders (one
        validation split, no teacher targets)."""
        datamodule = self.trainer.datamodule
        return datamodule if isinstance(datamodule, FERDataModule) else None

    def on_fit_start(self) -> None:
        datamodule = self._datamodule()
        if datamodule is not None:
            self._take_classes(datamodule.classes, f"data.class_set={datamodule.class_set}")
        targets = datamodule.soft_targets if datamodule else None
        if bool(targets) != (
            self.hparams.distillation_weight > 0
        ):  # half a distillation setup is a config slip
            raise ValueError(
                f"distillation needs both data.teacher_targets or data.vote_targets (soft targets now "
                f"{targets!r}) and model.distillation_weight > 0 (now {self.hparams.distillation_weight})"
            )

    def _take_classes(self, classes: tuple[str, ...] | list[str], origin: str) -> None:
        """Name the outputs after the data's classes; a network with another output count cannot learn
        them."""
        outputs = getattr(self.net, "num_classes", None)
        if outputs is not None and outputs != len(classes):
            raise ConfigError(
                f"the network has {outputs} outputs but {origin} labels {len(classes)} classes "
                f"{list(classes)}: set model.net.num_classes={len(classes)} (conf/model sizes it by "
                "data.class_set)"
            )
        self.classes = list(classes)

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        loss, preds, labels = self._step(batch)
        # update(), not forward(): metrics are logged per epoch only, and forward() also computes a per-batch
        # value nobody reads (~3x the cost of the update)
        self.train_acc.update(preds, labels)
        self.log("train/loss", loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=len(labels))
        self.log("train/acc", self.train_acc, on_step=False, on_epoch=True, prog_bar=True)
        return loss

    def _val_names(self, dataloader_idx: int) -> list[tuple[str, str]]:
        """(log prefix, metric key) pairs for one validation dataloader."""
        datamodule = self._datamodule()
        splits = datamodule.val_splits if datamodule else ("public",)
        if len(splits) == 1:
            return [("val", "selection")]
        split = splits[dataloader_idx]
        return [(f"val/{split}", split)] + ([("val", "selection")] if dataloader_idx == 0 else [])

    def validation_step(self, batch, batch_idx: int, dataloader_idx: int = 0) -> None:
        loss, preds, labels = self._exact_step(batch)
        for prefix, key in self._val_names(dataloader_idx):
            self.val_acc[key].update(preds, labels)
            self.log(
                f"{prefix}/loss",
                loss,
                on_epoch=True,
                prog_bar=prefix == "val",
                batch_size=len(labels),
                add_dataloader_idx=False,
                sync_dist=True,
            )
            self.log(
                f"{prefix}/acc",
                self.val_acc[key],
                on_epoch=True,
                prog_bar=prefix == "val",
                add_dataloader_idx=False,
            )

    def test_step(self, batch, batch_idx: int) -> None:
        loss, preds, labels = self._exact_step(batch)
        self.test_acc.update(preds, labels)
        self.log("test/loss", loss, on_epoch=True, batch_size=len(labels), sync_dist=True)
        self.log("test/acc", self.test_acc, on_epoch=True)

    def predict_step(self, batch, batch_idx: int) -> torch.Tensor:
        images = batch[0] if isinstance(batch, list | tuple) else batch
        return self(images).softmax(1)

    def configure_optimizers(self):
        optimizer = self.optimizer_factory(params=self.parameters())
        if self.scheduler_factory is None:
            return optimizer
        scheduler = self.scheduler_factory(optimizer=optimizer)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {
                "scheduler": scheduler,
                "name": "train/lr",
                "interval": self.hparams.scheduler_interval,
            },
        }

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        if self.classes is None:  # outputs that no data named: a checkpoint must never guess its labels
            raise ConfigError(
                f"the network's {getattr(self.net, 'num_classes', '?')} outputs have no class names: fit it "
                "on a FERDataModule (or set FERClassifier.classes) before saving"
            )
        checkpoint["classes"] = list(self.classes)

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        if checkpoint.get("classes"):
            self.classes = list(checkpoint["classes"])
