"""No face left behind (faces/fallback.py) on real crops: small, tight JAFFE crops and FER2013's own faces are
found, by a retry or by the whole-photo fallback, marked as such; photos without a face stay without one."""

from __future__ import annotations

import csv

import cv2
import numpy as np
import pytest

from fer_lightning.data.fer2013 import load_fer2013_csv
from fer_lightning.faces.detectors import Box, DlibDetector, read_image, to_gray
from fer_lightning.faces.fallback import FaceFinder
from fer_lightning.predict import Predictor
from tests.conftest import run_script


@pytest.fixture(scope="module")
def fer_faces(data_dir, cache_dir) -> np.ndarray:
    """The first 120 PublicTest faces of FER2013, blown up from 48 to 96 px: already face crops."""
    faces = load_fer2013_csv(data_dir / "fer2013" / "fer2013.csv", cache_dir)
    public = faces.images[faces.splits == 1][:120]
    return np.stack([cv2.resize(f, (96, 96), interpolation=cv2.INTER_CUBIC) for f in public])


def tight_crop(photo, side: int) -> np.ndarray:
    gray = to_gray(read_image(photo))
    box = DlibDetector(upsample=1).detect(gray)[0]
    face = gray[box.y : box.y + box.h, box.x : box.x + box.w]
    return cv2.resize(face, (side, side), interpolation=cv2.INTER_AREA)


def test_every_fer2013_crop_gets_a_face_and_the_fallback_says_so(fer_faces):
    finder, dlib_only = FaceFinder(), DlibDetector()
    sources = [(finder.detect(f) or [Box(0, 0, 0, 0, 0, "none")])[0].source for f in fer_faces]
    missed_by_dlib = sum(not dlib_only.detect(f) for f in fer_faces)
    assert sources.count("none") == 0
    assert missed_by_dlib > 0  # what the finder is for: dlib alone leaves some of these faces behind
    assert 0 < sources.count("fallback") <= missed_by_dlib
    whole = [finder.detect(f)[0] for f in fer_faces]
    assert all(b == Box(0, 0, 96, 96, 0.0, "fallback") for b in whole if b.source == "fallback")


@pytest.mark.parametrize("side", [32, 48, 80, 120])
def test_small_tight_jaffe_crops_are_found(jaffe_dir, side):
    photos = sorted(jaffe_dir.glob("*.tiff"))[::9]  # 12 photos, every sitter and expression mixed
    finder = FaceFinder()
    assert all(finder.detect(tight_crop(p, side)) for p in photos)


def test_no_face_is_invented(jaffe_dir, fer_faces):
    finder = FaceFinder()
    rng = np.random.default_rng(0)
    scene = cv2.GaussianBlur(rng.integers(0, 256, (480, 640)).astype(np.uint8), (0, 0), 2)  # scene-sized
    strip = cv2.resize(fer_faces[0], (400, 60))  # far from square: not one face crop
    wall = np.full((120, 120), 90, np.uint8) + rng.integers(0, 3, (120, 120)).astype(np.uint8)  # flat
    background = to_gray(read_image(sorted(jaffe_dir.glob("*.tiff"))[0]))[:, :40]  # 256 x 40 strip
    for image in (scene, strip, wall, background):
        assert finder.detect(image) == []
    assert finder.looks_like_one_face(fer_faces[0], fer_faces[0])  # the same rule says yes to a crop


def test_settings_are_checked_and_part_of_the_cache_key():
    from fer_lightning.errors import ConfigError

    for bad in ({"pad": 2.0}, {"crop_side": -1}, {"max_aspect": 0.5}):
        with pytest.raises(ConfigError):
            FaceFinder(**bad)
    assert FaceFinder().settings() != FaceFinder(crop_side=0).settings()
    assert FaceFinder(crop_side=0).detect(np.full((64, 64), 255, np.uint8)) == []


def test_predictions_csv_names_how_each_face_was_found(fer_faces, tmp_path):
    """The default predict pipeline on real crops: every photo gets a label, face_source tells which ones
    rest on the whole-photo fallback."""
    finder = FaceFinder()
    folder = tmp_path / "crops"
    folder.mkdir()
    fallback = next(i for i, f in enumerate(fer_faces) if finder.detect(f)[0].source == "fallback")
    detected = next(i for i, f in enumerate(fer_faces) if finder.detect(f)[0].source == "detected")
    for i in (fallback, detected):
        cv2.imwrite(str(folder / f"face_{i}.png"), fer_faces[i])
    done = run_script("predict", f"inputs={folder}", "device=cpu", f"hydra.run.dir={tmp_path / 'run'}")
    assert done.returncode == 0, done.stderr[-2000:]
    with open(tmp_path / "run" / "predictions.csv") as f:
        rows = {r["path"]: r for r in csv.DictReader(f)}
    assert rows[f"face_{fallback}.png"]["face_source"] == "fallback"
    assert rows[f"face_{detected}.png"]["face_source"] == "detected"
    assert all(r["label"] for r in rows.values())
    predictor = Predictor.from_pretrained(device="cpu")  # the Python API finds the same faces by default
    assert predictor.predict(fer_faces[fallback], color="gray")[0].box.source == "fallback"


def test_bad_photos_through_the_default_pipeline_are_rows_with_reasons(jaffe_dir, tmp_path):
    """Unreadable, 1x1, 10000x10000, CMYK and 16-bit photos beside a good one: the run succeeds, each photo
    has a row, the decodable ones are classified or reported without a face, the broken one is counted."""
    from PIL import Image

    folder = tmp_path / "photos"
    folder.mkdir()
    good = jaffe_dir / "KA.HA1.29.tiff"
    Image.open(good).convert("RGB").convert("CMYK").save(folder / "cmyk.jpg")
    sixteen = (np.asarray(Image.open(good).convert("L"), np.uint16) * 257).astype(np.uint16)
    cv2.imwrite(str(folder / "deep.png"), sixteen)  # a 16-bit grayscale PNG
    Image.new("L", (1, 1), 128).save(folder / "dot.png")
    Image.new("L", (10000, 10000), 128).save(folder / "huge.png")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    done = run_script("predict", f"inputs={folder}", "device=cpu", f"hydra.run.dir={tmp_path / 'run'}")
    assert done.returncode == 0, done.stderr[-2000:]
    with open(tmp_path / "run" / "predictions.csv") as f:
        rows = {r["path"]: r for r in csv.DictReader(f)}
    assert set(rows) == {"cmyk.jpg", "deep.png", "dot.png", "huge.png", "broken.jpg"}
    assert rows["cmyk.jpg"]["label"] and rows["deep.png"]["label"]
    assert rows["cmyk.jpg"]["face_source"] == rows["deep.png"]["face_source"] == "detected"
    assert rows["dot.png"]["reason"].startswith("no face") and rows["huge.png"]["reason"].startswith(
        "no face"
    )
    assert rows["broken.jpg"]["reason"].startswith("unreadable")
    assert "1 file(s) could not be read" in done.stdout + done.stderr
