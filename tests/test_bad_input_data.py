"""Bad data in, one specific line out: a damaged file or tree raises a FERDataError naming the file (and line)

Cases are built from the real FER2013 rows and JPEGs (copied, cut or edited in tmp_path); a few run the real
training script to check that the user sees ``error: <message>`` and exit status 1, not a traceback.
"""

from __future__ import annotations

import gzip
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pytest

from fer_lightning.data.datamodule import FERDataModule
from fer_lightning.data.fer2013 import load_fer2013_csv
from fer_lightning.data.folders import load_image_folders
from fer_lightning.errors import FERDataError, FERError
from tests.conftest import TINY_TRAIN, run_script
from tests.test_fer2013 import gzip_cut_after, real_lines, with_pixel
from tests.test_folders import real_tree


Build = Callable[[Path, Path], tuple[Path, Callable[[], object]]]
Make = Callable[[tuple[bytes, ...]], bytes]  # the real header + 40 rows → the bytes of a file


@dataclass(frozen=True)
class Case:
    """``build(tmp_path, data_dir)`` writes the bad input and returns (the path the message must name, the
    call that must fail); ``line`` is the line the message must name, ``says`` a fragment of what it says."""

    build: Build
    says: str
    line: int | None = None


def csv_file(name: str, make: Make) -> Build:
    """A CSV (``.gz``: a gzip stream) of the bytes ``make`` derives from the real lines, loaded uncached."""

    def build(tmp_path: Path, data_dir: Path) -> tuple[Path, Callable]:
        path = tmp_path / name
        path.write_bytes(make(real_lines(data_dir)))
        return path, partial(load_fer2013_csv, path, use_cache=False)

    return build


def edit_row(row: int, edit: Callable[[bytes], bytes]) -> Make:
    """The real lines with data row ``row`` (1-based, so file line row + 1) replaced by ``edit(line)``."""
    return lambda lines: b"".join(edit(line) if i == row else line for i, line in enumerate(lines))


def usages(*kept: bytes) -> Make:
    """The real rows relabelled round-robin to the Usage values ``kept`` (the first real rows: Training)."""

    def make(lines: tuple[bytes, ...]) -> bytes:
        rows = [line.rsplit(b",", 1)[0] + b"," + kept[i % len(kept)] for i, line in enumerate(lines[1:])]
        return lines[0] + b"\n".join(rows) + b"\n"

    return make


def stage_check(name: str, make: Make, stage: str) -> Build:
    """The data module of a CSV made by ``make``, set up for a Lightning ``stage`` (fit, test...)."""

    def build(tmp_path: Path, data_dir: Path) -> tuple[Path, Callable]:
        path, load = csv_file(name, make)(tmp_path, data_dir)
        return path, partial(FERDataModule(load).setup, stage)

    return build


def tree(edit: Callable[[Path], Path]) -> Build:
    """A copy of a few real JPEGs in the image-folder layout, damaged by ``edit`` (which returns the path the
    message must name), loaded uncached."""

    def build(tmp_path: Path, data_dir: Path) -> tuple[Path, Callable]:
        root = real_tree(tmp_path / "faces", data_dir, per_class=1)
        return edit(root), partial(load_image_folders, root, use_cache=False)

    return build


def first_image(root: Path) -> Path:
    """The image the loader reads first, which its error names as the example."""
    return next((root / "train" / "happy").iterdir())


def truncate_every_image(root: Path) -> Path:
    for f in root.rglob("*.jpg"):
        f.write_bytes(f.read_bytes()[:400])
    return first_image(root)


def replace_every_image(root: Path) -> Path:
    junk = [b"", b"<html>404</html>", b"\xff\xd8\xff\xe0 not really"]
    for f, content in zip(sorted(root.rglob("*.jpg")), junk):
        f.write_bytes(content)
    return first_image(root)


def rename_class(root: Path) -> Path:
    (root / "train" / "sad").rename(root / "train" / "bored")
    return root / "train" / "bored"


def remove_tree(root: Path) -> Path:
    shutil.rmtree(root)
    return root


def whole_gz(lines: tuple[bytes, ...]) -> bytes:
    return gzip.compress(b"".join(lines))


