"""Every random number generator a training run draws from, captured as plain data and restored exactly.

Why: a run resumed from ``last.ckpt`` must draw the same shuffles and augmentations as the uninterrupted run.
``seed_everything`` only fixes the *start*; the checkpoint must carry the generators' state at the moment it
was written. Plain tensors, ints and tuples only, so checkpoints still load with
``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch


def capture_rng_states() -> dict[str, Any]:
    """torch (CPU and every CUDA device), numpy's legacy global generator and Python's ``random``."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    states: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(gauss)),
        "python": random.getstate(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_rng_states(states: dict[str, Any]) -> None:
    """Put back what :func:`capture_rng_states` returned (CUDA states only where the devices exist)."""
    torch.set_rng_state(states["torch"])
    kind, keys, pos, has_gauss, gauss = states["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    version, internal, gauss_next = states["python"]
    random.setstate((version, tuple(internal), gauss_next))
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def reseed_for_rank(rank: int) -> int:
    """Give DDP rank ``rank`` (> 0) generators of its own, derived from the run's seed; returns the new seed.

    Why: every rank runs ``seed_everything(seed)``, so without this the i-th face of each rank's shard gets
    the same random augmentation. Rank 0 keeps the run's seed, so one process draws as it always did."""
    seed = (torch.initial_seed() + 1_000_003 * rank) % (1 << 32)
    torch.manual_seed(seed)  # CPU and every CUDA device
    np.random.seed(seed)
    random.seed(seed)
    return seed
