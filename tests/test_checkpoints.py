"""Weights files: export from a real Lightning checkpoint, load both formats, and clear errors for bad
ones."""

import re

import pytest
import torch

from fer_lightning import checkpoints
from fer_lightning.models import registry
from fer_lightning.utils.config_checks import checkpoint_paths
from fer_lightning.utils.io import writable_file
from fer_lightning.checkpoints import (
    CheckpointError,
    CheckpointMismatchError,
    CheckpointNotFoundError,
    export_weights,
    load_network,
)
from fer_lightning.data.fer2013 import load_fer2013_csv
from fer_lightning.emotions import EMOTIONS
from fer_lightning.errors import ConfigError, UnsafeCheckpointError
from fer_lightning.inference import to_model_input


@pytest.fixture(scope="module")
def public_faces(data_dir, cache_dir) -> torch.Tensor:
    images, _ = load_fer2013_csv(data_dir / "fer2013" / "fer2013.csv", cache_dir).split("public")
    return to_model_input(torch.from_numpy(images[:64]).unsqueeze(1))


def test_weights_file_is_plain_data_and_predicts_like_the_lightning_checkpoint(
    tiny_checkpoint, tiny_weights, public_faces
):
    data = torch.load(tiny_weights, weights_only=True)  # no pickled code: safe to load from anywhere
    assert set(data) == {"net_config", "state_dict", "classes", "meta"}
    assert data["net_config"]["_target_"].endswith("MiniXception") and data["classes"] == list(EMOTIONS)
    assert data["meta"]["note"] == "test" and data["meta"]["source"] == "last.ckpt"
    assert not any(k.startswith("net.") for k in data["state_dict"])
    assert tiny_weights.stat().st_size < 0.6 * tiny_checkpoint.stat().st_size  # no optimiser state

    from_ckpt, classes_ckpt = load_network(tiny_checkpoint)
    from_weights, classes_weights = load_network(tiny_weights, expected_classes=EMOTIONS)
    assert classes_ckpt == classes_weights == list(EMOTIONS)
    assert not from_weights.training
    with torch.inference_mode():
        expected = from_ckpt(public_faces)
        assert torch.equal(from_weights(public_faces), expected)
    # the weights are the trained ones, not a fresh initialisation
    lightning_state = torch.load(tiny_checkpoint, weights_only=True)["state_dict"]
    assert torch.equal(from_weights.classifier.weight, lightning_state["net.classifier.weight"])


def test_missing_checkpoint_says_where_it_looked(tmp_path):
    missing = tmp_path / "nope" / "model.ckpt"
    with pytest.raises(CheckpointNotFoundError, match=f"looked for {missing}"):
        load_network(missing)
    with pytest.raises(CheckpointNotFoundError, match="that is a folder"):
        load_network(tmp_path)


def test_no_checkpoint_and_no_shipped_weights_asks_for_one(tmp_path, monkeypatch):
    absent = tmp_path / "weights" / "mini_xception_fer2013.pt"
    monkeypatch.setattr(checkpoints, "DEFAULT_WEIGHTS", absent)
    with pytest.raises(CheckpointNotFoundError, match="a checkpoint is needed") as err:
        load_network(None)
    assert str(absent) in str(err.value) and "ckpt_path=" in str(err.value)


def test_no_checkpoint_uses_the_shipped_weights_when_present(tiny_weights, monkeypatch):
    monkeypatch.setattr(checkpoints, "DEFAULT_WEIGHTS", tiny_weights)
    net, classes = load_network()
    assert type(net).__name__ == "MiniXception" and classes == list(EMOTIONS)


def test_other_class_count_names_the_mismatching_weights(tiny_weights, tmp_path):
    data = torch.load(tiny_weights, weights_only=True)
    data["net_config"]["num_classes"] = 5
    bad = tmp_path / "five_classes.pt"
    torch.save(data, bad)
    with pytest.raises(
        CheckpointMismatchError,
        match=r"classifier.weight: checkpoint \(7, 128, 3, 3\) vs "
        r"network \(5, 128, 3, 3\)",
    ):
        load_network(bad)


