"""Process-level set-up shared by the scripts: where the project lives, quiet and fast defaults."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def bootstrap(script_file: str) -> Path:
    """Call at the top of a script: PROJECT_ROOT → the checkout holding ``conf/``, no albumentations network check."""
    root = Path(script_file).resolve().parents[1]
    os.environ.setdefault("PROJECT_ROOT", str(root))
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    return root


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn the errors a user can fix (missing/mismatched checkpoint, missing input) into one clear line and exit 1,
    instead of a traceback; anything else is a bug and keeps its traceback."""
    from fer_lightning.checkpoints import CheckpointError  # imported here: bootstrap() must run before the package
    from fer_lightning.data.teacher_targets import TeacherTargetsError

    try:
        yield
    except (CheckpointError, TeacherTargetsError, FileNotFoundError) as e:
        raise SystemExit(f"error: {e}") from None
