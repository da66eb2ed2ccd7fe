"""Photo folder → 48x48 faces → FER2013 CSV + report; and :class:`PhotoFolderSource` for training on one.

Used by ``scripts/preprocess.py`` (config ``conf/preprocess.yaml``) and by ``data=photos``. One bad file never
stops a run: unreadable files (and any the detector fails on), photos without a face, unknown labels and
entries the folder walk had to skip (symlink loops, unlistable folders) are counted and listed in the report
``<output stem>.report.json`` written beside the CSV.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import stat
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, NamedTuple

import hydra
import numpy as np
from hydra.errors import InstantiationException
from omegaconf import DictConfig

from fer_lightning.data.arrays import IMAGE_SIZE, SPLITS, FERArrays
from fer_lightning.data.cache import default_cache_dir
from fer_lightning.faces.extract import FileRef, extract_faces
from fer_lightning.faces.cache import FileResult
from fer_lightning.faces.detectors import DlibDetector, FaceDetector
from fer_lightning.data.fer2013 import load_fer2013_csv
from fer_lightning.faces.fer2013_csv import content_hash, write_fer2013_csv, write_json
from fer_lightning.images import IMAGE_EXTENSIONS
from fer_lightning.faces.labels import FolderLabels, LabelRule
from fer_lightning.faces.splits import OUTSIDE, SPLIT_MODES, assign_splits
from fer_lightning.emotions import EMOTIONS, SPLIT_TO_USAGE
from fer_lightning.errors import ConfigError, InputError

NO_FACE_POLICIES = ("skip", "center_crop")


@dataclass(frozen=True)
class Photo:
    """A photo found under the input folder: its relative path, and its cache identity or why it has none."""

    rel: PurePosixPath
    ref: FileRef | None
    error: str = ""


@dataclass(frozen=True)
class SkippedEntry:
    """An entry of the input folder that was not listed: a symlink loop, a folder that cannot be read, ..."""

    rel: PurePosixPath
    reason: str


class PhotoListing(NamedTuple):
    """What :func:`find_photos` found: the photos (readable or not) and the entries it had to skip."""

    photos: list[Photo]
    skipped: list[SkippedEntry]


def find_photos(root: Path, extensions: str | tuple[str, ...] = IMAGE_EXTENSIONS) -> PhotoListing:
    """Photos under ``root`` (nested, any suffix case), sorted by relative path; hidden files/folders skipped.

    Hidden entries are skipped because they are typically not photos (``.DS_Store``, macOS ``._x.jpg``
    resource forks that carry a photo suffix). ``os.scandir`` rather than ``os.walk`` + ``realpath``: its
    entries carry the stat and link flag, which makes the scan of an unchanged 36k-photo folder about 3x
    faster.

    Links: symlinked files and folders are followed wherever they point, also outside ``root``, because a
    folder of links is the usual way to assemble a set from a larger collection without copying it. Each real
    folder is listed once: a symlink loop (a link to its own folder or to one above it) and a second link to a
    folder already listed are skipped. One bad entry never hides its siblings: a loop, a folder that cannot be
    listed or an entry that cannot be stat-ed is returned in ``skipped`` with the reason; a photo-named file
    that cannot be read (broken link, not a regular file) is returned as a :class:`Photo` with ``ref=None``.
    """
    suffixes = _suffixes(extensions)
    photos: list[Photo] = []
    skipped: list[SkippedEntry] = []
    real_root = os.path.realpath(root)
    listed = {real_root: PurePosixPath()}
    pending = [(real_root, PurePosixPath(), (real_root,))]  # folder, its relative path, real folders above it
    while pending:
        folder, rel, above = pending.pop()
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)  # which of two links gets listed is reproducible
        except OSError as e:
            skipped.append(SkippedEntry(rel, f"cannot list folder ({_why(e)})"))
            continue
        for entry in entries:
            if entry.name.startswith("."):
                continue
            entry_rel = rel / entry.name
            try:
                is_dir = entry.is_dir()  # follows links: a loop raises ELOOP here
            except OSError as e:
                skipped.append(SkippedEntry(entry_rel, _why(e)))
                continue
            if not is_dir:
                if entry.name.lower().endswith(suffixes):
                    photos.append(_photo(entry, entry_rel))
                continue
            target = os.path.realpath(entry.path) if entry.is_symlink() else entry.path
            reason = _why_not_enter(target, above, listed)
            if reason:
                skipped.append(SkippedEntry(entry_rel, reason))
                continue
            listed[target] = entry_rel
            pending.append((target, entry_rel, (*above, target)))
    return PhotoListing(sorted(photos, key=lambda p: p.rel.as_posix()), sorted(skipped, key=lambda s: s.rel))


def _suffixes(extensions: str | tuple[str, ...] | list[str]) -> tuple[str, ...]:
    # one suffix given as a string (``extensions=.jpg`` on the command line) must not become its characters
    items = [extensions] if isinstance(extensions, str) else extensions
    return tuple(e.lower() for e in items)


def _why_not_enter(target: str, above: tuple[str, ...], listed: dict[str, PurePosixPath]) -> str:
    """Why the walk must not enter folder ``target`` (a real path) below real folders ``above``; or ``""``."""
    if any(f == target or f.startswith(target.rstrip(os.sep) + os.sep) for f in above):
        return "symlink loop (links to a folder that contains it)"
    if target in listed:
        return f"links to a folder already listed as {listed[target].as_posix()!r}"
    return ""


def _why(error: OSError) -> str:
    if error.errno == errno.ELOOP:
        return "symlink loop"
    return error.strerror or str(error)


def _photo(entry: os.DirEntry, rel: PurePosixPath) -> Photo:
    try:
        st = entry.stat()  # follows symlinks; cached by scandir for plain files
    except OSError as e:  # broken symlink, permission denied
        return Photo(rel, None, f"cannot stat ({_why(e)})")
    if not stat.S_ISREG(st.st_mode):  # a FIFO or device with a photo name would block the decoder forever
        return Photo(rel, None, "not a regular file")
    real = os.path.realpath(entry.path) if entry.is_symlink() else entry.path
    return Photo(rel, FileRef(real, st.st_size, st.st_mtime_ns))


def instantiate_setting(cfg: DictConfig, key: str) -> Any:
    """``hydra.utils.instantiate(cfg[key])`` (a detector, a label rule), failing as one :class:`ConfigError`
    line that names ``key`` and the cause, instead of Hydra's multi-line wrapper around a traceback."""
    try:
        return hydra.utils.instantiate(cfg[key])
    except InstantiationException as e:
        cause = e.__cause__ or e
        if isinstance(cause, re.error):
            why = f"invalid regular expression {cause.pattern!r} ({cause.msg} at position {cause.pos})"
        else:
            why = " ".join(str(cause).split())  # Hydra's and some libraries' messages span several lines
        raise ConfigError(f"{key}: {why}; check the {key}.* settings") from e


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
                      extensions: str | tuple[str, ...] | list[str] = IMAGE_EXTENSIONS) -> dict[str, Any]:
    """Detect and crop every photo under ``input_dir``, write the FER2013 CSV ``output`` and its report.

    Returns the report (also written as JSON). The CSV is rewritten only when its content changed, so the
    parsed-array cache of :func:`load_fer2013_csv` stays valid across unchanged re-runs. Settings, the input
    folder and the output path are checked before any photo is read; a folder without a single photo is an
    :class:`InputError`.
    """
    started = time.perf_counter()
    _check_options(split, test_fraction, no_face)
    root = _input_folder(input_dir)
    output = _output_file(output)
    detector = detector or DlibDetector()
    labels = labels or FolderLabels()
    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()

    photos, skipped = find_photos(root, extensions)
    skipped_files = [{"file": s.rel.as_posix(), "reason": s.reason} for s in skipped]
    if not photos:
        raise InputError(f"input_dir={input_dir}: no photos ({', '.join(_suffixes(extensions))}) in this "
                         "folder" + (f"; {skipped_summary(skipped_files)}" if skipped else ""))
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
    with _writing(output):
        if not unchanged:  # zero rows still write the header: the output never shows a previous run's rows
            write_fer2013_csv(output, arrays)
        report = {
            "input_dir": str(root.resolve()), "output": str(output.resolve()),
            "detector": detector.settings(), "labels": labels.describe(), "split": split, "seed": seed,
            "files_seen": len(photos), "files_processed": len(results) - n_cached, "from_cache": n_cached,
            "faces_found": sum(r.status == "face" for r in results.values()), "multi_face_files": multi_face,
            "rows_written": len(arrays),
            "rows_by_usage": {SPLIT_TO_USAGE[s]: int((arrays.splits == i).sum())
                              for i, s in enumerate(SPLITS)},
            "rows_by_class": dict(zip(EMOTIONS,
                                      np.bincount(arrays.labels, minlength=len(EMOTIONS)).tolist())),
            "no_face": {"policy": no_face, "count": len(no_face_files), "files": no_face_files},
            "unreadable": {"count": len(unreadable), "files": unreadable},
            "skipped_entries": {"count": len(skipped_files), "files": skipped_files},
            "unknown_labels": {"count": len(unknown), "labels": dict(Counter(u["label"] for u in unknown)),
                               "files": unknown},
            "outside_split_folders": {"count": len(outside), "files": outside},
            "csv_written": not unchanged, "csv_bytes": output.stat().st_size,
            "content_sha1": digest, "seconds": round(time.perf_counter() - started, 2),
        }
        write_json(report_file, report)
    return report


