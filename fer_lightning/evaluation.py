"""Evaluate a checkpoint on FER2013's test splits: torchmetrics counts, optional TTA, metrics.json + figures.

``evaluate(cfg)`` is what ``scripts/eval.py`` runs (config ``conf/eval.yaml``); the functions above it are what the
review notebook and the tests use on their own.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hydra
import numpy as np
import torch
import torch.nn.functional as F
from omegaconf import DictConfig
from pytorch_lightning.loggers import TensorBoardLogger
from torch import nn
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassConfusionMatrix,
    MulticlassF1Score,
    MulticlassRecall,
)

from fer_lightning.checkpoints import load_network, resolve_checkpoint
from fer_lightning.data.transforms import to_model_input
from fer_lightning.emotions import EMOTIONS, SPLIT_TO_USAGE, USAGE_TO_SPLIT
from fer_lightning.errors import ConfigError
from fer_lightning.plots import confusion_matrix_figure
from fer_lightning.tta import normalise_modes, tta_log_probs
from fer_lightning.utils.io import save_figure, write_json
from fer_lightning.utils.instantiate import instantiate_group
from fer_lightning.utils.threads import intra_op_threads

log = logging.getLogger(__name__)


@torch.inference_mode()
def predict_log_probs(
    net: nn.Module, images: torch.Tensor | np.ndarray, tta: str | None = None, batch_size: int = 512
) -> torch.Tensor:
    """Class log-probabilities (N, C) on the CPU for uint8 faces (N, 48, 48) or (N, 1, 48, 48)."""
    images = torch.as_tensor(images)
    if images.ndim == 3:
        images = images.unsqueeze(1)
    device = next(net.parameters()).device
    net.eval()

    def forward(x: torch.Tensor) -> torch.Tensor:  # channels_last: the layout the network runs fastest in
        return net(x.contiguous(memory_format=torch.channels_last))

    chunks = [
        tta_log_probs(forward, to_model_input(images[i : i + batch_size].to(device)), tta).cpu()
        for i in range(0, len(images), batch_size)
    ]
    return torch.cat(chunks) if chunks else torch.empty(0, len(EMOTIONS))


def split_metrics(log_probs: torch.Tensor, labels: torch.Tensor, classes: Sequence[str]) -> dict[str, Any]:
    """acc, macro_f1, per_class_recall {class: recall}, loss (NLL of the predicted distribution), the confusion
    matrix (rows true, columns predicted; counts) and n. Counting is torchmetrics'."""
    num_classes = len(classes)
    labels = torch.as_tensor(labels, dtype=torch.long)
    preds = log_probs.argmax(1)
    recall = MulticlassRecall(num_classes, average=None)(preds, labels)
    return {
        "acc": float(MulticlassAccuracy(num_classes, average="micro")(preds, labels)),
        "macro_f1": float(MulticlassF1Score(num_classes, average="macro")(preds, labels)),
        "per_class_recall": {name: float(r) for name, r in zip(classes, recall)},
        "loss": float(F.nll_loss(log_probs, labels)),
        "confusion_matrix": MulticlassConfusionMatrix(num_classes)(preds, labels).tolist(),
        "n": len(labels),
    }


def most_confident_mistakes(
    probs: np.ndarray, labels: np.ndarray, per_class: int = 6
) -> dict[int, np.ndarray]:
    """{true class: indices of its misclassified faces, most confident wrong prediction first}."""
    probs, labels = np.asarray(probs), np.asarray(labels)
    preds, confidence = probs.argmax(1), probs.max(1)
    picks = {}
    for c in range(probs.shape[1]):
        wrong = np.flatnonzero((labels == c) & (preds != c))
        picks[c] = wrong[np.argsort(-confidence[wrong], kind="stable")][:per_class]
    return picks


