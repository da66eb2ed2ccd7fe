"""``scripts/preprocess.py``: a folder of photos → a FER2013 CSV + report, and the few console lines about it.

Usage: ``python scripts/preprocess.py input_dir=<folder> output=<file.csv> [detector=haar] [labels=jaffe]``
(settings: ``conf/preprocess.yaml``). Exits 1 with one ``error:`` line when a setting is wrong, the folder
holds
no photo, or no row could be written; the summary is printed first, so it says why.
"""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig

from fer_lightning.faces.pipeline import (
    FaceSettings,
    process_folder,
    report_path,
    require_rows,
    skipped_summary,
)
from fer_lightning.utils.instantiate import instantiate_setting

#: ``conf/preprocess.yaml`` keys passed to :class:`FaceSettings` as they are (detector and labels are built).
_PLAIN_SETTINGS = (
    "split",
    "seed",
    "test_fraction",
    "usage_from_name",
    "no_face",
    "cache_dir",
    "use_cache",
    "workers",
    "progress",
    "extensions",
)


def run(cfg: DictConfig) -> dict[str, Any]:
    """Preprocess ``cfg.input_dir`` into ``cfg.output``, print :func:`summarize`; returns the report."""
    settings = FaceSettings(
        detector=instantiate_setting(cfg, "detector"),
        labels=instantiate_setting(cfg, "labels"),
        **{key: cfg.get(key) for key in _PLAIN_SETTINGS if key in cfg},
    )
    report = process_folder(cfg.input_dir, cfg.output, settings)
    print(summarize(report))
    require_rows(report)  # after the summary: it says why no row was written
    return report


def summarize(report: dict[str, Any]) -> str:
    """A few lines for the console; the JSON report has the file lists."""
    usage = ", ".join(f"{k} {v}" for k, v in report["rows_by_usage"].items())
    lines = [
        (
            f"{report['files_seen']} photos seen, {report['from_cache']} from cache, "
            f"{report['files_processed']} processed in {report['seconds']} s ({report['detector']['name']} "
            "detector)"
        ),
        (
            f"{report['faces_found']} with a face ({report['multi_face_files']} with several: largest kept); "
            f"{report['rows_written']} rows written: {usage}"
        ),
        (
            f"no face: {report['no_face']['count']} ({report['no_face']['policy']}); "
            f"unreadable: {report['unreadable']['count']}; unknown label: {report['unknown_labels']['count']}"
            + (f" {report['unknown_labels']['labels']}" if report["unknown_labels"]["count"] else "")
            + (
                f"; outside train/test folders: {report['outside_split_folders']['count']}"
                if report["outside_split_folders"]["count"]
                else ""
            )
            + (
                f"; {skipped_summary(report['skipped_entries']['files'])}"
                if report["skipped_entries"]["count"]
                else ""
            )
        ),
        f"CSV {'written' if report['csv_written'] else 'unchanged'}: {report['output']}",
        f"report: {report_path(report['output'])}",
    ]
    return "\n".join(lines)
