"""Classify the faces in photos: python scripts/predict.py inputs=<photo or folder> [ckpt_path=...] [detector=haar]."""

from fer_lightning.utils.runtime import bootstrap

bootstrap(__file__)

import hydra
from omegaconf import DictConfig

from fer_lightning.checkpoints import CheckpointError
from fer_lightning.predict_files import predict_files


@hydra.main(version_base="1.3", config_path="../conf", config_name="predict")
def main(cfg: DictConfig) -> None:
    try:
        predict_files(cfg)
    except (CheckpointError, FileNotFoundError) as e:  # user errors: one clear line instead of a traceback
        raise SystemExit(f"error: {e}") from None


if __name__ == "__main__":
    main()
