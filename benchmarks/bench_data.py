"""Dataset-ready time: the project's FERDataModule (cold: empty cache; warm: .npz cache) vs the notebook's
loader.

"Ready" = every split held in memory and able to serve batches: for the project, ``FERDataModule.setup()``
from the real ``conf/data/fer2013.yaml`` (CSV parse or cache load + split tensors); for the notebook, its
csv-module loop producing PIL images per split. Cold means no parse cache (a fresh cache dir); the OS file
cache is warm in both cases (the .gz is read once before timing), so the figures measure CPU work, not the
disk.

    python benchmarks/bench_data.py [--repeats 3] [--rows N --quick]
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import statistics
import sys
import tempfile
import time
from pathlib import Path

import hydra
from common import CSV, compose, emit
from notebook_baseline import plain_csv, time_notebook_load

from fer_lightning.data.fer2013 import resolve_csv


def subset_gz(source: Path, rows: int, workdir: Path) -> Path:
    """The header + first ``rows`` rows of the real file, as a .csv.gz (tiny runs for tests)."""
    target = workdir / "fer2013.csv.gz"
    with gzip.open(source, "rb") as src, gzip.open(target, "wb", compresslevel=6) as dst:
        for i, line in enumerate(src):
            if i > rows:
                break
            dst.write(line)
    return target.with_suffix("")  # the .csv path; resolve_csv finds the .gz beside it


def time_setup(csv_path: Path, cache_dir: Path, workdir: Path) -> float:
    """Seconds for a new FERDataModule (real config) to become ready."""
    cfg = compose([f"data.source.path={csv_path}", f"data.source.cache_dir={cache_dir}"], workdir)
    dm = hydra.utils.instantiate(cfg.data)
    start = time.perf_counter()
    dm.setup()
    seconds = time.perf_counter() - start
    assert len(dm.tensors["train"][1]) > 0
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=3, help="cold and warm runs each (median reported)")
    parser.add_argument("--notebook-repeats", type=int, default=1)
    parser.add_argument("--rows", type=int, default=None, help="use only the first N rows (tests)")
    parser.add_argument("--quick", action="store_true", help="1 repeat each")
    args = parser.parse_args()
    if args.quick:
        args.repeats = args.notebook_repeats = 1

    with tempfile.TemporaryDirectory(prefix="fer-bench-data-") as tmp, contextlib.redirect_stdout(sys.stderr):
        work = Path(tmp)
        csv_path = subset_gz(resolve_csv(CSV), args.rows, work) if args.rows else CSV
        source = resolve_csv(csv_path)
        source.read_bytes()  # OS file cache warm for every contender

        cold = [time_setup(csv_path, work / f"cold-cache-{i}", work) for i in range(args.repeats)]
        warm_cache = work / "cold-cache-0"
        warm = [time_setup(csv_path, warm_cache, work) for _ in range(args.repeats)]

        start = time.perf_counter()
        notebook_csv = plain_csv(
            source, work
        )  # one-off decompression, not timed: the notebook read plain CSV
        decompress_s = time.perf_counter() - start
        notebook = []
        for _ in range(args.notebook_repeats):
            seconds, datasets = time_notebook_load(notebook_csv)
            notebook.append(seconds)
        rows = sum(len(d) for d in datasets.values())

    cold_s, warm_s, notebook_s = (statistics.median(v) for v in (cold, warm, notebook))
    emit(
        {
            "bench": "data",
            "rows": rows,
            "source": source.name,
            "cold_s": round(cold_s, 3),
            "warm_s": round(warm_s, 3),
            "notebook_s": round(notebook_s, 3),
            "cold_runs_s": [round(v, 3) for v in cold],
            "warm_runs_s": [round(v, 3) for v in warm],
            "notebook_runs_s": [round(v, 3) for v in notebook],
            "notebook_decompress_untimed_s": round(decompress_s, 3),
            "speedup_warm": round(notebook_s / warm_s, 1),
            "speedup_cold": round(notebook_s / cold_s, 1),
            "goal_warm_20x": notebook_s / warm_s >= 20,
            "goal_cold_under_4s": cold_s < 4.0,
        }
    )


if __name__ == "__main__":
    main()