def _check_options(split: str, test_fraction: float, no_face: str) -> None:
    """Settings that would otherwise fail only after the whole folder was scanned, or deep in a library."""
    if split not in SPLIT_MODES:
        raise ConfigError(f"split={split!r} is not a split mode; use one of {', '.join(SPLIT_MODES)}")
    if not 0 <= test_fraction < 1:
        raise ConfigError(f"test_fraction={test_fraction} must lie in [0, 1)")
    if no_face not in NO_FACE_POLICIES:
        raise ConfigError(f"no_face={no_face!r} is not a policy; use one of {', '.join(NO_FACE_POLICIES)}")


def _input_folder(input_dir: str | Path) -> Path:
    root = Path(input_dir).expanduser()
    if root.is_file():
        raise InputError(f"input_dir={input_dir} is a file, not a folder; give the folder that holds the "
                         "photos")
    if not root.is_dir():
        raise FileNotFoundError(f"input_dir={input_dir} is not a folder (nothing at {root.resolve()})")
    return root


def _output_file(output: str | Path) -> Path:
    """``output`` as a path whose folder exists, checked before hours of face detection rather than after."""
    path = Path(output).expanduser()
    if path.is_dir():
        raise ConfigError(f"output={output} is a folder; give a file path such as {path / 'faces.csv'}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"output={output}: cannot create its folder {path.parent} ({e.strerror or e}); "
                          "choose a writable location") from e
    return path


