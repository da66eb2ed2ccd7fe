"""FER+ labels (Barsoum et al. 2016): ten annotators' votes per FER2013 face, joined to the FER2013 faces.

``fer2013new.csv`` (Microsoft's FERPlus repository) has one row per fer2013.csv row, in the same order:
``Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF``. The join is
checked row by row (same row count, same ``Usage``): a vote file that does not line up is an error naming the
row, never a silent relabelling of other faces.

Label modes, as in Microsoft's FERPlus code (``_process_data``):

- ``majority``: a vote of 1 is an outlier and is dropped (``drop_single_votes``); a face keeps the class that
  holds a strict majority (> half) of its remaining votes, ``unknown`` and ``NF`` (not a face) included in the
  count. Faces without a majority, or whose majority is ``unknown``/``NF`` (or ``contempt``, with the 7-class
  set), are dropped and counted per split in the log.
- ``probability``: Training faces train on their vote distribution (the same outlier rule, over the class
  set) as a soft target; a face is dropped when its largest vote is ``unknown``/``NF`` (or ``contempt`` with
  the 7-class set) or no class vote is left. PublicTest and PrivateTest always keep the majority protocol, so
  the model is selected and reported on the same faces in both modes.

Every kept face also carries its vote distribution (``FERArrays.votes``), which evaluation scores the model's
cross-entropy against. The faces come from the FER2013 reader and its ``.npz`` cache; the vote file is 1.6 MB
and is read in well under a second, so the labels are derived afresh each time.
"""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fer_lightning.data.arrays import FERArrays
from fer_lightning.data.fer2013 import load_fer2013_csv
from fer_lightning.emotions import CLASS_SETS, SPLITS, USAGE_TO_SPLIT, USAGES
from fer_lightning.errors import ConfigError, FERDataError

log = logging.getLogger(__name__)

#: The vote file's header, and its vote columns in order.
HEADER = (
    "Usage",
    "Image name",
    "neutral",
    "happiness",
    "surprise",
    "sadness",
    "anger",
    "disgust",
    "fear",
    "contempt",
    "unknown",
    "NF",
)
VOTE_COLUMNS = HEADER[2:]
#: Columns that are not an emotion: a face whose votes go there is not labelled.
UNKNOWN, NOT_A_FACE, CONTEMPT = VOTE_COLUMNS.index("unknown"), VOTE_COLUMNS.index("NF"), 7
MODES = ("majority", "probability")
HOW_TO_GET = (
    "download fer2013new.csv from github.com/microsoft/FERPlus (MIT licence) into "
    "<data_dir>/ferplus/, beside fer2013/fer2013.csv"
)


@dataclass(frozen=True)
class VoteFile:
    """The vote counts (N, 10) int64 in :data:`VOTE_COLUMNS` order and the split id of each row."""

    votes: np.ndarray
    splits: np.ndarray
    path: Path


