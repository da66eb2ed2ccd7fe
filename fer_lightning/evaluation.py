"""Metrics of a network's predictions on a split of faces (counting is torchmetrics'); no files, no plots::

    from fer_lightning.evaluation import evaluate_split
    metrics = evaluate_split(net, images, labels, EMOTIONS, tta=["hflip"])
    # {"acc": ..., "tta_hflip/acc": ..., ...}

``scripts/eval.py`` (:mod:`fer_lightning.tasks.eval`) writes these per split to ``metrics.json``; the review
notebook and the refine tools call them directly.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassConfusionMatrix,
    MulticlassF1Score,
    MulticlassRecall,
)

from fer_lightning.inference import predict_log_probs


def split_metrics(log_probs: torch.Tensor, labels: torch.Tensor, classes: Sequence[str]) -> dict[str, Any]:
    """acc, macro_f1, per_class_recall {class: recall}, loss (NLL of the predicted distribution), the
    confusion matrix (rows true, columns predicted; counts) and n. Counting is torchmetrics'."""
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
