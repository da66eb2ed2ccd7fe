"""The in-memory form every data source produces: uint8 faces, int64 labels, and a split name per row."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fer_lightning.emotions import EMOTIONS, IMAGE_SIZE, SPLITS

__all__ = ["IMAGE_SIZE", "SPLITS", "FERArrays"]  # re-exported: data code imports them from here


@dataclass(frozen=True)
class FERArrays:
    """``images`` (N, 48, 48) uint8, ``labels`` (N,) int64 indexing ``classes``, ``splits`` (N,) int8 indexing
    :data:`SPLITS`; ``origin`` names the file or folder the rows came from, for messages about them.

    ``classes`` names the labels (FER2013's seven unless the source says otherwise); ``votes`` (N, classes)
    float32, rows summing to 1, is the annotators' label distribution of each face when the source has one
    (FER+), else ``None``.
    """

    images: np.ndarray
    labels: np.ndarray
    splits: np.ndarray
    origin: str = ""
    classes: tuple[str, ...] = EMOTIONS
    votes: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.images)
        if self.images.dtype != np.uint8 or self.images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
            raise ValueError(f"images must be uint8 (N, 48, 48), got {self.images.dtype} {self.images.shape}")
        if len(self.labels) != n or len(self.splits) != n:
            raise ValueError(
                f"row counts differ: {n} images, {len(self.labels)} labels, {len(self.splits)} splits"
            )
        if n and (self.labels.min() < 0 or self.labels.max() >= len(self.classes)):
            raise ValueError(f"labels must lie in 0..{len(self.classes) - 1}")
        if self.votes is not None and self.votes.shape != (n, len(self.classes)):
            raise ValueError(f"votes must be (N, classes) = {(n, len(self.classes))}, got {self.votes.shape}")

    def __len__(self) -> int:
        return len(self.labels)

    def split(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(images, labels) of one split; ``name`` is one of :data:`SPLITS`."""
        return self.images[self.mask(name)], self.labels[self.mask(name)]

    def split_votes(self, name: str) -> np.ndarray | None:
        """The vote distributions of one split's faces (``None`` when the source has none)."""
        return None if self.votes is None else self.votes[self.mask(name)]

    def mask(self, name: str) -> np.ndarray:
        """Which rows belong to split ``name`` (one of :data:`SPLITS`)."""
        if name not in SPLITS:
            raise KeyError(f"unknown split {name!r}; expected one of {SPLITS}")
        return self.splits == SPLITS.index(name)

    def counts(self) -> dict[str, list[int]]:
        """Per-split class counts, for logs and sanity checks."""
        return {
            name: np.bincount(self.labels[self.splits == i], minlength=len(self.classes)).tolist()
            for i, name in enumerate(SPLITS)
        }