def read_votes(path: str | Path) -> VoteFile:
    """Parse ``fer2013new.csv``; a missing file, a wrong header, a row that is not 10 vote counts, or a row
    without any vote is an error naming the file and line."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise FERDataError(f"FER+ vote file not found: {path}; {HOW_TO_GET}")
    with open(path, newline="", encoding="utf-8-sig") as f:
        rows = csv.reader(f)
        header = tuple(next(rows, ()))
        if header != HEADER:
            raise FERDataError(
                f"{path}, line 1: header {','.join(header)[:120]!r} is not {','.join(HEADER)!r}"
            )
        votes, splits = [], []
        for lineno, row in enumerate(rows, start=2):
            votes.append(_row_votes(path, lineno, row))
            splits.append(SPLITS.index(USAGE_TO_SPLIT[row[0]]))
    if not votes:
        raise FERDataError(f"{path}: no rows after the header; {HOW_TO_GET}")
    return VoteFile(np.array(votes, np.int64), np.array(splits, np.int8), path)


def _row_votes(path: Path, lineno: int, row: list[str]) -> list[int]:
    where = f"{path}, line {lineno}"
    if len(row) != len(HEADER):
        raise FERDataError(f"{where}: expected {len(HEADER)} fields, found {len(row)}")
    if row[0] not in USAGE_TO_SPLIT:
        raise FERDataError(f"{where}: Usage {row[0]!r} is not one of {list(USAGES)}")
    if not all(v.isascii() and v.isdigit() for v in row[2:]):
        raise FERDataError(f"{where}: vote counts must be whole numbers, got {row[2:]}")
    counts = [int(v) for v in row[2:]]
    if sum(counts) == 0:
        raise FERDataError(f"{where}: the row has no votes at all (every count is 0): the file is damaged")
    return counts


def check_alignment(votes: VoteFile, faces: FERArrays) -> None:
    """The vote file must list the FER2013 faces in their order: same row count, same Usage on every row."""
    if len(votes.splits) != len(faces):
        raise FERDataError(
            f"{votes.path} has {len(votes.splits)} rows but {faces.origin or 'the FER2013 CSV'} has "
            f"{len(faces)}: the vote file is truncated or belongs to other data (FER+ lists every FER2013 "
            f"row, in order); {HOW_TO_GET}"
        )
    differ = np.flatnonzero(votes.splits != faces.splits)
    if differ.size:
        row = int(differ[0])
        raise FERDataError(
            f"{votes.path}, line {row + 2}: Usage {USAGES[votes.splits[row]]} but row {row + 1} of "
            f"{faces.origin or 'the FER2013 CSV'} is {USAGES[faces.splits[row]]} ({differ.size} rows "
            "differ): the files are not row-aligned"
        )


@dataclass(frozen=True)
class Labels:
    """What a label mode made of the votes: which rows are kept, their label ids and vote distributions, and
    per split how many rows were dropped for each reason."""

    keep: np.ndarray
    labels: np.ndarray
    distributions: np.ndarray
    split_ids: np.ndarray
    dropped: dict[str, dict[str, int]]

    def kept(self) -> dict[str, int]:
        """Kept faces per split."""
        return {name: int((self.keep & (self.split_ids == i)).sum()) for i, name in enumerate(SPLITS)}


def label_votes(
    votes: np.ndarray,
    splits: np.ndarray,
    mode: str = "majority",
    classes: str = "ferplus",
    drop_single_votes: bool = True,
) -> Labels:
    """Turn vote counts (N, 10) into labels of class set ``classes`` under ``mode`` (see the module text)."""
    if mode not in MODES:
        raise ConfigError(f"FER+ label mode must be one of {list(MODES)}, got {mode!r}")
    if classes not in CLASS_SETS:
        raise ConfigError(f"FER+ class set must be one of {sorted(CLASS_SETS)}, got {classes!r}")
    counted = votes.astype(np.float64)
    if drop_single_votes:  # Microsoft's outlier rule: a class named by one annotator only is noise
        counted[counted <= 1] = 0
    winner = counted.argmax(1)
    majority = counted.max(1) > 0.5 * counted.sum(1)
    # column of each FER+ emotion in the chosen class set (contempt has none among FER2013's seven)
    names = CLASS_SETS["ferplus"]
    columns = [names.index(name) for name in CLASS_SETS[classes]]
    emotions = counted[:, columns]
    totals = emotions.sum(1, keepdims=True)
    distributions = np.divide(emotions, totals, out=np.zeros_like(emotions), where=totals > 0)
    not_in_set = ~np.isin(winner, columns)  # unknown, NF, and contempt for the 7-class set

    reason = np.full(len(votes), "", dtype=object)
    reason[(winner == CONTEMPT) & not_in_set] = "contempt"
    reason[winner == UNKNOWN] = "unknown"
    reason[winner == NOT_A_FACE] = "not a face"
    reason[(totals[:, 0] == 0) & (reason == "")] = "no class votes"
    soft = (splits == SPLITS.index("train")) if mode == "probability" else np.zeros(len(votes), bool)
    reason[~soft & ~majority] = "no majority"  # the majority protocol's first test, whatever else applies
    keep = reason == ""
    # a hard label for every kept face: the majority class, or the largest vote of a soft-target face
    position = {column: i for i, column in enumerate(columns)}
    labels = np.array([position.get(int(w), -1) for w in winner], np.int64)
    soft_labels = distributions.argmax(1)
    labels[soft] = soft_labels[soft]
    dropped = {
        name: {r: int(((splits == i) & (reason == r)).sum()) for r in sorted(set(reason[splits == i]) - {""})}
        for i, name in enumerate(SPLITS)
    }
    return Labels(keep, labels, distributions.astype(np.float32), splits, dropped)


def load_ferplus(
    votes_path: str | Path,
    fer2013_path: str | Path,
    mode: str = "majority",
    classes: str = "ferplus",
    drop_single_votes: bool = True,
    cache_dir: str | Path | None = None,
    use_cache: bool = True,
) -> FERArrays:
    """FER2013's faces (its cached arrays) with FER+ labels: only the faces the label mode keeps, each with
    its vote distribution; what was dropped is logged per split."""
    votes = read_votes(votes_path)
    faces = load_fer2013_csv(fer2013_path, cache_dir, use_cache)
    check_alignment(votes, faces)
    result = label_votes(votes.votes, votes.splits, mode, classes, drop_single_votes)
    rule = "votes of 1 dropped, " if drop_single_votes else ""
    log.info(
        "FER+ labels (%s mode, %s classes, %sstrict majority): kept %s, dropped %s",
        mode,
        classes,
        rule,
        result.kept(),
        result.dropped,
    )
    keep = result.keep
    return FERArrays(
        images=faces.images[keep],
        labels=result.labels[keep],
        splits=faces.splits[keep],
        origin=str(votes.path),
        classes=CLASS_SETS[classes],
        votes=result.distributions[keep],
    )


def load_fer2013_with_votes(
    votes_path: str | Path,
    fer2013_path: str | Path,
    drop_single_votes: bool = True,
    cache_dir: str | Path | None = None,
    use_cache: bool = True,
) -> FERArrays:
    """Every FER2013 face with its FER2013 label, plus its FER+ vote distribution over FER2013's seven classes
    as ``votes`` (soft targets beside the labels: ``data=fer2013_votes``). A face whose annotators named none
    of the seven (contempt, unknown, not a face) gets its FER2013 label as a one-hot distribution, so no face
    is dropped and PublicTest/PrivateTest stay FER2013's own protocol."""
    votes = read_votes(votes_path)
    faces = load_fer2013_csv(fer2013_path, cache_dir, use_cache)
    check_alignment(votes, faces)
    result = label_votes(votes.votes, votes.splits, "majority", "fer2013", drop_single_votes)
    distributions = result.distributions.copy()
    empty = distributions.sum(1) == 0
    distributions[empty] = np.eye(len(CLASS_SETS["fer2013"]), dtype=np.float32)[faces.labels[empty]]
    log.info(
        "FER+ vote distributions for %d faces (%d without a FER2013-class vote: their label)",
        len(faces),
        int(empty.sum()),
    )
    return FERArrays(
        faces.images, faces.labels, faces.splits, str(votes.path), CLASS_SETS["fer2013"], distributions
    )
