"""Run a :class:`FaceDetector` over many files: cache first, then a process pool, with a progress bar.

Processes rather than threads: they scale on every backend whatever it does with the GIL (MTCNN is mostly
Python-level glue around small torch calls, and the per-file Python work is a real share for 48x48 inputs).
The pool uses the ``spawn`` start method: callers (the training script) may already run torch or other
threads, and forking a threaded process can deadlock the child. Spawning costs each worker a fresh interpreter
(about a second of imports), so the first second of work runs in-process and times the files; the rest goes to
the pool only when it is long enough to repay the start-up.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
from tqdm import tqdm

from fer_lightning.faces.align import FaceAligner, framed_crop
from fer_lightning.faces.cache import FaceCache, FileResult
from fer_lightning.faces.detectors import FaceDetector, center_crop
from fer_lightning.images import ImageReadError, read_image, to_gray

_worker_detector: FaceDetector | None = None
_worker_aligner: FaceAligner | None = None


@dataclass(frozen=True)
class FileRef:
    """A photo to process, identified the way the cache keys it."""

    path: str  # real path (symlinks resolved), so two links to one photo share a cache entry
    size: int
    mtime_ns: int

    @classmethod
    def of(cls, path: str | Path) -> FileRef:
        real = os.path.realpath(path)
        st = os.stat(real)
        return cls(real, st.st_size, st.st_mtime_ns)


def process_file(ref: FileRef, detector: FaceDetector, aligner: FaceAligner | None = None) -> FileResult:
    """Decode, detect, crop (eye-aligned when ``aligner`` finds the eyes); a file that cannot be decoded or
    that the detector chokes on becomes a result."""
    _ = detector.model  # loaded outside the per-file guard: a missing backend is a configuration error
    try:
        image = read_image(ref.path)
    except ImageReadError as e:
        return FileResult(ref.path, ref.size, ref.mtime_ns, "unreadable", error=e.reason)
    try:
        boxes = detector.detect(image)
        framed = framed_crop(to_gray(image), boxes[0], detector.margin, aligner) if boxes else None
    except Exception as e:  # noqa: BLE001 - one odd image (e.g. 2 px wide) must not end a run over thousands
        return FileResult(
            ref.path, ref.size, ref.mtime_ns, "error", error=f"detector failed ({type(e).__name__}: {e})"
        )
    if framed is None:
        return FileResult(ref.path, ref.size, ref.mtime_ns, "noface", 0, center_crop(image).tobytes())
    crop, aligned = framed
    return FileResult(ref.path, ref.size, ref.mtime_ns, "face", len(boxes), crop.tobytes(), aligned=aligned)


def cache_identity(detector: FaceDetector, aligner: FaceAligner | None) -> dict:
    """What decides a photo's cached result: the detector's settings and the alignment's (``None``: off)."""
    return {**detector.settings(), "align": aligner.settings() if aligner is not None else None}


def _init_worker(detector: FaceDetector, aligner: FaceAligner | None) -> None:
    global _worker_detector, _worker_aligner
    # One thread per worker: the pool already fills the cores, extra OpenCV/torch threads would only contend.
    cv2.setNumThreads(1)
    detector.threads = 1
    _worker_detector, _worker_aligner = detector, aligner


def _work(ref: FileRef) -> FileResult:
    assert _worker_detector is not None, "worker used before _init_worker"
    return process_file(ref, _worker_detector, _worker_aligner)


# Break-even for a pool: spawning a worker costs ~1-2 s of imports (in parallel across workers), after which
# two workers halve what is left. Below ~3 s of remaining serial work the pool would finish later than one
# process.
_POOL_BREAK_EVEN_S = 3.0


def _usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))  # respects taskset/cgroup pinning, unlike os.cpu_count()
    except AttributeError:
        return os.cpu_count() or 1


def map_files(
    todo: list[FileRef],
    detector: FaceDetector,
    workers: int | None,
    probe_s: float,
    aligner: FaceAligner | None = None,
) -> Iterator[FileResult]:
    """Results in completion order (no cache). In-process for ``probe_s`` seconds to time the files, then a
    pool of ``workers`` (``None``: one per usable core) for the rest, only if that will pay off.
    ``probe_s <= 0`` skips the probe: the pool is used whenever ``workers`` allows it."""
    n_workers = min(_usable_cpus() if workers is None else int(workers), len(todo))
    done, started = 0, time.perf_counter()
    if n_workers > 1 and probe_s > 0:
        while done < len(todo) and time.perf_counter() - started < probe_s:
            yield process_file(todo[done], detector, aligner)
            done += 1
        per_file = (time.perf_counter() - started) / max(done, 1)
        if per_file * (len(todo) - done) < _POOL_BREAK_EVEN_S:
            n_workers = 0
    rest = todo[done:]
    if n_workers <= 1 or not rest:
        for ref in rest:
            yield process_file(ref, detector, aligner)
        return
    chunksize = max(1, min(32, len(rest) // (n_workers * 8)))
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(n_workers, initializer=_init_worker, initargs=(detector, aligner)) as pool:
        yield from pool.imap_unordered(_work, rest, chunksize=chunksize)


def extract_faces(
    refs: Iterable[FileRef],
    detector: FaceDetector,
    cache_dir: str | Path | None,
    workers: int | None = None,
    progress: bool = True,
    probe_s: float = 1.0,
    aligner: FaceAligner | None = None,
) -> tuple[dict[str, FileResult], int]:
    """Results for every file (keyed by real path) and how many of them came from the cache.

    ``workers``: ``None`` = one per usable core, ``0``/``1`` = in-process. ``cache_dir=None`` disables the
    cache (benchmarks). New results are stored as they arrive, so an interrupted run resumes where it stopped.
    ``aligner``: eye-align each face (see :mod:`fer_lightning.faces.align`); part of the cache key.
    """
    refs = list(dict.fromkeys(refs))
    results: dict[str, FileResult] = {}
    cache = FaceCache(cache_dir, cache_identity(detector, aligner)) if cache_dir is not None else None
    try:
        if cache:
            results.update(cache.get_many([(r.path, r.size, r.mtime_ns) for r in refs]))
        todo = [ref for ref in refs if ref.path not in results]
        n_cached = len(results)
        bar = tqdm(
            total=len(todo),
            desc=f"faces ({detector.name})",
            unit="img",
            disable=not progress or not todo,
            dynamic_ncols=True,
        )
        with bar:
            for result in map_files(todo, detector, workers, probe_s, aligner):
                results[result.path] = result
                if cache:
                    cache.put(result)
                bar.update()
    finally:
        if cache:
            cache.close()
    return results, n_cached
