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
