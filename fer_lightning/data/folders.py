"""Kaggle image-folder layout of FER2013: ``train/<class>/*.jpg`` and ``test/<class>/{PublicTest,PrivateTest}_*.jpg``."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np

from fer_lightning.data.arrays import IMAGE_SIZE, SPLITS, FERArrays
from fer_lightning.data.cache import cached_arrays
from fer_lightning.data.fer2013 import HOW_TO_GET, FERDataError
from fer_lightning.emotions import emotion_id

log = logging.getLogger(__name__)
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff"}
_TEST_PREFIXES = {"publictest": "public", "privatetest": "private"}


def _split_of(top: str, name: str) -> str:
    """train/ → train; test/ → public or private from the file prefix (test files without one are public)."""
    if top == "train":
        return "train"
    return _TEST_PREFIXES.get(name.split("_", 1)[0].lower(), "public")


def _list_files(root: Path) -> list[tuple[Path, int, int]]:
    files = []
    for top in ("train", "test"):
        if not (root / top).is_dir():
            continue
        for class_dir in sorted(p for p in (root / top).iterdir() if p.is_dir()):
            try:
                label = emotion_id(class_dir.name)
            except KeyError as e:
                raise FERDataError(f"{class_dir}: class folder name is not an emotion ({e})") from e
            for f in sorted(class_dir.iterdir()):
                if f.suffix.lower() in IMAGE_SUFFIXES:
                    files.append((f, label, SPLITS.index(_split_of(top, f.name))))
    return files


def _read_gray48(path: Path) -> np.ndarray | None:
    img = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if img is None:
        return None
    if img.shape != (IMAGE_SIZE, IMAGE_SIZE):
        img = cv2.resize(img, (IMAGE_SIZE, IMAGE_SIZE), interpolation=cv2.INTER_AREA)
    return img


def read_image_folders(root: str | Path) -> FERArrays:
    """Read every image below ``root`` (threads: OpenCV decodes without the GIL); unreadable files are skipped
    and reported in the log with their count, never silently dropped."""
    root = Path(root)
    if not root.is_dir():
        raise FERDataError(f"FER2013 image folders not found at {root} (expected train/<class>/ and "
                           f"test/<class>/). {HOW_TO_GET}")
    files = _list_files(root)
    if not files:
        raise FERDataError(f"{root}: no images under train/<class>/ or test/<class>/")
    with ThreadPoolExecutor(2) as pool:
        images = list(pool.map(_read_gray48, (f for f, _, _ in files), chunksize=256))
    bad = [str(f) for (f, _, _), img in zip(files, images) if img is None]
    if bad:
        log.warning("skipped %d unreadable image(s) under %s: %s", len(bad), root, bad[:20])
    keep = [i for i, img in enumerate(images) if img is not None]
    return FERArrays(
        images=np.stack([images[i] for i in keep]) if keep else np.empty((0, IMAGE_SIZE, IMAGE_SIZE), np.uint8),
        labels=np.array([files[i][1] for i in keep], np.int64),
        splits=np.array([files[i][2] for i in keep], np.int8),
    )


def load_image_folders(root: str | Path, cache_dir: str | Path | None = None, use_cache: bool = True) -> FERArrays:
    """Arrays of the folder tree, cached under a key of its class folders' mtimes."""
    root = Path(root)
    if not root.is_dir():
        return read_image_folders(root)  # raises the explanatory error
    # the key covers the folder itself plus its class folders: adding/removing files touches their mtimes
    dirs = sorted(p for top in ("train", "test") if (root / top).is_dir() for p in (root / top).iterdir())
    mtimes = [(d.name, d.stat().st_mtime_ns) for d in dirs]
    return cached_arrays(root, lambda: read_image_folders(root), cache_dir, use_cache, mtimes)
