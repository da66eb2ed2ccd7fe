"""``scripts/predict.py``: photos on disk → predictions.csv, annotated copies and a table on the console.

One bad file never stops a run: an unreadable file or a photo without a face becomes a CSV row with an empty label
and the reason, so the CSV accounts for every input.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import hydra
import numpy as np
from omegaconf import DictConfig
from rich.console import Console
from rich.table import Table

from fer_lightning.data.images import IMAGE_EXTENSIONS, ImageReadError
from fer_lightning.data.photos import find_photos
from fer_lightning.predict import FacePrediction, Predictor
from fer_lightning.utils.atomic import atomic_path, write_text

log = logging.getLogger(__name__)


def list_inputs(inputs: str | Path) -> list[tuple[Path, str]]:
    """(file, name to report) for a single file, or every photo under a folder (sorted, hidden files skipped)."""
    root = Path(inputs).expanduser()
    if root.is_dir():
        return [(root / p.rel, p.rel.as_posix()) for p in find_photos(root, IMAGE_EXTENSIONS)]
    if root.exists() or root.suffix.lower() in IMAGE_EXTENSIONS:  # a missing file becomes an "unreadable" row
        return [(root, root.name)]
    raise FileNotFoundError(f"inputs={inputs}: no such file or folder (resolved to {root.resolve()})")


def columns(classes: Sequence[str]) -> list[str]:
    return ["path", "face", "x", "y", "w", "h", "label", "confidence", *[f"p_{c}" for c in classes], "reason"]


def face_row(name: str, face: FacePrediction) -> dict[str, Any]:
    box = face.box
    return {
        "path": name,
        "face": face.index,
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
                rows.append({"path": name, "label": "", "reason": f"unreadable: {e.reason}"})
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
    # error rows were appended as they happened: restore file order (faces of a photo stay largest first)
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


def predict_files(cfg: DictConfig) -> list[dict[str, Any]]:
    """Run the predictor over ``cfg.inputs``; writes ``predictions.csv`` (+ ``annotated/``) in the run dir."""
    out_dir = Path(cfg.paths.output_dir)
    detector = hydra.utils.instantiate(cfg.detector)
    predictor = Predictor.from_checkpoint(cfg.get("ckpt_path"), detector, cfg.batch_size, cfg.device)
    files = list_inputs(cfg.inputs)
    log.info("predicting %d file(s) from %s with detector %r", len(files), cfg.inputs, detector)
    rows = predict_paths(predictor, files, out_dir / "annotated" if cfg.annotate else None)
    write_csv(out_dir / "predictions.csv", rows, predictor.classes)
    faces = sum(1 for r in rows if r["label"])
    log.info(
        "%d face(s) in %d file(s); %d file(s) without a prediction; wrote %s",
        faces,
        len(files),
        sum(1 for r in rows if not r["label"]),
        out_dir / "predictions.csv",
    )
    if cfg.get("table", True):
        print_table(rows, cfg.get("table_rows", 50))
    return rows
