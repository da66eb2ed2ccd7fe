"""Compose a script's config outside ``@hydra.main`` (tests, benchmarks, notebooks) exactly as the script
would."""

from __future__ import annotations

from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

from fer_lightning.utils.runtime import register_resolvers


def compose_config(
    conf_dir: str | Path, config_name: str, overrides: list[str], output_dir: str | Path
) -> DictConfig:
    """``conf_dir/<config_name>.yaml`` with ``overrides``, run outputs (and log dir) redirected to
    ``output_dir``."""
    register_resolvers()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(Path(conf_dir).resolve()), version_base="1.3"):
        cfg = compose(config_name=config_name, overrides=overrides, return_hydra_config=True)
    HydraConfig().set_config(cfg)  # lets ${hydra:runtime.output_dir} resolve outside @hydra.main
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir)
        cfg.paths.log_dir = str(output_dir)
    return cfg