def corrupt_gz(lines: tuple[bytes, ...]) -> bytes:
    data = bytearray(whole_gz(lines))
    data[len(data) // 2 : len(data) // 2 + 64] = bytes(64)
    return bytes(data)


def pixels(count: int) -> Callable[[bytes], bytes]:
    def edit(line: bytes) -> bytes:
        label, values, usage = line.split(b",")
        values = values.split()
        return b",".join([label, b" ".join((values * 2)[:count]), usage])

    return edit


CASES = {
    "missing_file": Case(
        lambda tmp, _: (tmp / "fer2013.csv", partial(load_fer2013_csv, tmp / "fer2013.csv")),
        "FER2013 CSV not found",
    ),
    "empty_file": Case(csv_file("fer2013.csv", lambda lines: b""), "the file is empty"),
    "header_only": Case(csv_file("fer2013.csv", lambda lines: lines[0]), "no data rows"),
    "wrong_header": Case(
        csv_file("fer2013.csv", lambda lines: b"label,image\n" + b"".join(lines[1:])), "header", line=1
    ),
    "gzip_cut_at_row_boundary": Case(
        csv_file("fer2013.csv.gz", lambda lines: gzip_cut_after(lines, 21)), "truncated gzip"
    ),
    "gzip_cut_mid_row": Case(
        csv_file("fer2013.csv.gz", lambda lines: whole_gz(lines)[:-3000]), "truncated gzip"
    ),
    "gzip_corrupt_bytes": Case(csv_file("fer2013.csv.gz", corrupt_gz), "corrupt gzip data"),
    "bad_label": Case(
        csv_file("fer2013.csv", edit_row(2, lambda line: b"9" + line[1:])), "emotion '9'", line=3
    ),
    "bad_usage": Case(
        csv_file("fer2013.csv", edit_row(5, lambda line: line.replace(b"Training", b"Test"))),
        "Usage 'Test'",
        line=6,
    ),
    "too_few_pixels": Case(csv_file("fer2013.csv", edit_row(7, pixels(2303))), "found 2303", line=8),
    "too_many_pixels": Case(csv_file("fer2013.csv", edit_row(7, pixels(2305))), "found 2305", line=8),
    "pixel_256": Case(
        csv_file("fer2013.csv", edit_row(9, lambda line: with_pixel(line, 0, b"256"))),
        "pixel value '256'",
        line=10,
    ),
    "pixel_65636": Case(
        csv_file("fer2013.csv", edit_row(9, lambda line: with_pixel(line, 2303, b"65636"))),
        "pixel value '65636'",
        line=10,
    ),
    "pixel_negative": Case(
        csv_file("fer2013.csv", edit_row(9, lambda line: with_pixel(line, 7, b"-4"))),
        "pixel value '-4'",
        line=10,
    ),
    "pixel_not_a_number": Case(
        csv_file("fer2013.csv", edit_row(9, lambda line: with_pixel(line, 7, b"1e2"))),
        "pixel value '1e2'",
        line=10,
    ),
    "no_training_rows": Case(
        stage_check("fer2013.csv", usages(b"PublicTest", b"PrivateTest"), "fit"), "no Training rows"
    ),
    "no_publictest_rows": Case(
        stage_check("fer2013.csv", usages(b"Training", b"PrivateTest"), "fit"), "no PublicTest rows"
    ),
    "no_privatetest_rows": Case(
        stage_check("fer2013.csv", usages(b"Training", b"PublicTest"), "test"), "no PrivateTest rows"
    ),
    "image_folder_missing": Case(tree(remove_tree), "image folders not found"),
    "class_folder_not_an_emotion": Case(tree(rename_class), "'bored' is not an emotion"),
    "truncated_jpeg": Case(tree(truncate_every_image), "none of its 3 image files could be decoded"),
    "all_images_unreadable": Case(tree(replace_every_image), "none of its 3 image files could be decoded"),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_bad_data_is_one_specific_line(tmp_path, data_dir, case):
    path, load = case.build(tmp_path, data_dir)
    with pytest.raises(FERDataError) as err:
        load()
    message = str(err.value)
    assert isinstance(err.value, FERError)
    assert "\n" not in message and str(path) in message and case.says in message, message
    if case.line is not None:
        assert f"{path}, line {case.line}:" in message, message


# --- the same through the real script: `error: <message>` as the last stderr line, exit 1, no traceback


def assert_script_error(tmp_path: Path, source: Path, says: str) -> None:
    result = run_script(
        "train",
        f"data.source.path={source}",
        f"paths.cache_dir={tmp_path / 'cache'}",
        f"hydra.run.dir={tmp_path / 'run'}",
        *TINY_TRAIN,
        timeout=120,
    )
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.returncode == 1, result.stderr[-2000:]
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    assert len(errors) == 1 and result.stderr.strip().splitlines()[-1] == errors[0], result.stderr[-2000:]
    assert str(source) in errors[0] and says in errors[0], errors[0]


@pytest.mark.parametrize(
    ("case", "says"),
    [("gzip_cut_at_row_boundary", "truncated gzip"), ("no_publictest_rows", "no PublicTest rows")],
    ids=["truncated_gzip", "no_publictest_rows"],
)
def test_train_script_reports_bad_data_in_one_line(tmp_path, data_dir, case, says):
    path, _ = CASES[case].build(tmp_path, data_dir)
    assert_script_error(tmp_path, path, says)
