"""Teacher ensemble → soft labels for the Training faces: python scripts/teacher_targets.py
'checkpoints=[a,b]'."""

from fer_lightning.utils.runtime import bootstrap, user_errors

bootstrap(__file__)

import hydra
from omegaconf import DictConfig


@hydra.main(version_base="1.3", config_path="../conf", config_name="teacher_targets")
def main(cfg: DictConfig) -> None:
    # imported here, not at the top: --help and --hydra-help print without loading torch
    from fer_lightning.tasks import teacher_targets

    with user_errors():
        report = teacher_targets.run(cfg)
    print(", ".join(f"{k} {v}" for k, v in report.items() if k.endswith("_acc")), "->", cfg.output)


if __name__ == "__main__":
    main()
