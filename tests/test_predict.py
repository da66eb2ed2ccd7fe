"""Predictor and scripts/predict.py on the real JAFFE photos (one face each) and a session-trained
checkpoint."""

import csv
import shutil

import cv2
import numpy as np
import pytest
import torch
from omegaconf import open_dict

from fer_lightning.checkpoints import CheckpointNotFoundError, load_network
from fer_lightning.faces.align import FaceAligner, framed_crop
from fer_lightning.faces.detectors import DlibDetector, HaarDetector
from fer_lightning.faces.fallback import FaceFinder
from fer_lightning.images import ImageReadError, read_image, to_gray
from fer_lightning.emotions import EMOTIONS
from fer_lightning.errors import InputError
from fer_lightning.inference import to_model_input
from fer_lightning.predict import Predictor
from fer_lightning.faces.walk import list_inputs
from fer_lightning.tasks import predict as predict_task
from fer_lightning.tasks.predict import columns, predict_paths, write_csv
from tests.conftest import compose_config, run_script, unreadable_photos

PHOTOS = ["KA.AN1.39.tiff", "KL.HA1.158.tiff", "KM.SU1.14.tiff", "KR.NE1.71.tiff", "MK.SA1.119.tiff"]


@pytest.fixture(scope="module")
def predictor(tiny_weights) -> Predictor:
    return Predictor.from_checkpoint(tiny_weights)


@pytest.fixture
def photo_dir(jaffe_dir, tmp_path):
    """Five real photos, one unreadable file and one photo without a face (a flat grey frame)."""
    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    for name in PHOTOS[:4]:
        shutil.copy(jaffe_dir / name, folder / name)
    shutil.copy(jaffe_dir / PHOTOS[4], folder / "sub" / PHOTOS[4])
    (folder / "broken.jpg").write_bytes(b"\xff\xd8 this is not a JPEG")
    cv2.imwrite(str(folder / "empty.png"), np.full((200, 300, 3), 127, np.uint8))
    return folder


def test_one_face_per_photo_with_probabilities_from_the_network(predictor, tiny_weights, jaffe_dir):
    net, _ = load_network(tiny_weights)
    for name in PHOTOS:
        faces = predictor.predict(jaffe_dir / name)
        assert len(faces) == 1
        face = faces[0]
        assert list(face.probabilities) == list(EMOTIONS) and sum(
            face.probabilities.values()
        ) == pytest.approx(1)
        assert face.label in EMOTIONS and face.confidence == max(face.probabilities.values())
        assert 0 <= face.box.x and face.box.x + face.box.w <= 256 and 60 <= face.box.w <= 256
        # the same crop the preprocessing makes (eyes levelled by default), classified by the bare network
        gray = to_gray(read_image(jaffe_dir / name))  # some JAFFE TIFFs decode as RGB, some as gray
        crop = framed_crop(gray, face.box, predictor.detector.margin, FaceAligner())[0]
        assert np.array_equal(face.crop, crop)
        with torch.inference_mode():
            expected = net(to_model_input(torch.from_numpy(crop)[None, None])).softmax(1)[0].numpy()
        assert list(face.probabilities.values()) == pytest.approx(expected, abs=1e-5)


def test_bgr_rgb_gray_and_path_inputs_agree(predictor, jaffe_dir):
    path = jaffe_dir / PHOTOS[1]
    bgr = cv2.imread(str(path))
    reference = predictor.predict(path)[0]
    for image, color in (
        (bgr, "bgr"),
        (cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), "rgb"),
        (cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY), "gray"),
    ):
        face = predictor.predict(image, color=color)[0]
        assert face.box == reference.box and face.label == reference.label
        assert list(face.probabilities.values()) == pytest.approx(
            list(reference.probabilities.values()), abs=1e-5
        )
    with pytest.raises(ValueError, match="color must be one of"):
        predictor.predict(bgr, color="hsv")


