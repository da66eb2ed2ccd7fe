"""The notebook's learning-rate schedule as a real ``torch.optim.lr_scheduler`` class."""

from __future__ import annotations

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler


class SteppedDecayLR(LRScheduler):
    """Constant lr up to epoch ``start``; after it, multiplied by ``rate`` every ``every`` epochs.

    lr(epoch) = base_lr * rate ** ((epoch - start) // every) for epoch > start, else base_lr — the notebook's
    rule (``start=80, every=5, rate=0.9``), computed in closed form so resuming at any epoch gives the same
    value.
    """

    def __init__(
        self, optimizer: Optimizer, start: int = 80, every: int = 5, rate: float = 0.9, last_epoch: int = -1
    ) -> None:
        if every < 1:
            raise ValueError(f"every must be >= 1, got {every}")
        self.start, self.every, self.rate = start, every, rate
        super().__init__(optimizer, last_epoch)

    def factor(self, epoch: int) -> float:
        return self.rate ** ((epoch - self.start) // self.every) if epoch > self.start else 1.0

    def get_lr(self) -> list[float]:
        return [base * self.factor(self.last_epoch) for base in self.base_lrs]

    _get_closed_form_lr = get_lr
