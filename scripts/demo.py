"""Serve the browser demo (photo upload or camera → faces, labels, Grad-CAM): python scripts/demo.py
[port=7860] [ckpt_path=...] [detector=haar]."""

from fer_lightning.utils.runtime import bootstrap, user_errors

bootstrap(__file__)

import hydra
from omegaconf import DictConfig


@hydra.main(version_base="1.3", config_path="../conf", config_name="demo")
def main(cfg: DictConfig) -> None:
    # imported here, not at the top: --help and --hydra-help print without loading torch
    from fer_lightning.tasks import demo

    with user_errors():
        demo.run(cfg)


if __name__ == "__main__":
    main()
