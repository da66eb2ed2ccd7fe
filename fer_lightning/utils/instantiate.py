"""Build Lightning callbacks and loggers from their config groups (each entry a ``_target_`` dict)."""

from __future__ import annotations

import logging

import hydra
from omegaconf import DictConfig

log = logging.getLogger(__name__)


def instantiate_group(cfg: DictConfig | None, kind: str) -> list:
    """Instantiate every ``_target_`` entry of a ``callbacks``/``logger`` group; ``None`` entries are switched off."""
    if not cfg:
        return []
    if not isinstance(cfg, DictConfig):
        raise TypeError(f"{kind} config must be a mapping of name -> {{_target_: ...}}, got {type(cfg).__name__}")
    objects = []
    for name, entry in cfg.items():
        if isinstance(entry, DictConfig) and "_target_" in entry:
            log.info("instantiating %s <%s>", kind, entry._target_)
            objects.append(hydra.utils.instantiate(entry))
        elif entry is not None:
            raise ValueError(f"{kind}.{name} has no _target_; set it to null to switch it off")
    return objects