def test_batched_prediction_equals_one_photo_at_a_time(predictor, jaffe_dir):
    paths = [jaffe_dir / name for name in PHOTOS]
    batched = predictor.predict_many(paths)
    for path, faces in zip(paths, batched):
        single = predictor.predict(path)
        assert [f.box for f in faces] == [f.box for f in single]
        assert [f.probabilities[f.label] for f in faces] == pytest.approx(
            [f.confidence for f in single], abs=1e-5
        )


def test_no_face_is_an_empty_list_and_unreadable_is_a_clear_error(predictor, tmp_path):
    assert predictor.predict(np.full((240, 320, 3), 90, np.uint8)) == []
    bad = tmp_path / "bad.png"
    bad.write_text("no pixels here")
    with pytest.raises(ImageReadError, match="bad.png: not an image"):
        predictor.predict(bad)


def test_rows_one_per_face_plus_a_reason_row_for_each_failed_file(predictor, photo_dir, tmp_path):
    rows = predict_paths(predictor, list_inputs(photo_dir).files, tmp_path / "annotated", chunk=3)
    faces = [r for r in rows if r["label"]]
    assert sorted(r["path"] for r in faces) == sorted(PHOTOS[:4] + [f"sub/{PHOTOS[4]}"])
    assert all(r["face"] == 0 for r in faces)
    reasons = {r["path"]: r["reason"] for r in rows if not r["label"]}
    assert reasons["broken.jpg"].startswith("unreadable:") and reasons["empty.png"].startswith(
        "no face found"
    )
    # annotated copies: same size as the photo, and the box was drawn (pixels changed)
    annotated = cv2.imread(str(tmp_path / "annotated" / f"{PHOTOS[0]}.png"))
    assert annotated.shape == (256, 256, 3)
    assert not np.array_equal(annotated, cv2.imread(str(photo_dir / PHOTOS[0])))
    write_csv(tmp_path / "p.csv", rows, EMOTIONS)
    with open(tmp_path / "p.csv") as f:
        assert next(csv.reader(f)) == columns(EMOTIONS)


def test_other_detectors_plug_in(tiny_weights, jaffe_dir):
    haar = Predictor.from_checkpoint(tiny_weights, detector=HaarDetector())
    faces = haar.predict(jaffe_dir / PHOTOS[0])
    default = Predictor.from_checkpoint(tiny_weights).detector  # dlib inside the face-crop fallback
    assert len(faces) == 1 and isinstance(default, FaceFinder) and isinstance(default.detector, DlibDetector)


