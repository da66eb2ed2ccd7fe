"""Bad inputs, as users hand them over, across scripts/preprocess.py, scripts/predict.py and
scripts/gradcam.py (real processes) and the Predictor API, built from real JAFFE photos copied into tmp_path.

A script fails with exit 1 and one last ``error:`` line naming what is wrong, never a traceback; the API
raises the specific :class:`FERError` subclass with a one-line message. Where the policy is to skip (one bad
entry among good photos) the run succeeds and counts what it skipped.
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fer_lightning.images import read_image
from fer_lightning.errors import FERError, ImageReadError, InputError
from fer_lightning.predict import Predictor
from tests.conftest import run_script

PHOTO = "KA.HA1.29.tiff"  # a real JAFFE photo, one frontal face


def truncated_jpeg(jaffe_dir: Path) -> bytes:
    buffer = io.BytesIO()
    Image.open(jaffe_dir / PHOTO).convert("L").save(buffer, "JPEG", quality=90)
    return buffer.getvalue()[:2000]


def bad_file(kind: str, jaffe_dir: Path) -> bytes:
    return {"zero-length": b"", "truncated": truncated_jpeg(jaffe_dir), "not-an-image": b"just some text\n"}[
        kind
    ]


def folder_with(tmp_path: Path, files: dict[str, bytes]) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return folder


# --- each builder makes the bad input and returns (path for preprocess's input_dir, path for inputs=)
# -----------
# JAFFE-style names (KA.HA9.n.jpg), so that labels=jaffe labels them and preprocessing gets as far as
# decoding.


def missing(tmp_path: Path, jaffe_dir: Path) -> tuple[Path, Path]:
    return tmp_path / "no_such_folder", tmp_path / "no_such_photo.jpg"


def empty_folder(tmp_path: Path, jaffe_dir: Path) -> tuple[Path, Path]:
    folder = folder_with(tmp_path, {})
    return folder, folder


def unreadable_folder(tmp_path: Path, jaffe_dir: Path) -> tuple[Path, Path]:
    folder = folder_with(
        tmp_path,
        {
            f"KA.HA9.{i}.jpg": bad_file(kind, jaffe_dir)
            for i, kind in enumerate(("zero-length", "truncated", "not-an-image"))
        },
    )
    return folder, folder


def one_bad_file(kind: str) -> Callable[[Path, Path], tuple[Path, Path]]:
    def build(tmp_path: Path, jaffe_dir: Path) -> tuple[Path, Path]:
        folder = folder_with(tmp_path, {"KA.HA9.1.jpg": bad_file(kind, jaffe_dir)})
        return folder, folder / "KA.HA9.1.jpg"

    return build


def only_a_symlink_loop(tmp_path: Path, jaffe_dir: Path) -> tuple[Path, Path]:
    folder = folder_with(tmp_path, {})
    (folder / "loop").symlink_to("loop")
    return folder, folder


SCRIPT_CASES = [  # (case, builder, {script: fragment of the error line})
    (
        "missing-input",
        missing,
        {
            "preprocess": "no_such_folder is not a folder",
            "predict": "no_such_photo.jpg: no such file or folder",
            "gradcam": "no_such_photo.jpg: no such file or folder",
        },
    ),
    ("empty-folder", empty_folder, dict.fromkeys(("preprocess", "predict", "gradcam"), "no photos (.jpg")),
    (
        "folder-of-unreadable-files",
        unreadable_folder,
        {
            "preprocess": "no usable faces (3 photos seen, 3 unreadable",
            "predict": "none of the 3 file(s) could be read",
            "gradcam": "no face to explain (3 file(s) could not be read",
        },
    ),
    (
        "zero-length-file",
        one_bad_file("zero-length"),
        {
            "preprocess": "1 unreadable",
            "predict": "KA.HA9.1.jpg: unreadable: not an image",
            "gradcam": "no face to explain (1 file(s) could not be read",
        },
    ),
    (
        "truncated-photo",
        one_bad_file("truncated"),
        {
            "preprocess": "1 unreadable",
            "predict": "KA.HA9.1.jpg: unreadable: cannot decode",
            "gradcam": "no face to explain (1 file(s) could not be read",
        },
    ),
    (
        "not-an-image-with-jpg-suffix",
        one_bad_file("not-an-image"),
        {
            "preprocess": "1 unreadable",
            "predict": "KA.HA9.1.jpg: unreadable: not an image",
            "gradcam": "no face to explain (1 file(s) could not be read",
        },
    ),
    (
        "symlink-loop",
        only_a_symlink_loop,
        {
            "preprocess": "1 entry skipped while listing (first: 'loop': symlink loop)",
            "predict": "(first: loop: skipped: symlink loop)",
            "gradcam": "no face to explain (1 file(s) could not be read",
        },
    ),
]


def script_args(script: str, tmp_path: Path, input_dir: Path, inputs: Path, *extra: str) -> list[str]:
    common = [f"paths.log_dir={tmp_path / 'logs'}", *extra]
    if script == "preprocess":
        return [
            f"input_dir={input_dir}",
            f"output={tmp_path / 'out' / 'faces.csv'}",
            "labels=jaffe",
            f"cache_dir={tmp_path / 'cache'}",
            "progress=false",
            *common,
        ]
    return [f"inputs={inputs}", *common]


def assert_one_line_error(result: subprocess.CompletedProcess, fragment: str) -> None:
    """Exit 1, no traceback, and the last stderr line is the only ``error:`` line and holds ``fragment``."""
    assert result.returncode == 1, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and result.stderr.count("error: ") == 1, result.stderr[-3000:]
    assert fragment in last, last


@pytest.mark.parametrize(
    ("script", "build", "fragment"),
    [
        pytest.param(script, build, fragment, id=f"{script}-{case}")
        for case, build, fragments in SCRIPT_CASES
        for script, fragment in fragments.items()
    ],
)
def test_bad_input_is_one_error_line(script, build, fragment, tmp_path, jaffe_dir):
    input_dir, inputs = build(tmp_path, jaffe_dir)
    assert_one_line_error(
        run_script(script, *script_args(script, tmp_path, input_dir, inputs), timeout=300), fragment
    )


# (case, script, overrides: {tmp} = tmp_path, {folder} = a folder with one real photo, fragment)
SETTING_CASES = [
    (
        "preprocess-output-is-a-folder",
        "preprocess",
        ["input_dir={folder}", "output={tmp}", "labels=jaffe"],
        "is a folder; give a file path",
    ),
    (
        "preprocess-bad-regex-label-rule",
        "preprocess",
        ["input_dir={folder}", "output={tmp}/x.csv", "labels=regex", r"labels.pattern=\("],
        "labels: invalid regular expression '('",
    ),
    (
        "gradcam-bad-regex-label-rule",
        "gradcam",
        ["inputs={folder}", "labels=regex", r"labels.pattern=\("],
        "labels: invalid regular expression '('",
    ),
]


@pytest.mark.parametrize(
    ("script", "overrides", "fragment"), [pytest.param(s, o, f, id=i) for i, s, o, f in SETTING_CASES]
)
def test_bad_setting_is_one_error_line(script, overrides, fragment, tmp_path, jaffe_dir):
    folder = folder_with(tmp_path, {PHOTO: (jaffe_dir / PHOTO).read_bytes()})
    args = [o.format(tmp=tmp_path, folder=folder) for o in overrides]
    assert_one_line_error(
        run_script(script, *args, f"paths.log_dir={tmp_path / 'logs'}", timeout=300), fragment
    )


# --- one bad entry among good photos: skipped, counted, and the run succeeds
# ------------------------------------


@pytest.fixture
def mixed_folder(tmp_path, jaffe_dir) -> Path:
    """Two real photos, a zero-length and a non-image .jpg, and a symlink loop."""
    folder = folder_with(
        tmp_path,
        {
            "KA.HA1.29.tiff": (jaffe_dir / "KA.HA1.29.tiff").read_bytes(),
            "KL.AN1.167.tiff": (jaffe_dir / "KL.AN1.167.tiff").read_bytes(),
            "KA.HA9.1.jpg": b"",
            "KA.HA9.2.jpg": b"not a photo",
        },
    )
    (folder / "loop").symlink_to("loop")
    return folder


def test_preprocess_counts_what_it_skipped(mixed_folder, tmp_path):
    done = run_script(
        "preprocess", *script_args("preprocess", tmp_path, mixed_folder, mixed_folder), timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert (
        "unreadable: 2" in done.stdout
        and "1 entry skipped while listing (first: 'loop': symlink loop)" in done.stdout
    )
    report = json.loads((tmp_path / "out" / "faces.report.json").read_text())
    assert report["rows_written"] == 2 and report["unreadable"]["count"] == 2
    assert report["skipped_entries"] == {"count": 1, "files": [{"file": "loop", "reason": "symlink loop"}]}


def test_predict_counts_what_it_could_not_read(mixed_folder, tmp_path):
    done = run_script("predict", *script_args("predict", tmp_path, mixed_folder, mixed_folder), timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    (run,) = (tmp_path / "logs" / "predict" / "runs").iterdir()
    with open(run / "predictions.csv") as f:
        reasons = {r["path"]: r["reason"] for r in csv.DictReader(f)}
    assert reasons["loop"] == "skipped: symlink loop" and reasons["KA.HA9.1.jpg"].startswith("unreadable:")
    assert "2 face(s) in 5 file(s); 0 file(s) without a face; 3 file(s) could not be read" in done.stdout


def test_gradcam_counts_what_it_skipped(mixed_folder, tmp_path):
    done = run_script("gradcam", *script_args("gradcam", tmp_path, mixed_folder, mixed_folder), timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "skipped 3 file(s): 3 could not be read, 0 without a face" in done.stdout + done.stderr


# --- the Python API
# -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def predictor() -> Predictor:
    return Predictor.from_checkpoint()  # the shipped weights and dlib


def write_bad(kind: str, jaffe_dir: Path, folder: Path) -> Path:
    path = folder / f"{kind}.jpg"
    path.write_bytes(bad_file(kind, jaffe_dir))
    return path


API_CASES = [  # (case, call, expected error class, fragment of the message)
    ("0x0-array", lambda p, d, t: p.predict(np.zeros((0, 0), np.uint8)), InputError, "empty (shape (0, 0))"),
    ("1-D-array", lambda p, d, t: p.predict(np.zeros(100, np.uint8)), InputError, "got shape (100,)"),
    ("NaN-image", lambda p, d, t: p.predict(np.full((64, 64), np.nan)), InputError, "NaN or infinite"),
    (
        "classify-wrong-crop-shape",
        lambda p, d, t: p.classify([np.zeros((64, 64), np.uint8)]),
        InputError,
        "crop 0 has shape (64, 64)",
    ),
    (
        "predict-many-names-the-bad-image",
        lambda p, d, t: p.predict_many([read_image(d / PHOTO), np.zeros((3, 0))]),
        InputError,
        "images[1]: image is empty",
    ),
    ("missing-file", lambda p, d, t: p.predict(t / "missing.jpg"), ImageReadError, "file not found"),
    (
        "zero-length-file",
        lambda p, d, t: p.predict(write_bad("zero-length", d, t)),
        ImageReadError,
        "not an image",
    ),
    (
        "truncated-photo",
        lambda p, d, t: p.predict(write_bad("truncated", d, t)),
        ImageReadError,
        "cannot decode",
    ),
    (
        "not-an-image-with-jpg-suffix",
        lambda p, d, t: p.predict(write_bad("not-an-image", d, t)),
        ImageReadError,
        "not an image",
    ),
]


@pytest.mark.parametrize(
    ("call", "error", "fragment"), [pytest.param(c, e, f, id=i) for i, c, e, f in API_CASES]
)
def test_bad_api_input_raises_the_specific_error(call, error, fragment, predictor, jaffe_dir, tmp_path):
    with pytest.raises(error) as info:
        call(predictor, jaffe_dir, tmp_path)
    assert isinstance(info.value, FERError) and fragment in str(info.value)
    assert "\n" not in str(info.value)


def test_float_image_in_0_255_finds_the_face(predictor, jaffe_dir):
    gray = read_image(jaffe_dir / PHOTO)
    (face,) = predictor.predict(
        gray.astype(np.float32), color="gray"
    )  # was clipped to a white frame: no face
    assert face.box == predictor.predict(gray, color="gray")[0].box
