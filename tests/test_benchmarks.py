"""The benchmark scripts run end to end on the real data with tiny sizes and print one JSON line of figures.

No timing assertions (figures depend on the machine): only that each script runs, and its line parses and
holds the keys benchmarks/README.md quotes. The scripts run concurrently, one torch thread each, to keep this
short.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

SCRIPTS = {
    "data": ["bench_data.py", "--rows", "300", "--quick"],
    "train": ["bench_train.py", "--quick", "--skip", "nchw"],
    "train_ddp": ["bench_train_ddp.py", "--quick"],
    "predict": ["bench_predict.py", "--quick"],
    "paths_accuracy": ["bench_paths_accuracy.py", "--quick"],
    "shortcut": ["bench_shortcut.py", "--steps", "2", "--rounds", "1", "--batch-size", "16"],
    "backbones": ["bench_backbones.py", "--quick", "--models", "mini_xception", "timm_mobilenetv3"],
}
KEYS = {
    "data": {"cold_s", "warm_s", "notebook_s", "speedup_warm", "goal_warm_20x", "goal_cold_under_4s", "rows"},
    "train": {
        "compute_only_img_s",
        "compute_only_end_img_s",
        "fit_batch_img_s",
        "fit_albumentations_img_s",
        "compute_only_beside_albumentations_img_s",
        "notebook_img_s",
        "compute_only_beside_notebook_img_s",
        "fit_vs_compute_only",
        "fit_vs_notebook",
        "notebook_crop44_img_s",
        "fit_vs_notebook_same_ceiling",
        "batch_size",
    },
    "train_ddp": {
        "fit_ddp_img_s",
        "compute_only_ddp_img_s",
        "notebook_img_s",
        "fit_ddp_vs_notebook",
        "fit_ddp_vs_compute_only",
        "processes",
        "batch_per_rank",
        "compute_only_ddp_allreduce_img_s",
        "fit_ddp_vs_compute_only_allreduce",
    },
    "predict": {
        "torch_latency_ms",
        "onnx_latency_ms",
        "detect_ms",
        "classify_1_face_torch_ms",
        "classify_1_face_onnx_ms",
        "model_torch_img_s",
        "model_onnx_img_s",
        "faces_found",
        "peer",
    },
    "paths_accuracy": {"batch_acc", "albumentations_acc", "difference", "runs", "epochs"},
    "shortcut": {"fixed_img_s", "strided_img_s", "fixed_vs_strided", "repro_exit_codes"},
    "backbones": {"models", "steps", "batch_size"},
}


@pytest.fixture(scope="module")
def outputs(data_dir, cache_dir) -> dict[str, subprocess.CompletedProcess]:
    env = {
        **os.environ,
        "FER_DATA_DIR": str(data_dir),
        "FER_CACHE_DIR": str(cache_dir),
        "OMP_NUM_THREADS": "1",
    }
    procs = {
        name: subprocess.Popen(
            [sys.executable, str(ROOT / "benchmarks" / args[0]), *args[1:]],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, args in SCRIPTS.items()
    }
    done = {}
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=600)
        done[name] = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    return done


@pytest.mark.parametrize("name", list(SCRIPTS))
def test_benchmark_prints_one_json_line_with_its_figures(outputs, name):
    result = outputs[name]
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stdout, got {len(lines)}: {result.stdout[:500]}"
    figures = json.loads(lines[0])
    assert figures["bench"] == name
    assert KEYS[name] <= figures.keys(), f"missing {KEYS[name] - figures.keys()}"
    assert {"machine", "date"} <= figures.keys() and figures["machine"]["cpu_count"] >= 1


def test_backbone_benchmark_builds_each_network_from_its_config(outputs):
    models = json.loads(outputs["backbones"].stdout)["models"]
    assert set(models) == {"mini_xception", "timm_mobilenetv3"}
    assert models["mini_xception"]["params"] == 56_951
    assert models["timm_mobilenetv3"]["params"] == 575_111
    for figures in models.values():
        assert figures["train_img_s"] > 0 and figures["eval_img_s"] > 0 and figures["one_face_ms"] > 0


def run_alone(script: str, data_dir) -> subprocess.CompletedProcess:
    """``benchmarks/<script> --quick`` on its own process (not in the concurrent batch above)."""
    return subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), "--quick"],
        cwd=ROOT,
        env={**os.environ, "FER_DATA_DIR": str(data_dir)},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_video_benchmark_prints_one_json_line_with_its_figures(data_dir):
    """bench_video.py on its own (not in ``outputs``: it should not wait for the training benchmarks)."""
    result = run_alone("bench_video.py", data_dir)
    assert result.returncode == 0, result.stderr[-3000:]
    (line,) = result.stdout.strip().splitlines()
    figures = json.loads(line)
    assert figures["bench"] == "video" and figures["frames"] == 30
    keys = {
        "tracked_fps",
        "naive_fps",
        "tracked_sparse_fps",
        "tracked_mil_fps",
        "goal_60_fps",
        "label_agreement",
    }
    assert keys <= figures.keys() and figures["tracked_fps"] > 0 and figures["naive_fps"] > 0
    # the face is found on every frame by both loops, and the table went to stderr
    assert figures["frames_with_face_naive"] == figures["frames_with_face_tracked"] == 30
    assert "| tracked |" in result.stderr


def test_latency_benchmark_times_both_backends_and_prints_its_table(data_dir):
    """``bench_latency.py --quick`` (3 photos, 2 repeats): one JSON line with p50/p95 for the torch and the
    onnxruntime backend and every detector row, and the same rows as a table on stderr."""
    result = run_alone("bench_latency.py", data_dir)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stdout, got {len(lines)}: {result.stdout[:500]}"
    figures = json.loads(lines[0])
    assert figures["bench"] == "latency" and figures["photos"] == 3 and figures["samples_per_row"] == 6
    assert [r["backend"] for r in figures["rows"]][:2] == ["torch", "onnxruntime"]
    for row in figures["rows"]:
        assert 0 < row["latency_ms"]["p50"] <= row["latency_ms"]["p95"]
        assert row["faces_found"] == 3 and row["jaffe_labelled"] == 3  # one face and one label per photo
        assert row["detector"] in result.stderr  # the table
    assert figures["rows"][1]["labels_differing_from_default"] == 0  # same network, other runtime
    assert {
        "torch_ms",
        "onnxruntime_ms",
        "goal_met_with_default_detector",
        "machine",
        "date",
    } <= figures.keys()


@pytest.mark.slow
def test_photo_sets_benchmark_builds_the_sets_and_scores_them(data_dir, tmp_path):
    """photo_sets.py + bench_photo_sets.py on the real data: every set built, faces counted, one JSON line."""
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "bench_photo_sets.py"),
            "--sets",
            str(tmp_path / "sets"),
            "--weights",
            "photos",
            "--tta",
            "hflip",
            "--tau",
            "1.0",
            "--no-fer",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "FER_DATA_DIR": str(data_dir), "OMP_NUM_THREADS": "1"},
        timeout=1800,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert figures["set_sizes"] == {
        "jaffe-dev": 108,
        "jaffe-crops": 108,
        "crops-public": 192,
        "wild-public": 192,
    }
    assert figures["faces_found"]["jaffe-dev"] == 108 and figures["faces_found"]["crops-public"] == 192
    assert figures["no_face_false_faces"]["images"] == 210
    (row,) = figures["rows"]
    assert row["jaffe-dev"]["acc"] == pytest.approx(68 / 108, abs=1e-4)  # the model card's figure
