"""scripts/export.py and fer_lightning/onnx_export.py: the shipped weights → ONNX (+ JSON), checked against
torch on real FER2013 faces, and every way an export can fail (one line, no .onnx left behind)."""

from __future__ import annotations

import json
import sys
from concurrent.futures import ThreadPoolExecutor

import hydra
import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from omegaconf import open_dict
from torch import nn

from fer_lightning.checkpoints import DEFAULT_WEIGHTS, load_network
from fer_lightning.emotions import EMOTIONS
from fer_lightning.errors import CheckpointError, ConfigError
from fer_lightning.inference import predict_logits
from fer_lightning.models.registry import ALLOWED_NETWORKS, instantiate_network
from fer_lightning.onnx_backend import OnnxNetwork, input_normalisation
from fer_lightning.onnx_export import export_checkpoint, export_network, write_export
from fer_lightning.tasks import export as export_task
from tests.conftest import assert_one_line_error, compose_config, run_script

#: every shipped network: a weights file added later is covered by the parity test without editing it
SHIPPED = sorted(DEFAULT_WEIGHTS.parent.glob("*.pt"))
PARITY_FACES = 512


@pytest.fixture(scope="module")
def private_faces(tmp_path_factory, data_dir, cache_dir) -> torch.Tensor:
    """The first 512 real PrivateTest faces, read as evaluation reads them (conf/data/fer2013.yaml)."""
    cfg = compose_config("eval", [], tmp_path_factory.mktemp("eval-cfg"))
    with open_dict(cfg):
        cfg.paths.cache_dir = str(cache_dir)
    faces, _ = hydra.utils.instantiate(cfg.data).faces("private", PARITY_FACES)
    assert faces.shape == (PARITY_FACES, 1, 48, 48) and faces.dtype == torch.uint8
    return faces


@pytest.mark.parametrize("weights", SHIPPED, ids=[p.name for p in SHIPPED])
def test_onnx_runtime_matches_torch_on_512_real_faces(weights, private_faces):
    assert SHIPPED, f"no shipped weights in {DEFAULT_WEIGHTS.parent}"
    net, classes = load_network(weights)
    data, facts = export_network(net, classes, weights)
    runtime = OnnxNetwork(data, weights)
    expected = predict_logits(net, private_faces).softmax(1)
    for threads in (1, None):  # the 1-thread runner (single photos) and the batched one agree
        got = runtime.predict_logits(private_faces, batch_size=128, threads=threads).softmax(1)
        assert torch.equal(got.argmax(1), expected.argmax(1))
        assert float((got - expected).abs().max()) <= 1e-4
    assert runtime.classes == classes and facts["check_max_probability_difference"] <= 1e-4


#: one buildable config per network a checkpoint may hold (random weights: the export check compares runtimes)
EXAMPLE_NETWORKS = {
    "fer_lightning.models.mini_xception.MiniXception": {},
    "fer_lightning.models.vgg.VGGNet": {},
    "fer_lightning.models.timm_net.TimmNet": {"name": "mobilenetv3_small_050"},
}


@pytest.mark.parametrize(
    "target",
    # seconds each; the fast tests export the shipped mini-Xception already
    [pytest.param(t, marks=pytest.mark.slow) for t in ALLOWED_NETWORKS],
)
def test_every_network_a_checkpoint_may_hold_exports(target):
    assert target in EXAMPLE_NETWORKS, f"add an example config for {target} to EXAMPLE_NETWORKS"
    torch.manual_seed(0)
    net = instantiate_network({"_target_": target, **EXAMPLE_NETWORKS[target]}, "test")
    _, facts = export_network(net, list(EMOTIONS), target)
    assert facts["network"] == target.rsplit(".", 1)[1] and facts["check_max_probability_difference"] <= 1e-4


