"""FER+ labels (data=ferplus) on the real vote file: alignment with fer2013.csv, both label modes, both class
sets, and bad vote files through the scripts."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch

from fer_lightning.data.fer2013 import load_fer2013_csv
from fer_lightning.data.ferplus import check_alignment, load_ferplus, read_votes
from fer_lightning.errors import FERDataError
from fer_lightning.emotions import EMOTIONS, FERPLUS_EMOTIONS
from fer_lightning.evaluation import split_metrics
from tests.conftest import assert_one_line_error


@pytest.fixture(scope="module")
def paths(data_dir) -> tuple[Path, Path]:
    return data_dir / "ferplus" / "fer2013new.csv", data_dir / "fer2013" / "fer2013.csv"


def test_majority_labels_with_microsofts_outlier_rule(paths, cache_dir, caplog):
    caplog.set_level("INFO")
    arrays = load_ferplus(*paths, cache_dir=cache_dir)
    assert arrays.classes == FERPLUS_EMOTIONS and arrays.origin == str(paths[0])
    # kept per split, and every dropped face accounted for: 28,709 / 3,589 / 3,589 FER2013 rows
    assert arrays.counts() == {
        "train": [8740, 7287, 3149, 3014, 2100, 119, 532, 119],
        "public": [1182, 865, 415, 351, 287, 24, 62, 13],
        "private": [1090, 893, 396, 384, 273, 18, 83, 16],
    }
    assert 25060 + 3423 + 150 + 76 == 28709 and 3153 + 410 + 16 + 10 == 3589
    assert "'private': {'no majority': 410, 'not a face': 16, 'unknown': 10}" in caplog.text
    # each face's vote distribution (votes of 1 dropped) peaks at its majority class
    assert np.allclose(arrays.votes.sum(1), 1) and (arrays.votes.argmax(1) == arrays.labels).all()


def test_seven_class_majority_of_all_votes_gives_2720_private_test_faces(paths, cache_dir, caplog):
    """The figure measured elsewhere (2,720 PrivateTest faces, FER2013 agreeing on ~72.2 %) is the strict
    majority of all ten votes, without Microsoft's outlier rule; with it, 3,137 faces have a majority."""
    caplog.set_level("INFO")
    strict = load_ferplus(*paths, classes="fer2013", drop_single_votes=False, cache_dir=cache_dir)
    assert strict.classes == EMOTIONS and strict.counts()["private"] == [219, 7, 50, 872, 295, 341, 936]
    assert "'private': {'contempt': 9, 'no majority': 840, 'not a face': 16, 'unknown': 4}" in caplog.text
    fer2013 = load_fer2013_csv(paths[1], cache_dir)
    votes = read_votes(paths[0]).votes
    # the rows kept: a strict majority of all votes, for one of FER2013's seven classes
    winner = votes.argmax(1)
    kept = (votes.max(1) > votes.sum(1) / 2) & (winner < 7) & (fer2013.splits == 2)
    assert kept.sum() == 2720
    agree = (fer2013.labels[kept] == strict.labels[strict.splits == 2]).sum()
    assert agree == 1965  # 72.24 %
    assert sum(load_ferplus(*paths, classes="fer2013", cache_dir=cache_dir).counts()["private"]) == 3137


def test_probability_mode_keeps_distributions_for_training_and_majority_for_testing(paths, cache_dir):
    soft = load_ferplus(*paths, mode="probability", cache_dir=cache_dir)
    majority = load_ferplus(*paths, cache_dir=cache_dir)
    assert sum(soft.counts()["train"]) == 28389  # 28,709 less 150 not-a-face and 170 unknown-led faces
    for split in ("public", "private"):  # selection and report stay on the majority protocol
        assert np.array_equal(soft.split(split)[1], majority.split(split)[1])
    train = soft.split_votes("train")
    assert np.allclose(train.sum(1), 1) and (train.max(1) < 1).sum() > 10000  # real distributions
    assert (train.argmax(1) == soft.split("train")[1]).all()


