"""Classify the faces in photos: python scripts/predict.py inputs=<photo or folder> [ckpt_path=...]
[detector=haar]."""

from fer_lightning.utils.runtime import bootstrap, user_errors

bootstrap(__file__)

import hydra
from omegaconf import DictConfig

from fer_lightning.tasks import predict


@hydra.main(version_base="1.3", config_path="../conf", config_name="predict")
def main(cfg: DictConfig) -> None:
    with user_errors():
        predict.run(cfg)


if __name__ == "__main__":
    main()
