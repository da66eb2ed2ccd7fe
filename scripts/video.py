"""Emotions over time in a video file or camera: python scripts/video.py input=<video file | camera index>
[annotate=true]."""

from fer_lightning.utils.runtime import bootstrap, user_errors

bootstrap(__file__)

import hydra
from omegaconf import DictConfig


@hydra.main(version_base="1.3", config_path="../conf", config_name="video")
def main(cfg: DictConfig) -> None:
    # imported here, not at the top: --help and --hydra-help print without loading torch
    from fer_lightning.tasks import video

    with user_errors():
        video.run(cfg)


if __name__ == "__main__":
    main()
