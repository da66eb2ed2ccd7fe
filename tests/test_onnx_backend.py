"""backend=onnxruntime (fer_lightning/onnx_backend.py) in Predictor and scripts/predict.py on the real JAFFE
photos: the same labels as the torch backend, from a checkpoint exported on the fly or an .onnx file."""

from __future__ import annotations

import csv
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import onnx
import pytest

from fer_lightning.emotions import EMOTIONS
from fer_lightning.errors import CheckpointError, CheckpointNotFoundError, ConfigError
from fer_lightning.onnx_backend import OnnxNetwork
from fer_lightning.onnx_export import export_checkpoint
from fer_lightning.predict import Predictor
from tests.conftest import assert_one_line_error, run_script


@pytest.fixture(scope="module")
def torch_predictor() -> Predictor:
    return Predictor.from_checkpoint(
        None, device="cpu", aligner=None
    )  # the FER2013 weights, detector's crops


@pytest.fixture(scope="module")
def onnx_predictor() -> Predictor:
    return Predictor.from_checkpoint(None, device="cpu", backend="onnxruntime", aligner=None)


@pytest.fixture(scope="module")
def onnx_file(tmp_path_factory):
    return export_checkpoint(None, tmp_path_factory.mktemp("onnx") / "shipped.onnx")[0]


@pytest.fixture(scope="module")
def photos(jaffe_dir) -> list:
    return sorted(jaffe_dir.glob("*.tiff"))


def labels_and_probabilities(results) -> tuple[list[str], np.ndarray]:
    assert all(len(faces) == 1 for faces in results)  # one face per JAFFE photo
    return [f[0].label for f in results], np.array([list(f[0].probabilities.values()) for f in results])


def test_onnxruntime_gives_the_torch_labels_on_every_jaffe_photo(torch_predictor, onnx_predictor, photos):
    assert onnx_predictor.backend == "onnxruntime" and onnx_predictor.runtime is not None
    assert (
        onnx_predictor.net is not None
    )  # built from a checkpoint: the torch network stays (Grad-CAM reads it)
    assert onnx_predictor.classes == list(EMOTIONS)
    labels, probs = labels_and_probabilities(torch_predictor.predict_many(photos))
    onnx_labels, onnx_probs = labels_and_probabilities(onnx_predictor.predict_many(photos))
    assert len(photos) == 108 and onnx_labels == labels
    assert np.abs(onnx_probs - probs).max() <= 1e-4
    # one photo at a time: the 1-thread runner
    face = onnx_predictor.predict(photos[0])[0]
    assert face.label == labels[0] and face.box == torch_predictor.predict(photos[0])[0].box
    assert onnx_predictor.runtime.runner(1).get_session_options().intra_op_num_threads == 1


def test_an_onnx_file_works_as_well(onnx_file, torch_predictor, photos):
    from_file = Predictor.from_checkpoint(onnx_file, backend="onnxruntime", aligner=None)
    assert from_file.net is None and from_file.classes == list(EMOTIONS)
    expected, _ = labels_and_probabilities(torch_predictor.predict_many(photos[:10]))
    assert labels_and_probabilities(from_file.predict_many(photos[:10]))[0] == expected
    assert from_file.classify(np.zeros((0, 48, 48), np.uint8)).shape == (0, len(EMOTIONS))


def test_predict_script_with_backend_onnxruntime(tmp_path, jaffe_dir, torch_predictor, photos):
    names = [p.name for p in photos[:4]]
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in names:
        (folder / name).symlink_to(jaffe_dir / name)
    run_dir = tmp_path / "run"
    args = [
        f"inputs={folder}",
        "backend=onnxruntime",
        "device=cpu",
        "annotate=false",
        "align=false",  # as the torch_predictor fixture crops
        "weights=fer2013",  # its weights
        f"hydra.run.dir={run_dir}",
    ]
    # the unknown-backend run goes side by side with the real one: both mostly import torch
    with ThreadPoolExecutor(2) as pool:
        bad = pool.submit(
            assert_one_line_error,
            "predict",
            "error: unknown backend='tensorrt'; expected one of torch, onnxruntime",
            f"inputs={folder}",
            "backend=tensorrt",
            f"hydra.run.dir={tmp_path / 'bad'}",
        )
        done = run_script("predict", *args, timeout=300)
        bad.result()
    assert done.returncode == 0, done.stderr[-3000:]
    assert "backend onnxruntime" in done.stdout + done.stderr
    with open(run_dir / "predictions.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    expected, _ = labels_and_probabilities(torch_predictor.predict_many([folder / n for n in names]))
    assert [r["path"] for r in rows] == names and [r["label"] for r in rows] == expected


def test_unusable_onnx_models_are_refused_in_one_line(onnx_file, tmp_path):
    assert Predictor.from_checkpoint(onnx_file).backend == "onnxruntime"  # an .onnx path implies its backend
    with pytest.raises(CheckpointNotFoundError, match="ONNX model not found"):
        Predictor.from_checkpoint(tmp_path / "nowhere.onnx", backend="onnxruntime")
    not_onnx = tmp_path / "notes.onnx"
    not_onnx.write_text("not a model")
    with pytest.raises(CheckpointError, match="notes.onnx is not a model ONNX Runtime can load"):
        OnnxNetwork.from_file(not_onnx)
    # a valid ONNX graph without this project's metadata: its classes and scaling would be guesses
    bare = onnx.load(onnx_file)
    del bare.metadata_props[:]
    onnx.save(bare, tmp_path / "bare.onnx")
    with pytest.raises(CheckpointError, match="carries no fer-lightning metadata"):
        OnnxNetwork.from_file(tmp_path / "bare.onnx")
    # metadata promising another input scaling than this version feeds
    other = onnx.load(onnx_file)
    for prop in other.metadata_props:
        if prop.key == "input_normalisation":
            prop.value = '{"scale": 0.00392156862745098, "offset": 0.0}'  # 0..1 instead of -1..1
    onnx.save(other, tmp_path / "other.onnx")
    with pytest.raises(CheckpointError, match="expects inputs normalised as"):
        OnnxNetwork.from_file(tmp_path / "other.onnx")
    with pytest.raises(ConfigError, match="unknown backend='tensorrt'"):
        Predictor.from_checkpoint(None, backend="tensorrt")


def test_missing_onnxruntime_names_the_extra(monkeypatch, onnx_file):
    # None in sys.modules: `import onnxruntime` raises ImportError, as where it is not installed
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    for load in (
        lambda: Predictor.from_checkpoint(None, backend="onnxruntime"),
        lambda: Predictor.from_checkpoint(onnx_file, backend="onnxruntime"),
    ):
        with pytest.raises(ConfigError, match=r"needs the onnxruntime package.*pip install -e '\.\[onnx\]'"):
            load()
    assert Predictor.from_checkpoint(None).backend == "torch"  # the torch backend does not need it
