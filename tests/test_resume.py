"""Reliability of training runs: the README's main command for a full epoch, kills and exact resumes, exit
codes, unique run folders. Real FER2013, real processes and real signals."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from omegaconf import open_dict

from fer_lightning.tasks import train
from fer_lightning.utils.tensorboard import read_scalars
from tests.conftest import ROOT, TINY_TRAIN, run_script

SHORT = [o for o in TINY_TRAIN if "limit_" not in o and "max_epochs" not in o] + [
    "trainer.limit_train_batches=20",
    "trainer.limit_val_batches=3",
    "trainer.limit_test_batches=3",
]


def env_with(cache_dir: Path) -> dict[str, str]:
    # PYTHONPATH: the signal callback lives in tests/, composed into the real script with
    # +callbacks.signal=...
    return {**os.environ, "FER_CACHE_DIR": str(cache_dir), "PYTHONPATH": str(ROOT)}


def final_state(run: Path) -> dict[str, torch.Tensor]:
    return torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)["state_dict"]


def scalars(run: Path) -> dict[str, list[tuple[int, float]]]:
    """Scalars per tag, one value per step (a resumed run re-logs nothing; duplicates would be a bug)."""
    return {tag: sorted(set(points)) for tag, points in read_scalars(run / "tensorboard").items()}


def test_readme_main_command_runs_a_full_epoch_on_real_fer2013(tmp_path, cache_dir, data_dir):
    """`python scripts/train.py` with its defaults (batch 128: the last Training batch holds 37 faces; torch's
    default thread count; channels_last) for one whole epoch, real PublicTest validation and PrivateTest
    test."""
    done = run_script(
        "train", "trainer.max_epochs=1", f"paths.log_dir={tmp_path}", env=env_with(cache_dir), timeout=1800
    )  # ~1 min on a quiet 2-core machine; far longer when it is shared
    assert done.returncode == 0, done.stderr[-3000:]
    (run,) = (tmp_path / "train" / "runs").iterdir()
    assert {p.name for p in (run / "checkpoints").iterdir()} == {"epoch_000.ckpt", "last.ckpt"}
    assert (
        torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 225
    )  # ceil(28709/128)
    logged = scalars(run)
    # better than chance (1/7): one epoch of the notebook's SGD from scratch is only just past it
    assert 1 / 7 < logged["test/acc"][-1][1] < 1.0 and logged["val/loss"][-1][1] > 0


def run_train(*overrides: str, cache_dir: Path) -> subprocess.CompletedProcess:
    return run_script("train", *SHORT, *overrides, env=env_with(cache_dir))


@pytest.mark.slow
@pytest.mark.parametrize(
    ("signal_name", "deterministic"), [("SIGTERM", True), ("SIGKILL", True), ("SIGKILL", False)]
)
def test_killed_and_resumed_run_equals_the_uninterrupted_run(
    signal_name, deterministic, tmp_path, cache_dir, data_dir
):
    common = [
        "trainer.max_epochs=4",
        f"trainer.deterministic={str(deterministic).lower()}",
        "data/augmentation=batch",
        "callbacks=[default,ema]",
    ]
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    assert run_train(*common, f"hydra.run.dir={whole}", cache_dir=cache_dir).returncode == 0

    signal_cb = (
        f"+callbacks.signal={{_target_:tests.signals.SignalAfterEpoch,epoch:1,signal_name:{signal_name}}}"
    )
    killed = run_train(*common, f"hydra.run.dir={parts}", signal_cb, cache_dir=cache_dir)
    assert killed.returncode != 0
    if signal_name == "SIGTERM":  # a clean stop: one line saying where to resume from
        assert killed.stderr.strip().splitlines()[-1].startswith("error: stopped by SIGTERM during epoch")
        assert "resume with ckpt_path=" in killed.stderr and "Traceback" not in killed.stderr
    assert torch.load(parts / "checkpoints" / "last.ckpt", weights_only=True)["epoch"] == 1

    # no hydra.run.dir: the resume continues in the folder that wrote the checkpoint
    resumed = run_train(
        *common,
        f"ckpt_path={parts / 'checkpoints' / 'last.ckpt'}",
        f"paths.log_dir={tmp_path}",
        cache_dir=cache_dir,
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "dirpath has changed" not in resumed.stderr
    assert not (tmp_path / "train").exists()  # nothing written to a new run folder
    assert (parts / ".hydra" / "overrides.yaml").read_text() != ""  # the original config is kept ...
    assert (
        len(list((parts / ".hydra").glob("resume_*/config.yaml"))) == 1
    )  # ... and the resume's saved beside it

    a, b = final_state(whole), final_state(parts)
    if deterministic:
        assert all(torch.equal(a[k], b[k]) for k in a)
    else:  # documented tolerance without deterministic kernels (docs/reliability.md)
        assert all(torch.allclose(a[k].float(), b[k].float(), rtol=1e-4, atol=1e-5) for k in a)
    sa, sb = scalars(whole), scalars(parts)
    for tag in ("val/loss", "val/acc", "test/acc", "train/loss"):
        assert [s for s, _ in sa[tag]] == [s for s, _ in sb[tag]], tag
        assert [v for _, v in sa[tag]] == pytest.approx(
            [v for _, v in sb[tag]], abs=0 if deterministic else 1e-4
        )
    best = {p.name for p in (parts / "checkpoints").glob("epoch_*.ckpt")}
    assert best == {p.name for p in (whole / "checkpoints").glob("epoch_*.ckpt")}  # the best score was kept


def test_resumed_fit_draws_the_same_shuffles_and_augmentations(train_cfg, tmp_path):
    """In process: 2 epochs straight vs 1 epoch + resume; identical weights (CPU kernels are
    deterministic)."""
    with open_dict(train_cfg):
        train_cfg.trainer.max_epochs = 2
        train_cfg.test = False
    train_cfg_whole = train_cfg.copy()
    with open_dict(train_cfg_whole):
        train_cfg_whole.callbacks.model_checkpoint.dirpath = str(tmp_path / "whole")
        train_cfg_whole.callbacks.model_checkpoint_last.dirpath = str(tmp_path / "whole")
    train.run(train_cfg_whole)
    with open_dict(train_cfg):
        train_cfg.trainer.max_epochs = 1
    train.run(train_cfg)
    with open_dict(train_cfg):
        train_cfg.trainer.max_epochs = 2
        train_cfg.ckpt_path = str(tmp_path / "checkpoints" / "last.ckpt")
    train.run(train_cfg)
    a = torch.load(tmp_path / "whole" / "last.ckpt", weights_only=True)["state_dict"]
    b = final_state(tmp_path)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_sigterm_saves_nothing_new_and_exits_non_zero_with_where_to_resume(tmp_path, cache_dir, data_dir):
    signal_cb = "+callbacks.signal={_target_:tests.signals.SignalAfterEpoch,epoch:0,signal_name:SIGTERM}"
    done = run_train("trainer.max_epochs=3", f"hydra.run.dir={tmp_path}", signal_cb, cache_dir=cache_dir)
    assert done.returncode == 1, done.stderr[-2000:]
    last = tmp_path / "checkpoints" / "last.ckpt"
    assert done.stderr.strip().splitlines()[-1] == (
        f"error: stopped by SIGTERM during epoch 1; {last} holds the end of epoch 0: resume with "
        f"ckpt_path={last}"
    )
    assert torch.load(last, weights_only=True)["epoch"] == 0


def test_weights_file_as_ckpt_path_says_to_use_init_weights(tmp_path, cache_dir, data_dir):
    weights = ROOT / "fer_lightning" / "weights" / "mini_xception_fer2013.pt"
    done = run_train(f"ckpt_path={weights}", f"hydra.run.dir={tmp_path}", cache_dir=cache_dir)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1].endswith(f"use init_weights={weights}")


def test_two_runs_started_in_the_same_second_get_their_own_folders(tmp_path, cache_dir, data_dir):
    args = [
        sys.executable,
        str(ROOT / "scripts" / "train.py"),
        "train=false",
        "test=false",
        f"paths.log_dir={tmp_path}",
    ]
    procs = [
        subprocess.Popen(
            args,
            cwd=ROOT,
            env=env_with(cache_dir),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    for p in procs:
        assert p.wait(timeout=300) == 0, p.stderr.read()[-2000:]
    runs = sorted((tmp_path / "train" / "runs").iterdir())
    assert len(runs) == 2 and all((r / "train.log").is_file() for r in runs)
    # whether or not the two started in the same second, each folder carries its own process id: two processes
    # alive at once never share one (the timestamp alone, as before, collided within a second)
    assert {r.name.rsplit("_", 1)[1] for r in runs} == {str(p.pid) for p in procs}
