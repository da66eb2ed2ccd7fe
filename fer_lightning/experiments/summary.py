"""One table and one plot for many runs: ``summary.csv``, ``summary.md`` and ``summary.png`` (and
``tradeoff.png`` when the runs differ in size, :mod:`fer_lightning.experiments.tradeoff`).

Written by :class:`SweepSummary` (a Hydra callback, conf/hydra/train.yaml) in the sweep folder at the end of
every multirun, and by ``scripts/compare.py`` for runs made separately. Rows are sorted by the selection
metric (PublicTest ``val_loss``, lowest first); ``test_acc`` (PrivateTest) is shown beside it, never used to
sort.
"""

from __future__ import annotations

import csv
import io
import logging
import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from fer_lightning.experiments.results import FIGURES, find_runs, read_run, shared_overrides
from fer_lightning.experiments.tradeoff import TRADEOFF_FILE, plot_tradeoff
from fer_lightning.utils.io import save_figure, write_text

log = logging.getLogger(__name__)

COLUMNS = ("run", "overrides", "status", *FIGURES, "error")


def sorted_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Completed runs by ``val_loss`` (lowest first), then the rest in their order."""
    done = [r for r in rows if r.get("status") == "completed" and r.get("val_loss") is not None]
    rest = [r for r in rows if r not in done]
    return sorted(done, key=lambda r: r["val_loss"]) + rest


def _cell(value: Any, column: str) -> str:
    if value is None:
        return ""
    if column == "overrides":
        return " ".join(value) if isinstance(value, list) else str(value)
    if column in ("val_acc", "test_acc") and isinstance(value, float):
        return f"{100 * value:.2f}"
    if isinstance(value, float):
        return f"{value:.4f}" if column == "val_loss" else f"{value:.0f}"
    return str(value)


def to_csv(rows: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows({c: _cell(r.get(c), c) if c == "overrides" else r.get(c) for c in COLUMNS} for r in rows)
    return out.getvalue()


def to_markdown(rows: list[dict[str, Any]]) -> str:
    """A GitHub table; accuracies in %, ``val_loss`` to 4 decimals, the error cell only where one exists."""
    header = [
        "run",
        "overrides",
        "status",
        "val/loss",
        "val/acc %",
        "test/acc %",
        "epochs",
        "params",
        "img/s",
        "wall s",
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    shared = shared_overrides(rows)  # listed once, below the table
    for r in rows:
        own = [o for o in r.get("overrides") or [] if o not in shared]
        cells = [
            _cell(v, c) for v, c in zip((r.get("run"), own, r.get("status")), ("run", "overrides", "status"))
        ]
        cells += [_cell(r.get(c), c) for c in FIGURES]
        if r.get("error"):
            cells[2] += f": {r['error']}".replace("|", "/")
        lines.append("| " + " | ".join(cells) + " |")
    if shared:
        lines.append(f"\nShared by every run: `{' '.join(sorted(shared))}`")
    return "\n".join(lines) + "\n"


def plot(rows: list[dict[str, Any]], path: Path) -> Path | None:
    """Horizontal bars of the selection metric per completed run (best at the top), PrivateTest accuracy
    written beside each bar; ``None`` when no run completed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    done = [r for r in rows if r.get("status") == "completed" and r.get("val_loss") is not None]
    if not done:
        return None
    fig, ax = plt.subplots(figsize=(9, 0.45 * len(done) + 1.4))
    names = [r["run"] if len(r["run"]) <= 48 else r["run"][:45] + "…" for r in done]
    ax.barh(range(len(done)), [r["val_loss"] for r in done], color="#4C72B0")
    ax.set_yticks(range(len(done)), names, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("best val/loss (PublicTest, the selection metric; lower is better)")
    for i, r in enumerate(done):
        test = r.get("test_acc")
        label = f" test/acc {100 * test:.1f} %" if test is not None else " (no test)"
        ax.text(r["val_loss"], i, label, va="center", fontsize=8)
    ax.set_xlim(0, max(r["val_loss"] for r in done) * 1.35)
    ax.set_title(f"{len(done)} run(s), sorted by the selection metric; PrivateTest accuracy beside each")
    fig.tight_layout()
    try:
        return save_figure(fig, path)
    finally:
        plt.close(fig)


def write_summary(folder: str | Path, runs: list[str | Path]) -> list[dict[str, Any]]:
    """``summary.{csv,md,png}`` (and ``tradeoff.png`` for runs of several sizes) in ``folder`` for the run
    folders found under ``runs``; returns the rows."""
    folder = Path(folder)
    rows = sorted_rows([read_run(r) for r in find_runs(list(runs))])
    write_text(folder / "summary.csv", to_csv(rows))
    write_text(folder / "summary.md", to_markdown(rows))
    plot(rows, folder / "summary.png")
    plot_tradeoff(rows, folder / TRADEOFF_FILE)
    return rows


class SweepSummary(Callback):
    """Hydra callback: at the end of a multirun, the summary of its jobs in the sweep folder (and Optuna's
    plots when the sweeper kept a study). Exits 1 after writing when any job failed, so a sweep with a failed
    job never reports success."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        if not sweep_dir.is_dir():
            return
        rows = write_summary(sweep_dir, [sweep_dir])
        log.info("sweep summary: %s (%d job(s))", sweep_dir / "summary.md", len(rows))
        storage = config.hydra.sweeper.get("storage") if "sweeper" in config.hydra else None
        if storage:
            from fer_lightning.experiments.optuna_plots import save_study_plots

            save_study_plots(storage, config.hydra.sweeper.study_name, sweep_dir)
        failed = [r["run"] for r in rows if r.get("status") != "completed"]
        if failed:
            print(
                f"error: {len(failed)} of {len(rows)} sweep job(s) did not complete: {', '.join(failed)} "
                f"(see {sweep_dir / 'summary.md'})",
                file=sys.stderr,
                flush=True,
            )
            raise SystemExit(1)
