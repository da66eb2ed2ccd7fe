"""Accuracy on a folder of labelled photos: every photo is detected, cropped (cached per photo, eye-aligned as
configured) and scored::

    from fer_lightning.faces.evaluate import evaluate_photo_folder
    metrics = evaluate_photo_folder(net, classes, "jaffe-dev", FaceSettings(labels=jaffe_rule))
    metrics["photos/acc"], metrics["photos/no_face"]

``scripts/eval.py data=photos data.source.input_dir=<folder> labels=jaffe`` runs this. A photo whose face is
not found (or that cannot be decoded) gets no prediction and counts as an error: its true class's row of the
confusion matrix has it under an extra "no face" column, so accuracy is over every labelled photo, never over
the easy ones only. The counting is :func:`fer_lightning.evaluation.split_metrics`' and the forward pass
:func:`fer_lightning.inference.predict_log_probs`, as for FER2013's splits.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from fer_lightning.emotions import EMOTIONS, IMAGE_SIZE, SPLITS
from fer_lightning.errors import InputError
from fer_lightning.evaluation import split_metrics
from fer_lightning.faces.extract import extract_faces
from fer_lightning.faces.pipeline import FaceSettings, LabelledPhotos, input_folder, label_photos
from fer_lightning.inference import predict_log_probs

#: Key prefix of the metrics over every photo of the folder.
PHOTOS = "photos"
#: The confusion-matrix column of the photos that got no prediction.
NO_FACE = "no face"


def evaluate_photo_folder(
    net: nn.Module,
    classes: Sequence[str],
    input_dir: str | Path,
    settings: FaceSettings,
    label_classes: Sequence[str] = EMOTIONS,
    splits: Sequence[str] = (),
    tta: Sequence[str] = (),
    batch_size: int = 512,
    max_photos: int | None = None,
) -> dict[str, Any]:
    """Metrics of ``net`` (outputs named ``classes``) on every labelled photo under ``input_dir``, flat
    ``"photos/<name>"``: acc, macro_f1, per_class_recall, confusion_matrix (+ ``confusion_classes``), loss and
    acc_faces_found (over the photos with a face), and the counts n, faces_found, no_face, unreadable,
    unknown_labels, aligned, eyes_not_found. ``splits`` (``private``, ...) also scores the photos that
    ``settings.split`` assigns to each split, under ``"<split>/<name>"`` (``n`` 0 and ``acc`` None for one
    without photos): a model trained on the folder's Training photos is judged on its test photos only.
    TTA variants come under ``"<prefix>/tta_<mode>/<name>"``. ``max_photos``: the first N labelled photos.

    Raises :class:`InputError` for a folder without photos, or whose photos the label rule cannot read.
    """
    listing = label_photos(input_folder(input_dir), settings)
    _require_labels(input_dir, listing, settings)
    labelled = listing.labelled[:max_photos]
    usage = listing.usage[: len(labelled)]
    refs = [photo.ref for photo, _ in labelled]
    cache_dir = settings.cache_dir if settings.use_cache else None
    results, _ = extract_faces(
        refs, settings.detector, cache_dir, settings.workers, settings.progress, aligner=settings.aligner
    )
    outcomes = [results[ref.path] for ref in refs]
    found = torch.tensor([r.status == "face" for r in outcomes], dtype=torch.bool)
    crops = np.array(
        [np.frombuffer(r.crop, np.uint8) for r in outcomes if r.status == "face"], np.uint8
    ).reshape(-1, IMAGE_SIZE, IMAGE_SIZE)
    labels = torch.tensor([label for _, label in labelled], dtype=torch.long)
    names = [photo.rel.as_posix() for photo, _ in labelled]

    metrics: dict[str, Any] = {
        f"{PHOTOS}/input_dir": str(Path(input_dir).expanduser().resolve()),
        f"{PHOTOS}/faces_found": int(found.sum()),
        f"{PHOTOS}/no_face": sum(r.status == "noface" for r in outcomes),
        f"{PHOTOS}/no_face_files": [n for n, r in zip(names, outcomes) if r.status == "noface"],
        f"{PHOTOS}/unreadable": len(listing.unreadable)
        + sum(r.status in ("unreadable", "error") for r in outcomes),
        f"{PHOTOS}/unknown_labels": len(listing.unknown),
        f"{PHOTOS}/aligned": sum(r.aligned is True for r in outcomes),
        f"{PHOTOS}/eyes_not_found": sum(r.aligned is False for r in outcomes),
    }
    groups = {PHOTOS: torch.ones(len(labels), dtype=torch.bool)}
    groups |= {split: torch.from_numpy(usage == SPLITS.index(split)) for split in splits}
    for mode in [None, *tta]:
        suffix = "" if mode is None else f"tta_{mode}/"
        face_log_probs = predict_log_probs(net, crops, mode, batch_size)
        every = _with_no_face_column(face_log_probs, found)
        for group, rows in groups.items():
            scores = _scores(every[rows], labels[rows], found[rows], classes, label_classes)
            metrics.update({f"{group}/{suffix}{name}": value for name, value in scores.items()})
    return metrics


def _require_labels(input_dir: str | Path, listing: LabelledPhotos, settings: FaceSettings) -> None:
    """Scoring needs true labels: a rule that reads none of the names is a wrong ``labels=`` choice."""
    if listing.labelled:
        return
    examples = ", ".join(repr(u["file"]) for u in listing.unknown[:3])
    rule = settings.labels.describe()
    raise InputError(
        f"input_dir={input_dir}: none of its {len(listing.photos)} photos has a label that the rule {rule} "
        f"reads (e.g. {examples or 'no readable photo'}); pick the rule that matches the file names, "
        "e.g. labels=jaffe or labels=folder (conf/labels/)"
    )


def _with_no_face_column(face_log_probs: torch.Tensor, found: torch.Tensor) -> torch.Tensor:
    """(photos, classes + 1) log-probabilities: the faces' own rows, and for photos without a face certainty
    of the extra :data:`NO_FACE` output, which no label matches."""
    every = torch.full((len(found), face_log_probs.shape[1] + 1), -torch.inf)
    every[found, :-1] = face_log_probs
    every[~found, -1] = 0.0
    return every


def _scores(
    every: torch.Tensor,
    labels: torch.Tensor,
    found: torch.Tensor,
    classes: Sequence[str],
    label_classes: Sequence[str],
) -> dict[str, Any]:
    """split_metrics over all the photos (no face = the :data:`NO_FACE` prediction, an error); loss and
    acc_faces_found over those with a face (a photo without one has no distribution to score)."""
    if len(labels) == 0:
        return {"n": 0, "acc": None}
    outputs = [*classes, NO_FACE]
    metrics = split_metrics(every, labels, outputs, label_classes)
    # named only where label and model classes differ; the matrix always has the extra column here
    metrics.setdefault("confusion_classes", outputs)
    if found.any():
        faces_only = split_metrics(every[found][:, :-1], labels[found], classes, label_classes)
        metrics |= {"loss": faces_only["loss"], "acc_faces_found": faces_only["acc"]}
    else:
        metrics |= {"loss": None, "acc_faces_found": None}
    return metrics


def summary_lines(metrics: dict[str, Any], groups: Sequence[str] = (PHOTOS,)) -> list[str]:
    """A line per scored group for the log: accuracy with its count, and what counted as errors."""
    m = {name.removeprefix(f"{PHOTOS}/"): value for name, value in metrics.items()}
    lines = [
        f"{PHOTOS}: {m['faces_found']} faces found, {m['no_face']} photos without a face and "
        f"{m['unreadable']} unreadable (counted as errors), {m['unknown_labels']} with an unknown label "
        f"(not scored); eyes aligned in {m['aligned']}, not found in {m['eyes_not_found']} (the "
        "detector's crop kept)"
    ]
    for group in groups:
        n, acc = metrics[f"{group}/n"], metrics[f"{group}/acc"]
        if acc is None:
            lines.append(f"{group}: no photos")
            continue
        f1 = metrics[f"{group}/macro_f1"]
        lines.append(f"{group}: acc {acc:.4f} ({round(acc * n)} of {n} photos), macro F1 {f1:.4f}")
    return lines
