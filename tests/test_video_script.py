"""scripts/video.py as a real process on a video built from the real JAFFE photos: the CSV accounts for every
frame, one plot per tracked face, the annotated video, and one "error:" line (exit 1, no outputs) for each
kind of bad input."""

from __future__ import annotations

import csv

import cv2
import pytest

from fer_lightning.emotions import EMOTIONS
from fer_lightning.video.records import columns
from tests.conftest import assert_one_line_error, run_script
from tests.test_video import SEGMENTS, SIZE, write_video

OUTPUTS = ("frames.csv", "plots", "annotated.mp4")


@pytest.fixture(scope="module")
def run(jaffe_dir, tmp_path_factory):
    """One run of the script with annotate=true: (completed process, run folder)."""
    tmp = tmp_path_factory.mktemp("video-script")
    video = write_video(tmp / "two_faces.mp4", jaffe_dir, SEGMENTS)
    done = run_script("video", f"input={video}", "annotate=true", f"paths.log_dir={tmp / 'out'}", timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    (folder,) = (tmp / "out" / "video" / "runs").iterdir()
    return done, folder


def test_csv_has_one_row_per_frame_and_an_empty_label_without_a_face(run):
    _, folder = run
    with open(folder / "frames.csv") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
    assert reader.fieldnames == columns(EMOTIONS)
    assert [int(r["frame"]) for r in rows] == list(range(35))
    assert float(rows[10]["time_s"]) == pytest.approx(1.0)
    faces = {int(r["frame"]): r for r in rows if r["label"]}
    assert sorted(faces) == [*range(0, 15), *range(20, 30)]
    assert {faces[i]["track"] for i in range(15)} == {"1"} and {faces[i]["track"] for i in range(20, 30)} == {
        "2"
    }
    for r in rows:
        probs = [r[f"p_{c}"] for c in EMOTIONS]
        if r["label"]:
            values = list(map(float, probs))
            assert (
                sum(values) == pytest.approx(1, abs=1e-4)
                and r["label"] == EMOTIONS[values.index(max(values))]
            )
            assert int(r["w"]) > 60
        else:  # no face: nothing but the frame and its time
            assert r["track"] == r["x"] == "" and probs == [""] * len(EMOTIONS)


def test_one_plot_per_track_and_an_annotated_video_of_every_frame(run):
    done, folder = run
    plots = sorted(p.name for p in (folder / "plots").iterdir())
    assert plots == ["track_1.png", "track_2.png"]
    for name in plots:
        image = cv2.imread(str(folder / "plots" / name))
        assert image is not None and image.shape[1] > 400
    capture = cv2.VideoCapture(str(folder / "annotated.mp4"))
    assert capture.get(cv2.CAP_PROP_FRAME_COUNT) == 35
    assert (capture.get(cv2.CAP_PROP_FRAME_WIDTH), capture.get(cv2.CAP_PROP_FRAME_HEIGHT)) == SIZE
    assert not [p for p in folder.rglob("*") if ".tmp" in p.name]  # no temporary file left behind
    assert "frame/s" in done.stderr  # the progress bar
    assert "35 frame(s), 10 without a face, 2 face track(s)" in done.stdout  # Hydra logs to stdout


def no_outputs(log_dir) -> list:
    return [p for p in log_dir.rglob("*") if p.name in OUTPUTS or ".tmp" in p.name or p.suffix == ".png"]


def written(path, data: bytes):
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    "make_input, message",
    [
        (lambda tmp: tmp / "missing.mp4", "error: input={}: no such file"),
        (lambda tmp: written(tmp / "empty.mp4", b""), "error: input={}: the file is empty"),
        (
            lambda tmp: written(tmp / "notes.mp4", b"not a video"),
            "error: input={}: not a video OpenCV can decode",
        ),
        (lambda tmp: 7, "error: input=7: camera 7 could not be opened"),
    ],
    ids=["missing", "zero-length", "unreadable", "no-camera"],
)
def test_bad_input_is_one_error_line_and_no_outputs(tmp_path, make_input, message):
    source = make_input(tmp_path)
    log_dir = tmp_path / "out"
    assert_one_line_error(
        "video", message.format(source), f"input={source}", "annotate=true", f"paths.log_dir={log_dir}"
    )
    assert no_outputs(log_dir) == []


def test_a_negative_camera_index_is_one_line_not_a_crash():
    """OpenCV users pass -1 for "any camera"; cv2.VideoCapture(-1) ended the process with a segfault."""
    from tests.conftest import assert_one_line_error

    assert_one_line_error("video", "error: input=-1: camera indexes start at 0", "input=-1")
