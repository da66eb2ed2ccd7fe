"""The shipped weights by name: Predictor.from_pretrained, ckpt_path=<name>, weights=<name> in the photo
tools."""

from __future__ import annotations

import pytest

from fer_lightning.checkpoints import DEFAULT_PHOTO_MODEL, PRETRAINED, chosen_weights, resolve_checkpoint
from fer_lightning.emotions import EMOTIONS
from fer_lightning.errors import ConfigError, InputError
from fer_lightning.predict import Predictor
from tests.conftest import assert_one_line_error, run_script


def test_both_shipped_weights_exist_and_carry_their_classes():
    assert set(PRETRAINED) == {"fer2013", "ferplus"} and all(p.is_file() for p in PRETRAINED.values())
    assert Predictor.from_pretrained("fer2013", device="cpu").classes == list(EMOTIONS)
    ferplus = Predictor.from_pretrained("ferplus", device="cpu").classes
    assert len(ferplus) == 8 and "contempt" in ferplus and set(EMOTIONS) <= set(ferplus)


def test_names_resolve_everywhere_and_unknown_names_are_refused():
    assert resolve_checkpoint("ferplus") == PRETRAINED["ferplus"]
    assert chosen_weights(None, None) == PRETRAINED[DEFAULT_PHOTO_MODEL]
    assert chosen_weights(None, "ferplus") == PRETRAINED["ferplus"]
    assert chosen_weights(PRETRAINED["fer2013"], "ferplus") == PRETRAINED["fer2013"]  # a file wins
    with pytest.raises(ConfigError, match="weights=vgg: the shipped weights are fer2013, ferplus"):
        chosen_weights(None, "vgg")
    with pytest.raises(InputError, match="no shipped weights named 'x'"):
        Predictor.from_pretrained("x")


def test_predict_with_the_ferplus_weights_shows_ferplus_labels(jaffe_dir, tmp_path):
    photo = sorted(jaffe_dir.glob("*.tiff"))[0]
    done = run_script(
        "predict", f"inputs={photo}", "weights=ferplus", "device=cpu", f"hydra.run.dir={tmp_path}"
    )
    assert done.returncode == 0, done.stderr[-2000:]
    header, row = (tmp_path / "predictions.csv").read_text().splitlines()[:2]
    label = row.split(",")[header.split(",").index("label")]
    assert label == Predictor.from_pretrained("ferplus", device="cpu").predict(photo)[0].label
    assert_one_line_error(
        "predict", "error: weights=vgg: the shipped weights are", f"inputs={photo}", "weights=vgg"
    )