def test_other_architecture_lists_missing_and_unexpected_keys(tiny_weights, tmp_path):
    data = torch.load(tiny_weights, weights_only=True)
    data["net_config"] = {"_target_": "fer_lightning.models.vgg.VGGNet", "num_classes": 7}
    bad = tmp_path / "vgg.pt"
    torch.save(data, bad)
    with pytest.raises(CheckpointMismatchError, match="fer_lightning.models.vgg.VGGNet") as err:
        load_network(bad)
    assert "missing in checkpoint" in str(err.value) and "unexpected in checkpoint: " in str(err.value)


def test_other_classes_than_expected_are_refused(tiny_weights, tmp_path):
    data = torch.load(tiny_weights, weights_only=True)
    data["classes"] = list(reversed(EMOTIONS))
    reordered = tmp_path / "reordered.pt"
    torch.save(data, reordered)
    assert load_network(reordered)[1] == list(reversed(EMOTIONS))  # fine on its own ...
    with pytest.raises(CheckpointMismatchError, match="differ from the expected"):
        load_network(reordered, expected_classes=EMOTIONS)  # ... not for FER2013's label ids


def test_files_that_are_not_checkpoints(tmp_path, tiny_checkpoint):
    garbage = tmp_path / "garbage.ckpt"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable PyTorch checkpoint"):
        load_network(garbage)
    ckpt = torch.load(tiny_checkpoint, weights_only=True)
    del ckpt["hyper_parameters"]["net_config"]
    foreign = tmp_path / "foreign.ckpt"
    torch.save(ckpt, foreign)
    with pytest.raises(CheckpointError, match="no network config"):
        load_network(foreign)
    with pytest.raises(CheckpointError, match="no network config"):
        export_weights(foreign, tmp_path / "out.pt")
    assert not (tmp_path / "out.pt").exists()


def test_a_network_class_joins_the_allow_list_by_its_dotted_name(tmp_path, monkeypatch):
    """``ALLOWED_NETWORKS`` is the one place a new architecture is registered; until then its files are
    refused."""
    linear = torch.nn.Linear(4, 7)
    path = tmp_path / "linear.pt"
    torch.save(
        {
            "net_config": {"_target_": "torch.nn.Linear", "in_features": 4, "out_features": 7},
            "state_dict": linear.state_dict(),
            "classes": list(EMOTIONS),
            "meta": {},
        },
        path,
    )
    with pytest.raises(UnsafeCheckpointError, match="refused to build 'torch.nn.Linear'"):
        load_network(path)
    monkeypatch.setattr(registry, "ALLOWED_NETWORKS", (*registry.ALLOWED_NETWORKS, "torch.nn.Linear"))
    net, _ = load_network(path)
    assert isinstance(net, torch.nn.Linear) and torch.equal(net.weight, linear.weight)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        pytest.param(
            {"num_classes": torch.tensor(7)}, "net_config.num_classes is a Tensor", id="tensor-argument"
        ),
        pytest.param(
            {"widths": [16, {"_convert_": "all"}]},
            r"net_config.widths\[1\] holds the key '_convert_'",
            id="hydra-key-in-a-list",
        ),
        pytest.param(
            {"_recursive_": False}, "net_config holds the key '_recursive_'", id="top-level-hydra-key"
        ),
    ],
)
def test_network_arguments_in_a_file_must_be_plain_literals(arguments, message, tiny_weights, tmp_path):
    data = torch.load(tiny_weights, weights_only=True)
    data["net_config"].update(arguments)
    path = tmp_path / "odd_arguments.pt"
    torch.save(data, path)
    with pytest.raises(UnsafeCheckpointError, match=message):
        load_network(path)


def test_an_unknown_argument_names_the_network_and_the_argument(tiny_weights, tmp_path):
    data = torch.load(tiny_weights, weights_only=True)
    data["net_config"]["colour"] = "grey"
    path = tmp_path / "unknown_argument.pt"
    torch.save(data, path)
    with pytest.raises(CheckpointError, match="cannot build network '.*MiniXception'.*'colour'"):
        load_network(path)


