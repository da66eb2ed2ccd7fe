"""One training job as a sweep sees it: run it, time it, write its ``result.json`` whatever happens, and keep
a multirun going when one job fails.

Single run: a failure is re-raised (the script prints one line and exits 1). Multirun: the job's error is
logged with its traceback in the job's log and recorded as a ``failed`` row, the job returns NaN to the
sweeper, the other jobs go on, and :class:`~fer_lightning.experiments.summary.SweepSummary` exits 1 at the
end. SIGTERM (``TrainingInterrupted``) is recorded as ``interrupted`` and stops the whole sweep.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from fer_lightning.errors import ConfigError, FERError, TrainingInterrupted
from fer_lightning.experiments.results import write_result

log = logging.getLogger(__name__)

#: train.run's metric names → result.json's figures
RESULT_KEYS = {
    "selection/val_loss": "val_loss",
    "selection/val_acc": "val_acc",
    "test/acc": "test_acc",
    "run/epochs": "epochs",
    "run/params": "params",
    "run/train_img_per_s": "train_img_per_s",
}


def is_multirun() -> bool:
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def check_sweepable(cfg: DictConfig) -> None:
    """Refuse DDP with several processes inside a ``-m`` sweep on one machine: Lightning starts ranks 1..N-1
    by re-running ``sys.argv``, which would start the whole sweep again in every rank. Under SLURM (submitit)
    the scheduler starts the ranks, so that is allowed."""
    trainer = cfg.get("trainer") or {}
    strategy, devices = str(trainer.get("strategy", "")), trainer.get("devices", 1)
    several = devices not in (1, "1", [0]) or int(trainer.get("num_nodes", 1) or 1) > 1
    if is_multirun() and strategy.startswith("ddp") and strategy != "ddp_spawn" and several:
        if "SLURM_JOB_ID" not in os.environ:
            raise ConfigError(
                f"trainer.strategy={strategy} with devices={devices} inside a -m sweep would re-launch the "
                "whole sweep in every DDP rank: run each configuration as its own command (without -m), or "
                "sweep on a cluster with cluster=slurm (hydra/launcher=submitit_slurm), where SLURM starts "
                "the ranks"
            )


def _one_line(error: BaseException) -> str:
    from hydra.errors import InstantiationException

    while isinstance(error, InstantiationException) and error.__cause__ is not None:
        error = error.__cause__  # what the constructor raised, not Hydra's wrapper
    text = " ".join(str(error).split())
    return text if isinstance(error, FERError) else f"{type(error).__name__}: {text}"


def run_job(cfg: DictConfig, train: Callable[[DictConfig], dict[str, float]]) -> float | None:
    """``train(cfg)`` with ``result.json`` written in the run folder; returns ``cfg.optimized_metric`` (the
    selection metric a sweeper minimises), NaN for a failed sweep job."""
    check_sweepable(cfg)
    run_dir = Path(cfg.paths.output_dir)
    overrides = list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []
    base: dict[str, Any] = {"overrides": overrides, "torch_threads": torch.get_num_threads()}
    started = time.perf_counter()
    try:
        metrics = train(cfg)
    except Exception as e:
        error = _one_line(e)
        status = "interrupted" if isinstance(e, TrainingInterrupted) else "failed"
        write_result(run_dir, {**base, "status": status, "error": error, "wall_s": _since(started)})
        if not is_multirun() or status == "interrupted":  # SIGTERM stops the whole sweep, not one job
            raise
        log.exception("job failed: %s", error)
        return math.nan
    figures = {name: metrics.get(key) for key, name in RESULT_KEYS.items()}
    write_result(
        run_dir, {**base, "status": "completed", "error": None, **figures, "wall_s": _since(started)}
    )
    return metrics.get(cfg.get("optimized_metric", "selection/val_loss"))


def _since(started: float) -> float:
    return round(time.perf_counter() - started, 1)
