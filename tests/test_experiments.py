"""Comparing runs on the real data: sweep summaries, HParams read back with TensorBoard's reader, readable job
names, compare.py, timm backbones through checkpoints/Predictor/eval/Grad-CAM, one-line refusals."""

from __future__ import annotations

import json
import os

import pytest
import torch

from fer_lightning.errors import ConfigError
from fer_lightning.experiments.extras import check_extras
from fer_lightning.experiments.naming import MAX_NAME, job_name, swept_keys
from fer_lightning.utils.tensorboard import read_hparams, read_scalars
from tests.conftest import TINY_TRAIN, assert_one_line_error, run_script

SWEEP = [
    "-m",
    # mini-Xception, a timm family, and model=timm without a name: that job fails, the others go on
    "model=mini_xception,timm_mobilenetv3,timm",
    "model.optimizer.lr=0.02",
    *[o for o in TINY_TRAIN if not o.startswith("trainer.accelerator")],
]


@pytest.fixture(scope="module")
def sweep(tmp_path_factory, cache_dir, data_dir):
    """One real 3-job sweep on FER2013 (a few batches each): (process result, sweep folder)."""
    logs = tmp_path_factory.mktemp("sweep-logs")
    done = run_script(
        "train", *SWEEP, f"paths.log_dir={logs}", env={**os.environ, "FER_CACHE_DIR": str(cache_dir)}
    )
    (folder,) = (logs / "train" / "multiruns").iterdir()
    return done, folder


def test_job_names_carry_the_swept_overrides_and_stay_safe():
    argv = ["-m", "model=mini_xception,timm_resnet", "model.optimizer.lr=0.01,0.05", "trainer.max_epochs=1"]
    assert swept_keys(argv) == {"model", "model.optimizer.lr"}
    name = job_name(3, "model.optimizer.lr=0.05,model=timm_resnet,trainer.max_epochs=1", argv=argv)
    assert name == "3_model.optimizer.lr=0.05,model=timm_resnet"
    assert job_name(0, "ckpt_path=/a/b.ckpt", argv=[]) == "0_ckpt_path=-a-b.ckpt"
    long_a, long_b = (job_name(1, f"x={'y' * 200}{c}", argv=[]) for c in "ab")
    assert len(long_a) <= MAX_NAME and long_a != long_b


def test_sweep_summary_has_a_row_per_job_and_a_failed_job_does_not_stop_the_others(sweep):
    done, folder = sweep
    assert done.returncode == 1  # a job failed: the sweep says so
    assert done.stderr.strip().splitlines()[-1].startswith("error: 1 of 3 sweep job(s) did not complete")
    jobs = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    assert jobs == ["0_model=mini_xception", "1_model=timm_mobilenetv3", "2_model=timm"]
    table = (folder / "summary.md").read_text()
    assert table.count("| completed |") == 2 and "| failed: " in table and "model.net.name" in table
    csv_rows = (folder / "summary.csv").read_text().strip().splitlines()
    assert len(csv_rows) == 4 and csv_rows[0].startswith("run,overrides,status,val_loss")
    assert (folder / "summary.png").stat().st_size > 10_000
    assert (folder / "tradeoff.png").stat().st_size > 10_000  # two network sizes completed
    result = json.loads((folder / "1_model=timm_mobilenetv3" / "result.json").read_text())
    assert result["status"] == "completed" and result["params"] == 575_111 and result["epochs"] == 1
    assert 0 < result["val_acc"] < 1 and 0 < result["test_acc"] < 1 and result["train_img_per_s"] > 0


def test_hparams_plugin_data_holds_the_config_and_the_final_figures(sweep):
    _, folder = sweep
    run = folder / "0_model=mini_xception"
    hparams, metrics = read_hparams(run / "tensorboard")
    assert hparams["lr"] == pytest.approx(0.02) and hparams["arch"] == "MiniXception"
    assert hparams["net/bn_momentum"] == pytest.approx(0.01) and hparams["batch_size"] == 32
    assert set(metrics) >= {"hparams/val_loss", "hparams/val_acc", "hparams/test_acc", "hparams/params"}
    scalars = read_scalars(run / "tensorboard")
    result = json.loads((run / "result.json").read_text())
    assert scalars["hparams/val_loss"][-1][1] == pytest.approx(result["val_loss"], rel=1e-6)
    assert scalars["hparams/params"][-1][1] == 56_951