def cut_in_half(source, path):
    data = source.read_bytes()
    path.write_bytes(data[: len(data) // 2])


# each writer gets (path to write, the tiny weights file's dict, the tiny Lightning checkpoint's path)
BROKEN_FILES = [
    pytest.param(lambda path, w, ckpt: path.touch(), "is empty (0 bytes)", id="empty-file"),
    pytest.param(
        lambda path, w, ckpt: cut_in_half(ckpt, path), "is truncated or corrupted", id="truncated-ckpt"
    ),
    pytest.param(
        lambda path, w, ckpt: torch.save(torch.nn.Linear(2, 2), path),
        "pickles the Python object torch.nn.modules.linear.Linear",
        id="pickled-module",
    ),
    pytest.param(
        lambda path, w, ckpt: torch.save({**w, "state_dict": [1, 2]}, path),
        "its 'state_dict' is a list",
        id="state-dict-not-a-mapping",
    ),
    pytest.param(
        lambda path, w, ckpt: torch.save(
            {**w, "state_dict": {**w["state_dict"], "classifier.weight": "0"}}, path
        ),
        "state_dict entry 'classifier.weight' is a str",
        id="weights-not-tensors",
    ),
    pytest.param(
        lambda path, w, ckpt: torch.save({**w, "classes": 7}, path),
        "'classes' must be a list of class names",
        id="classes-not-names",
    ),
]


@pytest.mark.parametrize(("write", "message"), BROKEN_FILES)
def test_a_broken_file_is_named_in_one_line(write, message, tiny_checkpoint, tiny_weights, tmp_path):
    path = tmp_path / "broken.ckpt"
    write(path, torch.load(tiny_weights, weights_only=True), tiny_checkpoint)
    with pytest.raises(CheckpointError) as err:
        load_network(path)
    assert str(err.value).startswith(str(path)) and message in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("device", ["tpu", "cuda:99"])
def test_a_device_this_machine_lacks_is_named(device, tiny_weights):
    with pytest.raises(ConfigError, match=f"device={device}|device='{device}'"):
        load_network(tiny_weights, device=device)


def test_checkpoints_setting_and_output_paths_are_checked(tmp_path):
    assert checkpoint_paths("a.ckpt") == ["a.ckpt"]  # one path without brackets: not its characters
    assert checkpoint_paths(["a.ckpt", "b.ckpt"]) == ["a.ckpt", "b.ckpt"] and checkpoint_paths(None) == []
    assert writable_file(tmp_path / "new" / "soup.pt", "the soup") == tmp_path / "new" / "soup.pt"
    with pytest.raises(ConfigError, match="that is a folder"):
        writable_file(tmp_path, "the soup (output=)")
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(ConfigError, match="file.txt is a file, not a folder"):
        writable_file(tmp_path / "file.txt" / "soup.pt", "the soup (output=)")


def test_format_version_is_checked_on_load(tmp_path):
    data = torch.load(checkpoints.DEFAULT_WEIGHTS, weights_only=True)
    assert data["meta"]["format_version"] == checkpoints.FORMAT_VERSION
    newer = tmp_path / "newer.pt"
    torch.save({**data, "meta": {**data["meta"], "format_version": checkpoints.FORMAT_VERSION + 1}}, newer)
    with pytest.raises(
        CheckpointError,
        match=rf"{re.escape(str(newer))} is in checkpoint format {checkpoints.FORMAT_VERSION + 1}, "
        "newer than .*; upgrade fer-lightning to load it",
    ) as error:
        load_network(newer)
    assert "\n" not in str(error.value)
    damaged = tmp_path / "damaged.pt"
    torch.save({**data, "meta": {"format_version": "two"}}, damaged)
    with pytest.raises(CheckpointError, match="meta.format_version is 'two', not a whole number"):
        load_network(damaged)
    unversioned = tmp_path / "unversioned.pt"  # written before the version was recorded: format 1
    torch.save({k: v for k, v in data.items() if k != "meta"}, unversioned)
    assert load_network(unversioned)[1] == data["classes"]
