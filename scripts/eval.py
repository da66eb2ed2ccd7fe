"""Evaluate a checkpoint on PrivateTest and PublicTest: python scripts/eval.py [ckpt_path=...] [tta=hflip]."""

from fer_lightning.utils.runtime import bootstrap, user_errors

bootstrap(__file__)

import hydra
from omegaconf import DictConfig


@hydra.main(version_base="1.3", config_path="../conf", config_name="eval")
def main(cfg: DictConfig) -> float:
    # imported here, not at the top: --help and --hydra-help print without loading torch
    from fer_lightning.tasks import eval as eval_task

    with user_errors():
        metrics = eval_task.run(cfg)
    # the first split's accuracy, under its project name even when given as FER2013's Usage (PrivateTest)
    return metrics[f"{eval_task.split_names(cfg.splits, 'splits')[0]}/acc"]


if __name__ == "__main__":
    main()
