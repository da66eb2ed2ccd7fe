"""FER2013 ``Usage`` for photo-folder rows: Training, or PublicTest/PrivateTest stratified by class.

``split`` modes:
- ``train``: every row is Training.
- ``test``: every row is test data, halved into PublicTest/PrivateTest within each class.
- ``auto``: top-level ``train/`` (or ``training/``) and ``test/`` (or ``testing/``, ``val/``, ``validation/``)
  folders decide, and rows outside them are left out (and reported). Without such folders the whole set is
  split per class: ``test_fraction`` becomes test data (halved into Public/Private), the rest Training, so a
  single folder of photos still yields a validation split.

Assignment is deterministic for a given file set and seed: rows are ordered by relative path before a seeded
permutation, so the walk order of the file system does not matter.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import PurePosixPath

import numpy as np

from fer_lightning.emotions import SPLITS, TEST_PREFIX_TO_SPLIT_ID

SPLIT_MODES = ("auto", "train", "test")
TRAIN_DIRS = frozenset({"train", "training"})
TEST_DIRS = frozenset({"test", "testing", "val", "validation"})

TRAIN, PUBLIC, PRIVATE = (SPLITS.index(s) for s in ("train", "public", "private"))
OUTSIDE = -1


def _group(relpath: PurePosixPath) -> str:
    top = relpath.parts[0].lower() if len(relpath.parts) > 1 else ""
    return "train" if top in TRAIN_DIRS else "test" if top in TEST_DIRS else "other"


def _stratified(labels: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Boolean mask choosing ``fraction * n_c`` rows of each class ``c`` (at least one of a class of 2+).

    ``fraction * n_c`` is rounded up or down at random (seeded), not always the same way: with many small
    classes a fixed rounding would tilt the whole split (3 per class halved → 2 public, 1 private, every
    time).
    """
    chosen = np.zeros(len(labels), bool)
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        k = min(len(idx), int(np.floor(fraction * len(idx) + rng.random())))
        k = max(k, 1) if len(idx) >= 2 and fraction > 0 else k
        chosen[rng.permutation(idx)[:k]] = True
    return chosen


def _split_test(
    relpaths: Sequence[PurePosixPath], labels: np.ndarray, rng: np.random.Generator, usage_from_name: bool
) -> np.ndarray:
    out = np.full(len(labels), PUBLIC, np.int8)
    named = np.array(
        [
            TEST_PREFIX_TO_SPLIT_ID.get(p.name.split("_")[0].lower(), OUTSIDE) if usage_from_name else OUTSIDE
            for p in relpaths
        ],
        np.int8,
    )
    free = np.flatnonzero(named == OUTSIDE)
    out[named != OUTSIDE] = named[named != OUTSIDE]  # FER2013 exports' PublicTest_*/PrivateTest_* keep theirs
    public = _stratified(labels[free], 0.5, rng)
    out[free[~public]] = PRIVATE
    return out


def assign_splits(
    relpaths: Sequence[PurePosixPath],
    labels: Sequence[int],
    mode: str = "auto",
    seed: int = 0,
    test_fraction: float = 0.2,
    usage_from_name: bool = True,
) -> np.ndarray:
    """Split index (into :data:`SPLITS`) per row, or ``OUTSIDE`` (-1) for rows ``auto`` leaves out."""
    if mode not in SPLIT_MODES:
        raise ValueError(f"split must be one of {SPLIT_MODES}, got {mode!r}")
    if not 0.0 <= test_fraction < 1.0:
        raise ValueError(f"test_fraction must lie in [0, 1), got {test_fraction}")
    order = sorted(range(len(relpaths)), key=lambda i: relpaths[i].as_posix())
    paths = [relpaths[i] for i in order]
    lab = np.asarray(labels, np.int64)[order]
    rng = np.random.default_rng(seed)
    out = np.full(len(paths), TRAIN, np.int8)
    if mode == "test":
        out[:] = _split_test(paths, lab, rng, usage_from_name)
    elif mode == "auto":
        groups = np.array([_group(p) for p in paths])
        if (groups != "other").any():
            out[groups == "other"] = OUTSIDE
            test = np.flatnonzero(groups == "test")
        else:
            test = np.flatnonzero(_stratified(lab, test_fraction, rng))
        out[test] = _split_test([paths[i] for i in test], lab[test], rng, usage_from_name)
    result = np.empty(len(paths), np.int8)
    result[order] = out
    return result
