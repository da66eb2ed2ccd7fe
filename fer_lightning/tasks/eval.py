"""``scripts/eval.py``: score a checkpoint on FER2013's test splits (+ TTA), write metrics.json and figures.

Config ``conf/eval.yaml``. Every setting is checked (:class:`EvalSettings`) before the network and the data
load. The labels are the data's (``data=ferplus``: FER+ majority labels, plus the cross-entropy against the
vote distributions); the checkpoint's classes are matched to them by name, so a FER2013 model is scored on
FER+ labels and the reverse (a face of a class the model lacks is an error; how many is reported).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig
from pytorch_lightning.loggers import TensorBoardLogger

from fer_lightning.checkpoints import chosen_weights, load_network
from fer_lightning.emotions import SPLIT_TO_USAGE, USAGE_TO_SPLIT
from fer_lightning.errors import ConfigError
from fer_lightning.evaluation import class_mapping, evaluate_split
from fer_lightning.faces.evaluate import PHOTOS, evaluate_photo_folder, summary_lines
from fer_lightning.faces.source import PhotoFolderSource
from fer_lightning.inference import normalise_modes
from fer_lightning.plots import confusion_matrix_figure
from fer_lightning.utils.config_checks import positive_int
from fer_lightning.utils.instantiate import instantiate_group
from fer_lightning.utils.io import save_figure, write_json
from fer_lightning.utils.threads import intra_op_threads

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvalSettings:
    """The settings of ``conf/eval.yaml`` that :func:`run` uses, checked before the network and the data load:
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
            raise ConfigError(
                f"splits is empty: name at least one of {', '.join(SPLIT_TO_USAGE)}, e.g. splits=[private]"
            )
        return cls(
            splits=splits,
            figure_splits=split_names(cfg.get("figure_splits", ["private"]), "figure_splits"),
            tta=normalise_modes(cfg.get("tta")),
            batch_size=positive_int(cfg, "batch_size"),
            max_faces=positive_int(cfg, "max_faces", optional=True),
            threads=positive_int(cfg, "threads", optional=True),
        )


def split_names(value: str | Sequence[str] | None, key: str) -> list[str]:
    """A ``splits``-style setting → the project's split names in order, without repeats; FER2013's ``Usage``
    names (PrivateTest, PublicTest, Training) are accepted too. An unknown name is a :class:`ConfigError`
    naming ``key``."""
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


def run(cfg: DictConfig) -> dict[str, Any]:
    """Load ``cfg.ckpt_path`` (default: the shipped weights), score every split in ``cfg.splits`` (+ TTA),
    write ``metrics.json`` and ``confusion_matrix_<split>.png`` in the run dir, log both to the configured
    loggers."""
    out_dir = Path(cfg.paths.output_dir)
    settings = EvalSettings.from_config(cfg)
    ckpt = chosen_weights(cfg.get("ckpt_path"), cfg.get("weights"), default="fer2013")
    net, classes = load_network(ckpt, device=cfg.get("device", "auto"))
    datamodule = hydra.utils.instantiate(cfg.data)
    label_classes = list(datamodule.classes)
    _check_classes(ckpt, classes, label_classes)
    metrics: dict[str, Any] = {
        "checkpoint": str(ckpt),
        "classes": classes,
        "label_classes": label_classes,
        "tta": settings.tta,
    }
    # labelled photos (data=photos): each one is scored, with or without a face found
    if isinstance(datamodule.source, PhotoFolderSource):
        return _run_on_photos(settings, metrics, datamodule.source, net, ckpt.name, out_dir, cfg)
    for split in settings.splits:
        images, labels = datamodule.faces(split, settings.max_faces)
        votes = datamodule.votes(split, settings.max_faces)
        log.info(
            "evaluating %s on %s (%d faces, TTA %s)", ckpt.name, split, len(labels), settings.tta or "none"
        )
        with intra_op_threads(settings.threads):
            results = evaluate_split(
                net, images, labels, classes, settings.tta, settings.batch_size, label_classes, votes
            )
        metrics.update({f"{split}/{name}": value for name, value in results.items()})
        log.info(
            "%s: acc %.4f, macro F1 %.4f, loss %.4f",
            split,
            metrics[f"{split}/acc"],
            metrics[f"{split}/macro_f1"],
            metrics[f"{split}/loss"],
        )
        if f"{split}/unpredictable" in metrics:
            log.info(
                "%s: %d faces have a class the model cannot predict (counted as errors)",
                split,
                metrics[f"{split}/unpredictable"],
            )
        if f"{split}/vote_ce" in metrics:
            log.info(
                "%s: cross-entropy against the vote distributions %.4f", split, metrics[f"{split}/vote_ce"]
            )
    write_json(out_dir / "metrics.json", metrics)
    figures = _write_figures(metrics, settings.figure_splits, ckpt.name, out_dir)
    _log_to_loggers(instantiate_group(cfg.get("logger"), "logger"), metrics, figures)
    return metrics


