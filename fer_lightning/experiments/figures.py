"""The figures that compare runs, computed once at the end of a fit, and their HParams entry in
TensorBoard."""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.loggers import TensorBoardLogger

from fer_lightning.inference import predict_logits

#: result/metric name → the TensorBoard HParams metric tag it is shown under
HPARAM_METRICS = {
    "selection/val_loss": "hparams/val_loss",
    "selection/val_acc": "hparams/val_acc",
    "test/acc": "hparams/test_acc",
    "run/epochs": "hparams/epochs",
    "run/params": "hparams/params",
    "run/train_img_per_s": "hparams/train_img_per_s",
}


def selection_figures(
    trainer: pl.Trainer, model: pl.LightningModule, datamodule: Any, train_img_per_s: float | None
) -> dict[str, float]:
    """Best ``val/loss`` (the checkpoint callback's score), the ``val/acc`` of those selected weights
    (``model`` must hold them), epochs run, parameter count, training img/s."""
    callback = trainer.checkpoint_callback
    score = getattr(callback, "best_model_score", None)
    val_loss = (
        float(score) if score is not None else float(trainer.callback_metrics.get("val/loss", float("nan")))
    )
    net = model.net
    figures = {
        "selection/val_loss": val_loss,
        "run/epochs": float(trainer.current_epoch),
        "run/params": float(sum(p.numel() for p in net.parameters())),
        "run/train_img_per_s": float(train_img_per_s) if train_img_per_s else float("nan"),
    }
    if _last_validation_scored_selection(trainer):
        # the same faces, weights and exact fp32 arithmetic as a recomputation: no second pass over the split
        figures["selection/val_acc"] = float(trainer.callback_metrics["val/acc"])
    elif hasattr(datamodule, "faces"):
        # recomputed on the faces the trainer validated on (exact fp32, as validation_step), and no more:
        # limit_val_batches, fast_dev_run and overfit_batches bound this pass as they bound validation
        split = getattr(datamodule, "val_splits", ("public",))[0]
        images, labels = datamodule.faces(split, validated_faces(trainer, datamodule))
        training = net.training
        logits = predict_logits(net.eval(), images)
        net.train(training)
        figures["selection/val_acc"] = (
            float((logits.argmax(1) == labels).float().mean()) if len(labels) else float("nan")
        )
    return figures


def _last_validation_scored_selection(trainer: pl.Trainer) -> bool:
    """Whether the fit's last validation scored the selected weights: the selected checkpoint's score is that
    validation's ``val/loss`` (one process: under DDP the logged figure includes the sampler's padding)."""
    score = getattr(trainer.checkpoint_callback, "best_model_score", None)
    metrics = trainer.callback_metrics
    if score is None or "val/loss" not in metrics or "val/acc" not in metrics or trainer.world_size != 1:
        return False
    return float(score) == float(metrics["val/loss"])


def validated_faces(trainer: pl.Trainer, datamodule: Any) -> int | None:
    """How many faces of the selection split (its first, in order: evaluation loaders do not shuffle) one
    validation of this fit scored, after ``limit_val_batches``, ``fast_dev_run`` and ``overfit_batches``;
    ``None`` when the count is unknown (an iterable loader of unknown length): the whole split."""
    batches = trainer.num_val_batches
    if not batches:  # validation switched off (limit_val_batches=0) or never set up
        return 0
    if batches[0] == float("inf"):
        return None
    loaders = trainer.val_dataloaders
    loader = loaders[0] if isinstance(loaders, list | tuple) else loaders
    size = getattr(loader, "batch_size", None) or getattr(datamodule, "eval_batch_size", None)
    return None if size is None else int(batches[0]) * int(size)


def _short(target: Any) -> str:
    return str(target).rsplit(".", 1)[-1] if target else "none"


def flat_hparams(cfg: DictConfig) -> dict[str, Any]:
    """The run-defining hyper-parameters as flat HParams columns. TensorBoard sorts them by name and shows the
    first five by default, so the names put ``arch``, ``batch_size``, ``lr``, ``max_epochs`` and the network's
    own arguments (``net/...``) first; ``optim/...`` and ``run/...`` follow. The whole composed config stays
    in the run's ``.hydra/config.yaml``."""
    c = OmegaConf.to_container(OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"]), resolve=True)
    model, data, trainer = c.get("model") or {}, c.get("data") or {}, c.get("trainer") or {}
    net, optimizer = model.get("net") or {}, model.get("optimizer") or {}
    flat: dict[str, Any] = {
        "arch": net.get("name") or _short(net.get("_target_")),
        "batch_size": data.get("batch_size"),
        "lr": optimizer.get("lr"),
        "max_epochs": trainer.get("max_epochs"),
        **{f"net/{k}": v for k, v in net.items() if not k.startswith("_") and k != "name"},
        "optim/name": _short(optimizer.get("_target_")),
        "optim/weight_decay": optimizer.get("weight_decay"),
        "optim/label_smoothing": model.get("label_smoothing"),
        "optim/scheduler": _short((model.get("scheduler") or {}).get("_target_")),
        "run/augmentation": _short((data.get("augmentation") or {}).get("_target_")),
        "run/class_set": data.get("class_set", "fer2013"),
        "run/precision": trainer.get("precision"),
        "run/seed": c.get("seed"),
        "run/init_weights": c.get("init_weights"),
        "run/callbacks": ",".join(sorted(k for k, v in (c.get("callbacks") or {}).items() if v)),
    }
    return {k: v if isinstance(v, bool | int | float | str) else str(v) for k, v in flat.items()}


def log_hparams(trainer: pl.Trainer, cfg: DictConfig, metrics: dict[str, float]) -> None:
    """One HParams record per run, written at its end with the figures: TensorBoard's HParams tab then shows
    every run of a sweep as a row (sortable) and a line (parallel coordinates)."""
    values = {tag: metrics[key] for key, tag in HPARAM_METRICS.items() if key in metrics}
    values = {tag: v for tag, v in values.items() if v == v}  # NaN (unknown) is left out, not drawn as 0
    for logger in trainer.loggers:
        if isinstance(logger, TensorBoardLogger):
            logger.log_hyperparams(flat_hparams(cfg), metrics=values)
            logger.experiment.flush()


def is_tensorboard(logger: Any) -> bool:
    return isinstance(logger, TensorBoardLogger)
