"""FERDataModule on the real FER2013: split sizes, batch format, augmentation on the training path only."""

import hydra
import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.demos.boring_classes import BoringModel

from fer_lightning.data.arrays import SPLITS, FERArrays
from fer_lightning.data.datamodule import FERDataModule
from fer_lightning.data.fer2013 import load_fer2013_csv
from fer_lightning.errors import FERDataError
from fer_lightning.data.transforms import AlbumentationsAugment, BatchAugment
from tests.conftest import compose_config


@pytest.fixture(scope="module")
def arrays(data_dir, cache_dir):
    return load_fer2013_csv(data_dir / "fer2013" / "fer2013.csv", cache_dir=cache_dir)


def test_splits_and_batches(arrays):
    dm = FERDataModule(lambda: arrays, augmentation=None, batch_size=64, val_splits=["public", "private"])
    dm.setup("fit")
    assert [len(dm.tensors[s][1]) for s in ("train", "public", "private")] == [28_709, 3_589, 3_589]
    images, labels = next(iter(dm.train_dataloader()))
    assert images.dtype == torch.uint8 and images.shape == (64, 1, 48, 48) and labels.dtype == torch.int64
    assert [len(dl.dataset) for dl in dm.val_dataloader()] == [3_589, 3_589]
    assert len(dm.test_dataloader().dataset) == 3_589
    x, y = dm.on_after_batch_transfer((images, labels), 0)
    assert x.dtype == torch.float32 and -1.0 <= x.min() and x.max() <= 1.0
    assert torch.equal(y, labels)


def test_eval_batches_are_the_rows_in_file_order(arrays):
    dm = FERDataModule(lambda: arrays, batch_size=16, eval_batch_size=16)
    images, labels = next(iter(dm.test_dataloader()))
    expected_images, expected_labels = arrays.split("private")
    assert torch.equal(images[:, 0], torch.from_numpy(expected_images[:16]))
    assert labels.tolist() == expected_labels[:16].tolist()


def test_batch_augment_changes_images_but_keeps_shape_and_range():
    torch.manual_seed(0)
    images = torch.randint(0, 256, (32, 1, 48, 48), dtype=torch.uint8)
    out = BatchAugment(erase_p=1.0)(images)
    assert out.shape == images.shape and out.dtype == torch.float32
    assert 0.0 <= out.min() and out.max() <= 255.0
    assert (out - images.float()).abs().mean() > 5
    identity = BatchAugment(max_shift=0, scale=(1, 1), max_rotation=0, hflip=0.0)(images)
    assert torch.allclose(identity, images.float(), atol=1e-3)
    flipped = BatchAugment(max_shift=0, scale=(1, 1), max_rotation=0, hflip=1.0)(images)
    assert torch.allclose(flipped, images.float().flip(-1), atol=1e-3)


@pytest.mark.parametrize("augmentation", ["batch", "albumentations", "none"])
def test_augmentation_configs_build_and_run(tmp_path, arrays, augmentation):
    cfg = compose_config("train", [f"data/augmentation={augmentation}"], tmp_path)
    dm = hydra.utils.instantiate(cfg.data, source=lambda: arrays)
    expected = {"batch": BatchAugment, "albumentations": AlbumentationsAugment, "none": type(None)}[
        augmentation
    ]
    assert isinstance(dm.augmentation, expected)
    images, labels = next(iter(dm.train_dataloader()))
    assert images.shape == (128, 1, 48, 48) and images.dtype == torch.uint8
    if augmentation == "albumentations":  # applied per sample inside the dataset
        idx = dm.train_dataloader().dataset
        raw = dm.tensors["train"][0][:8]
        assert not torch.equal(idx.__getitems__(list(range(8)))[0], raw)


def test_unknown_split_is_rejected(arrays):
    with pytest.raises(ValueError, match="val_splits"):
        FERDataModule(lambda: arrays, val_splits=["validation"])


def only(arrays: FERArrays, *splits: str) -> FERArrays:
    """The real rows of ``splits`` alone, as a CSV holding no other Usage would give."""
    keep = np.isin(arrays.splits, [SPLITS.index(s) for s in splits])
    return FERArrays(arrays.images[keep], arrays.labels[keep], arrays.splits[keep], origin="/data/part.csv")


def test_fitting_without_training_rows_is_one_clear_error(arrays):
    """Before: PyTorch's 'num_samples should be a positive integer value, but got num_samples=0'."""
    dm = FERDataModule(lambda: only(arrays, "public", "private"))
    trainer = pl.Trainer(
        accelerator="cpu",
        max_epochs=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    with pytest.raises(FERDataError) as err:
        trainer.fit(BoringModel(), datamodule=dm)
    assert str(err.value) == (
        "/data/part.csv: no Training rows to train on: use data with Training rows, "
        "or only evaluate it (scripts/eval.py)"
    )


@pytest.mark.parametrize(
    ("splits", "val_splits", "stage", "message"),
    [
        (
            ("train", "private"),
            ["public"],
            "fit",
            "no PublicTest rows to validate on (data.val_splits=['public'])",
        ),
        (("train", "public"), ["public", "private"], "fit", "no PrivateTest rows to validate on"),
        (("train", "private"), ["public"], "validate", "no PublicTest rows to validate on"),
        (("train", "public"), ["public"], "test", "no PrivateTest rows to test on (data.test_split=private)"),
        (("train", "public"), ["public"], "predict", "no PrivateTest rows to test on"),
    ],
    ids=[
        "fit-no-public",
        "fit-no-private-validation",
        "validate-no-public",
        "test-no-private",
        "predict-no-private",
    ],
)
def test_a_stage_whose_split_has_no_rows_is_refused(arrays, splits, val_splits, stage, message):
    """Before: fitting without PublicTest rows ran to the end, exit 0, without validation or test metrics."""
    dm = FERDataModule(lambda: only(arrays, *splits), val_splits=val_splits)
    with pytest.raises(FERDataError) as err:
        dm.setup(stage)
    assert str(err.value).startswith(f"/data/part.csv: {message}") and "\n" not in str(err.value)


def test_evaluation_only_data_needs_only_its_own_split(arrays):
    dm = FERDataModule(lambda: only(arrays, "private"))
    dm.setup("test")
    dm.setup()  # what dataset() and the offline scripts call
    assert len(dm.dataset("private")) == 3_589 and len(dm.dataset("train")) == 0
    with pytest.raises(FERDataError, match="no Training rows"):
        dm.setup("fit")


def test_fast_affine_grid_equals_torch_affine_grid():
    """BatchAugment's matmul grid (~50x cheaper on the CPU) must be F.affine_grid's, for any size and
    theta."""
    from torch.nn.functional import affine_grid as torch_affine_grid

    from fer_lightning.data.transforms import affine_grid

    torch.manual_seed(0)
    for n, h, w in [(128, 48, 48), (3, 44, 40), (1, 1, 5)]:
        theta = torch.randn(n, 2, 3)
        expected = torch_affine_grid(theta, [n, 1, h, w], align_corners=False)
        assert torch.allclose(affine_grid(theta, h, w), expected, atol=1e-5)
