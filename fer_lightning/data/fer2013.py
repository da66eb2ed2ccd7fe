"""FER2013 CSV reader (``emotion,pixels,Usage``): vectorised parsing into uint8 arrays, cached as ``.npz``.

The file is read in decompressed chunks on a background thread (zlib releases the GIL); blocks of whole rows are
parsed on a small thread pool, each handing all pixel text of its block to one ``np.fromstring`` call — no Python
``int()`` per pixel.
"""

from __future__ import annotations

import gzip
import os
import queue
import threading
import warnings
import zlib
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np

from fer_lightning.data.arrays import IMAGE_SIZE, SPLITS, FERArrays
from fer_lightning.data.cache import cached_arrays
from fer_lightning.emotions import NUM_CLASSES, USAGE_TO_SPLIT

PIXELS = IMAGE_SIZE * IMAGE_SIZE
HEADER = b"emotion,pixels,Usage"
_CHUNK = 8 << 20
_USAGE_CODES = {usage.encode(): SPLITS.index(split) for usage, split in USAGE_TO_SPLIT.items()}

HOW_TO_GET = (
    "Download FER2013 from Kaggle (challenges-in-representation-learning-facial-expression-recognition-challenge, "
    "file fer2013.csv, or the image folders of msambare/fer2013) and set FER_DATA_DIR to the folder holding "
    "fer2013/fer2013.csv (or fer2013.csv.gz), e.g. FER_DATA_DIR=../shared/data."
)


class FERDataError(ValueError):
    """A data file is missing or malformed; the message names the file and, where it applies, the line."""


def resolve_csv(path: str | Path) -> Path:
    """``path`` itself, or the ``.csv.gz`` beside it when the plain CSV is absent."""
    path = Path(path)
    if path.is_file():
        return path
    gz = path.with_name(path.name + ".gz")
    if path.suffix == ".csv" and gz.is_file():
        return gz
    looked = [str(path)] + ([str(gz)] if path.suffix == ".csv" else [])
    raise FERDataError(f"FER2013 CSV not found; looked for {' and '.join(looked)}. {HOW_TO_GET}")


def _decompressed_chunks(path: Path) -> Iterator[bytes]:
    gz = path.suffix == ".gz"
    with open(path, "rb") as f:
        inflater = zlib.decompressobj(wbits=31) if gz else None
        while block := f.read(_CHUNK):
            yield inflater.decompress(block) if inflater else block
        if inflater:
            yield inflater.flush()


def _prefetched(chunks: Iterator[bytes], depth: int = 4) -> Iterator[bytes]:
    """Run the decompressing iterator on a thread so inflating and parsing overlap on two cores."""
    q: queue.Queue = queue.Queue(depth)
    done = object()

    def pump() -> None:
        try:
            for c in chunks:
                q.put(c)
            q.put(done)
        except BaseException as e:  # re-raised in the consumer
            q.put(e)

    threading.Thread(target=pump, daemon=True).start()
    while (item := q.get()) is not done:
        if isinstance(item, BaseException):
            raise item
        yield item


def _row_error(path: Path, lineno: int, line: bytes) -> FERDataError:
    """Explain what is wrong with one row (called only after the fast path found a problem)."""
    text = line.decode("utf-8", "replace")
    parts = text.split(",")
    where = f"{path}, line {lineno}"
    if len(parts) != 3:
        return FERDataError(f"{where}: expected 3 fields emotion,pixels,Usage, found {len(parts)}")
    label, pixels, usage = parts
    if not label.strip().isdigit() or not 0 <= int(label) < NUM_CLASSES:
        return FERDataError(f"{where}: emotion {label!r} is not a label id 0..{NUM_CLASSES - 1}")
    if usage.strip() not in USAGE_TO_SPLIT:
        return FERDataError(f"{where}: Usage {usage.strip()!r} is not one of {sorted(USAGE_TO_SPLIT)}")
    values = pixels.split()
    if len(values) != PIXELS:
        return FERDataError(f"{where}: expected {PIXELS} pixel values (48x48), found {len(values)}")
    bad = next((v for v in values if not v.isdigit() or int(v) > 255), None)
    return FERDataError(f"{where}: pixel value {bad!r} is not an integer in 0..255")


def _parse_pixels(text: bytes) -> np.ndarray | None:
    """Space-separated integers → int16 array in one C call; None when the text is not all integers."""
    with warnings.catch_warnings():  # text-mode fromstring is fine; numpy warns about the binary mode
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            values = np.fromstring(text, dtype=np.int16, sep=" ")
        except ValueError:
            return None
    return values if values.size else None


