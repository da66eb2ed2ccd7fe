"""Per-photo result cache, so re-running the preprocessing only touches new or changed files.

One SQLite file under the cache dir (``$FER_CACHE_DIR``, default ``~/.cache/fer-lightning``) shared by every
output: the key is (hash of the detector and alignment settings, real path) and a row is only trusted while
the file's size and mtime still match. SQLite because it is in the standard library, survives an interrupted
run (rows are committed in small batches as results arrive), and serves several processes at once (see
:class:`FaceCache`).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

from fer_lightning.errors import ConfigError

#: Bump when the crop logic changes in a way that makes old cached crops wrong (2: the ``aligned`` column).
PIPELINE_VERSION = 2
_FILE = f"faces-v{PIPELINE_VERSION}.sqlite"
#: How long a process waits for another one's write to finish before giving up.
_BUSY_TIMEOUT_S = 120


@dataclass(frozen=True)
class FileResult:
    """What the pipeline made of one file. ``crop`` is 2304 raw bytes (48x48 uint8): the largest face for
    ``status == "face"``, the centre-square fallback for ``"noface"``, absent for ``"unreadable"`` (cannot be
    decoded) and ``"error"`` (the detector raised on it). ``aligned``: for a face, whether the eye aligner
    levelled it (``False``: eyes not found, the detector's crop kept); ``None`` when no alignment was asked
    for."""

    path: str
    size: int
    mtime_ns: int
    status: str  # "face" | "noface" | "unreadable" | "error"
    n_faces: int = 0
    crop: bytes | None = None
    error: str = ""
    aligned: bool | None = None


def settings_key(settings: dict[str, Any]) -> str:
    text = json.dumps({"pipeline": PIPELINE_VERSION, **settings}, sort_keys=True)
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def _use_wal(db: sqlite3.Connection) -> None:
    """Switch the file to WAL mode (persistent: a no-op once it is). SQLite does not apply the busy timeout to
    this switch, so two processes creating the cache at once would see "database is locked": retry instead."""
    deadline = time.monotonic() + _BUSY_TIMEOUT_S
    while True:
        try:
            db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as e:
            if e.sqlite_errorcode != sqlite3.SQLITE_BUSY or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


class FaceCache:
    """Lookup/store of :class:`FileResult` for one detector and alignment configuration. Use as a context
    manager.

    Safe for several processes at once (two preprocessing runs, a run and a training job): WAL journal, so
    readers never block the writer; a busy timeout, so a writer waits for another instead of failing; and
    only short transactions. The connection is in autocommit mode and every write is one ``BEGIN IMMEDIATE``
    ... ``COMMIT`` of a small batch: taking the write lock up front means waiting for it, while a read
    transaction that is later upgraded to a write fails at once ("database is locked") whenever another
    process committed in between; and no transaction is open while faces are being detected.
    """

    def __init__(self, cache_dir: str | Path, settings: dict[str, Any]) -> None:
        self.path = Path(cache_dir).expanduser() / _FILE
        self.key = settings_key(settings)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=_BUSY_TIMEOUT_S, isolation_level=None)
            _use_wal(self._db)
            # A cache may lose its last rows in a power cut (they are recomputed); it must not cost an fsync
            # per batch, which made storing a result slower than decoding a 48x48 JPEG.
            self._db.execute("PRAGMA synchronous=OFF")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS results (settings TEXT, path TEXT, size INTEGER, mtime_ns "
                "INTEGER, status TEXT, n_faces INTEGER, crop BLOB, error TEXT, aligned INTEGER, "
                "PRIMARY KEY (settings, path))"
            )
        except (OSError, sqlite3.Error) as e:
            raise ConfigError(
                f"cannot use the face cache {self.path} ({e}); point cache_dir (or "
                "FER_CACHE_DIR) at a writable folder, or set use_cache=false"
            ) from e
        self._pending: list[tuple] = []

    def get_many(self, refs: list[tuple[str, int, int]]) -> dict[str, FileResult]:
        """Cached results for ``(path, size, mtime_ns)`` triples whose file is unchanged, keyed by path.

        One join against a temporary table instead of a query per file (36k lookups: ~0.1 s instead of ~2 s).
        The temporary table is private to this connection, so filling it takes no lock on the shared file.
        """
        with self._transaction("BEGIN"):
            self._db.execute(
                "CREATE TEMP TABLE IF NOT EXISTS wanted "
                "(path TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER)"
            )
            self._db.execute("DELETE FROM wanted")
            self._db.executemany("INSERT OR IGNORE INTO wanted VALUES (?, ?, ?)", refs)
            rows = self._db.execute(
                "SELECT r.path, r.size, r.mtime_ns, r.status, r.n_faces, r.crop, r.error, r.aligned "
                "FROM wanted w JOIN results r ON r.settings = ? AND r.path = w.path AND r.size = w.size "
                "AND r.mtime_ns = w.mtime_ns",
                (self.key,),
            ).fetchall()
        return {row[0]: FileResult(*row[:-1], None if row[-1] is None else bool(row[-1])) for row in rows}

    def put(self, result: FileResult, flush_every: int = 64) -> None:
        """Queue ``result``; every ``flush_every`` results are committed (an interrupted run keeps them)."""
        r = result
        aligned = None if r.aligned is None else int(r.aligned)
        self._pending.append(
            (self.key, r.path, r.size, r.mtime_ns, r.status, r.n_faces, r.crop, r.error, aligned)
        )
        if len(self._pending) >= flush_every:
            self.flush()

    def flush(self) -> None:
        if self._pending:
            with self._transaction("BEGIN IMMEDIATE"):
                self._db.executemany(
                    "INSERT OR REPLACE INTO results VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", self._pending
                )
            self._pending.clear()

    @contextmanager
    def _transaction(self, begin: str) -> Iterator[None]:
        self._db.execute(begin)
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
