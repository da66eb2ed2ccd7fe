"""Precise BatchNorm for trained checkpoints: python scripts/precise_bn.py
'checkpoints=[selected.ckpt,last.ckpt]'."""

from fer_lightning.utils.runtime import bootstrap, user_errors

bootstrap(__file__)

import hydra
from omegaconf import DictConfig


@hydra.main(version_base="1.3", config_path="../conf", config_name="precise_bn")
def main(cfg: DictConfig) -> None:
    # imported here, not at the top: --help and --hydra-help print without loading torch
    from fer_lightning.tasks import precise_bn

    with user_errors():
        path, metrics = precise_bn.run(cfg)
    print(
        f"PublicTest loss {metrics['precise_bn/public_loss_selected']:.4f} (first checkpoint as saved) -> "
        f"{metrics['precise_bn/public_loss_chosen']:.4f}, acc "
        f"{metrics['precise_bn/public_acc_selected']:.4f} -> "
        f"{metrics['precise_bn/public_acc_chosen']:.4f}: {path}"
    )


if __name__ == "__main__":
    main()