def _parse_rows(path: Path, rows: list[bytes], linenos: Sequence[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows of one chunk → (images, labels, splits). Python touches each row a few times; pixels are numpy's."""
    labels = np.empty(len(rows), np.int64)
    splits = np.empty(len(rows), np.int8)
    pixel_fields: list[memoryview] = []
    for i, line in enumerate(rows):
        a = line.find(b",")
        b = line.rfind(b",")
        label = line[:a]
        split = _USAGE_CODES.get(line[b + 1 :].strip())
        if a < 1 or b <= a + 1 or split is None or not label.isdigit() or int(label) >= NUM_CLASSES:
            raise _row_error(path, linenos[i], line)
        labels[i] = int(label)
        splits[i] = split
        pixel_fields.append(memoryview(line)[a + 1 : b])
    text = b" ".join(pixel_fields)
    # Per-row separator count, vectorised (releases the GIL, unlike a bytes.count per row): each row's span in
    # `text` holds its own 2303 spaces plus the joining one, except the last row's.
    starts = np.zeros(len(rows), np.int64)
    np.cumsum(np.fromiter((len(f) + 1 for f in pixel_fields[:-1]), np.int64, len(rows) - 1), out=starts[1:])
    spaces = np.add.reduceat(np.frombuffer(text, np.uint8) == ord(" "), starts, dtype=np.int64)
    spaces[-1] += 1
    if (bad := np.flatnonzero(spaces != PIXELS)).size:
        raise _row_error(path, linenos[bad[0]], rows[bad[0]])
    values = _parse_pixels(text)
    if values is None or values.size != len(rows) * PIXELS or values.min() < 0 or values.max() > 255:
        for i, line in enumerate(rows):  # slow path, only to name the bad row
            v = _parse_pixels(line[line.find(b",") + 1 : line.rfind(b",")])
            if v is None or v.size != PIXELS or v.min() < 0 or v.max() > 255:
                raise _row_error(path, linenos[i], line)
        raise FERDataError(f"{path}: pixel columns could not be parsed")
    return values.astype(np.uint8).reshape(-1, IMAGE_SIZE, IMAGE_SIZE), labels, splits


def _parse_block(path: Path, block: bytes, first_lineno: int) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Whole lines of the file starting at line ``first_lineno`` (blank lines skipped) → parsed arrays."""
    rows = block.splitlines()
    linenos: Sequence[int] = range(first_lineno, first_lineno + len(rows))
    if any(not r.strip() for r in rows):
        kept = [(n, r) for n, r in zip(linenos, rows) if r.strip()]
        linenos, rows = [n for n, _ in kept], [r for _, r in kept]
    return _parse_rows(path, rows, linenos) if rows else None


def parse_fer2013_csv(path: str | Path) -> FERArrays:
    """Parse a FER2013 CSV (plain or gzip) without any cache.

    Three threads overlap: one inflates, the calling thread cuts the text into blocks of whole lines, a pool
    parses blocks (``np.fromstring`` and the numpy checks release the GIL, so blocks parse on both cores).
    """
    path = resolve_csv(path)
    parts: list = []
    pending = b""
    lineno = 1  # number of the next line to read (1-based, header is line 1)
    workers = min(4, os.cpu_count() or 1)
    try:
        with ThreadPoolExecutor(workers, thread_name_prefix="fer2013-parse") as pool:
            in_flight: deque[Future] = deque()
            for chunk in _prefetched(_decompressed_chunks(path)):
                data = pending + chunk
                if lineno == 1:
                    end = data.find(b"\n")
                    if end < 0:
                        pending = data
                        continue
                    header = data[:end].strip().lstrip(b"\xef\xbb\xbf")
                    if header != HEADER:
                        raise FERDataError(f"{path}, line 1: header {header!r} is not {HEADER.decode()!r}")
                    data, lineno = data[end + 1 :], 2
                cut = data.rfind(b"\n") + 1
                pending, block = data[cut:], data[:cut]
                if block:
                    in_flight.append(pool.submit(_parse_block, path, block, lineno))
                    lineno += block.count(b"\n")
                while len(in_flight) > 2 * workers:  # bound the memory held by blocks waiting for a worker
                    parts.append(in_flight.popleft().result())
            if lineno == 1 and pending.strip():  # a file without any newline: it is all header
                header = pending.strip().lstrip(b"\xef\xbb\xbf")
                if header != HEADER:
                    raise FERDataError(f"{path}, line 1: header {header!r} is not {HEADER.decode()!r}")
            elif pending.strip():
                in_flight.append(pool.submit(_parse_rows, path, [pending.strip()], [lineno]))
            parts.extend(f.result() for f in in_flight)
    except (OSError, EOFError, zlib.error, gzip.BadGzipFile) as e:
        raise FERDataError(f"{path}: cannot read ({e})") from e
    parts = [p for p in parts if p is not None]
    if not parts:
        raise FERDataError(f"{path}: no data rows (expected the header {HEADER.decode()!r} then one row per face)")
    images, labels, splits = zip(*parts)
    return FERArrays(np.concatenate(images), np.concatenate(labels), np.concatenate(splits))


def load_fer2013_csv(path: str | Path, cache_dir: str | Path | None = None, use_cache: bool = True) -> FERArrays:
    """Parsed arrays of a FER2013 CSV, from the ``.npz`` cache when the file is unchanged since it was written."""
    source = resolve_csv(path)
    return cached_arrays(source, lambda: parse_fer2013_csv(source), cache_dir, use_cache)
