"""``scripts/export.py``: a checkpoint → an ONNX file and its JSON in the run folder (or ``out=``).

Config ``conf/export.yaml``; the work is :func:`fer_lightning.onnx_export.export_checkpoint`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from fer_lightning.checkpoints import resolve_checkpoint
from fer_lightning.onnx_export import check_format, export_checkpoint
from fer_lightning.utils.io import writable_file

log = logging.getLogger(__name__)


def run(cfg: DictConfig) -> tuple[Path, Path, dict[str, Any]]:
    """Export ``cfg.ckpt_path`` (null: the shipped weights) in ``cfg.format``; returns (ONNX file, JSON file,
    facts)."""
    check_format(cfg.format)  # the settings first: a typo fails before the checkpoint is read
    source = resolve_checkpoint(cfg.get("ckpt_path"))
    out = cfg.get("out") or Path(cfg.paths.output_dir) / f"{source.stem}.onnx"
    out = writable_file(out, "the exported model (out=)")
    log.info("exporting %s to %s", source, out)
    return export_checkpoint(source, out, cfg.format)
