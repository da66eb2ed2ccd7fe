"""Emotions over time in a video file or camera: python scripts/video.py input=<video file | camera index>
[annotate=true]."""

from fer_lightning.utils.runtime import bootstrap, user_errors

bootstrap(__file__)

import hydra
from omegaconf import DictConfig

from fer_lightning.tasks import video


@hydra.main(version_base="1.3", config_path="../conf", config_name="video")
def main(cfg: DictConfig) -> None:
    with user_errors():
        video.run(cfg)


if __name__ == "__main__":
    main()
