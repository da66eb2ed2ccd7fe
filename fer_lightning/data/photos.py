"""Photo folder → 48x48 faces → FER2013 CSV + report; and :class:`PhotoFolderSource` for training on one.

Used by ``scripts/preprocess.py`` (config ``conf/preprocess.yaml``) and by ``data=photos``. One bad file never
stops a run: unreadable files (and any the detector fails on), photos without a face and unknown labels are
counted and listed in the report ``<output stem>.report.json`` written beside the CSV.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from fer_lightning.data.arrays import IMAGE_SIZE, SPLITS, FERArrays
from fer_lightning.data.cache import default_cache_dir
from fer_lightning.data.extract import FileRef, extract_faces
from fer_lightning.data.face_cache import FileResult
from fer_lightning.data.faces import DlibDetector, FaceDetector
from fer_lightning.data.fer2013 import FERDataError, load_fer2013_csv
from fer_lightning.data.fer2013_writer import content_hash, write_fer2013_csv, write_json
from fer_lightning.data.images import IMAGE_EXTENSIONS
from fer_lightning.data.labels import FolderLabels, LabelRule
from fer_lightning.data.splits import OUTSIDE, assign_splits
from fer_lightning.emotions import EMOTIONS, SPLIT_TO_USAGE

NO_FACE_POLICIES = ("skip", "center_crop")


@dataclass(frozen=True)
class Photo:
    """A photo found under the input folder: its relative path, and its cache identity or why it has none."""

    rel: PurePosixPath
    ref: FileRef | None
    error: str = ""


def find_photos(root: Path, extensions: tuple[str, ...] = IMAGE_EXTENSIONS) -> list[Photo]:
    """Photos under ``root`` (nested, any suffix case), sorted by relative path; hidden files/folders skipped.

    Hidden entries are skipped because they are typically not photos (``.DS_Store``, macOS ``._x.jpg``
    resource forks that carry a photo suffix). Symlinked folders are followed, each real folder once.
    ``os.scandir`` rather than ``os.walk`` + ``realpath``: its entries carry the stat and link flag, which
    makes the scan of an unchanged 36k-photo folder about 3x faster.
    """
    suffixes = tuple(e.lower() for e in extensions)
    found: list[Photo] = []
    seen: set[str] = set()
    pending = [(os.path.realpath(root), PurePosixPath())]
    while pending:
        folder, rel = pending.pop()
        if folder in seen:  # a symlink loop, or two links to one folder
            continue
        seen.add(folder)
        try:
            with os.scandir(folder) as entries:
                for entry in entries:
                    if entry.name.startswith("."):
                        continue
                    if entry.is_dir():
                        pending.append((os.path.realpath(entry.path) if entry.is_symlink() else entry.path,
                                        rel / entry.name))
                    elif entry.name.lower().endswith(suffixes):
                        found.append(_photo(entry, rel / entry.name))
        except OSError as e:  # an unlistable sub-folder is reported like an unreadable file, not fatal
            found.append(Photo(rel / "", None, f"cannot list folder ({e.strerror or e})"))
    return sorted(found, key=lambda p: p.rel.as_posix())


def _photo(entry: os.DirEntry, rel: PurePosixPath) -> Photo:
    try:
        st = entry.stat()  # follows symlinks; cached by scandir for plain files
        real = os.path.realpath(entry.path) if entry.is_symlink() else entry.path
        return Photo(rel, FileRef(real, st.st_size, st.st_mtime_ns))
    except OSError as e:  # broken symlink, permission denied
        return Photo(rel, None, f"cannot stat ({e.strerror or e})")


def report_path(output: str | Path) -> Path:
    """``faces.csv`` → ``faces.report.json`` (also for ``faces.csv.gz``)."""
    output = Path(output)
    stem = output.name.removesuffix(".gz").removesuffix(".csv")
    return output.with_name(f"{stem}.report.json")


def preprocess_folder(input_dir: str | Path, output: str | Path, detector: FaceDetector | None = None,
                      labels: LabelRule | None = None, split: str = "auto", seed: int = 0,
                      test_fraction: float = 0.2, usage_from_name: bool = True, no_face: str = "skip",
                      cache_dir: str | Path | None = None, use_cache: bool = True, workers: int | None = None,
                      progress: bool = True,
                      extensions: tuple[str, ...] | list[str] = IMAGE_EXTENSIONS) -> dict[str, Any]:
    """Detect and crop every photo under ``input_dir``, write the FER2013 CSV ``output`` and its report.

    Returns the report (also written as JSON). The CSV is rewritten only when its content changed, so the
    parsed-array cache of :func:`load_fer2013_csv` stays valid across unchanged re-runs.
    """
    started = time.perf_counter()
    root = Path(input_dir).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"input_dir {str(root)!r} is not a folder (resolved to {root.resolve()})")
    if no_face not in NO_FACE_POLICIES:
        raise ValueError(f"no_face must be one of {NO_FACE_POLICIES}, got {no_face!r}")
    detector = detector or DlibDetector()
    labels = labels or FolderLabels()
    output = Path(output).expanduser()
    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()

    photos = find_photos(root, tuple(extensions))
    unreadable = [{"file": str(p.rel), "error": p.error} for p in photos if p.ref is None]
    labelled, unknown = [], []
    for photo in (p for p in photos if p.ref is not None):
        label, raw = labels(photo.rel)
        if label is None:
            unknown.append({"file": str(photo.rel), "label": raw})
        else:
            labelled.append((photo, label))
    usage = assign_splits([p.rel for p, _ in labelled], [lb for _, lb in labelled], split, seed, test_fraction,
                          usage_from_name)
    outside = [str(p.rel) for (p, _), u in zip(labelled, usage) if u == OUTSIDE]
    todo = [(p, lb, u) for (p, lb), u in zip(labelled, usage) if u != OUTSIDE]
    refs = [p.ref for p, _, _ in todo]
    results, n_cached = extract_faces(refs, detector, cache if use_cache else None, workers, progress)

    arrays, no_face_files, more_unreadable, multi_face = _assemble(todo, results, no_face)
    unreadable += more_unreadable

    report_file = report_path(output)
    digest = content_hash(arrays)
    previous = _read_json(report_file)
    unchanged = (output.is_file() and previous.get("content_sha1") == digest
                 and previous.get("csv_bytes") == output.stat().st_size)
    if not unchanged:  # zero rows still writes the header, so the output never shows a previous run's rows
        write_fer2013_csv(output, arrays)
    report = {
        "input_dir": str(root.resolve()), "output": str(output.resolve()),
        "detector": detector.settings(), "labels": labels.describe(), "split": split, "seed": seed,
        "files_seen": len(photos), "files_processed": len(results) - n_cached, "from_cache": n_cached,
        "faces_found": sum(r.status == "face" for r in results.values()), "multi_face_files": multi_face,
        "rows_written": len(arrays),
        "rows_by_usage": {SPLIT_TO_USAGE[s]: int((arrays.splits == i).sum()) for i, s in enumerate(SPLITS)},
        "rows_by_class": dict(zip(EMOTIONS, np.bincount(arrays.labels, minlength=len(EMOTIONS)).tolist())),
        "no_face": {"policy": no_face, "count": len(no_face_files), "files": no_face_files},
        "unreadable": {"count": len(unreadable), "files": unreadable},
        "unknown_labels": {"count": len(unknown), "labels": dict(Counter(u["label"] for u in unknown)),
                           "files": unknown},
        "outside_split_folders": {"count": len(outside), "files": outside},
        "csv_written": not unchanged, "csv_bytes": output.stat().st_size,
        "content_sha1": digest, "seconds": round(time.perf_counter() - started, 2),
    }
    write_json(report_file, report)
    return report


def _assemble(todo: list[tuple[Photo, int, int]], results: dict[str, FileResult],
              no_face: str) -> tuple[FERArrays, list[str], list[dict[str, str]], int]:
    """Rows in relative-path order from the per-file results; plus no-face files, unreadable ones, multi-face count."""
    images, labels, splits, no_face_files, unreadable, multi_face = [], [], [], [], [], 0
    for photo, label, split in todo:
        r = results[photo.ref.path]
        if r.status in ("unreadable", "error"):
            unreadable.append({"file": str(photo.rel), "error": r.error})
            continue
        if r.status == "noface":
            no_face_files.append(str(photo.rel))
            if no_face == "skip":
                continue
        multi_face += r.n_faces > 1
        images.append(np.frombuffer(r.crop, np.uint8).reshape(IMAGE_SIZE, IMAGE_SIZE))
        labels.append(label)
        splits.append(split)
    arrays = FERArrays(np.array(images, np.uint8).reshape(-1, IMAGE_SIZE, IMAGE_SIZE), np.array(labels, np.int64),
                       np.array(splits, np.int8))
    return arrays, no_face_files, unreadable, multi_face


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def summarize(report: dict[str, Any]) -> str:
    """A few lines for the console; the JSON report has the file lists."""
    usage = ", ".join(f"{k} {v}" for k, v in report["rows_by_usage"].items())
    lines = [
        (f"{report['files_seen']} photos seen, {report['from_cache']} from cache, {report['files_processed']} "
         f"processed in {report['seconds']} s ({report['detector']['name']} detector)"),
        (f"{report['faces_found']} with a face ({report['multi_face_files']} with several: largest kept); "
         f"{report['rows_written']} rows written: {usage}"),
        (f"no face: {report['no_face']['count']} ({report['no_face']['policy']}); "
         f"unreadable: {report['unreadable']['count']}; unknown label: {report['unknown_labels']['count']}"
         + (f" {report['unknown_labels']['labels']}" if report["unknown_labels"]["count"] else "")
         + (f"; outside train/test folders: {report['outside_split_folders']['count']}"
            if report["outside_split_folders"]["count"] else "")),
        f"CSV {'written' if report['csv_written'] else 'unchanged'}: {report['output']}",
        f"report: {report_path(report['output'])}",
    ]
    return "\n".join(lines)


class PhotoFolderSource:
    """Training data from a folder of photos: preprocess (cached per image) then read the CSV back.

    ``output`` defaults to ``<cache_dir>/photos/<folder>-<settings hash>.csv``. The DataModule calls the source
    (``source()``, i.e. :meth:`load`) in ``prepare_data`` and ``setup``; the second call reuses the first's arrays.
    """

    def __init__(self, input_dir: str | Path, detector: FaceDetector | None = None, labels: LabelRule | None = None,
                 split: str = "auto", seed: int = 0, test_fraction: float = 0.2, usage_from_name: bool = True,
                 no_face: str = "skip", cache_dir: str | Path | None = None, output: str | Path | None = None,
                 workers: int | None = None, progress: bool = True) -> None:
        self.input_dir = Path(input_dir).expanduser()
        self.detector = detector or DlibDetector()
        self.labels = labels or FolderLabels()
        self.cache_dir = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
        self.options = {"split": split, "seed": seed, "test_fraction": test_fraction,
                        "usage_from_name": usage_from_name, "no_face": no_face}
        self.workers, self.progress = workers, progress
        self.output = Path(output).expanduser() if output is not None else self._default_output()
        self.report: dict[str, Any] | None = None
        self._arrays: FERArrays | None = None

    def _default_output(self) -> Path:
        ident = json.dumps([str(self.input_dir.resolve()), self.detector.settings(), self.labels.describe(),
                            self.options], sort_keys=True, default=str)
        digest = hashlib.sha1(ident.encode()).hexdigest()[:12]
        return self.cache_dir / "photos" / f"{self.input_dir.resolve().name or 'root'}-{digest}.csv"

    def __call__(self) -> FERArrays:
        """The DataModule's source protocol: a callable returning :class:`FERArrays`."""
        return self.load()

    def load(self) -> FERArrays:
        """Faces of the folder; the first call preprocesses (cached per image), later calls reuse the arrays."""
        if self._arrays is None:
            self._arrays = self._load()
        return self._arrays

    def _load(self) -> FERArrays:
        self.report = preprocess_folder(self.input_dir, self.output, self.detector, self.labels,
                                        cache_dir=self.cache_dir, workers=self.workers, progress=self.progress,
                                        **self.options)
        if not self.report["rows_written"]:
            raise FERDataError(
                f"{self.input_dir}: no usable faces ({self.report['files_seen']} photos seen, "
                f"{self.report['unknown_labels']['count']} with unknown labels, {self.report['no_face']['count']} "
                f"without a face, {self.report['unreadable']['count']} unreadable); see {report_path(self.output)}"
            )
        return load_fer2013_csv(self.output, self.cache_dir)

    def __repr__(self) -> str:
        return f"PhotoFolderSource({str(self.input_dir)!r}, detector={self.detector!r}, {self.options})"
