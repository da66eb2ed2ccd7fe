"""The debug configs and the limits a user sets, on the real FER2013: debug=overfit memorises its batches, and
the figures computed after the fit score no more validation faces than the trainer's limits allow."""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import DictConfig, open_dict

from fer_lightning.experiments import figures
from tests.conftest import compose_config

QUIET = [
    "callbacks.rich_progress_bar=null",
    "callbacks.model_summary=null",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
]


def _config(overrides: list[str], output_dir: Path, cache_dir: Path) -> DictConfig:
    cfg = compose_config("train", overrides, output_dir)
    with open_dict(cfg):
        cfg.paths.cache_dir = str(cache_dir)
    return cfg


def _train(cfg: DictConfig) -> dict[str, float]:
    from fer_lightning.tasks import train  # imported here: collecting the other tests stays fast

    return train.run(cfg)


@pytest.fixture
def scored(monkeypatch) -> list[int]:
    """How many faces each post-fit call of ``predict_logits`` scored (the calls still run)."""
    sizes: list[int] = []
    real = figures.predict_logits

    def counting(net, images, *args, **kwargs):
        sizes.append(len(images))
        return real(net, images, *args, **kwargs)

    monkeypatch.setattr(figures, "predict_logits", counting)
    return sizes


def test_overfit_memorises_a_few_batches(tmp_path, cache_dir, data_dir):
    # a smaller task than the config's 3 batches of 128, learnt in fewer epochs: the test stays quick
    overrides = ["debug=overfit", "data.batch_size=16", "trainer.overfit_batches=2", "trainer.max_epochs=15"]
    cfg = _config([*overrides, *QUIET], tmp_path, cache_dir)
    # the same images every epoch (no augmentation) and nothing pulling the weights away from them
    assert cfg.data.augmentation is None and cfg.model.optimizer.weight_decay == 0
    metrics = _train(cfg)
    assert metrics["train/acc"] >= 0.95, metrics
    assert metrics["train/loss"] < 0.1, metrics


@pytest.mark.parametrize("selected_is_last", [True, False], ids=["reused", "recomputed"])
def test_post_fit_val_acc_scores_only_the_validated_faces(selected_is_last, train_cfg, scored, monkeypatch):
    """TINY_TRAIN (conftest) validates 2 batches of 64 faces. One epoch: the selected checkpoint is the one
    the last validation scored, so its val/acc is reused; otherwise it is recomputed on those 128 faces."""
    if not selected_is_last:
        monkeypatch.setattr(figures, "_last_validation_scored_selection", lambda trainer: False)
    metrics = _train(train_cfg)
    assert sum(scored) == (0 if selected_is_last else 2 * 64)
    # the same weights on the same faces, in exact fp32 both times
    assert metrics["selection/val_acc"] == pytest.approx(metrics["val/acc"], abs=1e-6)


def test_fast_dev_run_scores_one_validation_batch_after_the_fit(tmp_path, cache_dir, data_dir, scored):
    overrides = ["debug=fdr", "data.batch_size=32", "data.eval_batch_size=64", "test=false", *QUIET]
    metrics = _train(_config(overrides, tmp_path, cache_dir))
    assert 0 < sum(scored) <= 64  # fast_dev_run saves no checkpoint: recomputed, on its one batch
    assert metrics["selection/val_acc"] == pytest.approx(metrics["val/acc"], abs=1e-6)


def test_no_validation_means_no_post_fit_scoring(train_cfg, scored):
    with open_dict(train_cfg):
        train_cfg.trainer.limit_val_batches = 0
        train_cfg.callbacks.model_checkpoint = None  # it would monitor a val/loss that never comes
        train_cfg.test = False
    metrics = _train(train_cfg)
    assert sum(scored) == 0 and metrics["selection/val_acc"] != metrics["selection/val_acc"]  # NaN
