"""run(cfg) for scripts/train.py: data, model, callbacks, loggers and trainer from a Hydra config; fit, then
test."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import hydra
import pytorch_lightning as pl
import torch
from omegaconf import DictConfig
from pytorch_lightning.utilities.exceptions import SIGTERMException

from fer_lightning.checkpoints import load_matching_weights, read_checkpoint
from fer_lightning.callbacks import TrainingSpeed
from fer_lightning.errors import CheckpointError, TrainingInterrupted
from fer_lightning.experiments.figures import flat_hparams, is_tensorboard, log_hparams, selection_figures
from fer_lightning.utils.config_checks import check_train_config
from fer_lightning.utils.instantiate import instantiate_group

log = logging.getLogger(__name__)


def build_model(cfg: DictConfig) -> pl.LightningModule:
    """The LightningModule (which records its network's config for checkpoints), with ``init_weights``
    loaded."""
    model = hydra.utils.instantiate(cfg.model)
    if cfg.get(
        "init_weights"
    ):  # fine-tuning: start from trained weights, with a fresh optimiser and schedule
        # an output layer sized for other classes (FER2013's 7 → FER+'s 8) keeps its fresh initialisation
        skipped = load_matching_weights(model.net, cfg.init_weights)
        log.info(
            "network initialised from %s%s",
            cfg.init_weights,
            f"; freshly initialised (shapes differ): {', '.join(skipped)}" if skipped else "",
        )
    return model


def check_resume_checkpoint(path: str | Path) -> None:
    """``ckpt_path`` must be a Lightning checkpoint (a weights-only file has no optimiser or loop state)."""
    data = read_checkpoint(path)  # missing or unreadable files raise a one-line CheckpointError
    if "pytorch-lightning_version" not in data or "loops" not in data:
        raise CheckpointError(
            f"ckpt_path={path} is a weights-only file, not a Lightning checkpoint: it cannot resume a run. "
            f"To start training from its weights use init_weights={path}"
        )


def _last_checkpoint(trainer: pl.Trainer) -> Path | None:
    folders = {Path(cb.dirpath) for cb in trainer.checkpoint_callbacks if getattr(cb, "dirpath", None)}
    return next((f / "last.ckpt" for f in folders if (f / "last.ckpt").is_file()), None)


def _interrupted(trainer: pl.Trainer) -> TrainingInterrupted:
    last = _last_checkpoint(trainer)
    if last is None:
        return TrainingInterrupted(
            f"stopped by SIGTERM during epoch {trainer.current_epoch} before any epoch completed: "
            "nothing to resume from, start the run again"
        )
    done = torch.load(last, map_location="cpu", weights_only=True)["epoch"]
    return TrainingInterrupted(
        f"stopped by SIGTERM during epoch {trainer.current_epoch}; {last} holds the end of epoch {done}: "
        f"resume with ckpt_path={last}"
    )


def run(cfg: DictConfig) -> dict[str, Any]:
    """Fit on Training, select on PublicTest (``val/loss``), report the selected checkpoint on PrivateTest."""
    check_train_config(cfg)
    if cfg.get("ckpt_path"):
        check_resume_checkpoint(cfg.ckpt_path)
    if cfg.get("seed") is not None:
        pl.seed_everything(cfg.seed, workers=True)
    torch.set_float32_matmul_precision("high")

    datamodule: pl.LightningDataModule = hydra.utils.instantiate(cfg.data)
    model = build_model(cfg)
    speed = TrainingSpeed()
    callbacks = [*instantiate_group(cfg.get("callbacks"), "callbacks"), speed]
    loggers = instantiate_group(cfg.get("logger"), "logger")
    trainer: pl.Trainer = hydra.utils.instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)

    # the config goes to CSV/MLflow now (visible while the run lasts); TensorBoard gets it once, at the end,
    # with the figures (its HParams tab keeps the first HParams record a run writes)
    hparams = flat_hparams(cfg)
    for lg in trainer.loggers:
        if not is_tensorboard(lg):
            lg.log_hyperparams(hparams)

    for stage, wanted in (("fit", cfg.get("train", True)), ("test", cfg.get("test", True))):
        if wanted:  # an empty split fails here, not after hours of fitting
            datamodule.check_stage(stage)
    if cfg.get("train", True):
        try:
            trainer.fit(model, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
        except SIGTERMException:  # Lightning's exit on SIGTERM is SystemExit(None): exit status 0, as if done
            raise _interrupted(trainer) from None
    metrics = dict(trainer.callback_metrics)

    best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
    if best:
        # the selected weights, for the figures and the test. Loaded here rather than via ckpt_path: with a
        # weight-averaging callback (callbacks=[default,ema]) Lightning would restore the raw weights kept for
        # resuming, not the averaged ones that were selected on PublicTest.
        model.load_state_dict(torch.load(best, map_location=model.device, weights_only=True)["state_dict"])
    if cfg.get("train", True):
        metrics.update(selection_figures(trainer, model, datamodule, speed.img_per_s))
    if cfg.get("test", True):
        if not best:
            log.warning(
                "no best checkpoint (no checkpoint callback or no validation): testing current weights"
            )
        log.info("testing %s on %s", best or "current weights", datamodule.test_split)
        trainer.test(model, datamodule=datamodule)
        metrics.update(trainer.callback_metrics)
    metrics = {k: float(v) for k, v in metrics.items()}
    log_hparams(trainer, cfg, metrics)
    return metrics
