"""Bad input to scripts/train.py: each case is one specific `error:` line on stderr, exit 1, no traceback, and
no run output left that looks like a result. Real processes, real configs, real FER2013."""

from __future__ import annotations

import os

import pytest

from tests.conftest import ROOT, TINY_TRAIN, run_script

WEIGHTS = ROOT / "fer_lightning" / "weights" / "mini_xception_fer2013.pt"

# id → (overrides, start of the error line (after "error: "))
CASES = {
    "max_epochs_not_a_number": (["trainer.max_epochs=abc"], "trainer.max_epochs='abc': expected an integer"),
    "batch_size_zero": (["data.batch_size=0"], "data.batch_size=0: expected an integer >= 1"),
    "negative_lr": (["model.optimizer.lr=-0.1"], "model.optimizer.lr=-0.1: expected a number >= 0"),
    "limit_fraction_above_one": (["trainer.limit_train_batches=2.5"], "trainer.limit_train_batches=2.5"),
    "label_smoothing_one": (["model.label_smoothing=1.0"], "model.label_smoothing=1.0"),
    "ckpt_path_missing": (
        ["ckpt_path=/nonexistent/last.ckpt"],
        "checkpoint not found: looked for /nonexistent",
    ),
    "ckpt_path_weights_file": ([f"ckpt_path={WEIGHTS}"], f"ckpt_path={WEIGHTS} is a weights-only file"),
    "ckpt_path_text_file": ([f"ckpt_path={ROOT / 'README.md'}"], f"{ROOT / 'README.md'} is not a readable"),
    "init_weights_missing": (
        ["init_weights=/nonexistent/w.pt"],
        "checkpoint not found: looked for /nonexistent",
    ),
    "fer2013_csv_missing": (["data.source.path=/nonexistent/fer2013.csv"], "FER2013 CSV not found"),
    "teacher_targets_missing": (
        ["data.teacher_targets=/nonexistent/t.pt", "model.distillation_weight=0.5"],
        "teacher targets not found: /nonexistent/t.pt",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_training_input_is_one_line(case, tmp_path, cache_dir, data_dir):
    overrides, message = CASES[case]
    env = {**os.environ, "FER_CACHE_DIR": str(cache_dir)}
    done = run_script("train", *TINY_TRAIN, f"hydra.run.dir={tmp_path}", *overrides, env=env)
    assert done.returncode == 1, done.stderr[-2000:]
    assert "Traceback" not in done.stderr, done.stderr[-2000:]
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: {message}"), last
    assert not (tmp_path / "checkpoints").exists()


def test_unknown_config_group_option_is_hydras_one_message_not_a_traceback(tmp_path):
    done = run_script("train", "model=no_such_model", f"hydra.run.dir={tmp_path}")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "Could not find 'model/no_such_model'" in done.stderr
