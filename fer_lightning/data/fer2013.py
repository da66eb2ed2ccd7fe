"""FER2013 CSV reader (``emotion,pixels,Usage``): vectorised parsing into uint8 arrays, cached as ``.npz``.

The file is read in decompressed chunks on a background thread (zlib releases the GIL); blocks of whole rows
are parsed on a small thread pool, each handing all pixel text of its block to one ``np.fromstring`` call — no
Python ``int()`` per pixel. Fields may be quoted (as pandas writes them), pixels separated by any run of
whitespace.
"""

from __future__ import annotations

import os
import queue
import threading
import warnings
import zlib
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from itertools import accumulate, pairwise
from pathlib import Path
from typing import BinaryIO

import numpy as np

from fer_lightning.data.arrays import FERArrays
from fer_lightning.data.cache import cached_arrays
from fer_lightning.emotions import IMAGE_SIZE, NUM_CLASSES, USAGE_TO_SPLIT, USAGES
from fer_lightning.errors import FERDataError

PIXELS = IMAGE_SIZE * IMAGE_SIZE
HEADER = b"emotion,pixels,Usage"
_CHUNK = 8 << 20
_GZIP_MAGIC = b"\x1f\x8b"
_USAGE_CODES = {usage.encode(): split_id for split_id, usage in enumerate(USAGES)}
# Bytes up to the space count as separators when counting pixels: a superset of what np.fromstring skips.
_SEPARATOR_MAX = ord(" ")
_REDOWNLOAD = "re-download or re-compress it"

HOW_TO_GET = (
    "Download FER2013 from Kaggle "
    "(challenges-in-representation-learning-facial-expression-recognition-challenge, file fer2013.csv, or "
    "the image folders of msambare/fer2013) and set FER_DATA_DIR to the folder holding fer2013/fer2013.csv "
    "(or fer2013.csv.gz), e.g. FER_DATA_DIR=../shared/data."
)

Parsed = tuple[np.ndarray, np.ndarray, np.ndarray]  # images, labels, split codes of some rows


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


# --- reading ------------------------------------------------------------------------------------------------


def _gunzip(path: Path, f: BinaryIO) -> Iterator[bytes]:
    """Inflate every member of a gzip file (``cat a.gz b.gz`` is valid gzip) up to the last one's end marker.

    zlib alone stops silently wherever the bytes stop, so a download cut at a row boundary would parse as a
    shorter, valid-looking file: only a stream that reached its end marker (zlib checks its CRC) is whole.
    """
    inflater = zlib.decompressobj(wbits=31)
    read = 0
    while block := f.read(_CHUNK):
        if read == 0 and not _GZIP_MAGIC.startswith(block[:2]):
            raise FERDataError(
                f"{path}: not a gzip file (no gzip signature at its start): rename it if it "
                f"is a plain CSV, otherwise {_REDOWNLOAD}"
            )
        read += len(block)
        while block:
            if inflater.eof:  # a member ended inside this block: another member may follow, or zero padding
                block = block.lstrip(b"\0")
                if not block:
                    break
                if not _GZIP_MAGIC.startswith(block[:2]):
                    raise FERDataError(
                        f"{path}: data after the end of the gzip stream (from byte "
                        f"{read - len(block)}) is not gzip: {_REDOWNLOAD}"
                    )
                inflater = zlib.decompressobj(wbits=31)
            try:
                text = inflater.decompress(block)
            except zlib.error as e:
                raise FERDataError(
                    f"{path}: corrupt gzip data within its first {read} bytes ({e}): {_REDOWNLOAD}"
                ) from e
            yield text
            block = inflater.unused_data  # empty unless the member ended
    if not inflater.eof:
        raise FERDataError(
            f"{path}: truncated gzip (stream ended before its end marker after {read} bytes): {_REDOWNLOAD}"
        )