def _check_classes(ckpt: Path, classes: Sequence[str], label_classes: Sequence[str]) -> None:
    """Scoring needs at least one class in common; classes on one side only are said once, up front."""
    mapping = class_mapping(classes, label_classes)
    if all(m < 0 for m in mapping):
        raise ConfigError(
            f"{ckpt} predicts {list(classes)}, none of the data's classes {list(label_classes)}: "
            "nothing to score"
        )
    missing = [c for c, m in zip(label_classes, mapping) if m < 0]
    extra = [c for i, c in enumerate(classes) if i not in mapping]
    if missing or extra or [classes[m] for m in mapping] != list(label_classes):
        log.info(
            "classes matched by name: model %s, labels %s%s%s",
            list(classes),
            list(label_classes),
            f"; faces labelled {missing} count as errors" if missing else "",
            f"; predictions of {extra} count as errors" if extra else "",
        )


def _write_figures(
    metrics: dict[str, Any], splits: Sequence[str], name: str, out_dir: Path
) -> dict[str, Any]:
    """``confusion_matrix_<split>.png`` for each scored split of ``splits``; {TensorBoard tag: figure}."""
    figures = {}
    for split in splits:
        if f"{split}/confusion_matrix" not in metrics:
            continue
        classes = metrics.get(f"{split}/confusion_classes", metrics["label_classes"])
        fig = confusion_matrix_figure(
            metrics[f"{split}/confusion_matrix"], classes, f"{split} split — {name}"
        )
        save_figure(fig, out_dir / f"confusion_matrix_{split}.png")
        figures[f"eval/confusion_matrix_{split}"] = fig
    return figures


def _log_to_loggers(loggers: list, metrics: dict[str, Any], figures: dict[str, Any]) -> None:
    scalars = {k: float(v) for k, v in metrics.items() if isinstance(v, int | float) and not k.endswith("/n")}
    for lg in loggers:
        lg.log_metrics(scalars, step=0)
        if isinstance(lg, TensorBoardLogger):
            for tag, fig in figures.items():
                lg.experiment.add_figure(tag, fig, global_step=0, close=False)
        lg.finalize("success")


def _run_on_photos(
    settings: EvalSettings,
    metrics: dict[str, Any],
    source: PhotoFolderSource,
    net: Any,
    name: str,
    out_dir: Path,
    cfg: DictConfig,
) -> dict[str, Any]:
    """``data=photos``: every labelled photo of the folder under ``photos/``, and those of each of ``splits``
    under ``<split>/`` (see :func:`~fer_lightning.faces.evaluate.evaluate_photo_folder`)."""
    with intra_op_threads(settings.threads):
        metrics.update(
            evaluate_photo_folder(
                net,
                metrics["classes"],
                source.input_dir,
                source.settings,
                metrics["label_classes"],
                settings.splits,
                settings.tta,
                settings.batch_size,
                settings.max_faces,
            )
        )
    for line in summary_lines(metrics, [PHOTOS, *settings.splits]):
        log.info(line)
    write_json(out_dir / "metrics.json", metrics)
    figures = _write_figures(metrics, [PHOTOS, *settings.figure_splits], name, out_dir)
    _log_to_loggers(instantiate_group(cfg.get("logger"), "logger"), metrics, figures)
    return metrics
