"""The GPU figures in one process: parity of the shipped weights (CPU vs CUDA fp32, TF32, bf16), training
throughput (compute-only step on ready tensors, the same step as a CUDA graph, Trainer.fit), one full epoch's
wall time and the 300-epoch projection. Run by benchmarks/gpu/run.sh, which merges in its script steps.

    python benchmarks/gpu/probe.py --out gpu_check.json [--steps steps.jsonl] [--dry-run]

``--dry-run`` runs every measurement on the CPU at toy sizes (the CUDA-only ones report why they were
skipped), so this file is tested where no GPU exists.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("PROJECT_ROOT", str(ROOT))
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import torch  # noqa: E402

from benchmarks.gpu.probe_steps import fit_run, parity, step_rates  # noqa: E402
from fer_lightning.data.fer2013 import load_fer2013_csv  # noqa: E402
from fer_lightning.utils.io import write_json  # noqa: E402
from fer_lightning.utils.runtime import quiet_lightning  # noqa: E402

FULL = {"batches": (128, 512, 2048), "train_faces": 28_709, "steps": 30, "fit_epochs": 3, "pair_epochs": 10}
DRY = {
    "batches": (32, 64),
    "train_faces": 256,
    "steps": 3,
    "fit_epochs": 2,
    "pair_epochs": 2,
    "val_batches": 2,
}


def environment(device: torch.device) -> dict:
    info = {"python": platform.python_version(), "torch": torch.__version__, "device": str(device)}
    if device.type == "cuda":
        info.update(gpu=torch.cuda.get_device_name(device), cuda=torch.version.cuda)
        info["cudnn"] = torch.backends.cudnn.version()
    else:
        info["cpu"] = platform.processor() or platform.machine()
    return info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--steps", type=Path, help="run.sh's steps.jsonl, merged into the report")
    parser.add_argument("--dry-run", action="store_true", help="CPU, toy sizes")
    args = parser.parse_args()
    quiet_lightning()
    if not args.dry_run and not torch.cuda.is_available():
        sys.exit("error: no CUDA device: run with --dry-run to check the steps on the CPU")
    device = torch.device("cpu" if args.dry_run else "cuda")
    sizes = DRY if args.dry_run else FULL
    data_dir = Path(os.environ.get("FER_DATA_DIR", "data"))
    arrays = load_fer2013_csv(data_dir / "fer2013" / "fer2013.csv", os.environ.get("FER_CACHE_DIR"))

    report: dict = {"date": time.strftime("%Y-%m-%d %H:%M"), "dry_run": args.dry_run}
    report["environment"] = environment(device)
    report["steps"] = [json.loads(line) for line in args.steps.read_text().splitlines()] if args.steps else []
    sections = {
        "parity": lambda: parity(arrays, device),
        "step_rates": lambda: step_rates(arrays, device, sizes["batches"], sizes["steps"]),
        "fit": lambda: {
            f"{precision}_b{batch}": fit_run(
                arrays,
                device,
                batch,
                precision,
                sizes["train_faces"],
                sizes["fit_epochs"],
                sizes.get("val_batches"),
            )
            for batch in sizes["batches"]
            for precision in ("32-true", "bf16-mixed")
        },
        # the accuracy pair: same seed, same data, fp32 vs bf16-mixed, at the default batch size
        "precision_pair": lambda: {
            precision: fit_run(
                arrays,
                device,
                sizes["batches"][0],
                precision,
                sizes["train_faces"],
                sizes["pair_epochs"],
                sizes.get("val_batches"),
            )
            for precision in ("32-true", "bf16-mixed")
        },
    }
    for name, measure in sections.items():
        started = time.perf_counter()
        try:
            report[name] = measure()
        except Exception as e:  # a section that fails is reported, and the others still run
            report[name] = {"error": f"{type(e).__name__}: {e}"}
        print(f"{name}: {time.perf_counter() - started:.1f} s", flush=True)
        write_json(args.out, report)  # after every section: a killed probe still leaves what it measured
    report["summary"] = summarise(report)
    write_json(args.out, report)
    print(json.dumps(report["summary"], indent=2))
    failed = [s["name"] for s in report["steps"] if s.get("rc") != 0]
    failed += [name for name in sections if "error" in report[name]]
    if failed:
        sys.exit(f"error: failed: {', '.join(failed)} (details in {args.out})")


def summarise(report: dict) -> dict:
    """The goals' figures: Trainer.fit vs the compute-only step at batch 128 bf16, epoch wall time and the
    300-epoch projection (experiment=seed validates PublicTest and PrivateTest every epoch)."""
    out: dict = {}
    fit, rates = report.get("fit", {}), report.get("step_rates", {})
    key = next((k for k in fit if k.startswith("bf16-mixed_b")), None)
    if key and "error" not in fit and "error" not in rates:
        batch = key.split("_b")[1]
        compute = rates.get(f"bf16_b{batch}", {}).get("img_per_s")
        out["fit_vs_compute_only"] = round(fit[key]["train_img_per_s"] / compute, 3) if compute else None
        out["epoch_wall_s"] = fit[key]["epoch_wall_s"]
        out["projected_300_epochs_min"] = round(300 * fit[key]["epoch_wall_s"] / 60, 2)
    pair = report.get("precision_pair", {})
    if "error" not in pair and pair:
        out["bf16_minus_fp32_val_acc"] = round(pair["bf16-mixed"]["val_acc"] - pair["32-true"]["val_acc"], 4)
    return out


if __name__ == "__main__":
    main()
