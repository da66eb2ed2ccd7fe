"""FER2013 as Kaggle's image folders: ``train/<class>/*.jpg``, ``test/<class>/{PublicTest,PrivateTest}_*.jpg``

Images in sub-folders of a class folder belong to that class. Entries that cannot be used (unreadable folders,
symlink loops, non-image files) and images that do not decode completely are skipped and counted in the log.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np

from fer_lightning.data.arrays import FERArrays
from fer_lightning.data.cache import cached_arrays
from fer_lightning.data.fer2013 import HOW_TO_GET
from fer_lightning.images import IMAGE_EXTENSIONS, read_gray48
from fer_lightning.emotions import SPLITS, SYNONYMS, TEST_PREFIX_TO_SPLIT_ID, emotion_id
from fer_lightning.errors import FERDataError, ImageReadError

log = logging.getLogger(__name__)


class ImageFile(NamedTuple):
    path: str  # str, not Path: pathlib's parsing would be most of the listing time (36k files)
    label: int
    split: int  # index into SPLITS
    size: int
    mtime_ns: int


@dataclass
class FolderListing:
    """The image files below a root, and the entries skipped while listing it (``"path (reason)"``)."""

    root: Path
    files: list[ImageFile] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def fingerprint(self) -> str:
        """Changes when any image is added, removed, renamed or rewritten (its size or mtime changes): the
        cache key. Folder mtimes alone would miss an image overwritten in place."""
        digest = hashlib.sha1()
        prefix = len(str(self.root))
        for f in self.files:
            digest.update(f"{f.path[prefix:]}\0{f.size}\0{f.mtime_ns}\n".encode())
        return digest.hexdigest()


def _split_of(top: str, name: str) -> int:
    """Split id: train/ → train; test/ → public or private from the file prefix (test files without one are
    public)."""
    if top == "train":
        return SPLITS.index("train")
    return TEST_PREFIX_TO_SPLIT_ID.get(name.split("_", 1)[0].lower(), SPLITS.index("public"))


Seen = set[tuple[int, int]]  # (device, inode) of every folder listed so far


def _sorted_entries(folder: str | Path, listing: FolderListing, seen: Seen) -> list[os.DirEntry]:
    """``folder``'s entries by name, or none when it cannot be read or was listed already (a symlink loop)."""
    try:
        st = os.stat(folder)
        if (st.st_dev, st.st_ino) in seen:
            listing.skipped.append(f"{folder} (symlink loop or folder listed twice)")
            return []
        seen.add((st.st_dev, st.st_ino))
        with os.scandir(folder) as it:
            return sorted(it, key=lambda e: e.name)
    except OSError as e:
        listing.skipped.append(f"{folder} (unreadable folder: {e.strerror or e})")
        return []


def _entries(folder: str | Path, listing: FolderListing, seen: Seen) -> Iterator[tuple[os.DirEntry, bool]]:
    """``folder``'s entries with whether each is a folder (symlinks followed); hidden and unreadable ones are
    recorded as skipped instead."""
    for entry in _sorted_entries(folder, listing, seen):
        if entry.name.startswith("."):  # .DS_Store, .ipynb_checkpoints: tools' files, never faces
            listing.skipped.append(f"{entry.path} (hidden)")
            continue
        try:
            is_dir = entry.is_dir()
        except OSError as e:  # a looping symlink, an entry without permission to stat
            listing.skipped.append(f"{entry.path} (unreadable: {e.strerror or e})")
            continue
        yield entry, is_dir


def _walk(folder: str, listing: FolderListing, seen: Seen) -> Iterator[tuple[os.DirEntry, os.stat_result]]:
    """Every image file below ``folder`` with its stat, sub-folders included (each folder once)."""
    for entry, is_dir in _entries(folder, listing, seen):
        if is_dir:
            yield from _walk(entry.path, listing, seen)
            continue
        if os.path.splitext(entry.name)[1].lower() not in IMAGE_EXTENSIONS:
            listing.skipped.append(f"{entry.path} (not an image suffix: {sorted(IMAGE_EXTENSIONS)})")
            continue
        try:
            st = entry.stat()
        except OSError as e:  # a dangling symlink
            listing.skipped.append(f"{entry.path} (unreadable: {e.strerror or e})")
            continue
        yield entry, st


