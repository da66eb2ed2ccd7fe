"""Each training run's ``result.json``: its overrides, status and final figures, written atomically when the
run ends (failed runs too), and read back by sweep summaries and ``scripts/compare.py``.

Why a file of its own rather than reading TensorBoard events: a job that crashed before logging anything still
has a row (status ``failed`` and its one-line error), and the figures that compare runs (best ``val/loss``,
the ``val/acc`` of that epoch, ``test/acc``) are computed once, by the run that knows them.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import yaml

from fer_lightning.utils.io import write_json

RESULT_FILE = "result.json"
#: The columns of every comparison table, in order (``run`` and ``overrides`` first).
FIGURES = ("val_loss", "val_acc", "test_acc", "epochs", "params", "train_img_per_s", "wall_s")


def write_result(run_dir: str | Path, result: dict[str, Any]) -> Path:
    """``result.json`` in ``run_dir``: ``status`` (``completed`` or ``failed``), ``error`` (one line or null),
    ``overrides`` and the :data:`FIGURES` that are known (NaN and infinities become null)."""
    clean = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in result.items()}
    return write_json(Path(run_dir) / RESULT_FILE, clean)


def job_overrides(run_dir: Path) -> list[str]:
    """The command-line overrides Hydra saved for a run (``.hydra/overrides.yaml``; [] when absent)."""
    path = run_dir / ".hydra" / "overrides.yaml"
    return [str(o) for o in yaml.safe_load(path.read_text()) or []] if path.is_file() else []


def read_run(run_dir: str | Path) -> dict[str, Any]:
    """One table row for a run folder. A folder with a Hydra config but no ``result.json`` is a run that died
    without reporting (killed, out of memory): status ``unknown``, with that said in ``error``."""
    run_dir = Path(run_dir)
    row: dict[str, Any] = {"run": run_dir.name, "path": str(run_dir), "overrides": job_overrides(run_dir)}
    result_file = run_dir / RESULT_FILE
    if not result_file.is_file():
        return {**row, "status": "unknown", "error": f"no {RESULT_FILE}: the run ended without reporting"}
    try:
        result = json.loads(result_file.read_text())
    except (OSError, json.JSONDecodeError) as e:
        return {**row, "status": "unknown", "error": f"{RESULT_FILE} unreadable: {e}"}
    return {**row, **{k: v for k, v in result.items() if k != "overrides"}, "overrides": row["overrides"]}


def shared_overrides(rows: list[dict[str, Any]]) -> set[str]:
    """The overrides every row has (limits, paths): they say nothing about how the runs differ, so tables list
    them once and plots leave them out of their labels. Empty for fewer than two rows."""
    sets = [set(r.get("overrides") or []) for r in rows]
    return set.intersection(*sets) if len(sets) > 1 else set()


def find_runs(paths: list[str | Path]) -> list[Path]:
    """Run folders under ``paths`` (each a run, a sweep or any folder above them): folders holding a
    ``result.json`` or a Hydra ``.hydra/config.yaml``, sorted, nested runs not counted twice."""
    runs: set[Path] = set()
    for path in map(Path, paths):
        marks = [path / RESULT_FILE, path / ".hydra" / "config.yaml"]
        if any(m.is_file() for m in marks):
            runs.add(path)
            continue
        runs.update(p.parent for p in path.rglob(RESULT_FILE))
        runs.update(p.parent.parent for p in path.rglob(".hydra/config.yaml"))
    return sorted(runs, key=_natural_key)


def _natural_key(path: Path) -> tuple:
    """Sweep jobs 0, 1, …, 10 in numeric order (their names start with the job number)."""
    head = path.name.split("_", 1)[0]
    return (str(path.parent), int(head) if head.isdigit() else math.inf, path.name)
