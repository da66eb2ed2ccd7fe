"""The per-frame CSV: one row per tracked face per frame, and one row with empty face fields for a frame
without a face, so every frame of the video is accounted for."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from fer_lightning.utils.io import write_text
from fer_lightning.video.pipeline import FrameResult


def columns(classes: Sequence[str]) -> list[str]:
    return ["frame", "time_s", "track", "x", "y", "w", "h", "label", *[f"p_{c}" for c in classes]]


def frame_rows(result: FrameResult) -> list[dict[str, Any]]:
    """The CSV rows of one frame: one per face (by track id), or one with only frame and time."""
    when = {"frame": result.index, "time_s": round(result.time, 4)}
    if not result.faces:
        return [{**when, "label": ""}]
    return [
        {
            **when,
            "track": face.track_id,
            "x": face.box.x,
            "y": face.box.y,
            "w": face.box.w,
            "h": face.box.h,
            "label": face.label,
            **{f"p_{c}": round(p, 6) for c, p in face.probabilities.items()},
        }
        for face in result.faces
    ]


def write_csv(path: str | Path, rows: Iterable[dict[str, Any]], classes: Sequence[str]) -> Path:
    """``rows`` as CSV, written atomically (a reader never sees half of it)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns(classes), restval="", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return write_text(path, buffer.getvalue())
