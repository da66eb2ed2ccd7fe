"""Train a network: python scripts/train.py [model=mini_xception] [trainer=gpu] [experiment=...] [-m
sweeps]."""

from fer_lightning.utils.runtime import bootstrap, user_errors

bootstrap(__file__)

import hydra
from omegaconf import DictConfig

from fer_lightning.tasks import train


@hydra.main(version_base="1.3", config_path="../conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    with user_errors():
        metrics = train.run(cfg)
    # the returned value is what Hydra sweepers (e.g. optuna) optimise: the selection-split loss
    return metrics.get(cfg.optimized_metric)


if __name__ == "__main__":
    main()
