"""Evaluate a checkpoint on PrivateTest and PublicTest: python scripts/eval.py [ckpt_path=...] [tta=hflip]."""

from fer_lightning.utils.runtime import bootstrap

bootstrap(__file__)

import hydra
from omegaconf import DictConfig

from fer_lightning.checkpoints import CheckpointError
from fer_lightning.evaluation import evaluate


@hydra.main(version_base="1.3", config_path="../conf", config_name="eval")
def main(cfg: DictConfig) -> float:
    try:
        metrics = evaluate(cfg)
    except CheckpointError as e:  # a user error, not a bug: one clear line instead of a traceback
        raise SystemExit(f"error: {e}") from None
    return metrics.get(f"{cfg.splits[0]}/acc")


if __name__ == "__main__":
    main()