def test_predict_script_writes_csv_annotations_and_table(tiny_weights, photo_dir, tmp_path):
    done = run_script(
        "predict",
        f"inputs={photo_dir}",
        f"ckpt_path={tiny_weights}",
        f"paths.log_dir={tmp_path / 'out'}",
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (run,) = (tmp_path / "out" / "predict" / "runs").iterdir()
    with open(run / "predictions.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 7 and sum(1 for r in rows if r["label"]) == 5  # 5 faces + 2 reason rows
    for r in rows:
        if r["label"]:
            probs = [float(r[f"p_{c}"]) for c in EMOTIONS]
            assert sum(probs) == pytest.approx(1, abs=1e-4) and r["label"] == EMOTIONS[int(np.argmax(probs))]
            assert float(r["confidence"]) == max(probs)
    assert len(list((run / "annotated").rglob("*.png"))) == 5
    assert "7 predictions" in done.stdout and "no face found" in done.stdout


def test_missing_checkpoint_or_inputs_fail_with_the_path(tiny_weights, photo_dir, tmp_path):
    cfg = compose_config("predict", [f"inputs={photo_dir}", f"ckpt_path={tmp_path / 'none.ckpt'}"], tmp_path)
    with pytest.raises(CheckpointNotFoundError, match=f"looked for {tmp_path / 'none.ckpt'}"):
        predict_task.run(cfg)
    with open_dict(cfg):
        cfg.ckpt_path, cfg.inputs = str(tiny_weights), str(tmp_path / "missing")
    with pytest.raises(InputError, match=f"inputs={tmp_path / 'missing'}: no such file or folder"):
        predict_task.run(cfg)


@pytest.mark.slow
def test_predict_script_without_inputs_or_checkpoint_fails_clearly(tmp_path, photo_dir):
    done = run_script(
        "predict",
        f"inputs={photo_dir}",
        f"ckpt_path={tmp_path / 'none.ckpt'}",
        f"paths.log_dir={tmp_path}",
        timeout=300,
    )
    assert (
        done.returncode == 1 and f"checkpoint not found: looked for {tmp_path / 'none.ckpt'}" in done.stderr
    )


@pytest.fixture(scope="module")
def shipped() -> Predictor:
    """The shipped weights (no training needed): for the input-handling tests, where any network will do."""
    return Predictor.from_checkpoint()


def predict_cfg(inputs, tmp_path, *overrides):
    return compose_config(
        "predict", [f"inputs={inputs}", "annotate=false", "table=false", *overrides], tmp_path
    )


def test_a_symlink_loop_costs_one_counted_row_not_the_folder(photo_dir, tmp_path, caplog):
    for name in ("a_loop", "n_loop", "z_loop"):  # wherever the directory order puts them
        (photo_dir / name).symlink_to(name)
    rows = predict_task.run(predict_cfg(photo_dir, tmp_path))
    assert sorted(r["path"] for r in rows if r["label"]) == sorted(PHOTOS[:4] + [f"sub/{PHOTOS[4]}"])
    assert {r["path"]: r["reason"] for r in rows if r["path"].endswith("loop")} == {
        "a_loop": "skipped: symlink loop",
        "n_loop": "skipped: symlink loop",
        "z_loop": "skipped: symlink loop",
    }
    with open(tmp_path / "predictions.csv") as f:
        assert len(list(csv.DictReader(f))) == 10  # 5 faces, broken.jpg, empty.png (no face), 3 loops
    assert "5 face(s) in 10 file(s); 1 file(s) without a face; 4 file(s) could not be read" in caplog.text


def test_nothing_readable_is_an_input_error_after_the_csv_is_written(tmp_path):
    folder = unreadable_photos(tmp_path / "unreadable")
    with pytest.raises(
        InputError, match=r"none of the 2 file\(s\) could be read \(first: empty.jpg: unreadable"
    ):
        predict_task.run(predict_cfg(folder, tmp_path / "out"))
    with open(tmp_path / "out" / "predictions.csv") as f:
        assert [r["path"] for r in csv.DictReader(f)] == ["empty.jpg", "notes.jpg"]
    (tmp_path / "nothing").mkdir()
    with pytest.raises(InputError, match="missing.jpg: no such file or folder"):
        list_inputs(tmp_path / "missing.jpg")
    with pytest.raises(InputError, match="no photos"):
        list_inputs(tmp_path / "nothing")


def test_float_images_and_bad_arrays_through_the_python_api(shipped, jaffe_dir):
    gray = read_image(jaffe_dir / PHOTOS[0])
    reference = shipped.predict(gray, color="gray")
    for image in (gray.astype(np.float32), gray.astype(np.float64) / 255):  # 0..255 and 0..1 floats
        faces = shipped.predict(image, color="gray")
        assert [f.box for f in faces] == [f.box for f in reference] and len(faces) == 1
    with pytest.raises(InputError, match=r"images\[1\]: image is empty \(shape \(0, 0\)\)"):
        shipped.predict_many([gray, np.zeros((0, 0), np.uint8)])
    with pytest.raises(InputError, match=r"crop 1 has shape \(40, 40\)"):
        shipped.classify([reference[0].crop, np.zeros((40, 40), np.uint8)])
    assert shipped.classify(reference[0].crop[None].astype(np.float32)).shape == (1, len(EMOTIONS))
