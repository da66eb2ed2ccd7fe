"""Array cache keyed by the source file's identity, so the second run skips parsing entirely."""

from __future__ import annotations

import hashlib
import os
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from fer_lightning.data.arrays import FERArrays
from fer_lightning.utils.io import save_npz

CACHE_VERSION = 1


def default_cache_dir() -> Path:
    """``$FER_CACHE_DIR`` when set, else ``~/.cache/fer-lightning``: the one default of every cache (parsed
    arrays, per-photo faces, photo-folder CSVs); ``conf/paths/default.yaml``'s ``cache_dir`` spells the same
    rule. Outside the checkout so that several clones and installed copies share one cache."""
    return Path(os.environ.get("FER_CACHE_DIR") or Path.home() / ".cache" / "fer-lightning").expanduser()


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
    save_npz(path, images=arrays.images, labels=arrays.labels, splits=arrays.splits)


def cached_arrays(
    source: Path,
    build: Callable[[], FERArrays],
    cache_dir: str | Path | None = None,
    use_cache: bool = True,
    *extra: object,
) -> FERArrays:
    """``build()``'s arrays, stored once under a key of ``source`` (+ ``extra``) and reused while it is
    unchanged."""
    if not use_cache:
        return build()
    cache_file = Path(cache_dir or default_cache_dir()) / f"{cache_key(source, *extra)}.npz"
    arrays = load_cached(cache_file, str(source))
    if arrays is None:
        arrays = build()
        save_cached(cache_file, arrays)
    return arrays
