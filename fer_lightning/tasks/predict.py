"""``scripts/predict.py``: photos on disk → predictions.csv, annotated copies and a table on the console.

Usage: ``python scripts/predict.py inputs=<photo or folder> [ckpt_path=...] [detector=haar]
[backend=onnxruntime]`` (settings: ``conf/predict.yaml``).

One bad file never stops a run: an unreadable file, an entry the folder walk skipped (a symlink loop) or a
photo without a face becomes a CSV row with an empty label and the reason, so the CSV accounts for every
input. A run in which no file at all could be read fails (exit 1 from the script) after writing that CSV.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from omegaconf import DictConfig
from rich.console import Console
from rich.table import Table

from fer_lightning.tasks.predictor import predictor_from_config
from fer_lightning.errors import InputError
from fer_lightning.faces.walk import SKIPPED, UNREADABLE, list_inputs
from fer_lightning.images import ImageReadError
from fer_lightning.predict import FacePrediction, Predictor
from fer_lightning.utils.io import atomic_path, write_text

log = logging.getLogger(__name__)


def failed_rows(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows of files that could not be read at all (as opposed to photos read without a face)."""
    return [r for r in rows if r["reason"].startswith((UNREADABLE, SKIPPED))]


def columns(classes: Sequence[str]) -> list[str]:
    return [
        "path",
        "face",
        "face_source",
        "x",
        "y",
        "w",
        "h",
        "label",
        "confidence",
        *[f"p_{c}" for c in classes],
        "reason",
    ]


def face_row(name: str, face: FacePrediction) -> dict[str, Any]:
    box = face.box
    return {
        "path": name,
        "face": face.index,
        "face_source": box.source,  # detected, or fallback: the whole photo taken as one face crop
        "x": box.x,
        "y": box.y,
        "w": box.w,
        "h": box.h,
        "label": face.label,
        "confidence": round(face.confidence, 6),
        "reason": "",
        **{f"p_{c}": round(p, 6) for c, p in face.probabilities.items()},
    }


def annotate(image: np.ndarray, faces: Sequence[FacePrediction]) -> np.ndarray:
    """A BGR copy of ``image`` (RGB or gray) with each face's box and 'label p%' drawn on it."""
    canvas = (
        cv2.cvtColor(image, cv2.COLOR_GRAY2BGR) if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    )
    scale = max(canvas.shape[:2]) / 640  # text and lines readable on thumbnails and camera frames alike
    thick = max(1, round(2 * scale))
    for face in faces:
        b = face.box
        cv2.rectangle(canvas, (b.x, b.y), (b.x + b.w, b.y + b.h), (0, 255, 0), thick)
        text = f"{face.label} {face.confidence:.0%}"
        font = max(0.4, 0.7 * scale)
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font, thick)
        # the label above the box, or below it when the face touches the top edge
        y = b.y - 4 if b.y - th - base - 4 >= 0 else b.y + b.h + th + 4
        cv2.rectangle(canvas, (b.x, y - th - base), (b.x + tw, y + base), (0, 0, 0), -1)
        cv2.putText(canvas, text, (b.x, y), cv2.FONT_HERSHEY_SIMPLEX, font, (0, 255, 0), thick, cv2.LINE_AA)
    return canvas


def predict_paths(
    predictor: Predictor, files: Sequence[tuple[Path, str]], out_dir: Path | None = None, chunk: int = 64
) -> list[dict[str, Any]]:
    """CSV rows for ``files``; the faces of ``chunk`` photos at a time are classified in one batch.
    With ``out_dir``, an annotated copy of each photo with a face goes to ``out_dir/<name>.png``."""
    rows: list[dict[str, Any]] = []
    for start in range(0, len(files), chunk):
        loaded = []
        for path, name in files[start : start + chunk]:
            try:
                image, bgr = predictor.load_image(path)
                loaded.append((name, image, *predictor.detect(image, bgr)))
            except ImageReadError as e:
                rows.append({"path": name, "label": "", "reason": f"{UNREADABLE}: {e.reason}"})
        probs = predictor.classify([crop for *_, crops in loaded for crop in crops])
        offset = 0
        for name, image, boxes, crops in loaded:
            faces = predictor.to_faces(boxes, crops, probs[offset : offset + len(crops)])
            offset += len(crops)
            if not faces:
                reason = f"no face found (detector={predictor.detector.name})"
                rows.append({"path": name, "label": "", "reason": reason})
                continue
            rows.extend(face_row(name, face) for face in faces)
            if out_dir is not None:
                with atomic_path(out_dir / f"{name}.png") as tmp:
                    cv2.imwrite(str(tmp), annotate(image, faces))
    return in_file_order(rows)  # error rows were appended as they happened


def in_file_order(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows sorted by file; the faces of a photo stay largest first."""
    return sorted(rows, key=lambda r: (r["path"], r.get("face", -1)))


def write_csv(path: Path, rows: Sequence[dict[str, Any]], classes: Sequence[str]) -> Path:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns(classes), restval="", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return write_text(path, buffer.getvalue())


def print_table(rows: Sequence[dict[str, Any]], limit: int = 50, console: Console | None = None) -> None:
    table = Table(title=f"{len(rows)} predictions" + (f" (first {limit})" if len(rows) > limit else ""))
    for column in ("file", "face", "label", "confidence", "box (x, y, w, h)"):
        table.add_column(column, overflow="fold")
    for r in rows[:limit]:
        if r["label"]:
            table.add_row(
                r["path"],
                str(r["face"]),
                r["label"],
                f"{r['confidence']:.1%}",
                f"{r['x']}, {r['y']}, {r['w']}, {r['h']}",
            )
        else:
            table.add_row(r["path"], "", f"[red]{r['reason']}[/red]", "", "")
    (console or Console()).print(table)


def run(cfg: DictConfig) -> list[dict[str, Any]]:
    """Run the predictor over ``cfg.inputs``; writes ``predictions.csv`` (+ ``annotated/``) in the run dir.

    Files that cannot be read get a row with the reason, and the run still succeeds when at least one could be
    read; when none could, :class:`InputError` (after the CSV is written, so every reason is on file).
    """
    out_dir = Path(cfg.paths.output_dir)
    inputs = list_inputs(cfg.inputs)  # before loading the model: a wrong path fails at once
    predictor = predictor_from_config(cfg)
    n_files = len(inputs.files) + len(inputs.failed)
    log.info(
        "predicting %d file(s) from %s with detector %r, backend %s",
        n_files,
        cfg.inputs,
        predictor.detector,
        predictor.backend,
    )
    rows = predict_paths(predictor, inputs.files, out_dir / "annotated" if cfg.annotate else None)
    rows = in_file_order(rows + [{"path": name, "label": "", "reason": why} for name, why in inputs.failed])
    csv_path = write_csv(out_dir / "predictions.csv", rows, predictor.classes)
    failed = failed_rows(rows)
    if cfg.get("table", True):
        print_table(rows, cfg.get("table_rows", 50))
    if len(failed) == n_files:
        raise InputError(
            f"inputs={cfg.inputs}: none of the {n_files} file(s) could be read (first: "
            f"{failed[0]['path']}: {failed[0]['reason']}); every reason is in {csv_path}"
        )
    faces = sum(1 for r in rows if r["label"])
    no_face = sum(1 for r in rows if not r["label"]) - len(failed)
    log.log(
        logging.WARNING if failed else logging.INFO,
        "%d face(s) in %d file(s); %d file(s) without a face; %d file(s) could not be read; wrote %s",
        faces,
        n_files,
        no_face,
        len(failed),
        csv_path,
    )
    return rows
