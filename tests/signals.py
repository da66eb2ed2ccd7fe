"""A test-only callback that sends the training process a real signal after a given epoch (composed into a
real ``scripts/train.py`` process with ``+callbacks.signal=...``), to test kills and resumes without timing
races."""

from __future__ import annotations

import os
import signal

import pytorch_lightning as pl


class SignalAfterEpoch(pl.Callback):
    """After epoch ``epoch`` has been validated and checkpointed, send ``signal_name`` (SIGTERM, SIGKILL) to
    self:
    at the start of the next epoch, since Lightning runs checkpoint callbacks after all others at an epoch's
    end."""

    def __init__(self, epoch: int, signal_name: str) -> None:
        self.epoch, self.signal = epoch, getattr(signal, signal_name)

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.current_epoch == self.epoch + 1:
            os.kill(os.getpid(), self.signal)
