"""Every Lightning callback of the project, each a thin wrapper over the logic it calls.

``RngStateCheckpoint`` (random-generator state for exact resumes) is part of ``callbacks/default.yaml``.
``GradCAMPanels`` is switched on with ``callbacks=[default,gradcam]`` (``conf/callbacks/gradcam.yaml``): each
panel costs a few seconds on a CPU. ``PreciseBatchNorm`` (:mod:`fer_lightning.refine.precise_bn`) is switched
on with ``callbacks=[default,ema,precise_bn]``; ``EMA`` (:mod:`fer_lightning.refine.ema`) with
``callbacks=[default,ema]``. ``NetworkSummary`` is the default model summary.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import pytorch_lightning as pl
import torch
import torch.distributed as dist
from pytorch_lightning.callbacks import EMAWeightAveraging, RichModelSummary
from pytorch_lightning.loggers import TensorBoardLogger
from pytorch_lightning.utilities import rank_zero_only
from pytorch_lightning.utilities.model_summary import ModelSummary

from fer_lightning.emotions import EMOTIONS
from fer_lightning.explain.gradcam import GradCAMExplainer
from fer_lightning.explain.panels import panel_figure
from fer_lightning.refine.ema import SyncFreeEMA
from fer_lightning.refine.precise_bn import fixed_subset, recalibrate_batchnorm
from fer_lightning.utils.rng import capture_rng_states, restore_rng_states

log = logging.getLogger(__name__)


class RngStateCheckpoint(pl.Callback):
    """Stores every rank's random-generator states in each checkpoint and restores them when a fit resumes, so
    ``ckpt_path=<last.ckpt>`` draws the same shuffles and augmentations as the uninterrupted run.

    The states are taken when the checkpoint is written (after validation, at the end of an epoch) and put
    back at the start of the first resumed epoch, not while loading: the sanity-check validation that
    Lightning runs in between draws from the generators too (each DataLoader iterator draws a seed), which the
    uninterrupted run never did at that point.
    """

    def __init__(self) -> None:
        self._pending: dict[str, Any] | None = None

    def state_dict(self) -> dict[str, Any]:
        mine = capture_rng_states()
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            ranks: list[Any] = [None] * dist.get_world_size()
            dist.all_gather_object(ranks, mine)  # each DDP rank augments with its own generators
            return {"ranks": ranks}
        return {"ranks": [mine]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        ranks = state_dict["ranks"]
        rank = dist.get_rank() if dist.is_available() and dist.is_initialized() else 0
        if rank >= len(ranks):
            log.warning(
                "checkpoint holds random states for %d rank(s), this is rank %d: its draws will differ "
                "from the uninterrupted run",
                len(ranks),
                rank,
            )
        self._pending = ranks[min(rank, len(ranks) - 1)]

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._pending is not None:
            restore_rng_states(self._pending)
            self._pending = None


class EMA(EMAWeightAveraging):
    """Lightning's EMA callback (validation, selection, the test and checkpoints use the averaged weights; the
    raw ones stay in the checkpoint for resuming) with :class:`SyncFreeEMA` as the average: one multi-tensor
    update per step and no host sync."""

    def __init__(self, decay: float = 0.999, **kwargs: Any) -> None:
        super().__init__(decay=decay, **kwargs)
        self.decay = decay

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage == "fit":
            # as WeightAveraging.setup, without its warning: FERClassifier.configure_model shards nothing
            pl_module.configure_model()
            self._average_model = SyncFreeEMA(
                pl_module, self.decay, device=self._device or pl_module.device, use_buffers=self._use_buffers
            )


def class_names(pl_module: pl.LightningModule) -> list[str]:
    """The class names a module predicts: its ``classes`` attribute when it has one (FERClassifier takes them
    from the data at fit start and writes them into its checkpoints), else :data:`EMOTIONS`."""
    return list(getattr(pl_module, "classes", None) or EMOTIONS)


class GradCAMPanels(pl.Callback):
    """Every ``every_n_epochs`` epochs (and after the last one), explain the first ``num_faces`` faces of
    ``split`` with the current weights and log the panel grid as the image ``tag`` to every TensorBoard
    logger.

    The same faces every time, so the images show how the network's attention develops over training.
    Runs at the end of the training epoch (after validation), outside Lightning's inference mode, on a copy of
    the network, so training state (modes, gradients, in-place ReLUs) is untouched.
    """

    def __init__(
        self,
        every_n_epochs: int = 5,
        num_faces: int = 8,
        split: str = "public",
        target_layer: str | None = None,
        tag: str | None = None,
    ) -> None:
        if every_n_epochs < 1 or num_faces < 1:
            raise ValueError(f"every_n_epochs and num_faces must be >= 1, got {every_n_epochs}, {num_faces}")
        self.every_n_epochs, self.num_faces, self.split = int(every_n_epochs), int(num_faces), split
        self.target_layer = target_layer
        self.tag = tag or f"gradcam/{split}"
        self._faces: tuple[torch.Tensor, torch.Tensor] | None = None

    def _fixed_faces(self, trainer: pl.Trainer) -> tuple[torch.Tensor, torch.Tensor]:
        if self._faces is None:
            datamodule = trainer.datamodule
            if datamodule is None or not hasattr(datamodule, "faces"):
                raise RuntimeError(
                    "GradCAMPanels needs a FERDataModule passed to trainer.fit(datamodule=...)"
                )
            images, labels = datamodule.faces(self.split, self.num_faces)
            self._faces = images.clone(), labels.clone()  # not views of the whole split: it may be freed
        return self._faces

    def _due(self, trainer: pl.Trainer) -> bool:
        # epochs counted from 1: every_n_epochs=5 logs after epochs 5, 10, ...
        epoch = trainer.current_epoch + 1
        last = trainer.max_epochs is not None and epoch >= trainer.max_epochs
        return epoch % self.every_n_epochs == 0 or last or trainer.should_stop

    @rank_zero_only
    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        loggers = [lg for lg in trainer.loggers if isinstance(lg, TensorBoardLogger)]
        if not loggers or trainer.sanity_checking or not self._due(trainer):
            return
        faces, labels = self._fixed_faces(trainer)
        classes = class_names(pl_module)
        explainer = GradCAMExplainer(pl_module.net, self.target_layer, classes, device=pl_module.device)
        explanation = explainer.explain(faces)
        names = [f"{self.split} #{i}" for i in range(len(faces))]
        fig = panel_figure(explanation, classes, names, labels.tolist())
        for lg in loggers:
            lg.experiment.add_figure(self.tag, fig, global_step=trainer.global_step, close=False)
        log.debug(
            "logged Grad-CAM panels of %d %s faces at step %d", len(faces), self.split, trainer.global_step
        )


class PreciseBatchNorm(pl.Callback):
    """Before every validation, re-estimate the validated network's BatchNorm statistics on ``num_faces``
    clean Training faces (a fixed random subset), so PublicTest — and the checkpoint picked on it — judges the
    weights rather than stale statistics; checkpoints then carry the recalibrated statistics.

    It runs at the first validation batch, i.e. after every ``on_validation_epoch_start`` hook: with
    ``EMAWeightAveraging`` the averaged weights are in place by then, whatever the callbacks' order. Training
    is unaffected (train-mode BatchNorm uses batch statistics). DDP ranks compute identical statistics from
    the same faces. Cost: one forward pass over ``num_faces`` per validation.
    """

    def __init__(self, num_faces: int | None = 4096, batch_size: int = 256, seed: int = 0) -> None:
        self.num_faces, self.batch_size, self.seed = num_faces, batch_size, seed
        self._faces: torch.Tensor | None = None

    def _training_faces(self, trainer: pl.Trainer, device: torch.device) -> torch.Tensor:
        if self._faces is None:
            datamodule = trainer.datamodule
            if datamodule is None or not hasattr(datamodule, "faces"):
                raise RuntimeError("PreciseBatchNorm needs a FERDataModule (its in-memory Training faces)")
            # kept on the training device: the same faces every validation, copied there once
            self._faces = fixed_subset(datamodule.faces("train")[0], self.num_faces, self.seed).to(device)
        return self._faces

    def on_validation_batch_start(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        batch,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if batch_idx == 0 and dataloader_idx == 0 and not trainer.sanity_checking:
            faces = self._training_faces(trainer, pl_module.device)
            recalibrate_batchnorm(pl_module.net, faces, self.batch_size)


class _NetworkRows(ModelSummary):
    """Lightning's summary limited to the network (the loss and metric modules have no parameters to show),
    without the FLOPs column: Lightning can only count FLOPs from an example input, which this project does
    not set, so the column would read 0 everywhere."""

    @property
    def named_modules(self):
        return [(n, m) for n, m in super().named_modules if n == "net" or n.startswith("net.")]

    def _get_summary_data(self) -> list[tuple[str, list[str]]]:
        return [(name, values) for name, values in super()._get_summary_data() if name != "FLOPs"]


class NetworkSummary(RichModelSummary):
    """The model summary at fit start: the network's layers and parameter counts
    (``callbacks/model_summary.yaml``)."""

    def _summary(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> ModelSummary:
        return _NetworkRows(pl_module, max_depth=self._max_depth)

    @staticmethod
    def summarize(
        summary_data,
        total_parameters: int,
        trainable_parameters: int,
        model_size: float,
        total_training_modes: dict[str, int],
        total_flops: int,
        **summarize_kwargs: Any,
    ) -> None:
        from rich import get_console
        from rich.table import Table

        table = Table(header_style=summarize_kwargs.get("header_style", "bold magenta"))
        table.add_column(" ", style="dim")
        for name, _ in summary_data[1:]:
            table.add_column(name, justify="right" if name == "Params" else "left", no_wrap=name == "Name")
        for row in zip(*(values for _, values in summary_data)):
            table.add_row(*row)
        console = get_console()
        console.print(table)
        console.print(
            f"Trainable params: {trainable_parameters:,}   Total params: {total_parameters:,}   "
            f"Size: {model_size:.3f} MB"
        )


class TrainingSpeed(pl.Callback):
    """Training images per second over the whole fit: faces seen in training steps / seconds from each
    epoch's first batch to its validation (validation, checkpointing and logging excluded). Added by the train
    task to every run: the figure goes in ``result.json`` and TensorBoard's HParams."""

    def __init__(self) -> None:
        self.faces, self.seconds, self._start = 0, 0.0, None

    @property
    def img_per_s(self) -> float | None:
        return self.faces / self.seconds if self.seconds > 0 else None

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        self.faces += len(batch[0])

    def _stop(self) -> None:
        if self._start is not None:
            self.seconds += time.perf_counter() - self._start
            self._start = None

    def on_validation_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.sanity_checking:
            self._stop()

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._stop()  # epochs without validation
