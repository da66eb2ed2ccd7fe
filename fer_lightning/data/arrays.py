"""The in-memory form every data source produces: uint8 faces, int64 labels, and a split name per row."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fer_lightning.emotions import IMAGE_SIZE, NUM_CLASSES, SPLITS

__all__ = ["IMAGE_SIZE", "SPLITS", "FERArrays"]  # re-exported: data code imports them from here


@dataclass(frozen=True)
class FERArrays:
    """``images`` (N, 48, 48) uint8, ``labels`` (N,) int64 in 0..6, ``splits`` (N,) int8 indexing
    :data:`SPLITS`; ``origin`` names the file or folder the rows came from, for messages about them."""

    images: np.ndarray
    labels: np.ndarray
    splits: np.ndarray
    origin: str = ""

    def __post_init__(self) -> None:
        n = len(self.images)
        if self.images.dtype != np.uint8 or self.images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
            raise ValueError(f"images must be uint8 (N, 48, 48), got {self.images.dtype} {self.images.shape}")
        if len(self.labels) != n or len(self.splits) != n:
            raise ValueError(
                f"row counts differ: {n} images, {len(self.labels)} labels, {len(self.splits)} splits"
            )
        if n and (self.labels.min() < 0 or self.labels.max() >= NUM_CLASSES):
            raise ValueError(f"labels must lie in 0..{NUM_CLASSES - 1}")

    def __len__(self) -> int:
        return len(self.labels)

    def split(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(images, labels) of one split; ``name`` is one of :data:`SPLITS`."""
        if name not in SPLITS:
            raise KeyError(f"unknown split {name!r}; expected one of {SPLITS}")
        mask = self.splits == SPLITS.index(name)
        return self.images[mask], self.labels[mask]

    def counts(self) -> dict[str, list[int]]:
        """Per-split class counts, for logs and sanity checks."""
        return {
            name: np.bincount(self.labels[self.splits == i], minlength=NUM_CLASSES).tolist()
            for i, name in enumerate(SPLITS)
        }
