"""Photos → 48x48 FER2013 CSV: python scripts/preprocess.py input_dir=<folder> output=<file.csv>
[detector=...]."""

from fer_lightning.utils.runtime import bootstrap, user_errors

bootstrap(__file__)

import hydra
from omegaconf import DictConfig


@hydra.main(version_base="1.3", config_path="../conf", config_name="preprocess")
def main(cfg: DictConfig) -> None:
    # imported here, not at the top: --help and --hydra-help print without loading torch
    from fer_lightning.tasks import preprocess

    with user_errors():
        preprocess.run(cfg)


if __name__ == "__main__":
    main()
