"""Per-photo result cache, so re-running the preprocessing only touches new or changed files.

One SQLite file under the cache dir (``$FER_CACHE_DIR``, default ``~/.cache/fer-lightning``) shared by every
output: the key is (detector settings hash, real path) and a row is only trusted while the file's size and
mtime still match. SQLite because it is in the standard library, survives an interrupted run (rows are
committed in batches as results arrive), and tolerates two processes using it at once.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

#: Bump when the crop logic changes in a way that makes old cached crops wrong.
PIPELINE_VERSION = 1
_FILE = f"faces-v{PIPELINE_VERSION}.sqlite"


@dataclass(frozen=True)
class FileResult:
    """What the pipeline made of one file. ``crop`` is 2304 raw bytes (48x48 uint8): the largest face for
    ``status == "face"``, the centre-square fallback for ``"noface"``, absent for ``"unreadable"`` (cannot be
    decoded) and ``"error"`` (the detector raised on it)."""

    path: str
    size: int
    mtime_ns: int
    status: str  # "face" | "noface" | "unreadable" | "error"
    n_faces: int = 0
    crop: bytes | None = None
    error: str = ""


def settings_key(settings: dict[str, Any]) -> str:
    text = json.dumps({"pipeline": PIPELINE_VERSION, **settings}, sort_keys=True)
    return hashlib.sha1(text.encode()).hexdigest()[:16]


class FaceCache:
    """Lookup/store of :class:`FileResult` for one detector configuration. Use as a context manager."""

    def __init__(self, cache_dir: str | Path, settings: dict[str, Any]) -> None:
        self.path = Path(cache_dir).expanduser() / _FILE
        self.key = settings_key(settings)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=60)
            # A cache may lose its last rows in a power cut (they are recomputed); it must not cost an fsync per
            # batch, which made storing a result slower than decoding a 48x48 JPEG.
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=OFF")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS results (settings TEXT, path TEXT, size INTEGER, mtime_ns INTEGER, "
                "status TEXT, n_faces INTEGER, crop BLOB, error TEXT, PRIMARY KEY (settings, path))"
            )
            self._db.commit()
        except (OSError, sqlite3.Error) as e:
            raise OSError(f"cannot use the face cache {self.path} ({e}); point cache_dir (or FER_CACHE_DIR) at a "
                          "writable folder, or set use_cache=false") from e
        self._pending: list[tuple] = []

    def get_many(self, refs: list[tuple[str, int, int]]) -> dict[str, FileResult]:
        """Cached results for ``(path, size, mtime_ns)`` triples whose file is unchanged, keyed by path.

        One join against a temporary table instead of a query per file (36k lookups: ~0.1 s instead of ~2 s).
        """
        self._db.execute("CREATE TEMP TABLE IF NOT EXISTS wanted (path TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER)")
        self._db.execute("DELETE FROM wanted")
        self._db.executemany("INSERT OR IGNORE INTO wanted VALUES (?, ?, ?)", refs)
        rows = self._db.execute(
            "SELECT r.path, r.size, r.mtime_ns, r.status, r.n_faces, r.crop, r.error FROM wanted w JOIN results r "
            "ON r.settings = ? AND r.path = w.path AND r.size = w.size AND r.mtime_ns = w.mtime_ns",
            (self.key,),
        )
        return {row[0]: FileResult(*row) for row in rows}

    def put(self, result: FileResult, flush_every: int = 1024) -> None:
        r = result
        self._pending.append((self.key, r.path, r.size, r.mtime_ns, r.status, r.n_faces, r.crop, r.error))
        if len(self._pending) >= flush_every:
            self.flush()

    def flush(self) -> None:
        if self._pending:
            self._db.executemany("INSERT OR REPLACE INTO results VALUES (?, ?, ?, ?, ?, ?, ?, ?)", self._pending)
            self._db.commit()
            self._pending.clear()

    def close(self) -> None:
        self.flush()
        self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