def test_compare_script_tables_runs_made_separately(sweep, tmp_path):
    _, folder = sweep
    runs = [folder / "0_model=mini_xception", folder / "1_model=timm_mobilenetv3"]
    done = run_script("compare", *map(str, runs), "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("| completed |") == 2 and (tmp_path / "summary.png").is_file()
    assert "tradeoff.png" in done.stdout and (tmp_path / "tradeoff.png").is_file()
    missing = run_script("compare", str(tmp_path / "nowhere"))
    assert missing.returncode == 1 and missing.stderr.strip().startswith("error: no such folder")


def test_tradeoff_plot_only_for_runs_of_several_sizes(tmp_path):
    from fer_lightning.experiments.tradeoff import plot_tradeoff, plottable

    def row(run, params, status="completed"):
        return {"run": run, "status": status, "params": params, "test_acc": 0.5, "train_img_per_s": 100.0}

    same_size = [row("lr=0.01", 56_951), row("lr=0.05", 56_951)]
    assert plottable(same_size) == [] and plot_tradeoff(same_size, tmp_path / "a.png") is None
    assert not (tmp_path / "a.png").exists()
    sizes = [*same_size, row("resnet18", 11_173_831), row("crashed", 575_111, status="failed")]
    assert [r["run"] for r in plottable(sizes)] == ["lr=0.01", "lr=0.05", "resnet18"]
    assert plot_tradeoff(sizes, tmp_path / "b.png").stat().st_size > 10_000


def test_timm_checkpoints_work_like_mini_xception_everywhere(sweep, jaffe_dir, tmp_path):
    from fer_lightning.checkpoints import load_network
    from fer_lightning.explain.gradcam import GradCAMExplainer, default_target_layer
    from fer_lightning.predict import Predictor

    _, folder = sweep
    ckpt = folder / "1_model=timm_mobilenetv3" / "checkpoints" / "last.ckpt"
    net, classes = load_network(ckpt)
    assert type(net).__name__ == "TimmNet" and len(classes) == 7
    faces = Predictor.from_checkpoint(ckpt, device="cpu").predict(next(jaffe_dir.glob("*.tiff")))
    assert len(faces) == 1 and faces[0].label in classes
    assert default_target_layer(net) == "model.blocks.5"
    explanation = GradCAMExplainer(net).explain(faces[0].crop[None])
    assert explanation.cam.shape == (1, 48, 48)
    # a sweep job's folder name holds '=' and ',': Hydra needs the path quoted
    done = run_script(
        "eval", f"ckpt_path='{ckpt}'", "max_faces=64", "device=cpu", f"hydra.run.dir={tmp_path}"
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "private/acc" in json.loads((tmp_path / "metrics.json").read_text())


def test_unknown_timm_name_names_close_matches():
    assert_one_line_error(
        "train",
        "error: model.net.name='resnet181' is not a timm model; close matches: resnet18",
        "model=timm",
        "model.net.name=resnet181",
    )


def test_ddp_with_several_processes_inside_a_sweep_is_refused_in_one_line(tmp_path):
    assert_one_line_error(
        "train",
        "error: trainer.strategy=ddp with devices=2 inside a -m sweep",
        "-m",
        "trainer=ddp",
        "trainer.devices=2",
        "model.optimizer.lr=0.01,0.05",
        f"paths.log_dir={tmp_path}",
    )


def test_a_sweep_over_a_missing_key_is_hydras_error_not_ours(tmp_path):
    done = run_script("train", "-m", "model.no_such_key=1,2", f"paths.log_dir={tmp_path}")
    assert done.returncode == 1 and "Could not override 'model.no_such_key'" in done.stderr
    assert "fer_lightning" not in done.stderr


@pytest.mark.parametrize(
    "arg, extra",
    [
        ("hydra/launcher=joblib", "sweeps"),
        ("cluster=slurm", "sweeps"),
        ("logger=[tensorboard,mlflow]", "mlflow"),
    ],
)
def test_a_missing_extra_is_one_line_naming_it(arg, extra):
    with pytest.raises(ConfigError, match=rf"needs the {extra} extra.*pip install -e '\.\[{extra}\]'"):
        check_extras(["-m", arg], installed=lambda module: False)
    check_extras(["-m", arg])  # installed here (the README's set-up installs every extra)


@pytest.mark.parametrize("debug", ["overfit", "profiler"])
def test_debug_configs_compose(debug, tmp_path):
    from tests.conftest import compose_config

    cfg = compose_config("train", [f"debug={debug}", "callbacks=[default,early_stopping]"], tmp_path)
    if debug == "overfit":  # nothing to select on memorised batches
        assert cfg.trainer.overfit_batches == 3 and cfg.callbacks.model_checkpoint is None
        assert cfg.callbacks.early_stopping is None
    else:
        assert cfg.trainer.profiler._target_.endswith("SimpleProfiler")
        assert cfg.callbacks.early_stopping.monitor == "val/loss"


def test_profiler_run_and_mlflow_logger_write_real_files(tmp_path, cache_dir, data_dir):
    env = {**os.environ, "FER_CACHE_DIR": str(cache_dir)}
    done = run_script(
        "train",
        "debug=profiler",
        "trainer.limit_train_batches=3",
        "logger=[tensorboard,mlflow]",
        "test=false",
        f"paths.log_dir={tmp_path}",
        f"hydra.run.dir={tmp_path / 'run'}",
        *TINY_TRAIN[5:],
        env=env,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "training_step" in (tmp_path / "run" / "fit-profile.txt").read_text()
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name("train").experiment_id])
    assert {"val/loss", "train/loss"} <= set(run.data.metrics) and run.data.params["lr"] == "0.01"
    assert torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 3


@pytest.mark.slow
@pytest.mark.parametrize("launcher", ["hydra/launcher=joblib", "cluster=local"])
def test_parallel_and_submitit_launchers_run_both_jobs_into_one_summary(launcher, tmp_path, cache_dir):
    env = {**os.environ, "FER_CACHE_DIR": str(cache_dir)}
    tiny = [o for o in TINY_TRAIN if not o.startswith("trainer.accelerator")]
    done = run_script(
        "train",
        "-m",
        launcher,
        "model.optimizer.lr=0.01,0.05",
        "test=false",
        f"paths.log_dir={tmp_path}",
        *tiny,
        env=env,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    (folder,) = (tmp_path / "train" / "multiruns").iterdir()
    assert (folder / "summary.md").read_text().count("| completed |") == 2
    if launcher.endswith("joblib"):  # 2 jobs at once on the cores: one torch thread each, never 2 x cores
        threads = [json.loads(p.read_text())["torch_threads"] for p in folder.glob("*/result.json")]
        assert len(threads) == 2 and 2 * max(threads) <= max(os.cpu_count(), 2)
