"""FER2013 CSV reader: real file counts, cache behaviour, and specific errors for bad rows."""

import gzip
import os
import time
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


def test_truncated_gzip_is_a_clear_error(tmp_path):
    gz = write_csv(tmp_path / "t.csv", [row()] * 50, gz=True)
    gz.write_bytes(gz.read_bytes()[:-200])
    with pytest.raises(FERDataError, match="cannot read|pixel|expected"):
        parse_fer2013_csv(gz)
