"""scripts/eval.py on folders of labelled photos (data=photos labels=jaffe): every photo scored, a photo
without a face counted as an error, and bad folders or label rules refused with one line."""

from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import pytest

from fer_lightning.checkpoints import load_network
from fer_lightning.emotions import EMOTIONS
from fer_lightning.faces.evaluate import NO_FACE, evaluate_photo_folder
from fer_lightning.faces.pipeline import FaceSettings
from tests.conftest import assert_one_line_error, compose_config, run_script
from tests.test_photos import JAFFE

#: What the shipped weights score on the 108 jaffe-dev photos through the default photo pipeline (dlib, eye
# alignment at FER2013's framing); recorded in README.md's "Accuracy on your photos".
JAFFE_CORRECT = 64
THREE = ["KA.HA1.29.tiff", "KL.SU1.164.tiff", "KM.NE1.1.tiff"]


def test_labels_short_form_reaches_the_photo_source(tmp_path):
    cfg = compose_config("eval", ["data=photos", "data.source.input_dir=x", "labels=jaffe"], tmp_path)
    assert cfg.data.source.labels.pattern == JAFFE.regex.pattern
    assert cfg.data.source.align is True
    folder = compose_config("eval", ["data=photos", "data.source.input_dir=x"], tmp_path).data.source.labels
    assert folder._target_.endswith("FolderLabels")
    assert "labels" not in compose_config("eval", ["labels=jaffe"], tmp_path).data.source  # FER2013: unused


def test_eval_scores_every_jaffe_photo_with_the_shipped_weights(jaffe_dir, tmp_path):
    done = run_script(
        "eval",
        "data=photos",
        f"data.source.input_dir={jaffe_dir}",
        "labels=jaffe",
        "data.source.workers=0",
        f"paths.cache_dir={tmp_path / 'cache'}",
        f"paths.log_dir={tmp_path}",
        "logger=csv",
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (run,) = (tmp_path / "eval" / "runs").iterdir()
    m = json.loads((run / "metrics.json").read_text())
    assert m["photos/n"] == 108 and m["photos/faces_found"] == 108 and m["photos/no_face"] == 0
    assert m["photos/aligned"] + m["photos/eyes_not_found"] == 108 and m["photos/aligned"] >= 100
    assert round(m["photos/acc"] * 108) == JAFFE_CORRECT
    confusion = np.array(m["photos/confusion_matrix"])
    assert m["photos/confusion_classes"] == [*EMOTIONS, NO_FACE] and confusion.sum() == 108
    assert np.trace(confusion) == JAFFE_CORRECT
    assert set(m["photos/per_class_recall"]) == set(EMOTIONS) and 0 < m["photos/macro_f1"] < 1
    # the folder's own split (per class, 80/10/10) is scored too: a model trained on its Training photos
    assert 0 < m["private/n"] < 108 and 0 < m["public/n"] < 108
    assert (run / "confusion_matrix_photos.png").is_file()
    log = (run / "eval.log").read_text()
    assert f"photos: acc {JAFFE_CORRECT / 108:.4f} ({JAFFE_CORRECT} of 108 photos)" in log
    assert "0 photos without a face" in log


def test_a_photo_without_a_face_counts_as_an_error(jaffe_dir, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in THREE:
        shutil.copy(jaffe_dir / name, folder / name)
    cv2.imwrite(str(folder / "KA.AN9.900.png"), np.full((256, 256), 128, np.uint8))  # no face in it
    net, classes = load_network(None, device="cpu")
    settings = FaceSettings(labels=JAFFE, cache_dir=tmp_path / "cache", workers=0, progress=False)
    m = evaluate_photo_folder(net, classes, folder, settings)
    assert m["photos/n"] == 4 and m["photos/faces_found"] == 3 and m["photos/no_face"] == 1
    assert m["photos/no_face_files"] == ["KA.AN9.900.png"]
    correct_faces = round(m["photos/acc_faces_found"] * 3)
    assert m["photos/acc"] == pytest.approx(correct_faces / 4)  # the blank photo is in the denominator
    confusion = np.array(m["photos/confusion_matrix"])
    assert confusion[EMOTIONS.index("angry"), -1] == 1  # its true class's row, "no face" column
    assert m["photos/per_class_recall"]["angry"] == 0.0


@pytest.mark.parametrize(
    ("photos", "labels", "says"),
    [([], "jaffe", "no photos"), (THREE, "folder", "none of its 3 photos has a label that the rule")],
    ids=["folder-without-photos", "label-rule-reads-no-file"],
)
def test_bad_photo_folders_fail_with_one_line(tmp_path, jaffe_dir, photos, labels, says):
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "notes.txt").write_text("not a photo")
    for name in photos:
        (folder / name).symlink_to(jaffe_dir / name)
    assert_one_line_error(
        "eval",
        f"error: input_dir={folder}: {says}",
        "data=photos",
        f"data.source.input_dir={folder}",
        f"labels={labels}",
        f"paths.cache_dir={tmp_path / 'cache'}",
        f"paths.log_dir={tmp_path}",
    )
