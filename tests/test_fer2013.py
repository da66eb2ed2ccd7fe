"""FER2013 CSV reader: real file counts, cache behaviour, and specific errors for bad rows."""

import csv
import functools
import gzip
import os
import time
import zlib
from pathlib import Path

import numpy as np
import pytest

from fer_lightning.data.fer2013 import FERDataError, load_fer2013_csv, parse_fer2013_csv, resolve_csv

# class counts published with the data (angry, disgust, fear, happy, sad, surprise, neutral)
EXPECTED = {
    "train": [3995, 436, 4097, 7215, 4830, 3171, 4965],
    "public": [467, 56, 496, 895, 653, 415, 607],
    "private": [491, 55, 528, 879, 594, 416, 626],
}


def row(label="3", pixels=None, usage="Training") -> str:
    pixels = pixels if pixels is not None else " ".join(str(i % 256) for i in range(2304))
    return f"{label},{pixels},{usage}\n"


def write_csv(path: Path, rows: list[str], gz: bool = False) -> Path:
    text = "emotion,pixels,Usage\n" + "".join(rows)
    if gz:
        path = path.with_suffix(".csv.gz")
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


def test_real_fer2013_counts_and_pixels(data_dir, cache_dir):
    arrays = load_fer2013_csv(data_dir / "fer2013" / "fer2013.csv", cache_dir=cache_dir)
    assert len(arrays) == 35_887
    assert arrays.counts() == EXPECTED
    assert arrays.images.dtype == np.uint8 and arrays.images.shape == (35_887, 48, 48)
    # first data row of the file, read independently of the parser
    with gzip.open(data_dir / "fer2013" / "fer2013.csv.gz", "rt") as f:
        f.readline()
        label, pixels, usage = f.readline().strip().split(",")
    assert arrays.labels[0] == int(label) and usage == "Training"
    assert arrays.images[0].ravel().tolist() == [int(v) for v in pixels.split()]


def test_second_load_comes_from_the_cache_in_under_a_second(data_dir, cache_dir):
    path = data_dir / "fer2013" / "fer2013.csv"
    load_fer2013_csv(path, cache_dir=cache_dir)  # cold or already warm
    start = time.perf_counter()
    arrays = load_fer2013_csv(path, cache_dir=cache_dir)
    assert time.perf_counter() - start < 1.0
    assert len(arrays) == 35_887
    assert len(list(cache_dir.glob("fer2013-*.npz"))) == 1


def test_gz_is_used_when_the_plain_csv_is_absent_and_cache_follows_mtime(tmp_path):
    gz = write_csv(tmp_path / "fer2013.csv", [row(), row("0", usage="PublicTest")], gz=True)
    assert resolve_csv(tmp_path / "fer2013.csv") == gz
    cache = tmp_path / "cache"
    assert load_fer2013_csv(tmp_path / "fer2013.csv", cache_dir=cache).labels.tolist() == [3, 0]
    write_csv(tmp_path / "fer2013.csv", [row("5", usage="PrivateTest")], gz=True)
    os.utime(gz, ns=(time.time_ns(), time.time_ns() + 10**9))  # a new mtime means a new cache key
    assert load_fer2013_csv(tmp_path / "fer2013.csv", cache_dir=cache).labels.tolist() == [5]
    assert len(list(cache.glob("*.npz"))) == 2


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (row(pixels="1 2 3"), "expected 2304 pixel values"),
        (row(pixels=" ".join(["7"] * 2303 + ["x"])), "pixel value 'x'"),
        (row(pixels=" ".join(["7"] * 2303 + ["300"])), "pixel value '300'"),
        (row(label="7"), "emotion '7'"),
        (row(label="-1"), "emotion '-1'"),
        (row(usage="Validation"), "Usage 'Validation'"),
    ],
)
def test_malformed_row_names_file_and_line(tmp_path, bad, message):
    path = write_csv(tmp_path / "bad.csv", [row(), row(), bad, row()])
    with pytest.raises(FERDataError, match=message) as err:
        parse_fer2013_csv(path)
    assert f"{path}, line 4" in str(err.value)


