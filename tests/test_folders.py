"""Kaggle image-folder layout: real folders give the same split and class counts as the CSV."""

import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from fer_lightning.errors import FERDataError
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


# --- real JPEGs in a small tree: strict decoding, a cache key that sees every file, sub-folders, odd entries


def real_tree(root: Path, data_dir: Path, per_class: int = 3) -> Path:
    """A copy of a few real JPEGs in the Kaggle layout: train/happy, train/sad, test/happy."""
    source = data_dir / "fer2013-images"
    for part in ("train/happy", "train/sad", "test/happy"):
        (root / part).mkdir(parents=True)
        for f in sorted((source / part).iterdir())[:per_class]:
            shutil.copy(f, root / part / f.name)
    return root


def test_truncated_jpeg_is_skipped_and_counted(tmp_path, data_dir, caplog):
    """Before: OpenCV decoded the cut file as a face whose lower part is flat grey, and trained on it."""
    root = real_tree(tmp_path / "faces", data_dir)
    victim = sorted((root / "train" / "sad").iterdir())[0]
    victim.write_bytes(victim.read_bytes()[:600])
    arrays = read_image_folders(root)
    assert len(arrays) == 8 and arrays.labels.tolist().count(4) == 2
    assert "skipped 1 unreadable image(s)" in caplog.text and victim.name in caplog.text


def test_image_overwritten_in_place_is_not_served_from_the_cache(tmp_path, data_dir):
    """Before: the key held the class folders' mtimes, which rewriting a file's content does not change."""
    root = real_tree(tmp_path / "faces", data_dir)
    cache = tmp_path / "cache"
    before = load_image_folders(root, cache_dir=cache)
    target, replacement = sorted((root / "train" / "happy").iterdir())[:2]
    folder_times = os.stat(target.parent)
    shutil.copy(replacement, target)
    os.utime(target.parent, ns=(folder_times.st_atime_ns, folder_times.st_mtime_ns))
    after = load_image_folders(root, cache_dir=cache)
    assert not np.array_equal(after.images[0], before.images[0])
    assert np.array_equal(after.images[0], after.images[1])  # the replacement's face, read again
    assert len(list(cache.glob("*.npz"))) == 2


def test_images_in_sub_folders_belong_to_their_class(tmp_path, data_dir):
    root = real_tree(tmp_path / "faces", data_dir)
    nested = root / "train" / "sad" / "batch2" / "deeper"
    nested.mkdir(parents=True)
    shutil.copy(sorted((root / "train" / "happy").iterdir())[0], nested / "Training_x.jpg")
    arrays = read_image_folders(root)
    assert len(arrays) == 10 and arrays.labels.tolist().count(4) == 4  # sad: 3 + the nested one


def test_symlink_loops_and_unusable_entries_are_skipped_with_a_count(tmp_path, data_dir, caplog):
    root = real_tree(tmp_path / "faces", data_dir)
    sad = root / "train" / "sad"
    (sad / "up").symlink_to(root / "train")  # a loop: train/sad/up/sad/up/...
    (sad / "self.jpg").symlink_to(sad / "self.jpg")  # ELOOP on every stat
    (sad / "notes.txt").write_text("labels checked by hand")
    (root / "train" / "README").write_text("not a class folder")
    arrays = read_image_folders(root)
    assert len(arrays) == 9
    assert "skipped 4 entries" in caplog.text
    assert "symlink loop" in caplog.text and "Too many levels of symbolic links" in caplog.text
