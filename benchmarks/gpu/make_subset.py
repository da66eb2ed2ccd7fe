"""A FER2013 CSV small enough to carry to a GPU machine: every PublicTest and PrivateTest row (so parity and
evaluation use the real test splits) plus the first ``--training-rows`` Training rows (enough to train on; a
full-size epoch is timed by tiling them, see probe.py).

    python benchmarks/gpu/make_subset.py <fer2013.csv[.gz]> <out.csv.gz> [--training-rows 5000]
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from fer_lightning.utils.io import write_bytes  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--training-rows", type=int, default=5000)
    args = parser.parse_args()
    opener = gzip.open if args.source.suffix == ".gz" else open
    kept = {"Training": 0, "PublicTest": 0, "PrivateTest": 0}
    buffer = io.StringIO()
    with opener(args.source, "rt", newline="") as f:
        reader = csv.reader(f)
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(next(reader))
        for row in reader:
            usage = row[2]
            if usage == "Training" and kept[usage] >= args.training_rows:
                continue
            kept[usage] += 1
            writer.writerow(row)
    write_bytes(args.out, buffer.getvalue().encode(), compress=True)
    size = args.out.stat().st_size / 2**20
    print(f"{args.out}: {kept} rows, {size:.1f} MiB")


if __name__ == "__main__":
    main()
