"""Eye alignment of real JAFFE faces: tilt found and levelled, FER2013 framing, fallback, cache identity."""

from __future__ import annotations

import pickle
from pathlib import Path

import cv2
import numpy as np
import pytest

from fer_lightning.errors import ConfigError
from fer_lightning.faces.align import FaceAligner, framed_crop
from fer_lightning.faces.detectors import Box, DlibDetector, NoDetector, crop_face, read_image, to_gray
from fer_lightning.faces.extract import FileRef, extract_faces
from fer_lightning.faces.pipeline import FaceSettings, preprocess_folder
from tests.test_photos import JAFFE

PHOTOS = ["KA.AN1.39.tiff", "KL.HA1.158.tiff", "KM.SU1.14.tiff", "KR.NE1.71.tiff", "MK.FE1.131.tiff"]


def turned(gray: np.ndarray, degrees: float) -> np.ndarray:
    """The photo turned counter-clockwise by ``degrees`` about its centre, as a tilted head would be."""
    h, w = gray.shape
    turn = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
    return cv2.warpAffine(gray, turn, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def eye_band_hidden(gray: np.ndarray, box: Box) -> np.ndarray:
    """The photo with the band from brow to cheek painted flat: the face is still found, its eyes are not."""
    hidden = gray.copy()
    band = hidden[box.y + int(0.15 * box.h) : box.y + int(0.5 * box.h), box.x : box.x + box.w]
    band[:] = band.mean()
    return hidden


@pytest.fixture(scope="module")
def faces(jaffe_dir: Path) -> list[tuple[np.ndarray, Box]]:
    detector = DlibDetector()
    grays = [to_gray(read_image(jaffe_dir / name)) for name in PHOTOS]
    return [(gray, detector.detect(gray)[0]) for gray in grays]


@pytest.mark.parametrize("degrees", [15, -15])
def test_a_real_face_turned_15_degrees_is_found_tilted_and_cropped_level(faces, degrees):
    detector, aligner = DlibDetector(), FaceAligner()
    found, level = [], []
    for gray, box in faces:
        upright = aligner.find_eyes(gray, box)
        tilted_gray = turned(gray, degrees)
        eyes = aligner.find_eyes(tilted_gray, detector.detect(tilted_gray)[0])
        assert upright is not None and eyes is not None
        # measured against the same photo upright, since the sitters' own heads lean by up to ~4 degrees;
        # counter-clockwise in the picture is a negative angle with y pointing down
        found.append(eyes.angle - upright.angle)
        crop = cv2.resize(aligner.crop(tilted_gray, eyes), (192, 192), interpolation=cv2.INTER_CUBIC)
        levelled = aligner.find_eyes(crop, Box(0, 0, 192, 192))
        assert levelled is not None
        level.append(levelled.angle)
    # cascade boxes place an eye centre to a pixel or two: ~1 degree typical, up to ~4 on one face of 108
    assert np.mean(found) == pytest.approx(-degrees, abs=1.5) and np.abs(np.add(found, degrees)).max() < 5.0
    assert abs(np.mean(level)) < 1.5 and np.abs(level).max() < 5.0


def test_aligned_crop_has_the_eyes_where_fer2013_has_them(faces):
    aligner = FaceAligner()
    for gray, box in faces:
        crop = cv2.resize(aligner.align(gray, box), (192, 192), interpolation=cv2.INTER_CUBIC)
        eyes = aligner.find_eyes(crop, Box(0, 0, 192, 192))
        assert eyes is not None
        assert eyes.centre[0] / 192 == pytest.approx(0.5, abs=0.04)
        assert eyes.centre[1] / 192 == pytest.approx(aligner.eye_y, abs=0.04)
        assert eyes.distance / 192 == pytest.approx(aligner.eye_distance, abs=0.05)


def test_a_tilted_face_aligned_matches_the_same_face_upright(faces):
    aligner, detector = FaceAligner(), DlibDetector()
    for gray, box in faces[:3]:
        upright = aligner.align(gray, box).astype(np.float32)
        tilted_gray = turned(gray, 15)
        tilted = aligner.align(tilted_gray, detector.detect(tilted_gray)[0]).astype(np.float32)
        plain = crop_face(tilted_gray, detector.detect(tilted_gray)[0], 0.1).astype(np.float32)
        assert np.abs(tilted - upright).mean() < 0.5 * np.abs(plain - upright).mean()


def test_eyes_not_found_keep_the_detector_crop_and_are_counted(faces, jaffe_dir, tmp_path):
    aligner = FaceAligner()
    gray, box = faces[0]
    hidden = eye_band_hidden(gray, box)
    assert aligner.find_eyes(hidden, box) is None
    crop, aligned = framed_crop(hidden, box, 0.1, aligner)
    assert aligned is False and np.array_equal(crop, crop_face(hidden, box, 0.1))
    assert framed_crop(gray, box, 0.1, None)[1] is None  # no aligner asked for: neither aligned nor a miss

    folder = tmp_path / "photos"
    folder.mkdir()
    cv2.imwrite(str(folder / "KA.AN9.900.png"), hidden)
    for name in PHOTOS[1:3]:
        (folder / name).symlink_to(jaffe_dir / name)
    report = preprocess_folder(
        folder, tmp_path / "faces.csv", labels=JAFFE, cache_dir=tmp_path / "cache", workers=0, progress=False
    )
    assert report["faces_found"] == 3 and report["alignment"]["aligned"] == 2
    assert report["alignment"]["eyes_not_found"] == {"count": 1, "files": ["KA.AN9.900.png"]}


def test_cache_keeps_aligned_and_plain_crops_apart(jaffe_dir, tmp_path):
    refs = [FileRef.of(jaffe_dir / name) for name in PHOTOS[:3]]
    cache = tmp_path / "cache"
    plain, cached = extract_faces(refs, DlibDetector(), cache, workers=0, progress=False)
    assert cached == 0 and all(r.aligned is None for r in plain.values())
    aligned, cached = extract_faces(
        refs, DlibDetector(), cache, workers=0, progress=False, aligner=FaceAligner()
    )
    assert cached == 0  # a different key: the plain crops are not served
    assert all(r.aligned is True for r in aligned.values())
    assert all(aligned[k].crop != plain[k].crop for k in plain)
    again, cached = extract_faces(
        refs, DlibDetector(), cache, workers=0, progress=False, aligner=FaceAligner()
    )
    assert cached == 3 and again == aligned
    other, cached = extract_faces(
        refs, DlibDetector(), cache, workers=0, progress=False, aligner=FaceAligner(eye_y=0.4)
    )
    assert cached == 0  # the framing is part of the key too


def test_alignment_is_a_face_setting_and_never_reframes_given_crops():
    assert FaceSettings().aligner is not None and FaceSettings(align=False).aligner is None
    assert FaceSettings(NoDetector()).aligner is None  # detector=none: the inputs already are face crops
    on, off = FaceSettings().row_options(), FaceSettings(align=False).row_options()
    assert on["align"] == FaceAligner().settings() and off["align"] is None
    with pytest.raises(ConfigError, match="eye_y"):
        FaceSettings(eye_y=1.5)
    with pytest.raises(ConfigError, match="eye_distance"):
        FaceAligner(eye_distance=0.0)


def test_aligner_pickles_without_its_cascades_for_worker_processes(faces):
    aligner = FaceAligner()
    gray, box = faces[0]
    expected = aligner.find_eyes(gray, box)  # cascades loaded
    copy = pickle.loads(pickle.dumps(aligner))
    assert copy._cascades is None and copy.find_eyes(gray, box) == expected