def test_scoring_maps_classes_by_name_and_counts_unpredictable_faces():
    # a 7-class FER2013 model on 8-class FER+ labels: its outputs are re-ordered by name, contempt is an error
    labels = torch.tensor([FERPLUS_EMOTIONS.index(c) for c in ("happy", "contempt", "neutral", "sad")])
    predicted = [EMOTIONS.index(c) for c in ("happy", "happy", "neutral", "angry")]
    log_probs = torch.nn.functional.one_hot(torch.tensor(predicted), 7).float().mul(5).log_softmax(1)
    votes = torch.nn.functional.one_hot(labels, 8).float()
    m = split_metrics(log_probs, labels, EMOTIONS, FERPLUS_EMOTIONS, votes)
    assert m["acc"] == 0.5 and m["unpredictable"] == 1 and m["per_class_recall"]["contempt"] == 0.0
    assert m["confusion_classes"] == list(FERPLUS_EMOTIONS) and m["confusion_matrix"][7][1] == 1
    # the reverse: an 8-class model's contempt prediction on FER2013 labels is an error, not a dropped face
    back = split_metrics(votes.mul(5).log_softmax(1), torch.tensor([3, 6, 6, 4]), FERPLUS_EMOTIONS, EMOTIONS)
    assert back["acc"] == 0.75 and back["unpredictable"] == 0 and back["confusion_classes"][-1] == "contempt"


# --- bad vote files ----------------------------------------------------------------------------------------


def _rewrite(source: Path, out: Path, change) -> Path:
    with open(source, newline="") as f:
        rows = list(csv.reader(f))
    rows = change(rows)
    with open(out, "w", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows(rows)
    return out


def _short(rows):
    return rows[:-5]


def _moved(rows):
    rows[101][0] = "PrivateTest"  # line 102: a Training row of fer2013.csv
    return rows


def test_alignment_is_checked_row_by_row(paths, tmp_path, cache_dir):
    faces = load_fer2013_csv(paths[1], cache_dir)
    check_alignment(read_votes(paths[0]), faces)  # the real files line up
    short = _rewrite(paths[0], tmp_path / "short.csv", _short)
    with pytest.raises(FERDataError, match=r"short.csv has 35882 rows but .* has 35887"):
        check_alignment(read_votes(short), faces)
    moved = _rewrite(paths[0], tmp_path / "moved.csv", _moved)
    with pytest.raises(
        FERDataError, match=r"line 102: Usage PrivateTest but row 101 of .* is Training \(1 rows"
    ):
        check_alignment(read_votes(moved), faces)


# the same through scripts/eval.py: one "error:" line each


def _eval_error(message: str, votes: Path) -> None:
    assert_one_line_error("eval", message, "data=ferplus", f"data.source.votes_path={votes}", "logger=[]")


def test_missing_vote_file_is_one_line(tmp_path, cache_dir):
    _eval_error(f"error: FER+ vote file not found: {tmp_path / 'none.csv'}", tmp_path / "none.csv")


@pytest.mark.slow
def test_truncated_vote_file_is_one_line(paths, tmp_path, cache_dir):
    short = _rewrite(paths[0], tmp_path / "short.csv", _short)
    _eval_error(f"error: {short} has 35882 rows but", short)


@pytest.mark.slow
def test_misaligned_usage_names_the_row(paths, tmp_path, cache_dir):
    moved = _rewrite(paths[0], tmp_path / "moved.csv", _moved)
    _eval_error(f"error: {moved}, line 102: Usage PrivateTest but row 101 of", moved)


def test_row_without_votes_names_the_line(paths, tmp_path, cache_dir):
    def blank(rows):
        rows[500][2:] = ["0"] * 10
        return rows

    empty = _rewrite(paths[0], tmp_path / "empty.csv", blank)
    _eval_error(f"error: {empty}, line 501: the row has no votes at all", empty)
