"""benchmarks/gpu/run.sh --dry-run: the one-shot GPU check's every step and measurement, on this CPU."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT


def _run(*args: str, timeout: int = 1500) -> subprocess.CompletedProcess:
    env = {**os.environ, "PY": sys.executable}
    return subprocess.run(
        ["bash", str(ROOT / "benchmarks" / "gpu" / "run.sh"), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_unknown_argument_is_one_line_and_exit_2():
    done = _run("--fast")
    assert (
        done.returncode == 2
        and done.stderr.strip() == "error: unknown argument --fast (use --dry-run, --out DIR)"
    )


@pytest.mark.slow
def test_dry_run_passes_every_step_and_reports_every_figure(tmp_path, data_dir):
    done = _run("--dry-run", "--out", str(tmp_path))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    steps = {s["name"]: s["rc"] for s in report["steps"]}
    assert steps == dict.fromkeys(
        [
            "headline",
            "gpu_callbacks",
            "ddp_one_device",
            "sweep",
            "eval_shipped",
            "eval_trained",
            "predict",
            "gradcam",
        ],
        0,
    )
    parity = report["parity"]
    assert parity["faces"] == 3589 and parity["cpu_fp32"]["flipped_vs_cpu"] == 0
    # the shipped weights' recorded PrivateTest accuracy (docs/results.md)
    assert parity["cpu_fp32_acc"] == pytest.approx(0.6807, abs=5e-5)
    assert set(report["step_rates"]) == {"fp32_b32", "bf16_b32", "fp32_b64", "bf16_b64"}
    assert all(entry["img_per_s"] > 0 for entry in report["step_rates"].values())
    assert {"32-true_b32", "bf16-mixed_b32"} <= set(report["fit"])
    assert set(report["summary"]) >= {"fit_vs_compute_only", "epoch_wall_s", "projected_300_epochs_min"}
