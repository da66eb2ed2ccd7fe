"""``scripts/video.py``: a video file or camera → frames.csv, an emotion-over-time plot per tracked face and,
with ``annotate=true``, annotated.mp4.

Usage: ``python scripts/video.py input=<video file | camera index> [annotate=true]`` (settings:
``conf/video.yaml``).

Every output is written atomically, and only once the last frame is processed: a failed run leaves no CSV,
plot or half-written video behind. A camera has no last frame: Ctrl+C (or ``max_frames``) ends it, and its
outputs are then written as for a file. Ctrl+C on a file aborts instead, leaving nothing: a CSV of the
first part of a video would pass for the whole.
"""

from __future__ import annotations

import logging
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from omegaconf import DictConfig
from tqdm import tqdm

from fer_lightning.tasks.predictor import predictor_from_config
from fer_lightning.video.annotate import draw_faces, video_writer
from fer_lightning.video.records import frame_rows, write_csv
from fer_lightning.video.source import VideoSource, open_video
from fer_lightning.video.timeline import Timelines, save_timelines

log = logging.getLogger(__name__)

CSV_NAME, PLOTS_DIR, VIDEO_NAME = "frames.csv", "plots", "annotated.mp4"
# a camera reports no rate, or a nominal one; the annotated copy of a camera stream plays at this rate
CAMERA_FPS = 30.0


def run(cfg: DictConfig) -> list[dict[str, Any]]:
    """Process ``cfg.input``; returns the CSV rows (also written to ``frames.csv`` in the run folder)."""
    out_dir = Path(cfg.paths.output_dir)
    source = open_video(cfg.input)  # before loading the model: a wrong path or camera fails at once
    with source:
        # imported only now: torch takes seconds to import, and a wrong input should fail before that
        predictor = predictor_from_config(cfg)
        results = predictor.predict_video(
            source,
            detect_every=cfg.detect_every,
            smooth_window=cfg.smooth_window,
            tracker=cfg.tracker,
            min_iou=cfg.min_iou,
            max_missed=cfg.max_missed,
            min_track_quality=cfg.min_track_quality,
            max_frames=cfg.max_frames,
        )
        log.info(
            "%r: detector %r every %d frame(s), tracker %s",
            source,
            predictor.detector,
            cfg.detect_every,
            cfg.tracker,
        )
        with ExitStack() as outputs:
            # the video is renamed into place when this block ends, after the CSV and plots: all or nothing
            writer = (
                outputs.enter_context(
                    video_writer(out_dir / VIDEO_NAME, source.fps or CAMERA_FPS, source.size)
                )
                if cfg.annotate
                else None
            )
            rows, timelines = process(results, source, writer, cfg.max_frames, cfg.get("progress", True))
            csv_path = write_csv(out_dir / CSV_NAME, rows, predictor.classes)
            plots = save_timelines(timelines, predictor.classes, out_dir / PLOTS_DIR)
    frames = len({r["frame"] for r in rows})
    log.log(
        logging.INFO if len(timelines) else logging.WARNING,  # no face at all: probably not what was meant
        "%d frame(s), %d without a face, %d face track(s); wrote %s, %d plot(s) in %s%s",
        frames,
        sum(1 for r in rows if not r["label"]),
        len(timelines),
        csv_path,
        len(plots),
        out_dir / PLOTS_DIR,
        f" and {out_dir / VIDEO_NAME}" if cfg.annotate else "",
    )
    return rows


def process(results, source: VideoSource, writer, max_frames: int | None, progress: bool):
    """CSV rows and per-track timelines of every frame (drawing each on ``writer`` when given), with a
    progress bar; a camera stops cleanly on Ctrl+C."""
    rows: list[dict[str, Any]] = []
    timelines = Timelines()
    total = min(filter(None, (source.frame_count, max_frames)), default=None)
    bar = tqdm(
        total=total, desc=Path(source.name).name, unit="frame", disable=not progress, dynamic_ncols=True
    )
    with bar:
        try:
            for result in results:
                rows.extend(frame_rows(result))
                timelines.add(result)
                if writer is not None:
                    writer.write(draw_faces(result.image, result.faces))
                bar.update()
        except KeyboardInterrupt:
            if not source.is_camera:
                raise
            log.info("%s: stopped by Ctrl+C after %d frame(s)", source.name, bar.n)
    return rows, timelines
