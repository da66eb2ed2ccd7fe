"""Face detection and image decoding on the real JAFFE photos and on generated awkward files."""

from __future__ import annotations

import pickle
import re
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from fer_lightning.faces.detectors import (
    Box,
    DetectorUnavailableError,
    DlibDetector,
    HaarDetector,
    NoDetector,
    center_crop,
    crop_face,
)
from fer_lightning.images import ImageReadError, as_uint8_image, read_image, to_gray
from fer_lightning.faces.mtcnn import MTCNNDetector
from fer_lightning.errors import InputError


@pytest.fixture(scope="module")
def jaffe(jaffe_dir: Path) -> list[Path]:
    paths = sorted(jaffe_dir.glob("*.tiff"))
    assert len(paths) == 108, f"expected the 108 JAFFE dev photos in {jaffe_dir}"
    return paths


@pytest.fixture(scope="module")
def face_photo(jaffe: list[Path]) -> np.ndarray:
    image = read_image(jaffe[0])  # 256x256, one frontal face with background
    assert image.shape == (256, 256), "JAFFE's grey-palette TIFFs should decode as grayscale"
    return image


def test_default_detector_finds_a_face_in_nearly_every_jaffe_photo(jaffe):
    detector = DlibDetector()
    found = 0
    for path in jaffe:
        image = read_image(path)
        faces = detector.extract(image)
        if faces.crop is None:
            continue
        found += 1
        assert faces.crop.shape == (48, 48) and faces.crop.dtype == np.uint8
        box = faces.boxes[0]
        # the face sits in the middle of a JAFFE frame and covers a good part of it
        assert 0.25 < (box.x + box.w / 2) / image.shape[1] < 0.75 and 0.3 < box.w / image.shape[1] < 0.9
    assert found / len(jaffe) >= 0.95


def test_haar_finds_faces_in_jaffe(jaffe):
    sample = jaffe[::6]
    detector = HaarDetector()
    found = sum(detector.extract(read_image(p)).crop is not None for p in sample)
    assert found / len(sample) >= 0.95


def test_largest_face_wins_and_all_boxes_are_returned(face_photo):
    small = cv2.resize(face_photo, (150, 150), interpolation=cv2.INTER_AREA)
    canvas = np.full((300, 460), 128, np.uint8)
    canvas[:150, :150] = small  # small face on the left
    canvas[20:276, 180:436] = face_photo  # full-size face on the right
    detector = DlibDetector()
    boxes = detector.detect(canvas)
    assert len(boxes) == 2
    assert boxes[0].area > boxes[1].area and boxes[0].x > 180 and boxes[1].x < 150
    faces = detector.extract(canvas)
    np.testing.assert_array_equal(faces.crop, crop_face(canvas, boxes[0], detector.margin))


@pytest.mark.parametrize("form", ["gray", "rgb", "bgr", "rgba"])
def test_detect_accepts_gray_rgb_bgr_and_rgba_arrays(face_photo, form):
    rgb = cv2.cvtColor(face_photo, cv2.COLOR_GRAY2RGB)
    image = {
        "gray": face_photo,
        "rgb": rgb,
        "bgr": rgb[:, :, ::-1].copy(),
        "rgba": np.dstack([rgb, np.full(face_photo.shape, 255, np.uint8)]),
    }[form]
    boxes = DlibDetector().detect(image, bgr=form == "bgr")
    assert boxes and boxes[0] == DlibDetector().detect(face_photo)[0]


def test_crop_face_is_square_padded_at_borders_and_grows_with_margin():
    image = np.tile(np.arange(200, dtype=np.uint8), (100, 1))  # horizontal ramp, 200 wide, 100 high
    inner = crop_face(image, Box(80, 30, 40, 40), margin=0.0)
    wider = crop_face(image, Box(80, 30, 40, 40), margin=0.5)
    assert inner.shape == wider.shape == (48, 48) and inner.dtype == np.uint8
    assert np.ptp(wider[24]) > np.ptp(inner[24])  # a wider window spans more of the ramp
    corner = crop_face(image, Box(0, 0, 30, 30), margin=0.5)  # square reaches past the top-left corner
    assert corner.shape == (48, 48)
    np.testing.assert_array_equal(corner[:10, :10], 0)  # replicated edge, no black-vs-ramp seam elsewhere
    assert center_crop(np.zeros((100, 300, 3), np.uint8)).shape == (48, 48)


def test_none_detector_uses_the_whole_image():
    face = np.random.default_rng(0).integers(0, 256, (48, 48), dtype=np.uint8)
    faces = NoDetector().extract(face)
    assert faces.boxes == [Box(0, 0, 48, 48)]
    np.testing.assert_array_equal(faces.crop, face)  # 48x48 in → the same pixels out


def test_detectors_pickle_without_their_models(face_photo):
    for detector in (DlibDetector(), HaarDetector()):
        detector.detect(face_photo)  # loads the model
        clone = pickle.loads(pickle.dumps(detector))
        assert clone._model is None and clone.detect(face_photo) == detector.detect(face_photo)
        assert clone.settings() == detector.settings()


def test_mtcnn_without_facenet_pytorch_says_how_to_install(monkeypatch, face_photo):
    monkeypatch.setitem(sys.modules, "facenet_pytorch", None)  # import now fails, installed or not
    with pytest.raises(DetectorUnavailableError, match="pip install --no-deps facenet-pytorch"):
        MTCNNDetector().detect(face_photo)


