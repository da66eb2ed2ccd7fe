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

from fer_lightning.emotions import canonical_emotion
from fer_lightning.inference import predict_log_probs


def class_mapping(model_classes: Sequence[str], label_classes: Sequence[str]) -> list[int]:
    """For each label class, the model output of the same name (synonyms match: ``happiness`` = ``happy``),
    or -1 when the model has no such output (a 7-class FER2013 model has no ``contempt``)."""
    index = {canonical_emotion(name): i for i, name in enumerate(model_classes)}
    return [index.get(canonical_emotion(name), -1) for name in label_classes]


def split_metrics(
    log_probs: torch.Tensor,
    labels: torch.Tensor,
    classes: Sequence[str],
    label_classes: Sequence[str] | None = None,
    votes: torch.Tensor | None = None,
) -> dict[str, Any]:
    """acc, macro_f1, per_class_recall {class: recall}, loss (NLL of the predicted distribution), the
    confusion matrix (rows true, columns predicted; counts) and n. Counting is torchmetrics'.

    ``classes`` name the model's outputs, ``label_classes`` the labels (default: the same), matched by
    name: a face whose class the model cannot predict is an error (counted in ``unpredictable``, and left out
    of ``loss``, which would be infinite), a prediction of a class the labels lack (``contempt`` scored on
    FER2013 labels) is an error too. The confusion matrix's classes (``confusion_classes``) are the label
    classes followed by the model-only ones. ``votes`` (N, label classes), the annotators' distributions, adds
    ``vote_ce``: the cross-entropy of the model's distribution against them, over the classes both share.
    """
    label_classes = list(classes if label_classes is None else label_classes)
    labels = torch.as_tensor(labels, dtype=torch.long)
    mapping = class_mapping(classes, label_classes)
    extra = [i for i in range(len(classes)) if i not in mapping]  # outputs no label can match
    union = label_classes + [classes[i] for i in extra]
    to_union = {m: u for u, m in enumerate(mapping) if m >= 0} | {
        m: len(label_classes) + k for k, m in enumerate(extra)
    }
    preds = torch.tensor([to_union[i] for i in range(len(classes))])[log_probs.argmax(1)]
    n_label = len(label_classes)
    recall = MulticlassRecall(len(union), average=None)(preds, labels)[:n_label]
    f1 = MulticlassF1Score(len(union), average=None)(preds, labels)[:n_label]
    confusion = MulticlassConfusionMatrix(len(union))(preds, labels)
    # macro-F1 over the label classes that occur (as torchmetrics' "macro" does): outputs no label can be
    # are not classes of this split
    occurs = (confusion[:n_label].sum(1) + confusion[:, :n_label].sum(0) > 0)[:n_label]
    model_index = torch.tensor(mapping)[labels]
    predictable = model_index >= 0
    metrics = {
        "acc": float(MulticlassAccuracy(len(union), average="micro")(preds, labels)),
        "macro_f1": float(f1[occurs].mean()) if occurs.any() else 0.0,
        "per_class_recall": {name: float(r) for name, r in zip(label_classes, recall)},
        "loss": float(F.nll_loss(log_probs[predictable], model_index[predictable]))
        if predictable.any()
        else float("nan"),
        "confusion_matrix": confusion.tolist(),
        "n": len(labels),
    }
    if union != list(classes):  # label and model classes differ: say how they were matched
        metrics["confusion_classes"] = union
        metrics["unpredictable"] = int((~predictable).sum())
    if votes is not None:
        metrics["vote_ce"] = vote_cross_entropy(log_probs, votes, mapping)
    return metrics


def vote_cross_entropy(log_probs: torch.Tensor, votes: torch.Tensor, mapping: Sequence[int]) -> float:
    """Mean cross-entropy ``-sum_c v_c log p_c`` of the model's distribution against the vote distributions,
    over the label classes the model predicts (votes renormalised over them; exact when it predicts all)."""
    shared = [c for c, m in enumerate(mapping) if m >= 0]
    v = torch.as_tensor(votes, dtype=torch.float64)[:, shared]
    total = v.sum(1, keepdim=True)
    has = total[:, 0] > 0
    v = v[has] / total[has]
    return float(-(v * log_probs[has][:, [mapping[c] for c in shared]].double()).sum(1).mean())


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
    label_classes: Sequence[str] | None = None,
    votes: torch.Tensor | None = None,
) -> dict[str, Any]:
    """Metrics of one split, flat ``name -> value``; TTA variants under ``tta_<mode>/<name>``. ``classes``
    name the network's outputs, ``label_classes`` the labels, ``votes`` the annotators' distributions (see
    :func:`split_metrics`)."""
    results: dict[str, Any] = {}
    for mode in [None, *tta]:
        prefix = "" if mode is None else f"tta_{mode}/"
        log_probs = predict_log_probs(net, images, mode, batch_size)
        metrics = split_metrics(log_probs, labels, classes, label_classes, votes)
        results.update({f"{prefix}{name}": value for name, value in metrics.items()})
    return results
