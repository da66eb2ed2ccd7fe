"""Greedy weight soup: averages checkpoints only when PublicTest (real faces) says the average is better."""

import pytest
import torch

from fer_lightning.checkpoints import DEFAULT_WEIGHTS, load_network, network_parts, save_weights
from fer_lightning.data.fer2013 import load_fer2013_csv
from fer_lightning.refine.precise_bn import fixed_subset
from fer_lightning.refine.soup import average_states, greedy_soup
from tests.conftest import assert_one_line_error, run_script


@pytest.fixture(scope="module")
def real_faces(data_dir, cache_dir):
    """1,024 real Training faces for the statistics, 1,500 real PublicTest faces as the judge (kept small:
    fast)."""
    arrays = load_fer2013_csv(data_dir / "fer2013" / "fer2013.csv.gz", cache_dir)
    train_images = fixed_subset(torch.from_numpy(arrays.split("train")[0]), 1024)
    public_images, public_labels = (torch.from_numpy(a)[:1500] for a in arrays.split("public"))
    return train_images, public_images, public_labels


def random_direction(state: dict[str, torch.Tensor], seed: int) -> dict[str, torch.Tensor]:
    """A random step of ~30 % of each convolution/linear weight tensor's scale."""
    gen = torch.Generator().manual_seed(seed)
    return {
        k: 0.3 * v.std() * torch.randn(v.shape, generator=gen)
        for k, v in state.items()
        if k.endswith("weight") and v.ndim > 1
    }


def shifted_weights(tmp_path, name: str, direction: dict[str, torch.Tensor], sign: float):
    """The shipped weights moved by ±``direction`` (convolution/linear weights only), as a weights file."""
    net_config, state, classes = network_parts(None)
    moved = {k: v + sign * direction[k] if k in direction else v for k, v in state.items()}
    return save_weights(net_config, moved, classes, tmp_path / f"{name}.pt")


def test_average_states_means_floats_and_keeps_counters():
    a = {"w": torch.tensor([1.0, 3.0]), "n": torch.tensor(5)}
    b = {"w": torch.tensor([3.0, 5.0]), "n": torch.tensor(9)}
    out = average_states([a, b])
    assert torch.equal(out["w"], torch.tensor([2.0, 4.0])) and int(out["n"]) == 5


def test_greedy_soup_keeps_two_checkpoints_whose_average_is_better_and_drops_a_bad_one(real_faces, tmp_path):
    _, state, _ = network_parts(None)
    direction = random_direction(state, seed=0)  # both sides hurt; their average is the shipped network
    plus = shifted_weights(tmp_path, "plus", direction, +1.0)
    minus = shifted_weights(tmp_path, "minus", direction, -1.0)
    far = shifted_weights(tmp_path, "far", direction, +3.0)
    net, _ = load_network(plus)
    members, metrics = greedy_soup(net, [far, plus, minus, plus], *real_faces)
    assert sorted(members) == sorted([plus, minus])  # the duplicate is scored once; the far one left out
    assert metrics["soup/public_loss"] < metrics["soup/public_loss_best_single"]
    soup_state = net.state_dict()
    assert all(
        torch.allclose(soup_state[k], state[k], atol=1e-6) for k in direction
    )  # (w + d + w - d) / 2 = w


def test_script_writes_a_loadable_weights_file_from_a_glob(real_faces, tmp_path):
    (tmp_path / "ingredients").mkdir()
    direction = random_direction(network_parts(None)[1], seed=1)
    for name, sign in (("a", 1.0), ("b", -1.0)):
        shifted_weights(tmp_path / "ingredients", name, direction, sign)
    out = tmp_path / "soup.pt"
    result = run_script(
        "soup",
        f"checkpoints=[{tmp_path}/ingredients/*.pt]",
        f"output={out}",
        "num_faces=1024",
        f"hydra.run.dir={tmp_path / 'run'}",
    )
    assert result.returncode == 0, result.stderr
    assert "soup of 2" in result.stdout
    meta = torch.load(out, weights_only=True)["meta"]
    assert [p.rsplit("/", 1)[-1] for p in meta["soup_members"]] in (["a.pt", "b.pt"], ["b.pt", "a.pt"])
    net, classes = load_network(out)
    assert len(classes) == 7 and meta["precise_bn_faces"] == 1024
    assert out.stat().st_size < DEFAULT_WEIGHTS.stat().st_size * 1.5  # weights only, no optimiser state


def test_script_names_a_pattern_that_matches_nothing_or_an_empty_list_in_one_line(tmp_path):
    for checkpoints, message in (
        (f"[{tmp_path}/none_*.ckpt]", "error: soup: no checkpoint matches"),
        ("[]", "error: a soup needs checkpoints"),
    ):
        assert_one_line_error("soup", message, f"checkpoints={checkpoints}", f"hydra.run.dir={tmp_path}")
