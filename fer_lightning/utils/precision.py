"""Exact fp32 for the numbers that choose and report models.

Why: a ``bf16-mixed`` run computes its logits in bf16 (8 bits of mantissa), and on NVIDIA GPUs cuDNN runs fp32
convolutions as TF32 (10 bits) unless told not to. Either can flip a prediction whose two top classes are
close: the shipped weights' 68.07 % PrivateTest is 2 faces above 68 %, and ``val/loss`` picks the checkpoint.
Training may use both; validation, testing, evaluation and prediction run inside :func:`exact_fp32`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import torch


@contextmanager
def exact_fp32() -> Iterator[None]:
    """Inside the block: no autocast (CPU or CUDA) and no TF32 in cuDNN convolutions or cuBLAS matmuls. The
    previous settings come back afterwards, also when the block raises."""
    tf32 = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    with ExitStack() as stack:
        stack.enter_context(torch.autocast("cpu", enabled=False))
        if torch.cuda.is_available():
            stack.enter_context(torch.autocast("cuda", enabled=False))
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
        try:
            yield
        finally:
            torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = tf32