def _class_label(class_dir: Path) -> int:
    try:
        return emotion_id(class_dir.name)
    except KeyError:
        raise FERDataError(
            f"{class_dir}: folder name {class_dir.name!r} is not an emotion (expected one of "
            f"{sorted(SYNONYMS)}): rename or remove that folder"
        ) from None


def list_image_folders(root: str | Path) -> FolderListing:
    """The images below ``root/{train,test}/<class>/``: one stat per file, no decoding."""
    root = Path(root)
    if not root.is_dir():
        raise FERDataError(
            f"FER2013 image folders not found at {root} (expected train/<class>/ and "
            f"test/<class>/). {HOW_TO_GET}"
        )
    listing, seen = FolderListing(root), set()
    for top in ("train", "test"):
        if not (root / top).is_dir():
            continue
        for class_dir, is_dir in _entries(root / top, listing, seen):
            if not is_dir:
                listing.skipped.append(f"{class_dir.path} (a file outside any class folder)")
                continue
            label = _class_label(Path(class_dir.path))
            for image, st in _walk(class_dir.path, listing, seen):
                split = _split_of(top, image.name)
                listing.files.append(ImageFile(image.path, label, split, st.st_size, st.st_mtime_ns))
    if not listing.files:
        raise FERDataError(
            f"{root}: no images under train/<class>/ or test/<class>/ (skipped: "
            f"{listing.skipped[:5] or 'nothing'}): point data.source.root at the folder "
            f"holding train/ and test/"
        )
    return listing


def _read_or_none(path: str) -> np.ndarray | None:
    """The face, or None when the file is not a whole, decodable image (counted and skipped by the caller)."""
    try:
        return read_gray48(path)
    except ImageReadError:
        return None


def _decode(listing: FolderListing) -> FERArrays:
    """Decode every listed image (threads: OpenCV decodes without the GIL); unreadable ones are skipped and
    reported with their count, and a tree without a single readable image is an error."""
    files, root = listing.files, listing.root
    with ThreadPoolExecutor(2) as pool:
        images = list(pool.map(_read_or_none, (f.path for f in files), chunksize=256))
    keep = [i for i, img in enumerate(images) if img is not None]
    bad = [f.path for f, img in zip(files, images) if img is None]
    if not keep:
        raise FERDataError(
            f"{root}: none of its {len(files)} image files could be decoded (e.g. {bad[0]}): "
            f"re-download the image folders"
        )
    if bad:
        log.warning(
            "skipped %d unreadable image(s) under %s (truncated or not images): %s", len(bad), root, bad[:20]
        )
    return FERArrays(
        images=np.stack([images[i] for i in keep]),
        labels=np.array([files[i].label for i in keep], np.int64),
        splits=np.array([files[i].split for i in keep], np.int8),
        origin=str(root),
    )


def _listed(root: str | Path) -> FolderListing:
    listing = list_image_folders(root)
    if listing.skipped:
        log.warning(
            "skipped %d entries under %s while listing its images: %s",
            len(listing.skipped),
            listing.root,
            listing.skipped[:20],
        )
    return listing


def read_image_folders(root: str | Path) -> FERArrays:
    """Read every image below ``root`` without any cache."""
    return _decode(_listed(root))


def load_image_folders(
    root: str | Path, cache_dir: str | Path | None = None, use_cache: bool = True
) -> FERArrays:
    """Arrays of the folder tree, cached under a key of every image's relative path, size and mtime."""
    listing = _listed(root)
    return cached_arrays(listing.root, lambda: _decode(listing), cache_dir, use_cache, listing.fingerprint())
