"""End-to-end training through the real configs on the real FER2013 (a few batches per stage)."""

import os
import re
from pathlib import Path

import hydra
import pytest
import pytorch_lightning as pl
import torch
from omegaconf import open_dict

from fer_lightning.tasks import train
from fer_lightning.utils.tensorboard import read_scalars
from tests.conftest import ROOT, TINY_TRAIN, compose_config, run_script


def tensorboard_scalars(run_dir: Path) -> dict[str, list[float]]:
    """Scalar values per tag, read back from the run's real event files."""
    return {tag: [v for _, v in points] for tag, points in read_scalars(run_dir / "tensorboard").items()}


def test_smoke_run_on_real_fer2013_writes_checkpoints_and_tensorboard(train_cfg, tmp_path):
    metrics = train.run(train_cfg)
    ckpts = tmp_path / "checkpoints"
    assert (ckpts / "last.ckpt").is_file() and (ckpts / "epoch_000.ckpt").is_file()
    scalars = tensorboard_scalars(tmp_path)
    for tag in ("train/loss", "train/acc", "val/loss", "val/acc", "test/loss", "test/acc", "train/lr"):
        assert tag in scalars, f"{tag} missing from {sorted(scalars)}"
    assert scalars["train/lr"] == [pytest.approx(0.01)]
    assert 0.0 <= metrics["test/acc"] <= 1.0 and metrics["val/loss"] > 0
    ckpt = torch.load(ckpts / "last.ckpt", weights_only=True)  # plain data only: safe to load
    assert ckpt["hyper_parameters"]["net_config"]["_target_"].endswith("MiniXception")
    assert ckpt["classes"][0] == "angry"


def test_resume_from_last_checkpoint_continues_training(train_cfg, tmp_path):
    train.run(train_cfg)
    second = tmp_path / "resumed"
    with open_dict(train_cfg):
        train_cfg.ckpt_path = str(tmp_path / "checkpoints" / "last.ckpt")
        train_cfg.trainer.max_epochs = 2
        train_cfg.paths.output_dir = str(second)
    train.run(train_cfg)
    resumed = torch.load(second / "checkpoints" / "last.ckpt", weights_only=True)
    assert resumed["global_step"] == 6  # 3 steps restored + 3 new ones
    assert len(tensorboard_scalars(second)["train/loss"]) == 1  # only the second epoch ran


def test_two_validation_splits_log_public_and_private(train_cfg, tmp_path):
    with open_dict(train_cfg):
        train_cfg.data.val_splits = ["public", "private"]
    train.run(train_cfg)
    scalars = tensorboard_scalars(tmp_path)
    for tag in ("val/public/loss", "val/public/acc", "val/private/loss", "val/private/acc", "val/loss"):
        assert tag in scalars
    assert scalars["val/loss"] == scalars["val/public/loss"]  # selection is always on PublicTest
    assert scalars["val/public/loss"] != scalars["val/private/loss"]


def test_seed_experiment_is_the_notebook_literally(tmp_path):
    cfg = compose_config("train", ["experiment=seed"], tmp_path)
    assert cfg.trainer.max_epochs == 300 and cfg.model.net.bn_momentum == 0.99
    assert list(cfg.data.val_splits) == ["public", "private"]
    assert cfg.callbacks.model_checkpoint.monitor == "val/public/loss"
    assert cfg.callbacks.model_checkpoint_private.monitor == "val/private/loss"
    assert cfg.model.optimizer.lr == 0.01 and cfg.model.optimizer.weight_decay == 5e-3
    assert (cfg.model.scheduler.start, cfg.model.scheduler.every, cfg.model.scheduler.rate) == (80, 5, 0.9)


def test_seed_experiment_runs_with_a_checkpoint_per_split(tmp_path, cache_dir, data_dir):
    cfg = compose_config("train", ["experiment=seed", *TINY_TRAIN], tmp_path)
    with open_dict(cfg):
        cfg.paths.cache_dir = str(cache_dir)
    train.run(cfg)
    names = sorted(p.name for p in (tmp_path / "checkpoints").glob("*.ckpt"))
    assert names == ["last.ckpt", "private_epoch_000.ckpt", "public_epoch_000.ckpt"]


