"""Classify the faces in photos: python scripts/predict.py inputs=<photo or folder> [ckpt_path=...]
[detector=haar]."""

from fer_lightning.utils.runtime import bootstrap, user_errors

bootstrap(__file__)

import hydra
from omegaconf import DictConfig


@hydra.main(version_base="1.3", config_path="../conf", config_name="predict")
def main(cfg: DictConfig) -> None:
    # imported here, not at the top: --help and --hydra-help print without loading torch
    from fer_lightning.tasks import predict

    with user_errors():
        predict.run(cfg)


if __name__ == "__main__":
    main()
