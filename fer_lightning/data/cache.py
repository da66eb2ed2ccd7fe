"""Array cache keyed by the source file's identity, so the second run skips parsing entirely."""

from __future__ import annotations

import hashlib
import os
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from fer_lightning.data.arrays import FERArrays

CACHE_VERSION = 1


def default_cache_dir() -> Path:
    return Path(os.environ.get("FER_CACHE_DIR", Path.home() / ".cache" / "fer-lightning"))


def cache_key(source: Path, *extra: object) -> str:
    """Changes when the source's path, size or mtime (or any ``extra`` setting) changes."""
    st = source.stat()
    ident = f"{CACHE_VERSION}|{source.resolve()}|{st.st_size}|{st.st_mtime_ns}|{extra!r}"
    return f"{source.name.split('.')[0]}-{hashlib.sha1(ident.encode()).hexdigest()[:16]}"


def load_cached(path: Path, origin: str = "") -> FERArrays | None:
    if not path.exists():
        return None
    try:
        with np.load(path) as z:
            return FERArrays(images=z["images"], labels=z["labels"], splits=z["splits"], origin=origin)
    except (OSError, EOFError, KeyError, ValueError, zipfile.BadZipFile):  # .npz is a zip: cut or bit-flipped
        return None  # a damaged cache is rebuilt, not fatal


def save_cached(path: Path, arrays: FERArrays) -> None:
    """Atomic write: a crash mid-write never leaves a half file that a later run would trust."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp.npz")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, images=arrays.images, labels=arrays.labels, splits=arrays.splits)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def cached_arrays(source: Path, build: Callable[[], FERArrays], cache_dir: str | Path | None = None,
                  use_cache: bool = True, *extra: object) -> FERArrays:
    """``build()``'s arrays, stored once under a key of ``source`` (+ ``extra``) and reused while it is unchanged."""
    if not use_cache:
        return build()
    cache_file = Path(cache_dir or default_cache_dir()) / f"{cache_key(source, *extra)}.npz"
    arrays = load_cached(cache_file, str(source))
    if arrays is None:
        arrays = build()
        save_cached(cache_file, arrays)
    return arrays
