"""Grad-CAM family via pytorch-grad-cam on real faces: maps, the in-place ReLU pitfall, panels and the
script."""

import copy
import shutil

import numpy as np
import pytest
import torch
from PIL import Image
from pytorch_grad_cam import GradCAM
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from torch import nn

from fer_lightning.checkpoints import load_network
from fer_lightning.data.fer2013 import load_fer2013_csv
from fer_lightning.emotions import EMOTIONS
from fer_lightning.errors import InputError
from fer_lightning.explain.gradcam import GradCAMExplainer, default_target_layer
from fer_lightning.explain.panels import COLUMNS, panel_size, save_panels
from fer_lightning.inference import to_model_input
from fer_lightning.tasks import gradcam as gradcam_task
from fer_lightning.utils.threads import intra_op_threads
from tests.conftest import compose_config, run_script, unreadable_photos


@pytest.fixture(scope="module")
def net(tiny_checkpoint) -> nn.Module:
    return load_network(tiny_checkpoint)[0]


@pytest.fixture(scope="module")
def faces(data_dir, cache_dir) -> np.ndarray:
    """The first 6 real PublicTest faces (uint8, 48x48)."""
    return load_fer2013_csv(data_dir / "fer2013" / "fer2013.csv", cache_dir).split("public")[0][:6]


def layer_shape(net: nn.Module, name: str) -> tuple[int, ...]:
    seen = []
    handle = net.get_submodule(name).register_forward_hook(lambda m, i, o: seen.append(o.shape))
    with torch.no_grad():
        net(torch.zeros(1, 1, 48, 48))
    handle.remove()
    return tuple(seen[0][-2:])


def test_default_layer_is_6x6_and_the_notebook_layer_3x3(net):
    assert default_target_layer(net) == "blocks.2"
    assert layer_shape(net, "blocks.2") == (6, 6) and layer_shape(net, "classifier") == (3, 3)


def test_explanation_maps_and_probabilities(net, faces):
    relus_before = [(m, m.inplace) for m in net.modules() if isinstance(m, nn.ReLU)]
    state_before = {k: v.clone() for k, v in net.state_dict().items()}
    ex = GradCAMExplainer(net).explain(faces)
    assert ex.cam.shape == ex.guided.shape == ex.guided_cam.shape == (6, 48, 48)
    assert ex.cam.min() >= 0 and ex.cam.max() == pytest.approx(1, abs=1e-4)  # normalised per face
    assert np.isfinite(ex.guided).all() and np.abs(ex.guided).max() > 0
    assert np.allclose(ex.guided_cam, ex.guided * ex.cam)
    with torch.inference_mode():
        expected = net(to_model_input(torch.from_numpy(faces).unsqueeze(1))).softmax(1).numpy()
    assert np.allclose(ex.probs, expected, atol=1e-5) and np.array_equal(ex.targets, expected.argmax(1))
    # the caller's network is untouched: same ReLU objects, still in place, same weights
    assert [(m, m.inplace) for m in net.modules() if isinstance(m, nn.ReLU)] == relus_before
    assert all(m.inplace for m, _ in relus_before)
    assert all(torch.equal(v, state_before[k]) for k, v in net.state_dict().items())


def test_explaining_another_class_changes_the_map(net, faces):
    explainer = GradCAMExplainer(net)
    predicted = explainer.explain(faces[:2])
    other = explainer.explain(faces[:2], targets=[(t + 1) % 7 for t in predicted.targets])
    assert not np.allclose(predicted.cam, other.cam) and not np.allclose(predicted.guided, other.guided)


def test_in_place_relu_after_the_layer_corrupts_a_plain_grad_cam_but_not_ours(net, faces):
    faces = faces[:3]
    x = to_model_input(torch.from_numpy(faces).unsqueeze(1))
    targets = [ClassifierOutputTarget(0)] * len(faces)

    def plain(layer: str) -> np.ndarray:
        raw = copy.deepcopy(net)  # pytorch-grad-cam used directly on the network as it is
        with intra_op_threads(1), GradCAM(model=raw, target_layers=[raw.get_submodule(layer)]) as cam:
            return cam(input_tensor=x, targets=targets)

    ours = {
        layer: GradCAMExplainer(net, layer).explain(faces, targets=[0] * len(faces)).cam
        for layer in ("blocks.2", "blocks.0.body.1")
    }
    # no in-place op touches a block's output: both agree
    assert np.allclose(plain("blocks.2"), ours["blocks.2"], atol=1e-5)
    # a BatchNorm followed by ReLU(inplace=True): the kept activation is overwritten, the plain CAM is wrong
    assert not np.allclose(plain("blocks.0.body.1"), ours["blocks.0.body.1"], atol=1e-2)


def test_unknown_layer_names_the_choices(net):
    with pytest.raises(ValueError, match="'blocks.9' is not a module of MiniXception.*'stem', 'blocks'"):
        GradCAMExplainer(net, "blocks.9")


def test_panel_pages_have_the_expected_pixel_size(net, faces, tmp_path):
    ex = GradCAMExplainer(net).explain(faces[:5])
    pages = save_panels(
        ex, EMOTIONS, tmp_path, [f"face {i}" for i in range(5)], [0, 1, 2, 3, None], rows_per_page=2
    )
    assert [p.name for p in pages] == [
        "gradcam_panels_000.png",
        "gradcam_panels_001.png",
        "gradcam_panels_002.png",
    ]
    sizes = [Image.open(p).size for p in pages]
    assert (
        sizes == [(960, 320), (960, 320), (960, 160)]
        and panel_size(2) == (320, 6 * 160)
        and len(COLUMNS) == 6
    )
    pixels = np.asarray(Image.open(pages[0]).convert("RGB"))
    assert pixels.std() > 20  # drawn content, not a blank page


def test_gradcam_script_saves_a_panel_grid_for_photos(tiny_weights, jaffe_dir, tmp_path):
    done = run_script(
        "gradcam",
        f"inputs={jaffe_dir}",
        f"ckpt_path={tiny_weights}",
        "max_faces=3",
        "labels=jaffe",
        "target_layer=classifier",
        f"paths.log_dir={tmp_path}",
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (run,) = (tmp_path / "gradcam" / "runs").iterdir()
    assert sorted(p.name for p in run.glob("*.png")) == ["gradcam_panels_000.png"]
    assert Image.open(run / "gradcam_panels_000.png").size == (960, 3 * 160)
    assert "Grad-CAM at classifier for 3 face(s)" in (run / "gradcam.log").read_text()


def test_no_readable_photo_is_an_input_error_and_skipped_files_are_counted(jaffe_dir, tmp_path, caplog):
    folder = unreadable_photos(tmp_path / "photos")
    with pytest.raises(
        InputError, match=r"no face to explain \(2 file\(s\) could not be read, 0 photo\(s\) without"
    ):
        gradcam_task.run(compose_config("gradcam", [f"inputs={folder}"], tmp_path / "none"))
    shutil.copy(jaffe_dir / "KA.AN1.39.tiff", folder)
    (folder / "loop").symlink_to("loop")
    pages = gradcam_task.run(compose_config("gradcam", [f"inputs={folder}"], tmp_path / "one"))
    assert len(pages) == 1 and "skipped 3 file(s): 3 could not be read, 0 without a face" in caplog.text
    assert "loop: skipped: symlink loop" in caplog.text
