"""FERDataModule: any source of FER arrays → train / public / private dataloaders of uint8 batches."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset

from fer_lightning.data.arrays import SPLITS, FERArrays
from fer_lightning.data.sampling import EpochShuffle
from fer_lightning.data.teacher_targets import load_teacher_targets
from fer_lightning.data.transforms import AlbumentationsAugment, BatchAugment
from fer_lightning.emotions import CLASS_SETS, SPLIT_TO_USAGE
from fer_lightning.errors import ConfigError, FERDataError
from fer_lightning.inference import to_model_input
from fer_lightning.utils.rng import reseed_for_rank

log = logging.getLogger(__name__)


class InMemoryFaces(Dataset):
    """Faces held as one uint8 tensor (N, 1, 48, 48); ``__getitems__`` fetches a whole batch with one index
    op."""

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        transform: AlbumentationsAugment | None = None,
        targets: torch.Tensor | None = None,
    ) -> None:
        # targets: optional soft labels (N, classes) from a teacher ensemble, returned as a third batch
        # element
        self.images, self.labels, self.transform, self.targets = images, labels, transform, targets

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, ...]:
        return tuple(part[0] for part in self.__getitems__([index]))

    def __getitems__(self, indices: Sequence[int]) -> tuple[torch.Tensor, ...]:
        index = torch.as_tensor(indices)
        if (
            self.images.is_cuda
        ):  # pinned + non_blocking: a pageable host→GPU copy would wait for the GPU's queue
            index = index.pin_memory().to(self.images.device, non_blocking=True)
        # index_select copies whole 2,304-byte rows: ~15x faster than images[index] (a per-element gather) on
        # CPU
        images = self.images.index_select(0, index)
        if self.transform is not None:  # straightforward path: one albumentations call per sample
            images = torch.from_numpy(self.transform.batch(images[:, 0].numpy())).unsqueeze(1)
        if self.targets is None:
            return images, self.labels.index_select(0, index)
        return images, self.labels.index_select(0, index), self.targets.index_select(0, index)


def _batch_is_ready(batch):
    """``__getitems__`` already returns a collated batch; the DataLoader's collate step must leave it
    alone."""
    return batch


class FERDataModule(pl.LightningDataModule):
    """Splits: train = Training, val = PublicTest ("public", used for model selection), test = PrivateTest.

    ``val_splits=[public, private]`` also validates on PrivateTest, as the notebook did (logged separately).
    Augmentation is a :class:`BatchAugment` (applied to whole batches on the training device, the default) or
    an :class:`AlbumentationsAugment` (applied per sample in the dataset). ``teacher_targets`` (a file from
    ``scripts/teacher_targets.py``) adds the teachers' probabilities as a third element of every training
    batch; ``vote_targets`` adds the source's own per-face label distributions (FER+ votes) the same way.
    ``class_set`` names the classes the source labels with (:data:`~fer_lightning.emotions.CLASS_SETS`): the
    configs size the model's output by it, and loading checks that the source agrees.
    """

    def __init__(
        self,
        source: Callable[[], FERArrays],
        augmentation: BatchAugment | AlbumentationsAugment | None = None,
        batch_size: int = 128,
        eval_batch_size: int = 512,
        val_splits: Sequence[str] = ("public",),
        test_split: str = "private",
        num_workers: int = 0,
        pin_memory: bool = False,
        keep_on_device: bool = True,
        teacher_targets: str | None = None,
        vote_targets: bool = False,
        class_set: str = "fer2013",
    ) -> None:
        super().__init__()
        unknown = [s for s in [*val_splits, test_split] if s not in SPLITS]
        if unknown or not val_splits:
            raise ValueError(
                f"val_splits/test_split must be non-empty names from {SPLITS}, got {unknown or val_splits}"
            )
        self.source, self.augmentation = source, augmentation
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        self._val_splits, self.test_split = tuple(val_splits), test_split
        self.num_workers, self.pin_memory, self.keep_on_device = num_workers, pin_memory, keep_on_device
        if class_set not in CLASS_SETS:
            raise ConfigError(f"data.class_set must be one of {sorted(CLASS_SETS)}, got {class_set!r}")
        if teacher_targets and vote_targets:
            raise ConfigError("data.teacher_targets and data.vote_targets both supply soft targets: pick one")
        self._teacher_targets, self.vote_targets, self.class_set = teacher_targets, vote_targets, class_set
        self.arrays: FERArrays | None = None
        self.tensors: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self.train_targets: torch.Tensor | None = None

    # Read-only: FERClassifier names its validation metrics and checks its distillation setup by them.
    @property
    def val_splits(self) -> tuple[str, ...]:
        """Split names of the validation dataloaders, in order; the first is the selection split."""
        return self._val_splits

    @property
    def teacher_targets(self) -> str | None:
        """The teacher-targets file whose probabilities join every training batch (``None``: labels only)."""
        return self._teacher_targets

    @property
    def soft_targets(self) -> str | None:
        """Where the third element of training batches comes from (``None``: labels only): the teacher-targets
        file, or the data's vote distributions."""
        return self._teacher_targets or ("the FER+ vote distributions" if self.vote_targets else None)

    @property
    def classes(self) -> tuple[str, ...]:
        """The class names the labels index, in label-id order."""
        return CLASS_SETS[self.class_set]

    def prepare_data(self) -> None:
        self.source()  # parse once and fill the cache before DDP ranks start reading it

    def setup(self, stage: str | None = None) -> None:
        """Load the data once, then check the splits that Lightning's ``stage`` reads (``None``: no check)."""
        if not self.tensors:
            self._load()
        self._check_splits(stage)
        if stage == "fit" and self._distributed() and self.trainer.global_rank > 0:
            # augmentation draws from the global generators: each rank needs its own (a resumed fit then
            # restores every rank's saved states, see callbacks.RngStateCheckpoint)
            reseed_for_rank(self.trainer.global_rank)

    def check_stage(self, stage: str) -> None:
        """Refuse a stage whose splits have no rows, before any trainer exists (e.g. the test split before a
        fit that would otherwise train for hours and then fail); reads the arrays only, so tensors still go to
        the trainer's device later."""
        self._arrays()
        self._check_splits(stage)

    def _arrays(self) -> FERArrays:
        if self.arrays is None:
            arrays = self.source()
            if tuple(arrays.classes) != self.classes:
                raise ConfigError(
                    f"{arrays.origin or self.source!r} labels the classes {list(arrays.classes)} but "
                    f"data.class_set={self.class_set} means {list(self.classes)}: set data.class_set to match"
                )
            if self.vote_targets and arrays.votes is None:
                raise ConfigError(
                    f"data.vote_targets=true needs a source with per-face vote distributions (data=ferplus); "
                    f"{arrays.origin or self.source!r} has none"
                )
            self.arrays = arrays
            log.info("FER data: %d faces, class counts per split %s", len(self.arrays), self.arrays.counts())
        return self.arrays

    def _load(self) -> None:
        arrays = self._arrays()
        device = self._storage_device()
        for name in SPLITS:
            images, labels = arrays.split(name)
            self.tensors[name] = (
                torch.from_numpy(images).unsqueeze(1).to(device),
                torch.from_numpy(labels).to(device),
            )
        if self.vote_targets:  # the annotators' distributions, as the FER+ probability mode trains on
            self.train_targets = torch.from_numpy(arrays.split_votes("train")).to(device)
            log.info("training on the vote distributions of the %d Training faces", len(self.train_targets))
        if self.teacher_targets:
            self.train_targets = load_teacher_targets(
                self.teacher_targets, self.tensors["train"][1], len(self.classes)
            ).to(device)
            log.info(
                "distilling from %s (teacher ensemble probabilities for the Training faces)",
                self.teacher_targets,
            )

    def _check_splits(self, stage: str | None) -> None:
        """Refuse a stage whose splits have no rows: PyTorch would fail with 'num_samples=0' (no Training
        rows), or a run would end without validation or test metrics. Only the stage's own splits are checked,
        so a file of PrivateTest rows alone can still be evaluated."""
        if stage == "fit":
            self._require_rows(
                "train", "to train on", "use data with Training rows, or only evaluate it (scripts/eval.py)"
            )
        if stage in ("fit", "validate"):
            for split in self.val_splits:
                self._require_rows(
                    split,
                    f"to validate on (data.val_splits={list(self.val_splits)})",
                    "add them, or list only splits the data has in data.val_splits",
                )
        if stage in ("test", "predict"):
            self._require_rows(
                self.test_split,
                f"to test on (data.test_split={self.test_split})",
                "add them, set data.test_split to a split the data has, or pass test=false",
            )

    def _require_rows(self, split: str, purpose: str, remedy: str) -> None:
        if not (self.arrays.splits == SPLITS.index(split)).any():
            origin = self.arrays.origin or repr(self.source)
            raise FERDataError(f"{origin}: no {SPLIT_TO_USAGE[split]} rows {purpose}: {remedy}")

    def _storage_device(self) -> torch.device:
        """The GPU when ``keep_on_device`` (FER2013 is 83 MB: it lives there and batches never cross PCIe)."""
        trainer = self.trainer
        if self.keep_on_device and trainer is not None and trainer.strategy.root_device.type == "cuda":
            if isinstance(
                self.augmentation, AlbumentationsAugment
            ):  # per-sample numpy transforms need host data
                log.warning("keep_on_device is ignored with albumentations augmentation: it runs on the CPU")
                return torch.device("cpu")
            return trainer.strategy.root_device
        return torch.device("cpu")

    def faces(self, split: str, limit: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """uint8 faces (N, 1, 48, 48) and int64 labels (N,) of one split, on the CPU (the first ``limit``
        rows): the one way evaluation, callbacks and the refine tools read a split's faces."""
        self.setup()
        images, labels = self.tensors[split]
        stop = None if limit is None else int(limit)
        return images[:stop].cpu(), labels[:stop].cpu()

    def votes(self, split: str, limit: int | None = None) -> torch.Tensor | None:
        """The vote distributions (N, classes) of the faces :meth:`faces` returns, in the same order; ``None``
        when the source has none (FER2013's single labels)."""
        votes = self._arrays().split_votes(split)
        return None if votes is None else torch.from_numpy(votes[: None if limit is None else int(limit)])

    def dataset(self, split: str, train: bool = False) -> InMemoryFaces:
        self.setup()
        images, labels = self.tensors[split]
        per_sample = (
            self.augmentation if train and isinstance(self.augmentation, AlbumentationsAugment) else None
        )
        return InMemoryFaces(images, labels, per_sample, self.train_targets if train else None)

    def dataloader(self, split: str, train: bool = False) -> DataLoader:
        dataset = self.dataset(split, train)
        workers = 0 if dataset.images.is_cuda else self.num_workers
        sampler, generator = None, None
        if (
            train and not self._distributed()
        ):  # under DDP Lightning's DistributedSampler shuffles per (seed, epoch)
            generator = torch.Generator()
            epoch = (
                self.trainer.current_epoch if self.trainer is not None else 0
            )  # a resumed fit starts at epoch k
            sampler = EpochShuffle(len(dataset), torch.initial_seed(), epoch, loader_generator=generator)
        return DataLoader(
            dataset,
            batch_size=self.batch_size if train else self.eval_batch_size,
            shuffle=train and sampler is None,
            sampler=sampler,
            generator=generator,
            collate_fn=_batch_is_ready,
            num_workers=workers,
            persistent_workers=workers > 0,
            pin_memory=self.pin_memory and not dataset.images.is_cuda,
        )

    def _distributed(self) -> bool:
        return self.trainer is not None and self.trainer.world_size > 1

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
