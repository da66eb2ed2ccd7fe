"""Shared set-up for the benchmark scripts: environment, real Hydra configs, machine facts, the one JSON
line."""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("PROJECT_ROOT", str(ROOT))
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
if str(ROOT) not in sys.path:  # `python benchmarks/x.py` puts benchmarks/ first on the path, not the root
    sys.path.insert(0, str(ROOT))

import torch

DATA_DIR = Path(os.environ.get("FER_DATA_DIR", ROOT.parent / "shared" / "data")).resolve()
os.environ["FER_DATA_DIR"] = str(DATA_DIR)
CSV = DATA_DIR / "fer2013" / "fer2013.csv"


def machine() -> dict:
    """What the figures were measured on; the 1-minute load says whether the machine was quiet."""
    return {
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "load_1min": round(os.getloadavg()[0], 2),
    }


def emit(figures: dict) -> None:
    """The script's single stdout line (everything else goes to stderr)."""
    figures = {**figures, "machine": machine(), "date": time.strftime("%Y-%m-%d")}
    print(json.dumps(figures), file=sys.__stdout__, flush=True)


def compose(overrides: list[str], output_dir: Path, config_name: str = "train"):
    """conf/<config_name>.yaml composed as ``scripts/train.py`` would, with outputs in ``output_dir``."""
    from fer_lightning.utils.compose import compose_config

    return compose_config(ROOT / "conf", config_name, overrides, output_dir)


def rate(count: int, seconds: float) -> float:
    return round(count / seconds, 1) if seconds > 0 else float("nan")


def fit(cfg, callbacks: list | None = None, seed: int = 0):
    """``Trainer.fit`` built from ``cfg`` exactly as :func:`fer_lightning.tasks.train.train` builds it, plus
    ``callbacks`` (the benchmark's probes). Returns (trainer, model, datamodule)."""
    import hydra
    import pytorch_lightning as pl

    from fer_lightning.tasks.train import build_model
    from fer_lightning.utils.instantiate import instantiate_group

    pl.seed_everything(seed, verbose=False)
    datamodule = hydra.utils.instantiate(cfg.data)
    model = build_model(cfg)
    trainer = hydra.utils.instantiate(
        cfg.trainer,
        callbacks=instantiate_group(cfg.get("callbacks"), "callbacks") + list(callbacks or []),
        logger=instantiate_group(cfg.get("logger"), "logger") or False,
    )
    trainer.fit(model, datamodule=datamodule)
    return trainer, model, datamodule