def test_gpu_command_composes_and_runs_where_a_gpu_exists(tmp_path, cache_dir):
    cfg = compose_config("train", ["model=mini_xception", "trainer.accelerator=gpu"], tmp_path)
    assert cfg.trainer.accelerator == "gpu" and cfg.trainer.devices == 1
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device here: composed only (training on GPU is checked where one exists)")
    with open_dict(cfg):
        cfg.paths.cache_dir = str(cache_dir)
        cfg.trainer.update(max_epochs=1, limit_train_batches=3, limit_val_batches=2, limit_test_batches=2)
    assert "test/acc" in train.run(cfg)


def test_multirun_sweep_creates_one_run_dir_per_value(tmp_path, cache_dir):
    env = {**os.environ, "FER_CACHE_DIR": str(cache_dir)}
    done = run_script(
        "train",
        "-m",
        "model.optimizer.lr=0.01,0.05",
        f"paths.log_dir={tmp_path}",
        "test=false",
        *TINY_TRAIN,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    sweeps = list((tmp_path / "train" / "multiruns").iterdir())
    assert len(sweeps) == 1
    # job folders carry what they sweep (fer_lightning.experiments.naming)
    runs = sorted(p.name for p in sweeps[0].iterdir() if p.is_dir() and not p.name.startswith("."))
    assert runs == ["0_model.optimizer.lr=0.01", "1_model.optimizer.lr=0.05"]
    for run in runs:
        assert (sweeps[0] / run / "checkpoints" / "last.ckpt").is_file()
    assert "lr: 0.05" in (sweeps[0] / runs[1] / ".hydra" / "config.yaml").read_text()
    assert (sweeps[0] / "summary.md").read_text().count("| completed |") == 2


@pytest.mark.slow
def test_ddp_on_two_cpu_processes(tmp_path, cache_dir):
    """trainer=ddp with gloo: Lightning re-launches the script per rank, so it must run as a subprocess."""
    env = {**os.environ, "FER_CACHE_DIR": str(cache_dir)}
    done = run_script(
        "train", "trainer=ddp", "trainer.devices=2", f"hydra.run.dir={tmp_path}", *TINY_TRAIN, env=env
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "checkpoints" / "last.ckpt").is_file()
    assert torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 3


def test_optuna_study_is_stored_and_resumes_where_it_stopped(tmp_path, cache_dir):
    """2 trials, stop, 2 more: the SQLite study beside the sweeps holds 4, and each sweep saves Optuna's
    plots and the summary of its own jobs."""
    import optuna

    env = {**os.environ, "FER_CACHE_DIR": str(cache_dir)}
    args = [
        "hparams_search=optuna",
        "hydra.sweeper.n_trials=2",
        "hydra.sweeper.sampler.n_startup_trials=2",
        f"paths.log_dir={tmp_path}",
        "test=false",
        "trainer.limit_train_batches=2",
        "trainer.limit_val_batches=1",
        *[o for o in TINY_TRAIN if "limit_" not in o],
    ]
    for _ in range(2):
        done = run_script("train", *args, env=env)
        assert done.returncode == 0, done.stderr[-3000:]
    multiruns = tmp_path / "train" / "multiruns"
    study = optuna.load_study(study_name="fer_lightning", storage=f"sqlite:///{multiruns / 'optuna.db'}")
    assert len([t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]) == 4
    sweeps = sorted(p for p in multiruns.iterdir() if p.is_dir())
    assert len(sweeps) == 2
    best = (sweeps[-1] / "optimization_results.yaml").read_text()
    assert "best_params" in best and "model.optimizer.lr" in best and "best_value" in best
    assert (sweeps[-1] / "optuna_history.png").is_file() and (sweeps[-1] / "optuna_importance.png").is_file()
    assert (sweeps[-1] / "summary.md").read_text().count("| completed |") == 2


def test_last_checkpoint_is_the_last_epoch_even_when_the_best_is_earlier(train_cfg, tmp_path):
    """lr 0 and frozen BatchNorm statistics: every epoch validates identically, so epoch 0 stays the best."""
    with open_dict(train_cfg):
        train_cfg.trainer.max_epochs = 2
        train_cfg.model.optimizer.lr = 0.0
        train_cfg.model.net.bn_momentum = 0.0
    train.run(train_cfg)
    ckpts = tmp_path / "checkpoints"
    assert sorted(p.name for p in ckpts.iterdir()) == ["epoch_000.ckpt", "last.ckpt"]
    assert torch.load(ckpts / "last.ckpt", weights_only=True)["global_step"] == 6  # 2 epochs of 3 batches


def test_weight_averaging_selects_checkpoints_and_tests_on_the_averaged_weights(
    tmp_path, cache_dir, data_dir
):
    # a large lr moves the raw weights far in 3 steps; the average (decay 0.999) barely leaves the initial
    # weights
    cfg = compose_config(
        "train", ["callbacks=[default,ema]", "model.optimizer.lr=0.5", *TINY_TRAIN], tmp_path
    )
    with open_dict(cfg):
        cfg.paths.cache_dir = str(cache_dir)
    metrics = train.run(cfg)
    ckpt = torch.load(next((tmp_path / "checkpoints").glob("epoch_*.ckpt")), weights_only=False)
    averaged, raw = ckpt["state_dict"], ckpt["current_model_state"]
    assert any(not torch.equal(averaged[k], raw[k]) for k in averaged)

    def test_loss(state_dict) -> float:
        model = train.build_model(cfg)
        model.load_state_dict(state_dict)
        trainer = pl.Trainer(accelerator="cpu", limit_test_batches=2, logger=False, enable_progress_bar=False)
        return trainer.test(model, datamodule=hydra.utils.instantiate(cfg.data), verbose=False)[0][
            "test/loss"
        ]

    assert metrics["test/loss"] == pytest.approx(test_loss(averaged), rel=1e-5)
    assert metrics["test/loss"] != pytest.approx(test_loss(raw), rel=1e-2)


@pytest.mark.parametrize("name", sorted(p.stem for p in (ROOT / "conf" / "experiment").glob("*.yaml")))
def test_every_experiment_composes_and_selects_on_publictest(name, tmp_path):
    cfg = compose_config("train", [f"experiment={name}"], tmp_path)
    assert cfg.callbacks.model_checkpoint.monitor in (
        "val/loss",
        "val/public/loss",
    )  # seed also validates private
    assert cfg.data.val_splits[0] == "public"
    assert cfg.data.test_split == "private"
    assert cfg.trainer.max_epochs >= 100 or cfg.init_weights  # second stages fine-tune trained weights


def test_ema_experiment_is_the_fer2013_small_recipe_plus_weight_averaging(tmp_path):
    ema = compose_config("train", ["experiment=fer2013_ema"], tmp_path)
    small = compose_config("train", ["experiment=fer2013_small"], tmp_path)
    assert ema.callbacks.ema._target_.endswith("callbacks.EMA") and "ema" not in small.callbacks
    assert ema.model.optimizer == small.model.optimizer and ema.data.augmentation == small.data.augmentation


def test_help_lists_trains_own_groups_and_every_option_in_conf():
    """conf/hydra/train.yaml writes the group list by hand (Hydra's would add the detector and labels groups
    that train.py refuses): it must name exactly the options lying in conf/."""
    done = run_script("train", "--help")
    assert done.returncode == 0, done.stderr[-2000:]
    listing = done.stdout.split("== Config ==")[0]
    groups = dict(re.findall(r"^([a-z_/]+): (.+)$", listing, flags=re.MULTILINE))
    for group, options in groups.items():
        on_disk = sorted(
            p.stem for p in (ROOT / "conf" / group).glob("*.yaml") if p.stem != "default" or group != "data"
        )  # data/default.yaml holds the shared keys, not a data set
        assert options.split(", ") == on_disk, group
    assert {"callbacks", "data", "model", "trainer", "experiment", "debug"} <= set(groups)
    assert not {"detector", "labels"} & set(groups)
