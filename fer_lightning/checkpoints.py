"""Network weights on disk: Lightning ``.ckpt`` files and the project's weights-only format, both loaded safely.

Weights-only file (what ``fer_lightning/weights/`` ships): ``{"net_config", "state_dict", "classes", "meta"}`` —
plain tensors and containers, so ``torch.load(weights_only=True)`` reads it and no pickled code ever runs. It is
half the size of a Lightning checkpoint (no optimiser state) and needs neither Lightning nor the training config.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import hydra
import torch
from torch import nn

from fer_lightning.emotions import EMOTIONS
from fer_lightning.utils.atomic import atomic_path

#: The project's shipped weights; evaluation, prediction and Grad-CAM use them when no ``ckpt_path`` is given.
DEFAULT_WEIGHTS = Path(__file__).resolve().parent / "weights" / "mini_xception_fer2013.pt"
FORMAT_VERSION = 1


class CheckpointError(RuntimeError):
    """A checkpoint cannot be used; the message says which file and what is wrong with it."""


class CheckpointNotFoundError(CheckpointError, FileNotFoundError):
    """No checkpoint at the given path (or no default weights shipped yet)."""


class CheckpointMismatchError(CheckpointError):
    """The checkpoint's weights do not fit its network config, or its classes differ from the expected ones."""


def resolve_checkpoint(path: str | Path | None) -> Path:
    """``path`` if it is a file; ``None`` → :data:`DEFAULT_WEIGHTS`. Raises naming every place it looked."""
    if path is None or str(path) == "":
        if DEFAULT_WEIGHTS.is_file():
            return DEFAULT_WEIGHTS
        raise CheckpointNotFoundError(
            f"a checkpoint is needed: no ckpt_path was given and the default weights {DEFAULT_WEIGHTS} are not "
            "there (not shipped yet). Pass ckpt_path=<file>, a Lightning .ckpt such as "
            "outputs/train/runs/<run>/checkpoints/last.ckpt or a weights file made by export_weights()."
        )
    path = Path(path).expanduser()
    if not path.is_file():
        where = f"{path} (resolved to {path.resolve()})" if not path.is_absolute() else str(path)
        raise CheckpointNotFoundError(
            f"checkpoint not found: looked for {where}"
            + (" — that is a folder, pass a file inside it" if path.is_dir() else "")
        )
    return path


def read_checkpoint(path: str | Path | None) -> dict[str, Any]:
    """The whole checkpoint dict (either format; ``None``: the default weights), read with ``weights_only=True``."""
    return _read(resolve_checkpoint(path))


def _read(path: Path) -> dict[str, Any]:
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # unpickling raises many types; all mean "not a usable checkpoint"
        raise CheckpointError(f"{path} is not a readable PyTorch checkpoint ({type(e).__name__}: {e})") from e
    if not isinstance(data, dict) or "state_dict" not in data:
        raise CheckpointError(
            f"{path} holds no 'state_dict': neither a Lightning checkpoint nor a weights file"
        )
    return data


def _unpack(data: dict[str, Any], path: Path) -> tuple[dict, dict[str, torch.Tensor], list[str]]:
    """(net_config, network state_dict, classes) from either format."""
    if "net_config" in data:  # weights-only file
        net_config, state = data["net_config"], data["state_dict"]
    else:  # Lightning: the network lives under "net." (and "net._orig_mod." when it was torch.compile'd)
        net_config = (data.get("hyper_parameters") or {}).get("net_config")
        state = {
            k.removeprefix("net.").removeprefix("_orig_mod."): v
            for k, v in data["state_dict"].items()
            if k.startswith("net.")
        }
    if not net_config or "_target_" not in net_config:
        raise CheckpointError(
            f"{path} has no network config (hyper_parameters.net_config with a _target_), so the "
            "network cannot be rebuilt; it was not written by fer_lightning's FERClassifier"
        )
    if not state:
        raise CheckpointError(f"{path} holds no network weights (no 'net.*' keys in its state_dict)")
    return dict(net_config), state, list(data.get("classes") or EMOTIONS)


def replace_network_state(data: dict[str, Any], state: dict[str, torch.Tensor], source: str | Path) -> None:
    """Put ``state`` (the network's own keys) into checkpoint ``data`` of either format, in place; every network key
    of the checkpoint must be replaced, so a different architecture cannot half-overwrite it."""
    _unpack(data, Path(source))  # the same format checks as when loading
    old = data["state_dict"]
    if "net_config" in data:  # weights-only file: the network's own keys
        names = {k: k for k in old}
    else:  # Lightning: "net." (+ "_orig_mod.") prefixes; other entries (e.g. loss weights) stay untouched
        names = {k: k.removeprefix("net.").removeprefix("_orig_mod.") for k in old if k.startswith("net.")}
    if set(names.values()) != set(state) or any(old[k].shape != state[n].shape for k, n in names.items()):
        raise CheckpointMismatchError(
            f"{source}: the new network state has other keys or shapes than the checkpoint's network"
        )
    for key, name in names.items():
        old[key] = state[name].detach().cpu()