def test_wrong_header_is_reported(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("label,pixels\n1,2\n")
    with pytest.raises(FERDataError, match="line 1: header"):
        parse_fer2013_csv(path)


def test_missing_file_says_where_it_looked_and_how_to_get_fer2013(tmp_path):
    with pytest.raises(FERDataError) as err:
        load_fer2013_csv(tmp_path / "fer2013" / "fer2013.csv")
    text = str(err.value)
    assert str(tmp_path / "fer2013" / "fer2013.csv.gz") in text
    assert "Kaggle" in text and "FER_DATA_DIR" in text


# --- real rows, damaged: each case fails on a reader that trusts zlib's output or narrows pixels unchecked


@functools.cache
def real_lines(data_dir: Path, rows: int = 40) -> tuple[bytes, ...]:
    """The header and the first ``rows`` rows of the real FER2013 file, each line ending in a newline."""
    with gzip.open(data_dir / "fer2013" / "fer2013.csv.gz", "rb") as f:
        return tuple(f.readline() for _ in range(rows + 1))


def with_pixel(line: bytes, index: int, value: bytes) -> bytes:
    """``line`` with its pixel number ``index`` replaced by the text ``value``."""
    label, pixels, usage = line.split(b",")
    values = pixels.split()
    values[index] = value
    return b",".join([label, b" ".join(values), usage])


def gzip_cut_after(lines: tuple[bytes, ...], keep: int) -> bytes:
    """A gzip stream holding the first ``keep`` lines whole but stopping before its end marker: a download cut
    exactly at a row boundary, which inflates to valid rows."""
    deflate = zlib.compressobj(wbits=31)
    return deflate.compress(b"".join(lines[:keep])) + deflate.flush(zlib.Z_FULL_FLUSH)


@pytest.mark.parametrize("cut", ["row_boundary", "mid_row"])
def test_truncated_gzip_is_reported_as_truncated(tmp_path, data_dir, cut):
    lines = real_lines(data_dir)
    whole = gzip.compress(b"".join(lines))
    data = gzip_cut_after(lines, 21) if cut == "row_boundary" else whole[: len(whole) // 2]
    path = tmp_path / "fer2013.csv.gz"
    path.write_bytes(data)
    with pytest.raises(FERDataError) as err:
        parse_fer2013_csv(path)
    assert str(err.value) == (
        f"{path}: truncated gzip (stream ended before its end marker after {len(data)} "
        f"bytes): re-download or re-compress it"
    )


def test_concatenated_gzip_members_are_all_read_and_trailing_garbage_is_refused(tmp_path, data_dir):
    lines = real_lines(data_dir)
    path = tmp_path / "fer2013.csv.gz"
    members = gzip.compress(b"".join(lines[:11])) + gzip.compress(b"".join(lines[11:]))  # cat a.gz b.gz
    path.write_bytes(members)
    assert len(parse_fer2013_csv(path)) == len(lines) - 1
    path.write_bytes(gzip.compress(b"".join(lines)) + b"<html>mirror error page</html>")
    with pytest.raises(FERDataError, match="data after the end of the gzip stream .* is not gzip"):
        parse_fer2013_csv(path)


@pytest.mark.parametrize("value", [b"65636", b"4294967396", b"256", b"-1"])
def test_pixel_values_are_range_checked_before_narrowing(tmp_path, data_dir, value):
    """65636 wraps to 100 in int16 and 4294967396 to 100 in int32: both must be refused, never read as 100."""
    lines = list(real_lines(data_dir))
    lines[3] = with_pixel(lines[3], 100, value)
    path = tmp_path / "fer2013.csv"
    path.write_bytes(b"".join(lines))
    with pytest.raises(FERDataError) as err:
        parse_fer2013_csv(path)
    assert str(err.value) == (
        f"{path}, line 4: pixel value {value.decode()!r} is not an integer in 0..255: fix or remove that row"
    )


def test_any_whitespace_between_pixels_and_quoted_fields_parse_as_the_plain_file(tmp_path, data_dir):
    lines = real_lines(data_dir)
    plain = tmp_path / "plain.csv"
    plain.write_bytes(b"".join(lines))
    expected = parse_fer2013_csv(plain)
    spaced = tmp_path / "spaced.csv"
    spaced.write_bytes(
        lines[0] + b"".join(line.replace(b" ", b" \t ", 7).replace(b" ", b"  ", 3) for line in lines[1:])
    )
    quoted = tmp_path / "quoted.csv"  # what pandas' to_csv(quoting=QUOTE_ALL) writes, header included
    with quoted.open("w", newline="") as f:
        csv.writer(f, quoting=csv.QUOTE_ALL).writerows(line.decode().strip().split(",") for line in lines)
    for path in (spaced, quoted):
        arrays = parse_fer2013_csv(path)
        for name in ("images", "labels", "splits"):
            assert np.array_equal(getattr(arrays, name), getattr(expected, name))


def test_damaged_cache_is_rebuilt(tmp_path, data_dir):
    path = tmp_path / "fer2013.csv"
    path.write_bytes(b"".join(real_lines(data_dir)))
    cache = tmp_path / "cache"
    first = load_fer2013_csv(path, cache_dir=cache)
    (cache_file,) = cache.glob("*.npz")
    cache_file.write_bytes(cache_file.read_bytes()[:500])  # a half-written or corrupted cache file
    again = load_fer2013_csv(path, cache_dir=cache)
    assert np.array_equal(again.images, first.images) and again.origin == str(path)
    assert np.load(cache_file)["images"].shape == first.images.shape  # rewritten whole