@pytest.mark.slow
def test_mtcnn_finds_faces_in_jaffe(jaffe):
    pytest.importorskip("facenet_pytorch", reason="optional detector backend")
    sample = jaffe[::6]
    detector = MTCNNDetector()
    assert sum(detector.extract(read_image(p)).crop is not None for p in sample) / len(sample) >= 0.95


def test_invalid_settings_are_rejected():
    with pytest.raises(ValueError, match="margin"):
        DlibDetector(margin=-0.1)
    with pytest.raises(FileNotFoundError, match="cascade"):
        HaarDetector(cascade="no_such_cascade.xml").detect(np.zeros((64, 64), np.uint8))


# --- decoding: the awkward files users actually have -------------------------------------------------------


def test_truncated_jpeg_and_non_images_raise_image_read_error(tmp_path, face_photo):
    good = tmp_path / "good.jpg"
    Image.fromarray(face_photo).save(good, quality=90)
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    text = tmp_path / "notes.jpg"
    text.write_text("this is not a photo\n")
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    for path, reason in [
        (truncated, "cannot decode"),
        (text, "not an image"),
        (empty, "not an image"),
        (tmp_path / "missing.jpg", "file not found"),
    ]:
        with pytest.raises(ImageReadError, match=reason) as info:
            read_image(path)
        assert info.value.path == str(path)


def test_rgba_png_is_composited_on_white(tmp_path, face_photo):
    rgba = np.dstack([np.dstack([face_photo] * 3), np.full(face_photo.shape, 255, np.uint8)])
    rgba[:20, :20, 3] = 0  # transparent corner whose hidden colour is black
    rgba[:20, :20, :3] = 0
    path = tmp_path / "face.png"
    Image.fromarray(rgba, "RGBA").save(path)
    image = read_image(path)
    assert image.shape == (256, 256, 3) and image.dtype == np.uint8
    assert (image[:20, :20] == 255).all()
    assert DlibDetector().detect(image)


def test_16bit_png_is_scaled_not_wrapped(tmp_path, face_photo):
    path = tmp_path / "face16.png"
    Image.fromarray(face_photo.astype(np.uint16) * 257).save(path)  # full 16-bit range
    image = read_image(path)
    assert image.dtype == np.uint8 and image.shape == face_photo.shape
    np.testing.assert_array_equal(image, face_photo)
    assert DlibDetector().detect(image)


def test_exif_rotated_jpeg_is_read_upright(tmp_path, face_photo):
    sideways = Image.fromarray(face_photo).transpose(Image.Transpose.ROTATE_90)  # stored rotated 90° CCW
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: "rotate 90° CW to display", as phone cameras write it
    path = tmp_path / "phone.jpg"
    sideways.save(path, exif=exif, quality=95)
    raw = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE | cv2.IMREAD_IGNORE_ORIENTATION)
    assert not DlibDetector().detect(raw), "the stored pixels are sideways: no frontal face there"
    upright = read_image(path)
    assert DlibDetector().detect(upright)
    assert np.abs(upright.astype(int) - face_photo).mean() < 5  # same picture, up to JPEG loss


def test_very_large_photo_is_detected_downscaled_and_cropped_at_full_resolution(tmp_path, face_photo):
    canvas = np.full((4000, 6000), 90, np.uint8)  # a 24-megapixel frame
    big_face = cv2.resize(face_photo, (2048, 2048), interpolation=cv2.INTER_CUBIC)
    canvas[1000:3048, 3000:5048] = big_face
    path = tmp_path / "camera.jpg"
    cv2.imwrite(str(path), canvas, [cv2.IMWRITE_JPEG_QUALITY, 85])
    image = read_image(path)
    detector = DlibDetector()
    box = detector.detect(image)[0]  # found on a 1024-px copy, reported in original pixels
    assert 3000 < box.x < 5048 and 1000 < box.y < 3048 and box.w > 600
    crop = detector.extract(image).crop
    expected = crop_face(big_face, Box(box.x - 3000, box.y - 1000, box.w, box.h), detector.margin)
    assert np.abs(crop.astype(int) - expected).mean() < 3


def test_to_gray_rejects_unknown_shapes():
    with pytest.raises(ValueError, match="expected an image"):
        to_gray(np.zeros((4, 4, 2), np.uint8))


def test_float_arrays_in_0_255_or_0_1_decode_alike_and_bad_arrays_are_input_errors(face_photo):
    as_float = face_photo.astype(np.float32)
    assert np.array_equal(as_uint8_image(as_float), face_photo)  # 0..255 floats: not clipped to white
    assert np.abs(as_uint8_image(as_float / 255).astype(int) - face_photo).max() <= 1  # 0..1 floats: scaled
    assert np.array_equal(as_uint8_image(face_photo.astype(np.int64)), face_photo)
    assert DlibDetector().detect(as_float) == DlibDetector().detect(face_photo)
    bad = {
        "empty": (np.zeros((0, 0)), "shape (0, 0)"),
        "1-D": (np.zeros(10), "got shape (10,)"),
        "2 channels": (np.zeros((4, 4, 2), np.uint8), "got shape (4, 4, 2)"),
        "NaN": (np.full((8, 8), np.nan), "NaN or infinite"),
        "bool": (np.zeros((4, 4), bool), "dtype bool"),
        "int out of range": (np.full((4, 4), 300), "values span 300..300"),
    }
    for name, (array, message) in bad.items():
        with pytest.raises(InputError, match=re.escape(message)) as info:
            to_gray(array)
        assert "\n" not in str(info.value), name
