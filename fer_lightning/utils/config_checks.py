"""Type and range checks on config keys users override most, run before any data loads.

Why: Hydra accepts ``trainer.max_epochs=abc`` as a string, and Lightning only trips over it after the data has
loaded, with a bare ``AssertionError``. One line naming the key, the value and what is expected saves the
minute.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from omegaconf import DictConfig, OmegaConf

from fer_lightning.errors import ConfigError


def _int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _limit(value: Any) -> bool:  # Lightning's limit_*_batches: a batch count, or a fraction of the epoch
    return (_int(value) and value >= 0) or (isinstance(value, float) and 0.0 <= value <= 1.0)


#: key → (predicate, what is expected); a key that is absent or null is not checked.
CHECKS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "seed": (_int, "an integer (or null for no seeding)"),
    "trainer.max_epochs": (lambda v: _int(v) and v >= -1, "an integer >= 1 (-1: no limit)"),
    "trainer.min_epochs": (lambda v: _int(v) and v >= 0, "an integer >= 0"),
    "trainer.max_steps": (lambda v: _int(v) and v >= -1, "an integer >= 1 (-1: no limit)"),
    "trainer.check_val_every_n_epoch": (lambda v: _int(v) and v >= 1, "an integer >= 1"),
    "trainer.log_every_n_steps": (lambda v: _int(v) and v >= 1, "an integer >= 1"),
    "trainer.limit_train_batches": (_limit, "a batch count >= 0 or a fraction in [0, 1]"),
    "trainer.limit_val_batches": (_limit, "a batch count >= 0 or a fraction in [0, 1]"),
    "trainer.limit_test_batches": (_limit, "a batch count >= 0 or a fraction in [0, 1]"),
    "data.batch_size": (lambda v: _int(v) and v >= 1, "an integer >= 1"),
    "data.eval_batch_size": (lambda v: _int(v) and v >= 1, "an integer >= 1"),
    "data.num_workers": (lambda v: _int(v) and v >= 0, "an integer >= 0"),
    "model.optimizer.lr": (lambda v: _number(v) and v >= 0, "a number >= 0"),
    "model.label_smoothing": (lambda v: _number(v) and 0 <= v < 1, "a number in [0, 1)"),
}


def check_train_config(cfg: DictConfig) -> None:
    """Raise :class:`ConfigError` for the first key in :data:`CHECKS` whose value has the wrong type or
    range."""
    for key, (ok, expected) in CHECKS.items():
        value = OmegaConf.select(cfg, key, default=None)
        if value is not None and not ok(value):
            raise ConfigError(f"{key}={value!r}: expected {expected}")


def positive_int(cfg: DictConfig, key: str, optional: bool = False) -> int | None:
    """``cfg[key]`` checked to be a whole number of at least 1 (or null when ``optional``)."""
    value = cfg.get(key)
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(
            f"{key}={value} must be a whole number of at least 1{' or null' if optional else ''}"
        )
    return value


def checkpoint_paths(value: Any) -> list[str]:
    """A script's ``checkpoints=`` setting as a list of paths: ``checkpoints=a.ckpt`` (one path, no brackets)
    is a list of one — iterating the string would look for each of its characters as a file."""
    if value is None or value == "":
        return []
    if isinstance(value, str) or not isinstance(value, Sequence):
        return [str(value)]
    return [str(v) for v in value]
