"""Evaluation on the real PrivateTest/PublicTest: metrics.json checked against a direct numpy computation."""

import json
import os

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from omegaconf import open_dict
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from fer_lightning import checkpoints
from fer_lightning.checkpoints import CheckpointNotFoundError, load_network
from fer_lightning.data.fer2013 import load_fer2013_csv
from fer_lightning.emotions import EMOTIONS
from fer_lightning.errors import ConfigError
from fer_lightning.evaluation import most_confident_mistakes
from fer_lightning.inference import normalise_modes, to_model_input, views
from fer_lightning.tasks.eval import run as evaluate
from fer_lightning.tasks.eval import split_names
from fer_lightning.utils.threads import intra_op_threads
from tests.conftest import compose_config, run_script


def eval_cfg(tmp_path, cache_dir, *overrides):
    # one inference thread: this suite shares 2 cores with other jobs, where a 2-thread pool mostly waits
    cfg = compose_config("eval", ["threads=1", *overrides], tmp_path)
    with open_dict(cfg):
        cfg.paths.cache_dir = str(cache_dir)
    return cfg


def direct_probs(ckpt, images: np.ndarray) -> np.ndarray:
    """Softmax of the network on the faces, computed without any evaluation code."""
    net, _ = load_network(ckpt)
    with torch.inference_mode(), intra_op_threads(1):
        return net(to_model_input(torch.from_numpy(images).unsqueeze(1))).softmax(1).numpy()


@pytest.fixture(scope="module")
def private(data_dir, cache_dir):
    return load_fer2013_csv(data_dir / "fer2013" / "fer2013.csv", cache_dir).split("private")


def test_metrics_json_matches_a_direct_computation(tiny_checkpoint, tmp_path, cache_dir, private):
    metrics = evaluate(eval_cfg(tmp_path, cache_dir, f"ckpt_path={tiny_checkpoint}", "splits=[private]"))
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved == json.loads(json.dumps(metrics)) and saved["classes"] == list(EMOTIONS)
    assert saved["private/n"] == 3589  # the whole real split
    assert 0.0 <= saved["private/acc"] <= 1.0 and 0.0 <= saved["private/macro_f1"] <= 1.0
    assert 0.0 < saved["private/loss"] < 10.0 and list(saved["private/per_class_recall"]) == list(EMOTIONS)

    images, labels = private
    probs = direct_probs(tiny_checkpoint, images)
    preds = probs.argmax(1)
    assert saved["private/acc"] == pytest.approx((preds == labels).mean(), abs=1e-6)
    confusion = np.zeros((7, 7), np.int64)
    np.add.at(confusion, (labels, preds), 1)
    assert np.array_equal(saved["private/confusion_matrix"], confusion)
    recall = np.diag(confusion) / confusion.sum(1)
    assert list(saved["private/per_class_recall"].values()) == pytest.approx(recall, abs=1e-6)
    support = confusion.sum(0) + confusion.sum(1)  # predicted + true counts per class
    present = support > 0  # torchmetrics leaves classes absent from both out of the macro mean
    f1 = 2 * np.diag(confusion)[present] / support[present]
    assert saved["private/macro_f1"] == pytest.approx(f1.mean(), abs=1e-6)
    loss = F.nll_loss(torch.from_numpy(np.log(probs)), torch.from_numpy(labels)).item()
    assert saved["private/loss"] == pytest.approx(loss, rel=1e-4)

    # the figure: saved in the run dir and logged to TensorBoard with the scalars
    width, height = Image.open(tmp_path / "confusion_matrix_private.png").size
    assert (width, height) == (900, 820)  # (7 + 2) x (7 + 1.2) inches at 100 dpi
    (events,) = (tmp_path / "tensorboard").rglob("events.out.tfevents.*")
    acc = EventAccumulator(str(events), size_guidance={"images": 0, "scalars": 0})
    acc.Reload()
    assert acc.Tags()["images"] == ["eval/confusion_matrix_private"]
    image = acc.Images("eval/confusion_matrix_private")[0]
    assert (image.width, image.height) == (900, 820)
    assert acc.Scalars("private/acc")[0].value == pytest.approx(saved["private/acc"])


def test_tta_is_reported_under_its_own_keys_and_matches_averaged_views(
    tiny_checkpoint, tmp_path, cache_dir, private
):
    cfg = eval_cfg(
        tmp_path,
        cache_dir,
        f"ckpt_path={tiny_checkpoint}",
        "tta=[hflip,tencrop]",
        "max_faces=100",
        "splits=[private]",
    )
    saved = evaluate(cfg)
    for mode in ("hflip", "tencrop"):
        assert 0.0 <= saved[f"private/tta_{mode}/acc"] <= 1.0 and saved[f"private/tta_{mode}/n"] == 100
    images, labels = private[0][:100], private[1][:100]
    flipped = direct_probs(tiny_checkpoint, images[:, :, ::-1].copy())
    mean = (direct_probs(tiny_checkpoint, images) + flipped) / 2
    assert saved["private/tta_hflip/acc"] == pytest.approx((mean.argmax(1) == labels).mean(), abs=1e-6)
    assert saved["private/tta_hflip/loss"] == pytest.approx(
        -np.log(mean[np.arange(100), labels]).mean(), rel=1e-4
    )


