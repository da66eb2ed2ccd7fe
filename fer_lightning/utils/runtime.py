"""Process-level set-up shared by the scripts: where the project lives, quiet and fast defaults, one-line
errors."""

from __future__ import annotations

import logging
import os
import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def bootstrap(script_file: str) -> Path:
    """Call at the top of a script: PROJECT_ROOT → the checkout holding ``conf/``, no albumentations network
    check, none of Lightning's noise that a user can do nothing about, and the config resolvers the run
    folders use."""
    root = Path(script_file).resolve().parents[1]
    os.environ.setdefault("PROJECT_ROOT", str(root))
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    quiet_lightning()
    register_resolvers()
    if HELP_FLAGS & set(sys.argv[1:]):
        _config_groups_on_demand()
    return root


#: the flags on which Hydra prints help and exits; the scripts import their task (and torch) only in main()
HELP_FLAGS = {"--help", "-h", "--hydra-help"}


class _OnDemand:
    """A text computed only if someone turns it into a string (``string.Template`` does, for the fields that
    its template names)."""

    def __init__(self, make: Callable[[], str]):
        self._make = make

    def __str__(self) -> str:
        return self._make()


def _config_groups_on_demand() -> None:
    """Hydra's help lists every config group twice (the app's and its own), scanning the config repository
    once per group, before it looks at the template: most of what ``--help`` costs, although the templates in
    conf/hydra print neither list (each names its script's groups itself). List them only when printed."""
    from hydra._internal.hydra import Hydra

    listing = Hydra.format_config_groups
    if getattr(listing, "on_demand", False):
        return

    def format_config_groups(self: Hydra, predicate: Callable[[str], bool], compact: bool = True) -> Any:
        return _OnDemand(lambda: listing(self, predicate, compact))

    format_config_groups.on_demand = True  # type: ignore[attr-defined]
    Hydra.format_config_groups = format_config_groups  # type: ignore[method-assign]


def _not_a_tip(record: logging.LogRecord) -> bool:
    return not str(record.msg).startswith("💡 Tip:")


def quiet_lightning() -> None:
    """Drop Lightning's advertising tips (every Trainer logs one for its cloud products) and its pytree
    deprecation warning (Lightning 2.6's own use of ``torch.utils._pytree.LeafSpec``, which torch 2.14
    deprecates: nothing in this project's code to change). Both come once per run and bury the lines that
    matter."""
    logger = logging.getLogger("pytorch_lightning.utilities.rank_zero")  # where rank_zero_info writes
    if _not_a_tip not in logger.filters:
        logger.addFilter(_not_a_tip)
    warnings.filterwarnings(
        "ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated", category=FutureWarning
    )


def run_dir_of_checkpoint(ckpt_path: str | None, default: str) -> str:
    """The run folder that wrote ``ckpt_path`` (``<run>/checkpoints/<file>.ckpt`` beside ``<run>/.hydra``),
    else ``default``: a resumed run continues in its own folder, so its checkpoint callbacks keep their best
    scores and its TensorBoard curves continue."""
    if ckpt_path:
        run = Path(str(ckpt_path)).expanduser().resolve().parent.parent
        if (
            Path(str(ckpt_path)).expanduser().resolve().parent.name == "checkpoints"
            and (run / ".hydra").is_dir()
        ):
            return str(run)
    return default


def config_subdir_for(ckpt_path: str | None, default: str, stamp: str) -> str:
    """Where Hydra saves the composed config: a resumed run keeps the original run's ``.hydra/`` and adds
    ``.hydra/resume_<stamp>/`` beside it instead of overwriting it."""
    resumed = run_dir_of_checkpoint(ckpt_path, "") != ""
    return f"{default}/resume_{stamp}" if resumed else default


def class_count(class_set: str) -> int:
    """Number of classes of a class set (``fer2013``: 7, ``ferplus``: 8): conf/model/*.yaml sizes the
    network's output by ``data.class_set`` with it, so ``data=ferplus`` needs no second override."""
    from fer_lightning.emotions import CLASS_SETS

    if class_set not in CLASS_SETS:
        from fer_lightning.errors import ConfigError

        raise ConfigError(f"data.class_set must be one of {sorted(CLASS_SETS)}, got {class_set!r}")
    return len(CLASS_SETS[class_set])


def register_resolvers() -> None:
    """``${pid:}``, ``${run_dir_of:ckpt,default}``, ``${config_subdir:ckpt,default,stamp}`` and
    ``${job_name:num,overrides}`` for conf/hydra; ``${class_count:set}`` for conf/model;
    ``${sqlite_url:path}`` for conf/hparams_search."""
    from omegaconf import OmegaConf

    from fer_lightning.experiments.naming import job_name, sqlite_url

    for name, fn in (
        ("pid", os.getpid),
        ("run_dir_of", run_dir_of_checkpoint),
        ("config_subdir", config_subdir_for),
        ("class_count", class_count),
        ("job_name", job_name),
        ("sqlite_url", sqlite_url),
    ):
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, fn, use_cache=True)


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn the errors a user can fix (any :class:`~fer_lightning.errors.FERError`, a missing file) into one
    line on stderr and exit 1, instead of a traceback; anything else is a bug and keeps its traceback."""
    from omegaconf.errors import MissingMandatoryValue

    from fer_lightning.errors import FERError  # imported here: bootstrap() must run before the package

    try:
        yield
    except MissingMandatoryValue as e:  # a required key left at ??? in the config, e.g. input_dir
        print(f"error: {e.full_key} is required: pass {e.full_key}=<value>", file=sys.stderr, flush=True)
        raise SystemExit(1) from None
    except Exception as e:
        user_error = (FERError, FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError)
        # Hydra's instantiate wraps what a constructor raised (e.g. an unknown timm name): report the cause
        cause = e if isinstance(e, user_error) else _wrapped_cause(e, user_error)
        if cause is None:
            raise
        print(f"error: {' '.join(str(cause).split())}", file=sys.stderr, flush=True)  # one line
        raise SystemExit(1) from None


def _wrapped_cause(error: BaseException, kinds: tuple[type, ...]) -> BaseException | None:
    """The user error inside a ``hydra.errors.InstantiationException`` chain, if that is what ``error`` is."""
    from hydra.errors import InstantiationException

    while isinstance(error, InstantiationException) and error.__cause__ is not None:
        error = error.__cause__
        if isinstance(error, kinds):
            return error
    return None
