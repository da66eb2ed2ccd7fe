"""Temporarily change torch's intra-op thread count around small CPU workloads."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def intra_op_threads(n: int | None) -> Iterator[None]:
    """Run the block with ``n`` intra-op threads (``None``: leave the setting), then restore it.

    Why: a few 48x48 faces are too little work to split across cores. Measured on the 2-core dev machine while
    a training run kept it busy: classifying 1 face took ~120 ms with 2 threads (the pool's threads wait for a
    busy core) and ~3 ms with 1; explaining 8 faces ~2 s vs 0.3 s. Setting the count costs microseconds.
    """
    previous = torch.get_num_threads()
    if n is None or n == previous:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
