"""FERDataModule: any source of FER arrays → train / public / private dataloaders of uint8 batches."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset

from fer_lightning.data.arrays import SPLITS, FERArrays
from fer_lightning.data.teacher_targets import load_teacher_targets
from fer_lightning.data.transforms import AlbumentationsAugment, BatchAugment, to_model_input

log = logging.getLogger(__name__)


class InMemoryFaces(Dataset):
    """Faces held as one uint8 tensor (N, 1, 48, 48); ``__getitems__`` fetches a whole batch with one index op."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor,
                 transform: AlbumentationsAugment | None = None, targets: torch.Tensor | None = None) -> None:
        # targets: optional soft labels (N, classes) from a teacher ensemble, returned as a third batch element
        self.images, self.labels, self.transform, self.targets = images, labels, transform, targets

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, ...]:
        return tuple(part[0] for part in self.__getitems__([index]))

    def __getitems__(self, indices: Sequence[int]) -> tuple[torch.Tensor, ...]:
        index = torch.as_tensor(indices)
        if self.images.is_cuda:  # pinned + non_blocking: a pageable host→GPU copy would wait for the GPU's queue
            index = index.pin_memory().to(self.images.device, non_blocking=True)
        # index_select copies whole 2,304-byte rows: ~15x faster than images[index] (a per-element gather) on CPU
        images = self.images.index_select(0, index)
        if self.transform is not None:  # straightforward path: one albumentations call per sample
            images = torch.from_numpy(np.stack([self.transform(im[0].numpy()) for im in images])).unsqueeze(1)
        if self.targets is None:
            return images, self.labels.index_select(0, index)
        return images, self.labels.index_select(0, index), self.targets.index_select(0, index)


def _batch_is_ready(batch):
    """``__getitems__`` already returns a collated batch; the DataLoader's collate step must leave it alone."""
    return batch


class FERDataModule(pl.LightningDataModule):
    """Splits: train = Training, val = PublicTest ("public", used for model selection), test = PrivateTest.

    ``val_splits=[public, private]`` also validates on PrivateTest, as the notebook did (logged separately).
    Augmentation is a :class:`BatchAugment` (applied to whole batches on the training device, the default) or an
    :class:`AlbumentationsAugment` (applied per sample in the dataset). ``teacher_targets`` (a file from
    ``scripts/teacher_targets.py``) adds the teachers' probabilities as a third element of every training batch.
    """

    def __init__(self, source: Callable[[], FERArrays], augmentation: BatchAugment | AlbumentationsAugment | None = None,
                 batch_size: int = 128, eval_batch_size: int = 512, val_splits: Sequence[str] = ("public",),
                 test_split: str = "private", num_workers: int = 0, pin_memory: bool = False,
                 keep_on_device: bool = False, teacher_targets: str | None = None) -> None:
        super().__init__()
        unknown = [s for s in [*val_splits, test_split] if s not in SPLITS]
        if unknown or not val_splits:
            raise ValueError(f"val_splits/test_split must be non-empty names from {SPLITS}, got {unknown or val_splits}")
        self.source, self.augmentation = source, augmentation
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        self.val_splits, self.test_split = tuple(val_splits), test_split
        self.num_workers, self.pin_memory, self.keep_on_device = num_workers, pin_memory, keep_on_device
        self.teacher_targets = teacher_targets
        self.arrays: FERArrays | None = None
        self.tensors: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self.train_targets: torch.Tensor | None = None

    def prepare_data(self) -> None:
        self.source()  # parse once and fill the cache before DDP ranks start reading it

    def setup(self, stage: str | None = None) -> None:
        if self.arrays is not None:
            return
        self.arrays = self.source()
        log.info("FER data: %d faces, class counts per split %s", len(self.arrays), self.arrays.counts())
        device = self._storage_device()
        for name in SPLITS:
            images, labels = self.arrays.split(name)
            self.tensors[name] = (torch.from_numpy(images).unsqueeze(1).to(device), torch.from_numpy(labels).to(device))
        if self.teacher_targets:
            self.train_targets = load_teacher_targets(self.teacher_targets, self.tensors["train"][1]).to(device)
            log.info("distilling from %s (teacher ensemble probabilities for the Training faces)", self.teacher_targets)
        if len(self.tensors["train"][1]) == 0:
            log.warning("the data source has no Training rows: fitting is impossible, evaluation still works")

    def _storage_device(self) -> torch.device:
        """The GPU when ``keep_on_device`` (FER2013 is 83 MB: it lives there and batches never cross PCIe)."""
        trainer = self.trainer
        if self.keep_on_device and trainer is not None and trainer.strategy.root_device.type == "cuda":
            if isinstance(self.augmentation, AlbumentationsAugment):  # per-sample numpy transforms need host data
                log.warning("keep_on_device is ignored with albumentations augmentation: it runs on the CPU")
                return torch.device("cpu")
            return trainer.strategy.root_device
        return torch.device("cpu")

    def dataset(self, split: str, train: bool = False) -> InMemoryFaces:
        self.setup()
        images, labels = self.tensors[split]
        per_sample = self.augmentation if train and isinstance(self.augmentation, AlbumentationsAugment) else None
        return InMemoryFaces(images, labels, per_sample, self.train_targets if train else None)

    def dataloader(self, split: str, train: bool = False) -> DataLoader:
        dataset = self.dataset(split, train)
        workers = 0 if dataset.images.is_cuda else self.num_workers
        return DataLoader(dataset, batch_size=self.batch_size if train else self.eval_batch_size, shuffle=train,
                          collate_fn=_batch_is_ready, num_workers=workers, persistent_workers=workers > 0,
                          pin_memory=self.pin_memory and not dataset.images.is_cuda)

    def train_dataloader(self) -> DataLoader:
        return self.dataloader("train", train=True)

    def val_dataloader(self) -> list[DataLoader]:
        return [self.dataloader(split) for split in self.val_splits]

    def test_dataloader(self) -> DataLoader:
        return self.dataloader(self.test_split)

    def predict_dataloader(self) -> DataLoader:
        return self.dataloader(self.test_split)

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        """Batch augmentation runs here, on the device that trains; then uint8 → normalised float."""
        images, *rest = batch  # rest: labels, and teacher probabilities when distilling
        training = self.trainer is not None and self.trainer.training
        if training and isinstance(self.augmentation, BatchAugment):
            images = self.augmentation(images)
        return to_model_input(images), *rest