def split_faces(datamodule, split: str, max_faces: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 faces (N, 1, 48, 48) and labels of one split of a FER data module (first ``max_faces`` rows)."""
    dataset = datamodule.dataset(split)
    stop = None if max_faces is None else int(max_faces)
    return dataset.images[:stop].cpu(), dataset.labels[:stop].cpu()


def evaluate_split(
    net: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    classes: Sequence[str],
    tta: Sequence[str] = (),
    batch_size: int = 512,
) -> dict[str, Any]:
    """Metrics of one split, flat ``name -> value``; TTA variants under ``tta_<mode>/<name>``."""
    results: dict[str, Any] = {}
    for mode in [None, *tta]:
        prefix = "" if mode is None else f"tta_{mode}/"
        metrics = split_metrics(predict_log_probs(net, images, mode, batch_size), labels, classes)
        results.update({f"{prefix}{name}": value for name, value in metrics.items()})
    return results


def _log_to_loggers(loggers: list, metrics: dict[str, Any], figures: dict[str, Any]) -> None:
    scalars = {k: float(v) for k, v in metrics.items() if isinstance(v, int | float) and not k.endswith("/n")}
    for lg in loggers:
        lg.log_metrics(scalars, step=0)
        if isinstance(lg, TensorBoardLogger):
            for tag, fig in figures.items():
                lg.experiment.add_figure(tag, fig, global_step=0, close=False)
        lg.finalize("success")


@dataclass(frozen=True)
class EvalSettings:
    """The settings of ``conf/eval.yaml`` that :func:`evaluate` uses, checked before the network and the data load:
    a typo costs a second rather than a run that fails half-way."""

    splits: list[str]
    figure_splits: list[str]
    tta: list[str]
    batch_size: int
    max_faces: int | None
    threads: int | None

    @classmethod
    def from_config(cls, cfg: DictConfig) -> EvalSettings:
        splits = split_names(cfg.get("splits"), "splits")
        if not splits:
            raise ConfigError(f"splits is empty: name at least one of {', '.join(SPLIT_TO_USAGE)}, e.g. splits=[private]")
        return cls(
            splits=splits,
            figure_splits=split_names(cfg.get("figure_splits", ["private"]), "figure_splits"),
            tta=normalise_modes(cfg.get("tta")),
            batch_size=positive_int(cfg, "batch_size"),
            max_faces=positive_int(cfg, "max_faces", optional=True),
            threads=positive_int(cfg, "threads", optional=True),
        )


def split_names(value: str | Sequence[str] | None, key: str) -> list[str]:
    """A ``splits``-style setting → the project's split names in order, without repeats; FER2013's ``Usage`` names
    (PrivateTest, PublicTest, Training) are accepted too. An unknown name is a :class:`ConfigError` naming ``key``."""
    if value is None:
        names = []
    elif isinstance(value, Sequence) and not isinstance(value, str):
        names = [str(n) for n in value]
    else:  # splits=private: one name without brackets
        names = [str(value)]
    canonical = [USAGE_TO_SPLIT.get(name, name) for name in names]
    unknown = [name for name, split in zip(names, canonical) if split not in SPLIT_TO_USAGE]
    if unknown:
        raise ConfigError(
            f"unknown split(s) {unknown} in {key}={names}; expected any of {', '.join(SPLIT_TO_USAGE)} "
            f"(or FER2013's {', '.join(USAGE_TO_SPLIT)})"
        )
    return list(dict.fromkeys(canonical))


def positive_int(cfg: DictConfig, key: str, optional: bool = False) -> int | None:
    """``cfg[key]`` checked to be a whole number of at least 1 (or null when ``optional``)."""
    value = cfg.get(key)
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{key}={value} must be a whole number of at least 1{' or null' if optional else ''}")
    return value


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """Load ``cfg.ckpt_path`` (default: the shipped weights), score every split in ``cfg.splits`` (+ TTA), write
    ``metrics.json`` and ``confusion_matrix_<split>.png`` in the run dir, log both to the configured loggers."""
    out_dir = Path(cfg.paths.output_dir)
    settings = EvalSettings.from_config(cfg)
    ckpt = resolve_checkpoint(cfg.get("ckpt_path"))
    # FER2013 labels are EMOTIONS ids: a checkpoint with other classes (or order) cannot be scored on them
    net, classes = load_network(ckpt, expected_classes=EMOTIONS, device=cfg.get("device", "cpu"))
    datamodule = hydra.utils.instantiate(cfg.data)
    metrics: dict[str, Any] = {"checkpoint": str(ckpt), "classes": classes, "tta": settings.tta}
    for split in settings.splits:
        images, labels = split_faces(datamodule, split, settings.max_faces)
        log.info("evaluating %s on %s (%d faces, TTA %s)", ckpt.name, split, len(labels), settings.tta or "none")
        with intra_op_threads(settings.threads):
            results = evaluate_split(net, images, labels, classes, settings.tta, settings.batch_size)
        metrics.update({f"{split}/{name}": value for name, value in results.items()})
        log.info(
            "%s: acc %.4f, macro F1 %.4f, loss %.4f",
            split,
            metrics[f"{split}/acc"],
            metrics[f"{split}/macro_f1"],
            metrics[f"{split}/loss"],
        )
    write_json(out_dir / "metrics.json", metrics)

    figures = {}
    for split in settings.figure_splits:
        if f"{split}/confusion_matrix" not in metrics:
            continue
        fig = confusion_matrix_figure(
            metrics[f"{split}/confusion_matrix"], classes, f"{split} split — {ckpt.name}"
        )
        save_figure(fig, out_dir / f"confusion_matrix_{split}.png")
        figures[f"eval/confusion_matrix_{split}"] = fig
    _log_to_loggers(instantiate_group(cfg.get("logger"), "logger"), metrics, figures)
    return metrics