def _describe_mismatch(net: nn.Module, state: dict[str, torch.Tensor]) -> str:
    expected = net.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    shapes = [
        f"{k}: checkpoint {tuple(state[k].shape)} vs network {tuple(expected[k].shape)}"
        for k in expected
        if k in state and state[k].shape != expected[k].shape
    ]
    parts = []
    for title, items in (
        ("shape mismatches", shapes),
        ("missing in checkpoint", missing),
        ("unexpected in checkpoint", unexpected),
    ):
        if items:
            parts.append(f"{len(items)} {title}: {', '.join(items[:5])}{', ...' if len(items) > 5 else ''}")
    return "; ".join(parts)


def build_network(net_config: dict, state: dict[str, torch.Tensor], source: str | Path) -> nn.Module:
    """Instantiate ``net_config`` and load ``state`` strictly; a mismatch says which keys or shapes differ."""
    try:
        net = hydra.utils.instantiate(net_config)
    except Exception as e:  # a bad _target_ or argument surfaces as several exception types
        raise CheckpointError(f"{source}: cannot build network {net_config.get('_target_')!r} ({e})") from e
    return _load_checked(net, state, source, net_config["_target_"]).eval()


def _load_checked(net: nn.Module, state: dict[str, torch.Tensor], source: str | Path, name: str) -> nn.Module:
    """``net.load_state_dict(state)``, or an error naming every key or shape that differs."""
    detail = _describe_mismatch(net, state)
    if detail:
        raise CheckpointMismatchError(
            f"{source}: weights do not fit the network {name} (another architecture or class count?) — {detail}"
        )
    net.load_state_dict(state)
    return net


def load_network(
    path: str | Path | None = None,
    expected_classes: Sequence[str] | None = None,
    device: str | torch.device = "cpu",
) -> tuple[nn.Module, list[str]]:
    """(network in eval mode, class names) from a Lightning ``.ckpt`` or a weights file (``None``: the default).

    ``expected_classes`` (e.g. :data:`EMOTIONS` for FER2013 labels) raises :class:`CheckpointMismatchError` when
    the checkpoint predicts other classes or another order.
    """
    path = resolve_checkpoint(path)
    net_config, state, classes = _unpack(_read(path), path)
    net = build_network(net_config, state, path)
    outputs = getattr(net, "num_classes", len(classes))
    if outputs != len(classes):
        raise CheckpointMismatchError(
            f"{path}: the network has {outputs} outputs but the checkpoint names "
            f"{len(classes)} classes {classes}"
        )
    if expected_classes is not None and list(expected_classes) != classes:
        raise CheckpointMismatchError(
            f"{path}: checkpoint classes {classes} differ from the expected "
            f"{list(expected_classes)} ({len(classes)} vs {len(expected_classes)} classes)"
        )
    return net.to(device), classes


def load_weights_into(net: nn.Module, path: str | Path) -> nn.Module:
    """Copy a checkpoint's network weights into ``net`` (same architecture), e.g. to fine-tune from them."""
    path = resolve_checkpoint(path)
    _, state, _ = _unpack(_read(path), path)
    return _load_checked(net, state, path, type(net).__name__)


def network_parts(path: str | Path | None) -> tuple[dict, dict[str, torch.Tensor], list[str]]:
    """(net_config, network state_dict, classes) of a checkpoint in either format (``None``: the default weights)."""
    path = resolve_checkpoint(path)
    return _unpack(_read(path), path)


def export_weights(
    lightning_ckpt: str | Path, out_path: str | Path, meta: dict[str, Any] | None = None
) -> Path:
    """Write the weights-only file for a Lightning checkpoint (checked by rebuilding the network first)."""
    source = resolve_checkpoint(lightning_ckpt)
    data = _read(source)
    net_config, state, classes = _unpack(data, source)
    info = {"source": source.name, "epoch": data.get("epoch"), "global_step": data.get("global_step"), **(meta or {})}
    return save_weights(net_config, state, classes, out_path, info, source=source)


def save_weights(net_config: dict, state: dict[str, torch.Tensor], classes: Sequence[str], out_path: str | Path,
                 meta: dict[str, Any] | None = None, source: str | Path | None = None) -> Path:
    """Write a weights-only file atomically, after checking that the network rebuilds from it (an error names
    ``source``, where the weights came from, or else ``out_path``)."""
    build_network(net_config, state, source or out_path)  # refuse to write weights that would not load
    payload = {
        "net_config": dict(net_config),
        "state_dict": {k: v.detach().cpu().contiguous() for k, v in state.items()},
        "classes": list(classes),
        "meta": {k: v for k, v in {"format_version": FORMAT_VERSION, **(meta or {})}.items() if v is not None},
    }
    return atomic_torch_save(payload, out_path)


def atomic_torch_save(obj: Any, out_path: str | Path) -> Path:
    """``torch.save`` to a temporary file beside ``out_path``, then rename: readers never see half a file."""
    with atomic_path(out_path) as tmp:
        torch.save(obj, tmp)
    return Path(out_path)
