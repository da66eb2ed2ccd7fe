"""Photo folder → 48x48 faces → FER2013 CSV + report: :func:`preprocess_folder` and its :class:`FaceSettings`.

Used by ``scripts/preprocess.py`` (via :mod:`fer_lightning.tasks.preprocess`) and by ``data=photos``
(:class:`~fer_lightning.faces.source.PhotoFolderSource`). One bad file never stops a run: unreadable files
(and any the detector fails on), photos without a face, unknown labels and entries the folder walk had to skip
(symlink loops, unlistable folders) are counted and listed in the report ``<output stem>.report.json`` written
beside the CSV.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from fer_lightning.data.arrays import FERArrays
from fer_lightning.data.cache import default_cache_dir
from fer_lightning.emotions import EMOTIONS, IMAGE_SIZE, USAGES
from fer_lightning.errors import ConfigError, InputError
from fer_lightning.faces.align import FaceAligner
from fer_lightning.faces.cache import FileResult
from fer_lightning.faces.detectors import DlibDetector, FaceDetector, NoDetector
from fer_lightning.faces.extract import extract_faces
from fer_lightning.faces.fer2013_csv import content_hash, write_fer2013_csv
from fer_lightning.faces.labels import FolderLabels, LabelRule
from fer_lightning.faces.splits import OUTSIDE, SPLIT_MODES, assign_splits
from fer_lightning.faces.walk import Extensions, Photo, SkippedEntry, find_photos, suffixes_of
from fer_lightning.utils.io import write_json

NO_FACE_POLICIES = ("skip", "center_crop")


@dataclass
class FaceSettings:
    """How a folder of photos becomes FER2013 rows; :func:`preprocess_folder` and ``PhotoFolderSource`` take
    these fields as their own arguments. ``None`` defaults are filled in on construction."""

    detector: FaceDetector | None = None  # None: DlibDetector()
    labels: LabelRule | None = None  # None: FolderLabels()
    split: str = "auto"  # one of SPLIT_MODES (see faces/splits.py)
    seed: int = 0
    test_fraction: float = 0.2
    usage_from_name: bool = True  # test files named PublicTest_*/PrivateTest_* keep that split
    no_face: str = "skip"  # one of NO_FACE_POLICIES
    cache_dir: str | Path | None = None  # None: default_cache_dir()
    use_cache: bool = True
    workers: int | None = None  # None: one process per usable core; 0: in this process
    progress: bool = True
    extensions: Extensions = None  # None: every image format the package reads
    # level the eyes and frame the face as FER2013 does (faces/align.py); eyes not found: the detector's crop
    align: bool = True
    # where FER2013 has the eyes (its medians), as fractions of the crop side: the eye midpoint's height
    # below the top, and the distance between the eye centres
    eye_y: float = 0.382
    eye_distance: float = 0.383
    aligner: FaceAligner | None = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.detector = self.detector or DlibDetector()
        self.labels = self.labels or FolderLabels()
        self.cache_dir = (
            Path(self.cache_dir).expanduser() if self.cache_dir is not None else default_cache_dir()
        )
        # detector=none means the inputs already are face crops (FER2013 image folders): never re-framed
        wanted = self.align and not isinstance(self.detector, NoDetector)
        self.aligner = FaceAligner(self.eye_y, self.eye_distance) if wanted else None

    def row_options(self) -> dict[str, Any]:
        """The settings besides detector and labels that decide which rows a folder gives (a cache
        identity)."""
        names = ("split", "seed", "test_fraction", "usage_from_name", "no_face")
        options = {name: getattr(self, name) for name in names}  # not asdict: it would deep-copy the detector
        if self.extensions is not None:
            options["extensions"] = list(suffixes_of(self.extensions))
        options["align"] = self.aligner.settings() if self.aligner is not None else None
        return options


@dataclass
class LabelledPhotos:
    """A photo folder listed and labelled: what :func:`process_folder` and the photo evaluation
    (:mod:`fer_lightning.faces.evaluate`) both start from."""

    photos: list[Photo]  # every photo-named file found, readable or not
    skipped: list[SkippedEntry]  # entries the folder walk could not list
    labelled: list[tuple[Photo, int]]  # stat-able photos with a known label, in relative-path order
    usage: np.ndarray  # split index of each labelled photo (faces/splits.py), OUTSIDE when left out
    unknown: list[dict[str, str]]  # {"file", "label"}: the rule found no known class
    unreadable: list[dict[str, str]]  # {"file", "error"}: could not even be stat-ed

    @property
    def skipped_files(self) -> list[dict[str, str]]:
        return _skipped_files(self.skipped)


def _skipped_files(skipped: list[SkippedEntry]) -> list[dict[str, str]]:
    return [{"file": e.rel.as_posix(), "reason": e.reason} for e in skipped]


def label_photos(root: Path, settings: FaceSettings) -> LabelledPhotos:
    """Every photo under ``root`` with its label (``settings.labels``) and split; :class:`InputError` when the
    folder holds no photo."""
    s = settings
    photos, skipped = find_photos(root, s.extensions)
    if not photos:
        raise InputError(
            f"input_dir={root}: no photos ({', '.join(suffixes_of(s.extensions))}) in this "
            "folder" + (f"; {skipped_summary(_skipped_files(skipped))}" if skipped else "")
        )
    unreadable = [{"file": str(p.rel), "error": p.error} for p in photos if p.ref is None]
    labelled, unknown = [], []
    for photo in (p for p in photos if p.ref is not None):
        label, raw = s.labels(photo.rel)
        if label is None:
            unknown.append({"file": str(photo.rel), "label": raw})
        else:
            labelled.append((photo, label))
    usage = assign_splits(
        [p.rel for p, _ in labelled],
        [lb for _, lb in labelled],
        s.split,
        s.seed,
        s.test_fraction,
        s.usage_from_name,
    )
    return LabelledPhotos(photos, skipped, labelled, usage, unknown, unreadable)


def report_path(output: str | Path) -> Path:
    """``faces.csv`` → ``faces.report.json`` (also for ``faces.csv.gz``)."""
    output = Path(output)
    stem = output.name.removesuffix(".gz").removesuffix(".csv")
    return output.with_name(f"{stem}.report.json")


def preprocess_folder(input_dir: str | Path, output: str | Path, *args: Any, **kwargs: Any) -> dict[str, Any]:
    """Detect and crop every photo under ``input_dir``, write the FER2013 CSV ``output`` and its report.

    ``args``/``kwargs`` are the fields of :class:`FaceSettings` (``detector``, ``labels``, ``split``, ...).

    Returns the report (also written as JSON). The CSV is rewritten only when its content changed, so the
    parsed-array cache of :func:`load_fer2013_csv` stays valid across unchanged re-runs. Settings, the input
    folder and the output path are checked before any photo is read; a folder without a single photo is an
    :class:`InputError`.
    """
    return process_folder(input_dir, output, FaceSettings(*args, **kwargs))


def process_folder(input_dir: str | Path, output: str | Path, settings: FaceSettings) -> dict[str, Any]:
    """:func:`preprocess_folder` with its settings already gathered."""
    started = time.perf_counter()
    s = settings
    _check_options(s.split, s.test_fraction, s.no_face)
    root = input_folder(input_dir)
    output = _output_file(output)
    detector, labels = s.detector, s.labels

    listing = label_photos(root, s)
    photos, skipped_files, unknown = listing.photos, listing.skipped_files, listing.unknown
    unreadable = list(listing.unreadable)
    outside = [str(p.rel) for (p, _), u in zip(listing.labelled, listing.usage) if u == OUTSIDE]
    todo = [(p, lb, u) for (p, lb), u in zip(listing.labelled, listing.usage) if u != OUTSIDE]
    refs = [p.ref for p, _, _ in todo]
    results, n_cached = extract_faces(
        refs, detector, s.cache_dir if s.use_cache else None, s.workers, s.progress, aligner=s.aligner
    )

    arrays, no_face_files, more_unreadable, multi_face = _assemble(todo, results, s.no_face)
    unreadable += more_unreadable

    report_file = report_path(output)
    digest = content_hash(arrays)
    previous = _read_json(report_file)
    unchanged = (
        output.is_file()
        and previous.get("content_sha1") == digest
        and previous.get("csv_bytes") == output.stat().st_size
    )
    with _writing(output):
        if not unchanged:  # zero rows still write the header: the output never shows a previous run's rows
            write_fer2013_csv(output, arrays)
        report = {
            "input_dir": str(root.resolve()),
            "output": str(output.resolve()),
            "detector": detector.settings(),
            "labels": labels.describe(),
            "split": s.split,
            "seed": s.seed,
            "files_seen": len(photos),
            "files_processed": len(results) - n_cached,
            "from_cache": n_cached,
            "faces_found": sum(r.status == "face" for r in results.values()),
            "multi_face_files": multi_face,
            "alignment": alignment_summary(
                [results[p.ref.path] for p, _, _ in todo], [p.rel for p, _, _ in todo], s.aligner
            ),
            "rows_written": len(arrays),
            "rows_by_usage": {usage: int((arrays.splits == i).sum()) for i, usage in enumerate(USAGES)},
            "rows_by_class": dict(
                zip(EMOTIONS, np.bincount(arrays.labels, minlength=len(EMOTIONS)).tolist())
            ),
            "no_face": {"policy": s.no_face, "count": len(no_face_files), "files": no_face_files},
            "unreadable": {"count": len(unreadable), "files": unreadable},
            "skipped_entries": {"count": len(skipped_files), "files": skipped_files},
            "unknown_labels": {
                "count": len(unknown),
                "labels": dict(Counter(u["label"] for u in unknown)),
                "files": unknown,
            },
            "outside_split_folders": {"count": len(outside), "files": outside},
            "csv_written": not unchanged,
            "csv_bytes": output.stat().st_size,
            "content_sha1": digest,
            "seconds": round(time.perf_counter() - started, 2),
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


def input_folder(input_dir: str | Path) -> Path:
    root = Path(input_dir).expanduser()
    if root.is_file():
        raise InputError(
            f"input_dir={input_dir} is a file, not a folder; give the folder that holds the photos"
        )
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
        raise ConfigError(
            f"output={output}: cannot create its folder {path.parent} ({e.strerror or e}); "
            "choose a writable location"
        ) from e
    return path


@contextmanager
def _writing(output: Path) -> Iterator[None]:
    """A failed write of the CSV or its report (disk full, read-only folder) as one line naming ``output``."""
    try:
        yield
    except OSError as e:
        where = f" ({e.filename})" if e.filename else ""
        raise ConfigError(
            f"output={output}: cannot write{where}: {e.strerror or e}; "
            "free some space or choose a writable location"
        ) from e


def require_rows(report: dict[str, Any]) -> None:
    """Raise :class:`InputError` when a run wrote no rows: a CSV without faces is useless for training."""
    if report["rows_written"]:
        return
    raise InputError(
        f"{report['input_dir']}: no usable faces ({report['files_seen']} photos seen, "
        f"{report['unreadable']['count']} unreadable, {report['no_face']['count']} without a face, "
        f"{report['unknown_labels']['count']} with unknown labels); see {report_path(report['output'])}"
    )


def _assemble(
    todo: list[tuple[Photo, int, int]], results: dict[str, FileResult], no_face: str
) -> tuple[FERArrays, list[str], list[dict[str, str]], int]:
    """Rows in relative-path order from the per-file results; plus no-face files, unreadable ones, multi-face
    count."""
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
    arrays = FERArrays(
        np.array(images, np.uint8).reshape(-1, IMAGE_SIZE, IMAGE_SIZE),
        np.array(labels, np.int64),
        np.array(splits, np.int8),
    )
    return arrays, no_face_files, unreadable, multi_face


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def skipped_summary(files: list[dict[str, str]]) -> str:
    """``"2 entries skipped while listing (first: 'loop': symlink loop)"`` for ``{file, reason}`` dicts."""
    first = files[0]
    return (
        f"{len(files)} {'entry' if len(files) == 1 else 'entries'} skipped while listing "
        f"(first: {first['file']!r}: {first['reason']})"
    )


def alignment_summary(
    results: list[FileResult], names: list[PurePosixPath], aligner: FaceAligner | None
) -> dict[str, Any]:
    """How many faces were eye-aligned, and which kept the detector's crop because their eyes were not
    found."""
    fallback = [str(n) for r, n in zip(results, names) if r.status == "face" and r.aligned is False]
    return {
        "settings": aligner.settings() if aligner is not None else None,
        "aligned": sum(r.status == "face" and r.aligned is True for r in results),
        "eyes_not_found": {"count": len(fallback), "files": fallback},
    }
