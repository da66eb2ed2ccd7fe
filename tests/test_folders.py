"""Kaggle image-folder layout: real folders give the same split and class counts as the CSV."""

import cv2
import numpy as np
import pytest

from fer_lightning.data.fer2013 import FERDataError
from fer_lightning.data.folders import load_image_folders, read_image_folders
from tests.test_fer2013 import EXPECTED


def test_real_image_folders_match_the_csv_counts(data_dir, cache_dir):
    arrays = load_image_folders(data_dir / "fer2013-images", cache_dir=cache_dir)
    assert arrays.counts() == EXPECTED
    assert arrays.images.shape == (35_887, 48, 48)


def test_unreadable_files_are_skipped_and_logged(tmp_path, caplog):
    (tmp_path / "test" / "happy").mkdir(parents=True)
    (tmp_path / "train" / "sad").mkdir(parents=True)
    cv2.imwrite(str(tmp_path / "train" / "sad" / "a.png"), np.full((48, 48), 9, np.uint8))
    cv2.imwrite(str(tmp_path / "test" / "happy" / "PrivateTest_1.png"), np.zeros((96, 96), np.uint8))
    (tmp_path / "test" / "happy" / "PublicTest_2.jpg").write_text("not an image")
    arrays = read_image_folders(tmp_path)
    assert arrays.labels.tolist() == [4, 3] and arrays.splits.tolist() == [0, 2]  # train/ first
    assert arrays.images.shape == (2, 48, 48)  # the 96x96 face was resized
    assert "skipped 1 unreadable image" in caplog.text and "PublicTest_2.jpg" in caplog.text


def test_unknown_class_folder_and_missing_root(tmp_path):
    with pytest.raises(FERDataError, match="image folders not found"):
        read_image_folders(tmp_path / "nowhere")
    (tmp_path / "train" / "bored").mkdir(parents=True)
    with pytest.raises(FERDataError, match="bored"):
        read_image_folders(tmp_path)
