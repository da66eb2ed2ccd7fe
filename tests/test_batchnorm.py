"""Precise BatchNorm: statistics re-estimated on clean faces, in checkpoints, in the training callback, in the
script."""

from pathlib import Path

import pytest
import torch
from omegaconf import open_dict
from torch import nn

from fer_lightning.checkpoints import DEFAULT_WEIGHTS, CheckpointMismatchError, load_network
from fer_lightning.checkpoints import write_network_state
from fer_lightning.data.fer2013 import load_fer2013_csv
from fer_lightning.inference import predict_log_probs, to_model_input
from fer_lightning.models.mini_xception import MiniXception
from fer_lightning.refine.precise_bn import fixed_subset, recalibrate_batchnorm
from fer_lightning.refine.scoring import select_with_precise_bn
from fer_lightning.tasks.train import run as train
from tests.conftest import TINY_TRAIN, assert_one_line_error, compose_config


@pytest.fixture(scope="module")
def real_faces(data_dir, cache_dir):
    """4,096 real Training faces (the statistics) and the real PublicTest split (the judge)."""
    arrays = load_fer2013_csv(data_dir / "fer2013" / "fer2013.csv.gz", cache_dir)
    train_images = fixed_subset(torch.from_numpy(arrays.split("train")[0]), 4096)
    public_images, public_labels = (torch.from_numpy(a) for a in arrays.split("public"))
    return train_images, public_images, public_labels


def public_acc(net, faces) -> float:
    _, images, labels = faces
    return float((predict_log_probs(net, images, batch_size=256).argmax(1) == labels).float().mean())


def bn_layers(net):
    return [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]


def test_recalibration_measures_the_population_statistics():
    torch.manual_seed(0)
    conv = nn.Conv2d(1, 4, 3)
    net = nn.Sequential(conv, nn.BatchNorm2d(4, momentum=0.5))
    images = torch.randint(0, 256, (512, 48, 48), dtype=torch.uint8)
    recalibrate_batchnorm(net.eval(), images, batch_size=128)
    with torch.no_grad():
        features = conv(to_model_input(images.unsqueeze(1)))
    bn = net[1]
    assert torch.allclose(bn.running_mean, features.mean((0, 2, 3)), atol=1e-5)
    assert torch.allclose(
        bn.running_var, features.var((0, 2, 3)), rtol=0.02
    )  # mean of 4 equal batches' variances
    assert not net.training and bn.momentum == 0.5  # mode and momentum restored


def test_precise_bn_recovers_the_shipped_network_from_wrong_statistics_on_real_faces(real_faces):
    net, _ = load_network(None)
    shipped = public_acc(net, real_faces)
    for bn in bn_layers(net):
        bn.reset_running_stats()  # mean 0, variance 1: what a network knows before it has seen a face
    broken = public_acc(net, real_faces)
    recalibrate_batchnorm(net, real_faces[0])
    assert broken < shipped - 0.2
    assert public_acc(net, real_faces) == pytest.approx(shipped, abs=0.01)  # 4,096 faces suffice


def test_a_recalibrated_checkpoint_keeps_everything_else(tiny_checkpoint, tiny_weights, tmp_path):
    for source in (tiny_checkpoint, tiny_weights):
        net, _ = load_network(source)
        for bn in bn_layers(net):
            bn.running_mean.add_(1.0)
        out = write_network_state(source, net, tmp_path / f"new{source.suffix}")
        old, new = (torch.load(p, weights_only=True) for p in (source, out))
        assert set(old) == set(new) and old.get("epoch") == new.get("epoch")
        reloaded, _ = load_network(out)
        assert all(
            torch.equal(a, b) for a, b in zip(reloaded.state_dict().values(), net.state_dict().values())
        )
    with pytest.raises(CheckpointMismatchError, match="other keys"):
        write_network_state(tiny_weights, MiniXception(num_classes=7, stem_width=16), tmp_path / "x.pt")


def test_selection_on_publictest_prefers_recalibrated_statistics(real_faces, tmp_path):
    net, _ = load_network(None)
    for bn in bn_layers(net):
        bn.running_var.mul_(4.0)  # stale statistics, as after training on harder augmented batches
    stale = write_network_state(DEFAULT_WEIGHTS, net, tmp_path / "stale.pt")  # a candidate checkpoint
    train_images, public_images, public_labels = real_faces
    path, metrics = select_with_precise_bn(net, [stale], train_images, public_images, public_labels)
    assert path == tmp_path / "stale_precise_bn.pt" and metrics["precise_bn/recalibrated"] == 1.0
    assert metrics["precise_bn/public_loss_chosen"] < metrics["precise_bn/public_loss_selected"]
    chosen, _ = load_network(path)
    assert public_acc(chosen, real_faces) == pytest.approx(metrics["precise_bn/public_acc_chosen"], abs=1e-6)


def test_callback_checkpoints_carry_the_statistics_of_their_averaged_weights(tmp_path, cache_dir, data_dir):
    # precise_bn listed before ema on purpose: it must see the averaged weights whatever the order
    cfg = compose_config(
        "train",
        [
            "callbacks=[default,precise_bn,ema]",
            "model.optimizer.lr=0.5",
            "callbacks.precise_bn.num_faces=256",
            *TINY_TRAIN,
            "test=false",
        ],
        tmp_path,
    )
    with open_dict(cfg):
        cfg.paths.cache_dir = str(cache_dir)
    train(cfg)
    ckpt = torch.load(next((tmp_path / "checkpoints").glob("epoch_*.ckpt")), weights_only=True)
    faces = fixed_subset(
        torch.from_numpy(
            load_fer2013_csv(data_dir / "fer2013" / "fer2013.csv.gz", cache_dir).split("train")[0]
        ),
        256,
    )

    def recalibrated_stats(state):
        net = MiniXception(num_classes=7)
        net.load_state_dict({k.removeprefix("net."): v for k, v in state.items() if k.startswith("net.")})
        recalibrate_batchnorm(net, faces)
        return torch.cat([bn.running_mean for bn in bn_layers(net)])

    saved = torch.cat([v for k, v in ckpt["state_dict"].items() if k.endswith("running_mean")])
    assert (saved - recalibrated_stats(ckpt["state_dict"])).abs().max() < 1e-4
    assert (
        saved - recalibrated_stats(ckpt["current_model_state"])
    ).abs().max() > 1e-2  # not the raw weights' ones


def test_finetune_experiment_is_the_ema_recipe_with_milder_augmentation_and_precise_bn(tmp_path):
    cfg = compose_config("train", ["experiment=fer2013_finetune"], tmp_path)
    ema = compose_config("train", ["experiment=fer2013_ema"], tmp_path)
    assert Path(cfg.init_weights) == DEFAULT_WEIGHTS  # never silently from scratch; a fresh clone has these
    assert {"ema", "precise_bn"} <= set(cfg.callbacks) and cfg.data.augmentation.erase_p == 0
    assert (
        cfg.model.optimizer.lr < ema.model.optimizer.lr
        and cfg.callbacks.model_checkpoint.monitor == "val/loss"
    )
    assert cfg.callbacks.model_checkpoint.save_top_k == -1  # every epoch, for scripts/soup.py to pick from


def test_script_names_a_missing_or_absent_checkpoint_in_one_line(tmp_path):
    for checkpoints, message in (
        (f"[{tmp_path / 'missing.ckpt'}]", "error: checkpoint not found"),
        ("[]", "error: precise BN needs at least one checkpoint"),
    ):
        assert_one_line_error(
            "precise_bn", message, f"checkpoints={checkpoints}", f"hydra.run.dir={tmp_path}"
        )
