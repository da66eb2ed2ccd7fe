"""Training on FER+ labels: the model is sized by the data's classes, fine-tunes from the 7-class FER2013
weights with a fresh 8-class head, and its checkpoints, weights files and Predictor carry the FER+ names."""

from __future__ import annotations

import pytest
import torch
from omegaconf import open_dict

from fer_lightning.checkpoints import (
    DEFAULT_WEIGHTS,
    export_weights,
    load_matching_weights,
    load_network,
    network_parts,
)
from fer_lightning.emotions import FERPLUS_EMOTIONS
from fer_lightning.errors import CheckpointMismatchError, ConfigError
from fer_lightning.models.mini_xception import MiniXception
from fer_lightning.models.vgg import VGGNet
from fer_lightning.predict import Predictor
from tests.conftest import TINY_TRAIN, compose_config


def _train_cfg(tmp_path, cache_dir, *overrides):
    cfg = compose_config("train", [*TINY_TRAIN, "test=false", "logger=csv", *overrides], tmp_path)
    with open_dict(cfg):
        cfg.paths.cache_dir = str(cache_dir)
    return cfg


def test_network_output_follows_the_data_class_set(tmp_path):
    assert compose_config("train", [], tmp_path).model.net.num_classes == 7
    assert compose_config("train", ["data=ferplus"], tmp_path).model.net.num_classes == 8
    assert (
        compose_config("train", ["data=ferplus", "data.class_set=fer2013"], tmp_path).model.net.num_classes
        == 7
    )
    vgg = compose_config("train", ["experiment=ferplus", "model=vgg"], tmp_path)
    assert vgg.model.net.num_classes == 8 and vgg.data.source.classes == "ferplus"


def test_fine_tuning_loads_every_tensor_but_the_resized_head():
    shipped = network_parts(None)[1]
    net = MiniXception(num_classes=8)
    fresh_head = net.classifier.weight.detach().clone()
    assert load_matching_weights(net, DEFAULT_WEIGHTS) == ["classifier.weight", "classifier.bias"]
    state = net.state_dict()
    assert all(torch.equal(state[k], v) for k, v in shipped.items() if not k.startswith("classifier."))
    assert torch.equal(net.classifier.weight, fresh_head)
    with pytest.raises(CheckpointMismatchError, match="beyond its output layer"):
        load_matching_weights(VGGNet(num_classes=8), DEFAULT_WEIGHTS)


def test_a_network_with_the_wrong_output_count_stops_at_fit_start(tmp_path, cache_dir):
    from fer_lightning.tasks import train

    cfg = _train_cfg(tmp_path, cache_dir, "data=ferplus", "model.net.num_classes=7")
    with pytest.raises(ConfigError, match=r"7 outputs but data.class_set=ferplus labels 8 classes"):
        train.run(cfg)


def test_short_ferplus_run_carries_the_ferplus_classes_to_weights_and_predictor(
    tmp_path, cache_dir, jaffe_dir
):
    from fer_lightning.tasks import train

    cfg = _train_cfg(tmp_path, cache_dir, "experiment=ferplus")
    train.run(cfg)
    ckpt = tmp_path / "checkpoints" / "last.ckpt"
    assert torch.load(ckpt, weights_only=True)["classes"] == list(FERPLUS_EMOTIONS)
    weights = export_weights(ckpt, tmp_path / "ferplus.pt")
    net, classes = load_network(weights)
    assert classes == list(FERPLUS_EMOTIONS) and net.num_classes == 8
    predictor = Predictor.from_checkpoint(weights)
    face = predictor.predict(next(jaffe_dir.glob("*.tiff")))[0]
    assert predictor.classes == list(face.probabilities) == list(FERPLUS_EMOTIONS)


@pytest.mark.slow
def test_probability_mode_trains_on_the_vote_distributions(tmp_path, cache_dir, caplog):
    from fer_lightning.tasks import train

    caplog.set_level("INFO")
    train.run(_train_cfg(tmp_path, cache_dir, "experiment=ferplus_probability"))
    assert "training on the vote distributions of the 28389 Training faces" in caplog.text
    assert torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)["classes"] == list(
        FERPLUS_EMOTIONS
    )
    # half the setup is refused before any batch: distributions without a weight for them
    with pytest.raises(ValueError, match="distillation needs both"):
        train.run(
            _train_cfg(
                tmp_path / "b", cache_dir, "experiment=ferplus_probability", "model.distillation_weight=0"
            )
        )
