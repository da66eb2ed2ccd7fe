"""Objects from ``_target_`` configs: one setting (a detector, a label rule) or a whole group (callbacks,
loggers)."""

from __future__ import annotations

import logging
import re
from typing import Any

import hydra
from hydra.errors import InstantiationException
from omegaconf import DictConfig

from fer_lightning.errors import ConfigError

log = logging.getLogger(__name__)


def instantiate_group(cfg: DictConfig | None, kind: str) -> list:
    """Instantiate every ``_target_`` entry of a ``callbacks``/``logger`` group; ``None`` entries are switched
    off."""
    if not cfg:
        return []
    if not isinstance(cfg, DictConfig):
        raise TypeError(
            f"{kind} config must be a mapping of name -> {{_target_: ...}}, got {type(cfg).__name__}"
        )
    objects = []
    for name, entry in cfg.items():
        if isinstance(entry, DictConfig) and "_target_" in entry:
            log.info("instantiating %s <%s>", kind, entry._target_)
            objects.append(hydra.utils.instantiate(entry))
        elif entry is not None:
            raise ValueError(f"{kind}.{name} has no _target_; set it to null to switch it off")
    return objects


def instantiate_setting(cfg: DictConfig, key: str) -> Any:
    """``hydra.utils.instantiate(cfg[key])`` (a detector, a label rule), failing as one :class:`ConfigError`
    line that names ``key`` and the cause, instead of Hydra's multi-line wrapper around a traceback."""
    try:
        return hydra.utils.instantiate(cfg[key])
    except InstantiationException as e:
        cause = e.__cause__ or e
        if isinstance(cause, re.error):
            why = f"invalid regular expression {cause.pattern!r} ({cause.msg} at position {cause.pos})"
        else:
            why = " ".join(str(cause).split())  # Hydra's and some libraries' messages span several lines
        raise ConfigError(f"{key}: {why}; check the {key}.* settings") from e
