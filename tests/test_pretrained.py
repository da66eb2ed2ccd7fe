"""The shipped weights by name: Predictor.from_pretrained, ckpt_path=<name>, weights=<name> in the photo
tools."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from fer_lightning.checkpoints import DEFAULT_PHOTO_MODEL, PRETRAINED, chosen_weights, resolve_checkpoint
from fer_lightning.emotions import EMOTIONS
from fer_lightning.errors import ConfigError, InputError
from fer_lightning.predict import Predictor
from tests.conftest import ROOT, assert_one_line_error, run_script


def test_the_shipped_weights_exist_and_carry_their_classes():
    assert set(PRETRAINED) == {"photos", "fer2013", "ferplus"} and all(
        p.is_file() for p in PRETRAINED.values()
    )
    assert Predictor.from_pretrained("fer2013", device="cpu").classes == list(EMOTIONS)
    photos = Predictor.from_pretrained("photos", device="cpu")
    assert photos.classes == list(EMOTIONS) and DEFAULT_PHOTO_MODEL == "photos"
    assert (photos.tta, photos.logit_adjustment) == ("hflip", 1.0)  # the settings stored with the weights
    ferplus = Predictor.from_pretrained("ferplus", device="cpu").classes
    assert len(ferplus) == 8 and "contempt" in ferplus and set(EMOTIONS) <= set(ferplus)


def test_names_resolve_everywhere_and_unknown_names_are_refused():
    assert resolve_checkpoint("ferplus") == PRETRAINED["ferplus"]
    assert chosen_weights(None, None) == PRETRAINED[DEFAULT_PHOTO_MODEL]
    assert chosen_weights(None, "ferplus") == PRETRAINED["ferplus"]
    assert chosen_weights(PRETRAINED["fer2013"], "ferplus") == PRETRAINED["fer2013"]  # a file wins
    with pytest.raises(ConfigError, match="weights=vgg: the shipped weights are photos, fer2013, ferplus"):
        chosen_weights(None, "vgg")
    with pytest.raises(InputError, match="no shipped weights named 'x' and no such file or folder"):
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


def test_save_pretrained_round_trips_weights_settings_and_card(tmp_path, jaffe_dir):
    photo = sorted(jaffe_dir.glob("*.tiff"))[0]
    original = Predictor.from_pretrained("fer2013", device="cpu", tta="hflip", logit_adjustment=0.5)
    folder = original.save_pretrained(tmp_path / "my-model")
    assert {p.name for p in folder.iterdir()} == {"weights.pt", "config.json", "README.md"}
    for source in (folder, folder / "weights.pt"):  # the folder or its weights file
        again = Predictor.from_pretrained(source, device="cpu")
        assert (again.tta, again.logit_adjustment, again.classes) == ("hflip", 0.5, original.classes)
        assert again.predict(photo)[0].probabilities == original.predict(photo)[0].probabilities
    with pytest.raises(InputError, match="folder without weights.pt"):
        Predictor.from_pretrained(tmp_path)


def test_the_photos_weights_reproduce_their_recorded_jaffe_dev_figure(jaffe_dir):
    """meta.jaffe_dev_correct (68 of 108 in docs/results.md and the model card) is what the default Python
    pipeline scores now: detector finder, eye alignment, the stored hflip and prior correction."""
    import torch

    from fer_lightning.faces.align import FaceAligner
    from fer_lightning.faces.labels import RegexLabels

    spec = yaml.safe_load((ROOT / "conf" / "labels" / "jaffe.yaml").read_text())  # labels=jaffe, its one home
    meta = torch.load(PRETRAINED["photos"], weights_only=True)["meta"]
    rule = RegexLabels(spec["pattern"], spec["codes"], spec["match_on"])
    photos = sorted(jaffe_dir.glob("*.tiff"))
    faces = Predictor.from_pretrained(device="cpu", aligner=FaceAligner()).predict_many(photos)
    right = sum(bool(f) and f[0].label == EMOTIONS[rule(Path(p.name))[0]] for p, f in zip(photos, faces))
    assert (right, len(photos)) == (meta["jaffe_dev_correct"], meta["jaffe_dev_photos"])
