"""Hostile and broken checkpoints, bad evaluation settings: refused in one line, with nothing run or written.

A checkpoint is data, never code: a file whose ``net_config`` names anything but an allowed network class
(``builtins.open``, ``os.system``, a helper class, ...) is refused before it is imported or called — by the
library (``load_network``, ``Predictor.from_checkpoint``) and by every script, as real subprocesses.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from fer_lightning.checkpoints import DEFAULT_WEIGHTS, load_network
from fer_lightning.models.registry import ALLOWED_NETWORKS
from fer_lightning.errors import UnsafeCheckpointError
from fer_lightning.models.mini_xception import MiniXception
from fer_lightning.predict import Predictor
from tests.conftest import run_script

MINI_XCEPTION = "fer_lightning.models.mini_xception.MiniXception"
FORMATS = ("weights", "lightning")


@dataclass(frozen=True)
class Victim:
    """What a hostile checkpoint would touch if it ran: afterwards, :meth:`untouched` checks nothing
    happened."""

    file: Path  # open(mode="w") would empty it; shutil.copyfile would copy it ...
    copy: Path  # ... to here
    marker: Path  # os.system("touch ...") would create it

    CONTENT = "precious data\n"

    @classmethod
    def make(cls, folder: Path) -> Victim:
        victim = cls(folder / "victim.txt", folder / "stolen.txt", folder / "pwned")
        victim.file.write_text(cls.CONTENT)
        return victim

    def untouched(self) -> bool:
        return self.file.read_text() == self.CONTENT and not self.copy.exists() and not self.marker.exists()


#: net_config of each hostile file, and the start of what the refusal says about it.
HOSTILE: dict[str, tuple[Callable[[Victim], dict], str]] = {
    "builtins.open": (
        lambda v: {"_target_": "builtins.open", "file": str(v.file), "mode": "w"},
        "refused to build 'builtins.open'",
    ),
    "shutil.copyfile": (
        lambda v: {"_target_": "shutil.copyfile", "src": str(v.file), "dst": str(v.copy)},
        "refused to build 'shutil.copyfile'",
    ),
    "os.system": (
        lambda v: {"_target_": "os.system", "_args_": [f"touch {v.marker}"]},
        "refused to build 'os.system'",
    ),
    "nested-target": (  # an allowed class whose argument Hydra would have built first
        lambda v: {
            "_target_": MINI_XCEPTION,
            "num_classes": {"_target_": "builtins.open", "file": str(v.file), "mode": "w"},
        },
        "refused — net_config.num_classes holds the key '_target_'",
    ),
    "nested-in-list": (
        lambda v: {
            "_target_": MINI_XCEPTION,
            "widths": [16, {"_target_": "os.system", "command": f"touch {v.marker}"}],
        },
        "refused — net_config.widths[1] holds the key '_target_'",
    ),
    "partial": (
        lambda v: {"_target_": MINI_XCEPTION, "_partial_": True},
        "refused — net_config holds the key '_partial_'",
    ),
    "project-class-not-a-network": (  # an allowed module, not an allowed class
        lambda v: {
            "_target_": "fer_lightning.models.mini_xception.ResidualBlock",
            "in_channels": 8,
            "out_channels": 16,
            "bn_momentum": 0.01,
        },
        "refused to build 'fer_lightning.models.mini_xception.ResidualBlock'",
    ),
    "torch.nn.Linear": (
        lambda v: {"_target_": "torch.nn.Linear", "in_features": 1, "out_features": 7},
        "refused to build 'torch.nn.Linear'",
    ),
    # importing `this` prints the Zen of Python: a visible side effect of an import
    "module-never-imported": (
        lambda v: {"_target_": "this.s"},
        "refused to build 'this.s'",
    ),
}


def checkpoint_file(folder: Path, net_config: dict, fmt: str) -> Path:
    """The shipped weights under ``net_config``, as a weights-only file or as a Lightning checkpoint."""
    shipped = torch.load(DEFAULT_WEIGHTS, weights_only=True)
    if fmt == "weights":
        data = {**shipped, "net_config": net_config}
    else:
        data = {
            "state_dict": {f"net.{k}": v for k, v in shipped["state_dict"].items()},
            "hyper_parameters": {"net_config": net_config},
            "epoch": 0,
            "global_step": 0,
        }
    path = folder / f"model.{'pt' if fmt == 'weights' else 'ckpt'}"
    torch.save(data, path)
    return path


def hostile_file(folder: Path, kind: str, fmt: str, victim: Victim) -> Path:
    return checkpoint_file(folder, HOSTILE[kind][0](victim), fmt)


def assert_refused_in_one_line(result, fragment: str) -> str:
    """Exit 1, no traceback, and a last stderr line ``error: ...`` holding ``fragment``; returns that line."""
    assert result.returncode == 1, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and fragment in last, result.stderr[-3000:]
    return last


def files_in(folder: Path, skip: str = "run") -> dict[str, tuple[int, int]]:
    """{relative path: (size, mtime)} of every file under ``folder`` outside ``skip`` (the script's run
    dir)."""
    return {
        str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in folder.rglob("*")
        if p.is_file() and p.relative_to(folder).parts[0] != skip
    }


# --- the library
# ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("kind", HOSTILE)
def test_library_refuses_a_hostile_checkpoint_before_anything_runs(kind, fmt, tmp_path):
    victim = Victim.make(tmp_path)
    path = hostile_file(tmp_path, kind, fmt, victim)
    imported_before = set(sys.modules)
    with pytest.raises(UnsafeCheckpointError) as err:
        load_network(path)
    message = str(err.value)
    assert message.startswith(f"{path}: {HOSTILE[kind][1]}") and "\n" not in message
    if "refused to build" in message:  # the refusal lists what is allowed and where to add a class
        assert all(name in message for name in ALLOWED_NETWORKS) and "ALLOWED_NETWORKS" in message
    with pytest.raises(UnsafeCheckpointError, match="refused"):
        Predictor.from_checkpoint(path)
    assert victim.untouched()
    assert set(sys.modules) - imported_before == set()  # not even the named module was imported


@pytest.mark.parametrize("fmt", FORMATS)
def test_an_allowed_network_with_plain_arguments_still_loads(fmt, tmp_path):
    """The refusals above are not a blanket one: the same layout naming MiniXception with literals loads its
    weights."""
    net_config = {
        "_target_": MINI_XCEPTION,
        "num_classes": 7,
        "bn_momentum": 0.01,
        "widths": [16, 32, 64, 128],
    }
    net, _ = load_network(checkpoint_file(tmp_path, net_config, fmt))
    shipped = torch.load(DEFAULT_WEIGHTS, weights_only=True)
    assert isinstance(net, MiniXception)
    assert torch.equal(net.classifier.weight, shipped["state_dict"]["classifier.weight"])


# --- the scripts, as real processes
# --------------------------------------------------------------------------------

# Script starts take seconds on the 2-core machine, so the scripts get a diagonal of the library matrix above
# (every script, every side effect, both formats) rather than all of it: they all load through load_network.
SCRIPT_HOSTILE = [
    pytest.param("eval", "builtins.open", "lightning", id="eval-builtins.open-lightning"),
    pytest.param("predict", "shutil.copyfile", "weights", id="predict-shutil.copyfile-weights"),
    pytest.param("gradcam", "os.system", "lightning", id="gradcam-os.system-lightning"),
]


@pytest.mark.parametrize(("script", "kind", "fmt"), SCRIPT_HOSTILE)
def test_scripts_refuse_a_hostile_checkpoint_in_one_line(script, kind, fmt, tmp_path, jaffe_dir):
    victim = Victim.make(tmp_path)
    path = hostile_file(tmp_path, kind, fmt, victim)
    inputs = [] if script == "eval" else [f"inputs={jaffe_dir}"]
    result = run_script(
        script, f"ckpt_path={path}", *inputs, f"hydra.run.dir={tmp_path / 'run'}", timeout=300
    )
    assert_refused_in_one_line(result, f"{path}: {HOSTILE[kind][1]}")
    assert victim.untouched()


# Each maker writes one broken input under tmp_path (``request`` gives fixtures to the one that needs a real
# .ckpt).


def text_file(tmp_path: Path, request) -> Path:
    path = tmp_path / "notes.ckpt"
    path.write_text("epoch 3: val/loss 0.95\n")
    return path


def empty_file(tmp_path: Path, request) -> Path:
    path = tmp_path / "empty.ckpt"
    path.touch()
    return path


def folder(tmp_path: Path, request) -> Path:
    path = tmp_path / "checkpoints"
    path.mkdir()
    return path


def truncated_checkpoint(tmp_path: Path, request) -> Path:
    """A real Lightning checkpoint cut in half, as an interrupted copy leaves it."""
    data = request.getfixturevalue("tiny_checkpoint").read_bytes()
    path = tmp_path / "half.ckpt"
    path.write_bytes(data[: len(data) // 2])
    return path


def output_folder(tmp_path: Path, request) -> Path:
    path = tmp_path / "outputs"
    path.mkdir()
    return path


# the other broken files (pickled module, no state_dict, ...) fail in load_network like these:
# test_checkpoints.py
BAD_CHECKPOINTS = [
    pytest.param(text_file, "not a readable PyTorch checkpoint", id="text-file"),
    pytest.param(empty_file, "is empty (0 bytes)", id="empty-file"),
    pytest.param(folder, "that is a folder", id="folder"),
    pytest.param(truncated_checkpoint, "is truncated or corrupted", id="truncated-ckpt"),
]


@pytest.mark.parametrize(("make", "fragment"), BAD_CHECKPOINTS)
def test_eval_names_a_broken_checkpoint_in_one_line(make, fragment, tmp_path, request):
    path = make(tmp_path, request)
    before = files_in(tmp_path)
    result = run_script("eval", f"ckpt_path={path}", f"hydra.run.dir={tmp_path / 'run'}", timeout=300)
    assert str(path) in assert_refused_in_one_line(result, fragment)
    assert files_in(tmp_path) == before and not list(tmp_path.rglob("metrics.json"))


# every setting check is in test_evaluation.py (in-process); here the script's one-line exit for two of them
BAD_EVAL_SETTINGS = [
    pytest.param(
        "splits=[validation]",
        "unknown split(s) ['validation'] in splits=['validation']; expected any of "
        "train, public, private (or FER2013's Training, PublicTest, PrivateTest)",
        id="unknown-split",
    ),
    pytest.param("tta=fivecrop", "unknown TTA mode(s) ['fivecrop']", id="unknown-tta"),
]


@pytest.mark.parametrize(("override", "fragment"), BAD_EVAL_SETTINGS)
def test_eval_names_a_bad_setting_in_one_line(override, fragment, tmp_path):
    result = run_script("eval", override, f"hydra.run.dir={tmp_path / 'run'}", timeout=300)
    assert_refused_in_one_line(result, fragment)
    assert not list(tmp_path.rglob("metrics.json"))


# a soup glob matching nothing is in test_soup.py
BAD_SELECTION_INPUTS = [
    pytest.param(
        "soup",
        lambda t, r: [f"checkpoints=[{DEFAULT_WEIGHTS}]", f"output={output_folder(t, r)}"],
        "cannot write the soup (output=)",
        id="soup-output-is-a-folder",
    ),
    pytest.param(
        "precise_bn",
        lambda t, r: [f"checkpoints=[{text_file(t, r)}]"],
        "not a readable PyTorch checkpoint",
        id="precise_bn-text-file",
    ),
    pytest.param(
        "teacher_targets",
        lambda t, r: [f"checkpoints=[{DEFAULT_WEIGHTS}]", f"output={output_folder(t, r)}"],
        "cannot write the teacher targets (output=)",
        id="teacher_targets-output-is-a-folder",
    ),
    pytest.param(
        "teacher_targets",
        lambda t, r: [
            f"checkpoints=[{DEFAULT_WEIGHTS}]",
            "tta=[hflip,tencrop]",
            f"output={t / 'targets.pt'}",
        ],
        "teacher targets take one TTA mode",
        id="teacher_targets-two-tta-modes",
    ),
]


@pytest.mark.parametrize(("script", "overrides", "fragment"), BAD_SELECTION_INPUTS)
def test_selection_scripts_name_a_bad_input_in_one_line(script, overrides, fragment, tmp_path, request):
    args = overrides(tmp_path, request)
    before = files_in(tmp_path)
    result = run_script(script, *args, f"hydra.run.dir={tmp_path / 'run'}", timeout=300)
    assert_refused_in_one_line(result, fragment)
    assert files_in(tmp_path) == before  # no output, no half-written file
