"""Offline distillation: teacher targets from real checkpoints, the soft-label loss, fine-tuning from
weights."""

import json

import hydra
import pytest
import torch
import torch.nn.functional as F
from omegaconf import open_dict

from fer_lightning.checkpoints import DEFAULT_WEIGHTS, CheckpointMismatchError, load_network
from fer_lightning.data.datamodule import FERDataModule
from fer_lightning.data.fer2013 import load_fer2013_csv
from fer_lightning.data.teacher_targets import TeacherTargetsError, load_teacher_targets
from fer_lightning.models.classifier import FERClassifier
from fer_lightning.models.mini_xception import MiniXception
from fer_lightning.tasks.train import run as train
from tests.conftest import TINY_TRAIN, compose_config, run_script


@pytest.fixture(scope="module")
def real_targets(tmp_path_factory, cache_dir, data_dir):
    """Teacher targets for the real Training faces from the shipped weights, made by the real script."""
    out = tmp_path_factory.mktemp("teacher") / "targets.pt"
    result = run_script(
        "teacher_targets",
        f"checkpoints=[{DEFAULT_WEIGHTS}]",
        "tta=null",
        f"output={out}",
        f"hydra.run.dir={out.parent}",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return out, result.stdout


def train_labels(data_dir, cache_dir) -> torch.Tensor:
    return torch.from_numpy(
        load_fer2013_csv(data_dir / "fer2013" / "fer2013.csv.gz", cache_dir).split("train")[1]
    )


def test_teacher_targets_script_labels_the_real_training_faces(real_targets, data_dir, cache_dir):
    path, stdout = real_targets
    labels = train_labels(data_dir, cache_dir)
    probs = load_teacher_targets(path, labels)  # the file fits the real Training split
    assert probs.shape == (28709, 7)
    assert torch.allclose(probs.sum(1), torch.ones(len(probs)), atol=1e-4) and probs.min() >= 0
    meta = torch.load(path, weights_only=True)["meta"]
    assert meta["train/ensemble_acc"] == pytest.approx(
        float((probs.argmax(1) == labels).float().mean()), abs=1e-4
    )
    # one teacher without TTA scores PublicTest exactly as evaluation measured the shipped weights
    shipped = torch.load(DEFAULT_WEIGHTS, weights_only=True)["meta"]
    assert meta["public/ensemble_acc"] == pytest.approx(shipped["publictest_acc"], abs=1e-4)
    assert f"public/ensemble_acc {meta['public/ensemble_acc']}" in stdout


def test_a_targets_file_for_other_data_is_refused(real_targets, data_dir, cache_dir, tmp_path):
    path, _ = real_targets
    labels = train_labels(data_dir, cache_dir)
    with pytest.raises(TeacherTargetsError, match="for 28708 faces"):
        load_teacher_targets(path, labels[:-1])
    with pytest.raises(TeacherTargetsError, match="different labels"):
        load_teacher_targets(path, labels.roll(1))
    with pytest.raises(TeacherTargetsError, match="not found.*teacher_targets.py"):
        load_teacher_targets(tmp_path / "missing.pt", labels)
    (tmp_path / "junk.pt").write_text(json.dumps({"probs": 1}))
    with pytest.raises(TeacherTargetsError, match="not a teacher-targets file"):
        load_teacher_targets(tmp_path / "junk.pt", labels)


@torch.no_grad()
def test_distillation_loss_mixes_labels_and_teacher_probabilities():
    torch.manual_seed(0)
    model = FERClassifier(
        MiniXception(), optimizer=torch.optim.SGD, distillation_weight=0.7, channels_last=False
    )
    model.eval()  # fixed BatchNorm statistics: every call sees the same logits
    x, y = torch.randn(8, 1, 48, 48), torch.randint(0, 7, (8,))
    logits = model(x)
    uniform = torch.full((8, 7), 1 / 7)
    loss_onehot = model._step((x, y, F.one_hot(y, 7).float()))[0]
    loss_uniform = model._step((x, y, uniform))[0]
    assert loss_onehot == pytest.approx(float(F.cross_entropy(logits, y)), rel=1e-5)
    expected = 0.3 * F.cross_entropy(logits, y) + 0.7 * (-logits.log_softmax(1).mean(1)).mean()
    assert loss_uniform == pytest.approx(float(expected), rel=1e-5)
    assert model._step((x, y))[0] == pytest.approx(float(F.cross_entropy(logits, y)), rel=1e-5)  # validation


def test_distillation_trains_on_real_fer2013_with_targets_in_training_batches_only(
    real_targets, train_cfg, tmp_path
):
    """Same seed, same batches and augmentations, lr 0: only the teacher term can change the logged training
    loss."""
    with open_dict(train_cfg):
        train_cfg.model.optimizer.lr = 0.0
        train_cfg.test = False
    plain = train(train_cfg)["train/loss"]
    with open_dict(train_cfg):
        train_cfg.data.teacher_targets = str(real_targets[0])
        train_cfg.model.distillation_weight = 0.7
        train_cfg.paths.output_dir = str(tmp_path / "distilled")
    distilled = train(train_cfg)["train/loss"]
    assert distilled != pytest.approx(plain, rel=1e-3)

    datamodule: FERDataModule = hydra.utils.instantiate(train_cfg.data)
    assert len(next(iter(datamodule.train_dataloader()))) == 3  # images, labels, teacher probabilities
    assert len(next(iter(datamodule.val_dataloader()[0]))) == 2  # selection and report never see the teachers


def test_half_a_distillation_setup_is_a_clear_error(train_cfg):
    with open_dict(train_cfg):
        train_cfg.model.distillation_weight = 0.5
    with pytest.raises(ValueError, match="distillation needs both data.teacher_targets"):
        train(train_cfg)


def test_init_weights_starts_training_from_the_shipped_network(train_cfg, tmp_path):
    """lr 0 and frozen BatchNorm: the trained network must still be exactly the shipped one."""
    with open_dict(train_cfg):
        train_cfg.init_weights = str(DEFAULT_WEIGHTS)
        train_cfg.model.optimizer.lr = 0.0
        train_cfg.model.net.bn_momentum = 0.0
        train_cfg.test = False
    train(train_cfg)
    trained, _ = load_network(tmp_path / "checkpoints" / "last.ckpt")
    shipped, _ = load_network(DEFAULT_WEIGHTS)
    for (name, a), b in zip(trained.state_dict().items(), shipped.state_dict().values(), strict=True):
        assert name.endswith("num_batches_tracked") or torch.equal(a, b), name


def test_init_weights_from_another_architecture_is_refused(train_cfg, tiny_checkpoint, tmp_path):
    cfg = compose_config("train", ["model=vgg", *TINY_TRAIN], tmp_path)
    with open_dict(cfg):
        cfg.init_weights = str(tiny_checkpoint)
    with pytest.raises(CheckpointMismatchError, match="do not fit the network VGGNet"):
        train(cfg)


def test_distill_experiment_is_the_ema_recipe_trained_on_teacher_targets(tmp_path):
    distill = compose_config("train", ["experiment=fer2013_distill"], tmp_path)
    ema = compose_config("train", ["experiment=fer2013_ema"], tmp_path)
    assert distill.model.distillation_weight > 0 and distill.data.teacher_targets.endswith(".pt")
    assert distill.init_weights is None  # a student from scratch, not a fine-tune of a teacher
    assert (
        distill.data.augmentation == ema.data.augmentation and distill.model.optimizer == ema.model.optimizer
    )
    assert (
        distill.callbacks.ema == ema.callbacks.ema
        and distill.model.label_smoothing == ema.model.label_smoothing
    )


def test_teacher_targets_script_names_a_missing_teacher(tmp_path):
    result = run_script(
        "teacher_targets",
        f"checkpoints=[{tmp_path / 'nope.ckpt'}]",
        f"output={tmp_path / 'o.pt'}",
        f"hydra.run.dir={tmp_path}",
    )
    assert result.returncode == 1 and "checkpoint not found" in result.stderr and "nope.ckpt" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "o.pt").exists()
