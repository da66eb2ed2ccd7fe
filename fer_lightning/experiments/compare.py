"""``scripts/compare.py``: one summary for run folders made separately."""

from __future__ import annotations

from pathlib import Path

from fer_lightning.errors import InputError
from fer_lightning.experiments.results import find_runs
from fer_lightning.experiments.summary import to_markdown, write_summary
from fer_lightning.experiments.tradeoff import plottable


def compare(dirs: list[Path], out: Path) -> str:
    """Write ``summary.{csv,md,png}`` in ``out`` for every run under ``dirs``; the Markdown table, with where
    the files went. :class:`InputError` for a path that does not exist or holds no run."""
    missing = [str(d) for d in dirs if not d.exists()]
    if missing:
        raise InputError(f"no such folder: {', '.join(missing)}")
    empty = [str(d) for d in dirs if not find_runs([d])]
    if empty:
        raise InputError(
            f"no training run in {', '.join(empty)} (a run folder holds result.json or .hydra/config.yaml)"
        )
    rows = write_summary(out, list(dirs))
    files = "summary.csv, summary.md, summary.png" + (", tradeoff.png" if plottable(rows) else "")
    return to_markdown(rows) + f"\n{len(rows)} run(s); {files} in {out}\n"