def test_export_script_writes_onnx_and_json_with_metadata(tmp_path):
    run_dir = tmp_path / "run"
    done = run_script("export", f"hydra.run.dir={run_dir}", timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    onnx_path, json_path = run_dir / "mini_xception_fer2013.onnx", run_dir / "mini_xception_fer2013.json"
    assert str(onnx_path) in done.stdout and "max probability difference" in done.stdout
    # nothing else: no temporary file of the atomic writes is left
    assert sorted(p.name for p in run_dir.iterdir()) == sorted(
        [".hydra", "export.log", onnx_path.name, json_path.name]
    )

    facts = json.loads(json_path.read_text())
    model = onnx.load(onnx_path)
    onnx.checker.check_model(model)
    props = {p.key: p.value for p in model.metadata_props}
    assert json.loads(props["classes"]) == facts["classes"] == list(EMOTIONS)
    assert json.loads(props["input_size"]) == facts["input_size"] == [48, 48]
    assert json.loads(props["input_normalisation"]) == facts["input_normalisation"] == input_normalisation()
    assert facts["input_normalisation"]["scale"] == pytest.approx(1 / 127.5)
    assert facts["input_normalisation"]["offset"] == -1.0
    assert facts["source"] == DEFAULT_WEIGHTS.name and facts["bytes"] == onnx_path.stat().st_size
    # a dynamic batch axis, fixed 1x48x48 faces
    dims = model.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param == "batch" and [d.dim_value for d in dims[1:]] == [1, 48, 48]

    # onnxruntime reads the same metadata and runs any batch size
    runner = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    meta = runner.get_modelmeta().custom_metadata_map
    assert json.loads(meta["classes"]) == list(EMOTIONS) and meta["input_layout"] == "NCHW"
    for batch in (1, 5):
        out = runner.run(None, {"faces": np.zeros((batch, 1, 48, 48), np.float32)})[0]
        assert out.shape == (batch, len(EMOTIONS))


def test_export_to_a_chosen_path_and_load_it_back(tmp_path):
    out = tmp_path / "models" / "fer.onnx"
    onnx_path, json_path, facts = export_checkpoint(None, out)
    assert onnx_path == out and json_path == tmp_path / "models" / "fer.json"
    runtime = OnnxNetwork.from_file(out)
    assert runtime.classes == list(EMOTIONS) and runtime.metadata["source"] == DEFAULT_WEIGHTS.name
    assert sorted(p.name for p in out.parent.iterdir()) == ["fer.json", "fer.onnx"]
    with pytest.raises(ConfigError, match="must end in .onnx"):
        export_checkpoint(None, tmp_path / "model.bin")
    with pytest.raises(ConfigError, match="that is a folder"):
        export_task.run(compose_config("export", [f"out={tmp_path}"], tmp_path / "run"))
    # a write that fails half-way (the JSON cannot go where a folder stands) leaves neither file
    other = tmp_path / "other"
    (other / "model.json").mkdir(parents=True)
    with pytest.raises(IsADirectoryError):
        write_export(out.read_bytes(), facts, other / "model.onnx")
    assert [p.name for p in other.iterdir()] == ["model.json"]


@pytest.mark.slow  # tiny_checkpoint trains a network first
def test_a_lightning_checkpoint_exports_too(tiny_checkpoint, tmp_path):
    _, _, facts = export_checkpoint(tiny_checkpoint, tmp_path / "tiny.onnx")
    assert facts["source"] == "last.ckpt" and facts["check_max_probability_difference"] <= 1e-4


def test_bad_input_is_one_line_and_leaves_no_onnx(tmp_path):
    text = tmp_path / "notes.pt"
    text.write_text("not a checkpoint")
    cases = {  # message: overrides
        "error: checkpoint not found": [f"ckpt_path={tmp_path / 'nowhere.pt'}"],
        f"error: {text} is not a readable PyTorch checkpoint": [f"ckpt_path={text}"],
        "error: unknown format='tflite'; expected one of onnx": ["format=tflite"],
    }
    # the processes run side by side: each spends most of its time importing torch
    with ThreadPoolExecutor(len(cases)) as pool:
        runs = [
            pool.submit(
                assert_one_line_error, "export", message, *overrides, f"hydra.run.dir={tmp_path / str(i)}"
            )
            for i, (message, overrides) in enumerate(cases.items())
        ]
        for run in runs:
            run.result()
    assert not list(tmp_path.rglob("*.onnx")) and not list(tmp_path.rglob("*.tmp*"))


class SymmetricEigenvalues(nn.Module):
    """A layer the ONNX exporter has no translation for (aten::linalg_eigh)."""

    num_classes = 7

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        v = x.flatten(1)[:, :7]
        return torch.linalg.eigvalsh(v[:, :, None] * v[:, None, :] + torch.eye(7))


class BatchDependentBranch(nn.Module):
    """Traceable, but tracing freezes the branch taken for the batch of 1 it traces with: the exported graph
    silently computes something else for larger batches — what the export check exists to catch."""

    num_classes = 7

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(48 * 48, 7), nn.Linear(48 * 48, 7)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1)
        return self.a(x) if x.shape[0] == 1 else self.b(x)


def test_a_network_the_exporter_cannot_handle_is_refused_in_one_line(tmp_path):
    with pytest.raises(CheckpointError, match="cannot translate the network SymmetricEigenvalues") as e:
        export_network(SymmetricEigenvalues(), list(EMOTIONS), "eig.pt")
    assert "\n" not in str(e.value)
    with pytest.raises(CheckpointError, match="disagrees with torch") as e:
        export_network(BatchDependentBranch(), list(EMOTIONS), "branch.pt")
    assert "\n" not in str(e.value)


def test_missing_onnx_package_names_the_extra(monkeypatch):
    # None in sys.modules: `import onnx` raises ImportError, as where it is not installed
    monkeypatch.setitem(sys.modules, "onnx", None)
    net, classes = load_network(None)
    with pytest.raises(ConfigError, match=r"pip install -e '\.\[onnx\]'"):
        export_network(net, classes)