def _decompressed_chunks(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as f:
        if path.suffix == ".gz":
            yield from _gunzip(path, f)
        else:
            yield from iter(lambda: f.read(_CHUNK), b"")


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


# --- rows ---------------------------------------------------------------------------------------------------


def _unquote(field: bytes) -> bytes:
    """A CSV field without surrounding whitespace and quotes (pandas quotes the pixel strings)."""
    field = field.strip()
    return field[1:-1] if len(field) > 1 and field[:1] == field[-1:] == b'"' else field


def _check_header(path: Path, line: bytes) -> None:
    header = line.strip().lstrip(b"\xef\xbb\xbf")
    if b",".join(_unquote(f) for f in header.split(b",")) != HEADER:
        shown = header[:80].decode("utf-8", "replace")  # a binary file's "line" can be megabytes long
        raise FERDataError(
            f"{path}, line 1: header {shown!r} is not {HEADER.decode()!r}: is this the FER2013 CSV?"
        )


def _is_uint(text: str) -> bool:
    return text.isascii() and text.isdigit()  # isdigit alone accepts other scripts' digits, which int() reads


def _row_problem(line: bytes) -> str:
    """What is wrong with one row, in words (called only after the fast path found a problem in its block)."""
    parts = [_unquote(p).decode("utf-8", "replace") for p in line.split(b",")]
    if len(parts) != 3:
        return f"expected 3 fields emotion,pixels,Usage, found {len(parts)}"
    label, pixels, usage = parts
    if not _is_uint(label) or int(label) >= NUM_CLASSES:
        return f"emotion {label!r} is not a label id 0..{NUM_CLASSES - 1}"
    if usage not in USAGE_TO_SPLIT:
        return f"Usage {usage!r} is not one of {sorted(USAGE_TO_SPLIT)}"
    values = pixels.split()
    if len(values) != PIXELS:
        return f"expected {PIXELS} pixel values (48x48), found {len(values)}"
    bad = next((v for v in values if not _is_uint(v) or int(v) > 255), None)
    return f"pixel value {bad!r} is not an integer in 0..255"


def _row_error(path: Path, lineno: int, line: bytes) -> FERDataError:
    return FERDataError(f"{path}, line {lineno}: {_row_problem(line)}: fix or remove that row")


def _parse_pixels(text: bytes | memoryview, dtype: type = np.int64) -> np.ndarray | None:
    """Whitespace-separated integers → array in one C call; None when the text is not all integers."""
    with warnings.catch_warnings():  # text-mode fromstring is fine; numpy warns about the binary mode
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            return np.fromstring(text, dtype=dtype, sep=" ")
        except ValueError:
            return None


def _row_pixels(line: bytes) -> np.ndarray | None:
    """One row's pixels checked exactly (int64: no value can wrap into 0..255); None when they are invalid."""
    fields = line.split(b",")
    pixels = _unquote(fields[1]) if len(fields) == 3 else b""
    values = _parse_pixels(pixels)
    if values is None or values.size != PIXELS or len(pixels.split()) != PIXELS:
        return None
    return values if values.min() >= 0 and values.max() <= 255 else None


def _pixels_row_by_row(path: Path, rows: list[bytes], linenos: Sequence[int]) -> np.ndarray:
    """Slow path for a block the fast path could not vouch for: row by row, naming the first bad one."""
    out = np.empty((len(rows), PIXELS), np.uint8)
    for i, line in enumerate(rows):
        values = _row_pixels(line)
        if values is None:
            raise _row_error(path, linenos[i], line)
        out[i] = values
    return out


def _pixels_fast(pixel_fields: list[memoryview]) -> np.ndarray | None:
    """All rows' pixels from one ``np.fromstring`` call; None unless each row surely holds 2304 values 0..255.

    int32 parses as fast as int16 but is only exact below 2**31 (10+ digits wrap: 4294967396 → 100), so blocks
    with a token of 4 or more characters, which real pixels never have, go to the exact slow path.
    """
    text = b" ".join([b"", *pixel_fields])  # each row's text follows one separator, the first row's too
    separators = np.frombuffer(text, np.uint8) <= _SEPARATOR_MAX
    # value_starts[k]: a value begins at byte k + 1. Each row must count 2304, so that a row short of values
    # can never borrow some from its neighbour. count_nonzero per row: ~10x cheaper than np.add.reduceat here.
    value_starts = separators[:-1] > separators[1:]
    row_bounds = accumulate((len(f) + 1 for f in pixel_fields), initial=0)
    if any(np.count_nonzero(value_starts[a:b]) != PIXELS for a, b in pairwise(row_bounds)):
        return None
    # 4 non-separators in an aligned 4-byte word: a token of 4+ characters (every 7-character one has one)
    words = separators[: len(separators) // 4 * 4].view(np.uint32)
    if (words == 0).any():
        return None
    values = _parse_pixels(text, np.int32)
    if values is None or values.size != len(pixel_fields) * PIXELS or values.min() < 0 or values.max() > 255:
        return None
    return values.astype(np.uint8)


def _pixel_span(line: bytes, a: int, b: int) -> memoryview:
    """The pixel field between the first and last comma, without its quotes; a view, not a copy."""
    if b - a > 3 and line[a + 1] == line[b - 1] == ord('"'):
        a, b = a + 1, b - 1
    return memoryview(line)[a + 1 : b]


def _parse_rows(path: Path, rows: list[bytes], linenos: Sequence[int]) -> Parsed:
    """Rows of one chunk → (images, labels, splits). Python touches each row a few times; pixels are
    numpy's."""
    labels = np.empty(len(rows), np.int64)
    splits = np.empty(len(rows), np.int8)
    pixel_fields: list[memoryview] = []
    for i, line in enumerate(rows):
        a = line.find(b",")
        b = line.rfind(b",")
        label = _unquote(line[:a])
        split = _USAGE_CODES.get(_unquote(line[b + 1 :]))
        if a < 1 or b <= a + 1 or split is None or not label.isdigit() or int(label) >= NUM_CLASSES:
            raise _row_error(path, linenos[i], line)
        labels[i] = int(label)
        splits[i] = split
        pixel_fields.append(_pixel_span(line, a, b))
    values = _pixels_fast(pixel_fields)
    images = values.reshape(-1, PIXELS) if values is not None else _pixels_row_by_row(path, rows, linenos)
    return images.reshape(-1, IMAGE_SIZE, IMAGE_SIZE), labels, splits


def _parse_block(path: Path, block: bytes, first_lineno: int) -> Parsed | None:
    """Whole lines of the file starting at line ``first_lineno`` (blank lines skipped) → parsed arrays."""
    rows = block.splitlines()
    linenos: Sequence[int] = range(first_lineno, first_lineno + len(rows))
    if any(not r.strip() for r in rows):
        kept = [(n, r) for n, r in zip(linenos, rows) if r.strip()]
        linenos, rows = [n for n, _ in kept], [r for _, r in kept]
    return _parse_rows(path, rows, linenos) if rows else None


# --- the whole file -----------------------------------------------------------------------------------------


def _blocks(path: Path, chunks: Iterator[bytes]) -> Iterator[tuple[bytes, int]]:
    """Check the header, then cut the text into blocks of whole lines: (block, number of its first line)."""
    pending = b""
    lineno = 1  # number of the next line to read (1-based, header is line 1)
    for chunk in chunks:
        data = pending + chunk
        if lineno == 1:
            end = data.find(b"\n")
            if end < 0:
                pending = data
                continue
            _check_header(path, data[:end])
            data, lineno = data[end + 1 :], 2
        cut = data.rfind(b"\n") + 1
        pending, block = data[cut:], data[:cut]
        if block:
            yield block, lineno
            lineno += block.count(b"\n")
    if lineno > 1 and pending.strip():  # a last line without a newline
        yield pending, lineno
    elif lineno == 1 and pending.strip():  # a file without any newline: it is all header
        _check_header(path, pending)
    elif lineno == 1:
        raise FERDataError(
            f"{path}: the file is empty (expected the header {HEADER.decode()!r} then one row "
            f"per face): re-download it"
        )


def _parse_stream(
    path: Path, chunks: Iterator[bytes], pool: ThreadPoolExecutor, workers: int
) -> list[Parsed]:
    parts: list[Parsed | None] = []
    in_flight: deque[Future] = deque()
    try:
        for block, lineno in _blocks(path, chunks):
            in_flight.append(pool.submit(_parse_block, path, block, lineno))
            while len(in_flight) > 2 * workers:  # bound the memory held by blocks waiting for a worker
                parts.append(in_flight.popleft().result())
        parts.extend(f.result() for f in in_flight)
    except FERDataError:
        # a cut or corrupt gzip garbles the rows it ends in: its own error (raised at the stream's end)
        # explains a bad row better than the row does, so it wins
        for _ in chunks:
            pass
        raise
    return [p for p in parts if p is not None]


def parse_fer2013_csv(path: str | Path) -> FERArrays:
    """Parse a FER2013 CSV (plain or gzip) without any cache.

    Three threads overlap: one inflates, the calling thread cuts the text into blocks of whole lines, a pool
    parses blocks (``np.fromstring`` and the numpy checks release the GIL, so blocks parse on both cores).
    """
    path = resolve_csv(path)
    workers = min(4, os.cpu_count() or 1)
    try:
        with ThreadPoolExecutor(workers, thread_name_prefix="fer2013-parse") as pool:
            parts = _parse_stream(path, _prefetched(_decompressed_chunks(path)), pool, workers)
    except OSError as e:
        reason = e.strerror or e
        raise FERDataError(f"{path}: cannot read ({reason}): check that it is a readable file") from e
    if not parts:
        raise FERDataError(
            f"{path}: no data rows after the header (expected one row emotion,pixels,Usage "
            f"per face): re-download it"
        )
    images, labels, splits = zip(*parts)
    return FERArrays(np.concatenate(images), np.concatenate(labels), np.concatenate(splits), str(path))


def load_fer2013_csv(
    path: str | Path, cache_dir: str | Path | None = None, use_cache: bool = True
) -> FERArrays:
    """Parsed arrays of a FER2013 CSV, from the ``.npz`` cache when the file is unchanged since it was
    written."""
    source = resolve_csv(path)
    return cached_arrays(source, lambda: parse_fer2013_csv(source), cache_dir, use_cache)
