"""Grad-CAM review panels for photos: python scripts/gradcam.py inputs=<folder> [ckpt_path=...]
[labels=jaffe]."""

from fer_lightning.utils.runtime import bootstrap, user_errors

bootstrap(__file__)

import hydra
from omegaconf import DictConfig


@hydra.main(version_base="1.3", config_path="../conf", config_name="gradcam")
def main(cfg: DictConfig) -> None:
    # imported here, not at the top: --help and --hydra-help print without loading torch
    from fer_lightning.tasks import gradcam

    with user_errors():
        gradcam.run(cfg)


if __name__ == "__main__":
    main()
