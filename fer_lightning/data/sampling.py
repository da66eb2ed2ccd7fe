"""The Training shuffle as a function of (seed, epoch) alone, so a resumed run replays the same order.

Why not ``DataLoader(shuffle=True)``: its ``RandomSampler`` and every iterator's worker base seed draw from
torch's global generator, which augmentation also draws from; a run resumed at epoch k would have to restore
that generator at exactly the point where the uninterrupted run drew the next shuffle. Here the order comes
from a private generator seeded with ``seed + epoch``, and Lightning calls :meth:`set_epoch` before every
epoch (as it does for ``DistributedSampler``, which replaces this sampler under DDP and is seeded the same
way).
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import Sampler


class EpochShuffle(Sampler[int]):
    """A permutation of ``range(n)`` drawn from ``seed + epoch``; also reseeds ``loader_generator`` (the
    DataLoader's source of worker seeds) per epoch, so per-sample augmentation in worker processes replays
    too."""

    def __init__(
        self, n: int, seed: int, epoch: int = 0, loader_generator: torch.Generator | None = None
    ) -> None:
        self.n, self.seed = n, int(seed)
        self.loader_generator = loader_generator
        self.set_epoch(epoch)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)
        if self.loader_generator is not None:
            self.loader_generator.manual_seed((self.seed + 1_000_003 * (self.epoch + 1)) % (1 << 63))

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed((self.seed + self.epoch) % (1 << 63))
        return iter(torch.randperm(self.n, generator=generator).tolist())