def test_ten_crop_views_are_the_corners_centre_and_mirrors():
    x = torch.arange(48 * 48, dtype=torch.float32).view(1, 1, 48, 48)
    crops = views(x, "tencrop")
    assert len(crops) == 10 and all(c.shape == (1, 1, 44, 44) for c in crops)
    # top-left and bottom-right corners
    assert crops[0][0, 0, 0, 0] == 0 and crops[3][0, 0, -1, -1] == 48 * 48 - 1
    assert torch.equal(crops[4], x[..., 2:46, 2:46]) and torch.equal(crops[9], crops[4].flip(-1))
    assert normalise_modes("hflip") == ["hflip"] and normalise_modes(None) == []
    with pytest.raises(ValueError, match="unknown TTA mode"):
        normalise_modes(["fivecrop"])


def test_without_a_checkpoint_evaluation_says_one_is_needed(tmp_path, cache_dir, monkeypatch):
    monkeypatch.setitem(checkpoints.PRETRAINED, "fer2013", tmp_path / "absent.pt")
    with pytest.raises(CheckpointNotFoundError, match="a checkpoint is needed"):
        evaluate(eval_cfg(tmp_path, cache_dir))
    assert not (tmp_path / "metrics.json").exists()


def test_split_names_accept_usage_names_and_name_the_valid_ones():
    assert split_names(["PrivateTest", "public", "private"], "splits") == ["private", "public"]
    assert split_names("Training", "splits") == ["train"] and split_names(None, "figure_splits") == []
    with pytest.raises(
        ConfigError,
        match=r"unknown split\(s\) \['validation'\] in splits=\['validation'\]; expected "
        r"any of train, public, private \(or FER2013's Training, PublicTest, PrivateTest\)",
    ):
        split_names(["validation"], "splits")


@pytest.mark.parametrize(
    ("override", "message"),
    [
        pytest.param("splits=[validation]", "unknown split", id="unknown-split"),
        pytest.param("splits=[]", "splits is empty", id="no-split"),
        pytest.param("figure_splits=[nope]", "in figure_splits=", id="unknown-figure-split"),
        pytest.param("tta=[hflip,fivecrop]", r"unknown TTA mode\(s\) \['fivecrop'\]", id="unknown-tta"),
        pytest.param(
            "batch_size=0", "batch_size=0 must be a whole number of at least 1", id="zero-batch-size"
        ),
        pytest.param(
            "max_faces=-5",
            "max_faces=-5 must be a whole number of at least 1 or null",
            id="negative-max-faces",
        ),
        pytest.param("threads=0", "threads=0 must be", id="zero-threads"),
    ],
)
def test_bad_settings_are_refused_before_the_checkpoint_or_the_data_load(
    override, message, tmp_path, cache_dir, monkeypatch
):
    monkeypatch.setattr(
        checkpoints, "DEFAULT_WEIGHTS", tmp_path / "absent.pt"
    )  # loading it would fail differently
    with pytest.raises(ConfigError, match=message):
        evaluate(eval_cfg(tmp_path, cache_dir, override))
    assert not (tmp_path / "metrics.json").exists()


def test_most_confident_mistakes_are_wrong_and_sorted():
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.4, 0.6], [0.3, 0.7]])
    labels = np.array([0, 0, 0, 1])
    picks = most_confident_mistakes(probs, labels, per_class=5)
    assert picks[0].tolist() == [1, 2] and picks[1].tolist() == []


def test_eval_script_writes_metrics_in_its_run_dir(tiny_weights, tmp_path, cache_dir):
    env = {**os.environ, "FER_CACHE_DIR": str(cache_dir)}
    # FER2013's Usage names are accepted and reported under the project's split names
    done = run_script(
        "eval",
        f"ckpt_path={tiny_weights}",
        f"paths.log_dir={tmp_path}",
        "tta=hflip",
        "max_faces=100",
        "threads=1",
        "splits=[PrivateTest,PublicTest]",
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (run,) = (tmp_path / "eval" / "runs").iterdir()
    saved = json.loads((run / "metrics.json").read_text())
    assert saved["checkpoint"] == str(tiny_weights)
    assert {"private/acc", "public/acc", "private/tta_hflip/acc", "public/tta_hflip/macro_f1"} <= set(saved)
    assert (run / "confusion_matrix_private.png").is_file() and not list(run.glob(".*tmp*"))


@pytest.mark.parametrize("name", ["fer2013", "photos"])
def test_shipped_weights_reproduce_the_accuracy_recorded_with_them(tmp_path, cache_dir, name):
    """The figures in the shipped file's metadata (and so in docs/results.md and the model cards) are what
    evaluation measures now."""
    meta = torch.load(checkpoints.PRETRAINED[name], weights_only=True)["meta"]
    metrics = evaluate(eval_cfg(tmp_path, cache_dir, f"weights={name}"))
    assert metrics["private/n"] == 3589 and metrics["public/n"] == 3589
    assert metrics["private/acc"] == pytest.approx(meta["privatetest_acc"], abs=5e-5)
    assert metrics["public/acc"] == pytest.approx(meta["publictest_acc"], abs=5e-5)
    assert meta["selected_on"].startswith("PublicTest" if name == "fer2013" else "photo sets")
