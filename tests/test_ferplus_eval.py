"""scripts/eval.py with data=ferplus: the shipped FER+ weights and the shipped FER2013 weights scored on the
FER+ majority labels, against the figures recorded in docs/results.md (exact to the face)."""

from __future__ import annotations

import pytest
import torch
from omegaconf import open_dict

from fer_lightning.checkpoints import DEFAULT_WEIGHTS, load_network
from fer_lightning.emotions import FERPLUS_EMOTIONS
from fer_lightning.predict import Predictor
from fer_lightning.tasks.eval import run as evaluate
from tests.conftest import ROOT, compose_config

FERPLUS_WEIGHTS = ROOT / "fer_lightning" / "weights" / "mini_xception_ferplus.pt"
RESULTS = (ROOT / "docs" / "results.md").read_text()


def _eval(tmp_path, cache_dir, *overrides):
    cfg = compose_config("eval", ["data=ferplus", "threads=1", "logger=[]", *overrides], tmp_path)
    with open_dict(cfg):
        cfg.paths.cache_dir = str(cache_dir)
    return evaluate(cfg)


def test_shipped_ferplus_weights_carry_their_classes_to_the_predictor():
    net, classes = load_network(FERPLUS_WEIGHTS)
    assert classes == list(FERPLUS_EMOTIONS) and net.num_classes == 8
    assert sum(p.numel() for p in net.parameters()) <= 60_000
    meta = torch.load(FERPLUS_WEIGHTS, weights_only=True)["meta"]
    assert meta["selected_on"].startswith("FER+ PublicTest")
    assert Predictor.from_checkpoint(FERPLUS_WEIGHTS).classes == list(FERPLUS_EMOTIONS)


@pytest.mark.slow
def test_shipped_ferplus_weights_reproduce_their_recorded_figures(tmp_path, cache_dir):
    metrics = _eval(tmp_path, cache_dir, f"ckpt_path={FERPLUS_WEIGHTS}")
    meta = torch.load(FERPLUS_WEIGHTS, weights_only=True)["meta"]
    correct = round(metrics["private/acc"] * metrics["private/n"])
    assert metrics["private/n"] == 3153 and correct == meta["privatetest_correct"]
    assert f"{correct:,} of 3,153" in RESULTS  # docs/results.md states the same face count
    assert round(metrics["public/acc"] * metrics["public/n"]) == meta["publictest_correct"]
    assert "unpredictable" not in str(metrics.keys()) and metrics["private/vote_ce"] > 0
    assert list(metrics["private/per_class_recall"]) == list(FERPLUS_EMOTIONS)


@pytest.mark.slow
def test_shipped_fer2013_weights_on_ferplus_labels_count_contempt_as_errors(tmp_path, cache_dir):
    metrics = _eval(tmp_path, cache_dir, f"ckpt_path={DEFAULT_WEIGHTS}", "splits=[private]")
    assert metrics["private/n"] == 3153 and metrics["private/unpredictable"] == 16
    assert round(metrics["private/acc"] * 3153) == 2190  # 69.46 %, "69.5 %" in docs/results.md
    assert "2,190 of 3,153" in RESULTS
    assert metrics["private/per_class_recall"]["contempt"] == 0.0
