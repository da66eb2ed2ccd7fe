"""Train a network: python scripts/train.py [model=mini_xception] [trainer=gpu] [experiment=...] [-m
sweeps]."""

import sys

from fer_lightning.utils.runtime import bootstrap, user_errors

bootstrap(__file__)

import hydra
from omegaconf import DictConfig

from fer_lightning.experiments.extras import check_extras


@hydra.main(version_base="1.3", config_path="../conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    # imported here, not at the top: --help and --hydra-help print without loading torch
    from fer_lightning.experiments.job import run_job
    from fer_lightning.tasks import train

    # result.json in the run folder; in a -m sweep a failed job is recorded and the sweep goes on. The value
    # returned is what Hydra sweepers (e.g. optuna) minimise: the selected checkpoint's PublicTest loss
    with user_errors():
        return run_job(cfg, train.run)


if __name__ == "__main__":
    with user_errors():
        check_extras(sys.argv[1:])  # a launcher, sweeper or logger whose extra is missing: one line
    main()
