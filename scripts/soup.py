"""Greedy weight soup on PublicTest: python scripts/soup.py 'checkpoints=[<run>/checkpoints/epoch_*.ckpt]'."""

from fer_lightning.utils.runtime import bootstrap, user_errors

bootstrap(__file__)

import hydra
from omegaconf import DictConfig


@hydra.main(version_base="1.3", config_path="../conf", config_name="soup")
def main(cfg: DictConfig) -> None:
    # imported here, not at the top: --help and --hydra-help print without loading torch
    from fer_lightning.tasks import soup

    with user_errors():
        out, members, metrics = soup.run(cfg)
    print(
        f"PublicTest loss {metrics['soup/public_loss_best_single']:.4f} (best single checkpoint) -> "
        f"{metrics['soup/public_loss']:.4f}, acc {metrics['soup/public_acc_best_single']:.4f} -> "
        f"{metrics['soup/public_acc']:.4f}: soup of {len(members)} -> {out}"
    )


if __name__ == "__main__":
    main()
