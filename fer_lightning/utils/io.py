"""The one atomic writer: every output file is written beside its target, then ``os.replace``-d into place.

A reader (another run, a DataModule, a user's ``tail``) never sees half a file, and a crash or an exception in
the middle of a write leaves the previous file untouched and no temporary file behind.
"""

from __future__ import annotations

import gzip
import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from fer_lightning.errors import ConfigError

# mkstemp creates files 0600; an output (a dataset, a report, a figure) should be readable like any other file
_FILE_MODE = 0o644


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path in ``path``'s folder (same suffix, so writers that pick the format from the
    suffix — ``cv2.imwrite``, ``savefig``, ``np.savez`` — still do); it replaces ``path`` when the block
    succeeds, else is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}")
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, _FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_bytes(path: str | Path, chunks: Iterable[bytes] | bytes, compress: bool = False) -> Path:
    """``chunks`` (one ``bytes`` or an iterator of them, written as they come) to ``path``; gzip-compressed
    with ``compress`` (``mtime=0``, so unchanged content gives an identical file)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as raw:
        f = gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6, mtime=0) if compress else raw
        for chunk in [chunks] if isinstance(chunks, bytes) else chunks:
            f.write(chunk)
        if compress:
            f.close()  # flushes the gzip trailer into ``raw`` before it is closed
    return Path(path)


def write_text(path: str | Path, text: str) -> Path:
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: str | Path, data: Any) -> Path:
    """Indented JSON, non-ASCII kept as is (file names in reports stay readable)."""
    return write_text(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def save_figure(fig: Any, path: str | Path, **kwargs: Any) -> Path:
    """``fig.savefig`` atomically (matplotlib figures)."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, **kwargs)
    return Path(path)


def save_torch(obj: Any, path: str | Path) -> Path:
    """``torch.save`` atomically (checkpoints, exported weights, teacher targets)."""
    import torch  # here, not at the top: data and face code write files without importing torch

    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
    return Path(path)


def save_npz(path: str | Path, **arrays: Any) -> Path:
    """``np.savez`` (uncompressed) atomically; ``path`` should end in ``.npz``, which numpy would append."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:  # a file object: numpy adds no second suffix
        np.savez(f, **arrays)
    return Path(path)


def writable_file(path: str | Path, what: str) -> Path:
    """``path``, checked before any long computation to be writable as a file: not a folder, not below a file,
    in a writable folder. ``what`` names it in the error, e.g. "the soup (output=)"."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise ConfigError(
            f"cannot write {what} to {path}: that is a folder; name a file, or move the folder away"
        )
    folder = next(p for p in path.parents if p.exists())  # the nearest one that exists; the rest will be made
    if not folder.is_dir():
        raise ConfigError(
            f"cannot write {what} to {path}: {folder} is a file, not a folder; name another path"
        )
    if not os.access(folder, os.W_OK):
        raise ConfigError(
            f"cannot write {what} to {path}: the folder {folder} is not writable; name another path"
        )
    return path
