"""Process-level set-up shared by the scripts: where the project lives, quiet and fast defaults."""

from __future__ import annotations

import os
from pathlib import Path


def bootstrap(script_file: str) -> Path:
    """Call at the top of a script: PROJECT_ROOT → the checkout holding ``conf/``, no albumentations network check."""
    root = Path(script_file).resolve().parents[1]
    os.environ.setdefault("PROJECT_ROOT", str(root))
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    return root
