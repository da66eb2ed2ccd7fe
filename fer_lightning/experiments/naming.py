"""Names that carry a run's overrides (sweep job folders, TensorBoard run names), safe on any file system."""

from __future__ import annotations

import hashlib
import re
import sys
from collections.abc import Sequence
from pathlib import Path

#: Longest job-folder name: well under every file system's 255-byte limit, short enough to read in
# TensorBoard.
MAX_NAME = 96
_UNSAFE = re.compile(r"[^A-Za-z0-9._,=+-]+")


_SWEEP_SYNTAX = re.compile(r"^(range|choice|interval|glob|tag)\(|,")


def swept_keys(argv: Sequence[str]) -> set[str]:
    """Keys the command line sweeps (``a=1,2``, ``a=range(…)``, ``a=choice(…)``); the rest are shared."""
    keys = set()
    for arg in argv:
        key, sep, value = arg.lstrip("+~").partition("=")
        if sep and not value.startswith("[") and _SWEEP_SYNTAX.search(value):
            keys.add(key)
    return keys


def job_name(
    num: int | str, override_dirname: str, limit: int = MAX_NAME, argv: Sequence[str] | None = None
) -> str:
    """``<num>_<overrides>`` (e.g. ``3_model.optimizer.lr=0.05,model=timm``): only the swept overrides when
    the command line sweeps some (those shared by every job say nothing), path separators and other unsafe
    characters replaced by ``-``; a name over ``limit`` keeps its start and gets a short hash of the whole, so
    two long names never collide."""
    swept = swept_keys(sys.argv[1:] if argv is None else argv)
    items = [item for item in override_dirname.split(",") if item]
    if swept and any(item.split("=", 1)[0] in swept for item in items):
        items = [item for item in items if item.split("=", 1)[0] in swept]
    override_dirname = ",".join(items)
    name = f"{num}_{override_dirname}" if override_dirname else str(num)
    name = _UNSAFE.sub("-", name).strip("-.") or str(num)
    if len(name) <= limit:
        return name
    digest = hashlib.sha1(name.encode()).hexdigest()[:8]
    return f"{name[: limit - 9].rstrip('-.,=')}~{digest}"


def sqlite_url(path: str) -> str:
    """``sqlite:///<absolute path>``, its folder created: Optuna opens the database before Hydra makes any
    sweep folder, and SQLite cannot create a file in a folder that does not exist."""
    db = Path(path).expanduser().resolve()
    db.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{db}"
