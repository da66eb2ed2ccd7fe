"""The Grad-CAM callback in a real (tiny) training: panels read back from the TensorBoard event file."""

import numpy as np
import pytest
from omegaconf import open_dict
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from fer_lightning.callbacks import GradCAMPanels, class_names
from fer_lightning.emotions import EMOTIONS
from fer_lightning.explain.panels import panel_size
from fer_lightning.tasks.train import run as train
from tests.conftest import TINY_TRAIN, compose_config


def test_gradcam_callback_is_off_by_default_and_composes_on_request(tmp_path):
    assert "gradcam" not in compose_config("train", [], tmp_path).callbacks
    cfg = compose_config(
        "train", ["callbacks=[default,gradcam]", "callbacks.gradcam.every_n_epochs=3"], tmp_path
    )
    assert cfg.callbacks.gradcam.every_n_epochs == 3 and "model_checkpoint" in cfg.callbacks


def test_panels_of_fixed_public_faces_reach_tensorboard(tmp_path, cache_dir, data_dir):
    overrides = [
        *TINY_TRAIN,  # 1 epoch; every_n_epochs=5 still logs it: the last epoch always gets its panels
        "trainer.limit_train_batches=2",
        "test=false",
        "callbacks=[default,gradcam]",
        "callbacks.gradcam.num_faces=4",
        "logger=tensorboard",
    ]
    cfg = compose_config("train", overrides, tmp_path)
    with open_dict(cfg):
        cfg.paths.cache_dir = str(cache_dir)
    train(cfg)
    # the run's HParams record is a file of its own (written at the end); the panels are in the training one
    files = (tmp_path / "tensorboard").rglob("events.out.tfevents.*")
    (events,) = [e for e in files if "gradcam/public" in _image_tags(e)]
    acc = EventAccumulator(str(events), size_guidance={"images": 0})
    acc.Reload()
    assert "gradcam/public" in acc.Tags()["images"]
    images = acc.Images("gradcam/public")
    assert [im.step for im in images] == [2]  # after the (last) epoch of 2 steps
    height, width = panel_size(4)
    assert all((im.width, im.height) == (width, height) for im in images)
    import io

    first = np.asarray(Image.open(io.BytesIO(images[0].encoded_image_string)).convert("RGB"))
    assert first.shape == (height, width, 3) and first.std() > 20


def test_every_n_epochs_counts_from_one_and_always_logs_the_last_epoch():
    class FakeTrainer:
        max_epochs, should_stop = 7, False

    callback = GradCAMPanels(every_n_epochs=3)
    due = []
    for epoch in range(7):
        FakeTrainer.current_epoch = epoch
        due.append(callback._due(FakeTrainer))
    assert [e + 1 for e, d in enumerate(due) if d] == [3, 6, 7]
    with pytest.raises(ValueError, match="must be >= 1"):
        GradCAMPanels(every_n_epochs=0)


def test_panels_name_the_classes_the_module_predicts():
    class Plain:  # FERClassifier: no classes attribute, it predicts EMOTIONS
        pass

    class Named:
        classes = ("happy", "sad")

    assert class_names(Plain()) == list(EMOTIONS) and class_names(Named()) == ["happy", "sad"]


def _image_tags(event_file) -> list[str]:
    acc = EventAccumulator(str(event_file), size_guidance={"images": 0})
    acc.Reload()
    return acc.Tags()["images"]
