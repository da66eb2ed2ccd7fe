"""Compare runs made separately: python scripts/compare.py <run or sweep dir> [...] [--out DIR]

Writes summary.csv, summary.md and summary.png (the same table and plot a sweep writes at its end) and prints
the table. Each run's figures come from its result.json (scripts/train.py writes one in every run folder)."""

from fer_lightning.utils.runtime import bootstrap, user_errors

bootstrap(__file__)

import argparse
import time
from pathlib import Path

from fer_lightning.experiments.compare import compare


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "dirs", nargs="+", type=Path, help="run folders, sweep folders, or folders above them"
    )
    parser.add_argument(
        "--out", type=Path, help="where to write the summary (default outputs/compare/<time>)"
    )
    args = parser.parse_args()
    out = args.out or Path("outputs/compare") / time.strftime("%Y-%m-%d_%H-%M-%S")
    with user_errors():
        print(compare(args.dirs, out), end="")


if __name__ == "__main__":
    main()
