"""More Training rows from a second source: :class:`MixedSource` (``data=fer2013_votes_jaffe``).

The photos a user brings differ from FER2013's web crops in ways augmentation only imitates (posed studio
expressions, lighting, the photo pipeline's own framing). A few real photos through the real pipeline,
repeated so that they count, pull the network towards them; FER2013's PublicTest and PrivateTest stay the
selection and report splits, untouched.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from fer_lightning.data.arrays import FERArrays
from fer_lightning.emotions import SPLITS
from fer_lightning.errors import ConfigError

TRAIN = SPLITS.index("train")


class MixedSource:
    """``base``'s rows plus the Training rows of ``extra``, each repeated ``repeat`` times (a data source:
    a callable returning :class:`FERArrays`). Extra rows get their label as a one-hot vote distribution when
    ``base`` has vote distributions."""

    def __init__(
        self, base: Callable[[], FERArrays], extra: Callable[[], FERArrays], repeat: int = 1
    ) -> None:
        if int(repeat) < 1:
            raise ConfigError(f"repeat must be a positive whole number, got {repeat!r}")
        self.base, self.extra, self.repeat = base, extra, int(repeat)

    def __call__(self) -> FERArrays:
        base, extra = self.base(), self.extra()
        if tuple(extra.classes) != tuple(base.classes):
            raise ConfigError(f"the extra source labels {list(extra.classes)}, the base {list(base.classes)}")
        keep = np.flatnonzero(extra.splits == TRAIN)
        if len(keep) == 0:
            raise ConfigError(f"{extra.origin or self.extra!r} has no Training rows to add")
        rows = np.tile(keep, self.repeat)
        votes = None
        if base.votes is not None:
            one_hot = np.eye(len(base.classes), dtype=np.float32)[extra.labels[rows]]
            votes = np.concatenate([base.votes, one_hot])
        return FERArrays(
            np.concatenate([base.images, extra.images[rows]]),
            np.concatenate([base.labels, extra.labels[rows]]),
            np.concatenate([base.splits, extra.splits[rows]]),
            f"{base.origin} + {extra.origin or 'extra'} x{self.repeat}",
            base.classes,
            votes,
        )

    def __repr__(self) -> str:
        return f"MixedSource({self.base!r}, {self.extra!r}, repeat={self.repeat})"