@contextmanager
def _writing(output: Path) -> Iterator[None]:
    """A failed write of the CSV or its report (disk full, read-only folder) as one line naming ``output``."""
    try:
        yield
    except OSError as e:
        where = f" ({e.filename})" if e.filename else ""
        raise ConfigError(f"output={output}: cannot write{where}: {e.strerror or e}; "
                          "free some space or choose a writable location") from e


def require_rows(report: dict[str, Any]) -> None:
    """Raise :class:`InputError` when a run wrote no rows: a CSV without faces is useless for training."""
    if report["rows_written"]:
        return
    raise InputError(
        f"{report['input_dir']}: no usable faces ({report['files_seen']} photos seen, "
        f"{report['unreadable']['count']} unreadable, {report['no_face']['count']} without a face, "
        f"{report['unknown_labels']['count']} with unknown labels); see {report_path(report['output'])}"
    )


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


def skipped_summary(files: list[dict[str, str]]) -> str:
    """``"2 entries skipped while listing (first: 'loop': symlink loop)"`` for ``{file, reason}`` dicts."""
    first = files[0]
    return (f"{len(files)} {'entry' if len(files) == 1 else 'entries'} skipped while listing "
            f"(first: {first['file']!r}: {first['reason']})")


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
            if report["outside_split_folders"]["count"] else "")
         + (f"; {skipped_summary(report['skipped_entries']['files'])}"
            if report["skipped_entries"]["count"] else "")),
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
        require_rows(self.report)
        return load_fer2013_csv(self.output, self.cache_dir)

    def __repr__(self) -> str:
        return f"PhotoFolderSource({str(self.input_dir)!r}, detector={self.detector!r}, {self.options})"
