"""Network weights on disk: Lightning ``.ckpt`` files and the project's weights-only format, both loaded
safely.

Weights-only file (what ``fer_lightning/weights/`` ships): ``{"net_config", "state_dict", "classes", "meta"}``
— plain tensors and containers, so ``torch.load(weights_only=True)`` reads it and no pickled code ever runs.
It is half the size of a Lightning checkpoint (no optimiser state) and needs neither Lightning nor the
training config.

A checkpoint is data, never code: the network it names is built by :mod:`fer_lightning.models.registry`, which
accepts only allow-listed classes with plain literal arguments.
"""

from __future__ import annotations

import pickle
import re
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from fer_lightning.emotions import EMOTIONS
from fer_lightning.errors import (
    CheckpointError,
    CheckpointMismatchError,
    CheckpointNotFoundError,
    ConfigError,
)
from fer_lightning.models.registry import instantiate_network
from fer_lightning.utils.devices import resolve_device
from fer_lightning.utils.io import save_torch

#: The project's shipped weights; evaluation, prediction and Grad-CAM use them when no ``ckpt_path`` is given.
_WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
#: The shipped weights by name: ``ckpt_path=ferplus`` (or ``weights=ferplus``, ``Predictor.from_pretrained``)
#: picks one. photos: fine-tuned for real photos (FER2013's 7 classes; carries its inference settings);
#: fer2013: FER2013's 7 classes and labels, the benchmark network; ferplus: FER+'s 8 classes, majority labels.
PRETRAINED = {
    "photos": _WEIGHTS_DIR / "mini_xception_photos.pt",
    "fer2013": _WEIGHTS_DIR / "mini_xception_fer2013.pt",
    "ferplus": _WEIGHTS_DIR / "mini_xception_ferplus.pt",
}
#: What ``ckpt_path=null`` means for scripts that read FER2013 data (eval's default follows data.class_set).
DEFAULT_WEIGHTS = PRETRAINED["fer2013"]
#: The shipped weights the photo tools (predict, Grad-CAM, video, demo, Predictor.from_pretrained) use by
#: default: the best on the photo sets of docs/results.md ("Training for photos").
DEFAULT_PHOTO_MODEL = "photos"
#: Written to a weights file's ``meta.format_version``; a file with a higher one is refused on load.
FORMAT_VERSION = 1


def chosen_weights(
    ckpt_path: str | Path | None, model: str | None, default: str = DEFAULT_PHOTO_MODEL
) -> Path:
    """The scripts' ``ckpt_path=<file>`` if given, else the shipped weights ``weights=fer2013|ferplus`` names
    (``None``: ``default``); an unknown name is a :class:`ConfigError` listing the names."""
    if ckpt_path:
        return resolve_checkpoint(ckpt_path)
    name = default if model is None else str(model)
    if name not in PRETRAINED:
        raise ConfigError(
            f"weights={name}: the shipped weights are {', '.join(PRETRAINED)} (or pass ckpt_path=<file>)"
        )
    if not PRETRAINED[name].is_file():
        raise CheckpointNotFoundError(
            f"a checkpoint is needed: no ckpt_path was given and the shipped {name} weights "
            f"{PRETRAINED[name]} are not there. Pass ckpt_path=<file>, a Lightning .ckpt such as "
            "outputs/train/runs/<run>/checkpoints/last.ckpt or a weights file made by export_weights()."
        )
    return PRETRAINED[name]


def resolve_checkpoint(path: str | Path | None) -> Path:
    """``path`` if it is a file; a :data:`PRETRAINED` name → those shipped weights; ``None`` →
    :data:`DEFAULT_WEIGHTS`. Raises naming every place it looked."""
    if isinstance(path, str) and path in PRETRAINED:
        path = PRETRAINED[path]
    if path is None or str(path) == "":
        if DEFAULT_WEIGHTS.is_file():
            return DEFAULT_WEIGHTS
        raise CheckpointNotFoundError(
            f"a checkpoint is needed: no ckpt_path was given and the default weights {DEFAULT_WEIGHTS} are "
            "not there (not shipped yet). Pass ckpt_path=<file>, a Lightning .ckpt such as "
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
    """The whole checkpoint dict (either format; ``None``: the default weights), read with
    ``weights_only=True``."""
    return _read(resolve_checkpoint(path))


def _read(path: Path) -> dict[str, Any]:
    try:
        with (
            warnings.catch_warnings()
        ):  # torch warns about unusual pickle protocols; the error below says it all
            warnings.simplefilter("ignore", UserWarning)
            data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # unpickling raises many types; all mean "not a usable checkpoint"
        raise CheckpointError(_unreadable(path, e)) from e
    if not isinstance(data, dict) or "state_dict" not in data:
        raise CheckpointError(
            f"{path} holds no 'state_dict': neither a Lightning checkpoint nor a weights file"
        )
    _check_format_version(data, path)
    return data


def _check_format_version(data: dict[str, Any], path: Path) -> None:
    """Refuse a weights file written in a newer format than :data:`FORMAT_VERSION`: its keys may mean
    something this version would misread. A file without ``meta.format_version`` (and every Lightning
    checkpoint) is 1."""
    meta = data.get("meta")
    version = meta.get("format_version", 1) if isinstance(meta, dict) else 1
    if isinstance(version, bool) or not isinstance(version, int):
        raise CheckpointError(
            f"{path}: meta.format_version is {version!r}, not a whole number; the file is "
            "damaged or not a checkpoint of this project"
        )
    if version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path} is in checkpoint format {version!r}, newer than the format {FORMAT_VERSION} this "
            "fer-lightning reads; upgrade fer-lightning to load it"
        )


def _unreadable(path: Path, error: Exception) -> str:
    """One line saying why ``torch.load`` failed, in the user's terms (torch's own messages run to
    paragraphs)."""
    text = str(error)
    if path.stat().st_size == 0:
        return (
            f"{path} is empty (0 bytes), not a checkpoint: it was not written completely; "
            "save or copy it again"
        )
    if "PytorchStreamReader" in text:
        return f"{path} is truncated or corrupted (not a complete PyTorch zip archive); save or copy it again"
    refused = re.search(r"Unsupported global: GLOBAL (\S+)", text)
    if refused:
        return (
            f"{path} pickles the Python object {refused.group(1)}, which safe loading (weights_only=True) "
            "refuses: a checkpoint may hold tensors and plain data only; save a Lightning .ckpt or a "
            "state_dict instead"
        )
    if isinstance(
        error, pickle.UnpicklingError
    ):  # torch's text here is a paragraph on weights_only, not the cause
        reason = "safe loading (weights_only=True) rejects its contents"
    else:
        first_line = " ".join(text.split("\n", 1)[0].split())
        reason = f"{type(error).__name__}: {first_line[:200]}"
    return (
        f"{path} is not a readable PyTorch checkpoint ({reason}); "
        "pass a Lightning .ckpt or a weights .pt file"
    )


def _unpack(data: dict[str, Any], path: Path) -> tuple[dict, dict[str, torch.Tensor], list[str]]:
    """(net_config, network state_dict, classes) from either format, each checked to be of the expected
    kind."""
    if not isinstance(data["state_dict"], dict):
        raise CheckpointError(
            f"{path}: its 'state_dict' is a {type(data['state_dict']).__name__}, not a mapping "
            "of names to tensors; it is not a checkpoint of this project"
        )
    if "net_config" in data:  # weights-only file
        net_config, state = data["net_config"], data["state_dict"]
    else:  # Lightning: the network lives under "net." (and "net._orig_mod." when it was torch.compile'd)
        hparams = data.get("hyper_parameters")
        net_config = hparams.get("net_config") if isinstance(hparams, dict) else None
        state = {
            k.removeprefix("net.").removeprefix("_orig_mod."): v
            for k, v in data["state_dict"].items()
            if isinstance(k, str) and k.startswith("net.")
        }
    if not isinstance(net_config, dict) or "_target_" not in net_config:
        raise CheckpointError(
            f"{path} has no network config (hyper_parameters.net_config with a _target_), so the "
            "network cannot be rebuilt; it was not written by fer_lightning's FERClassifier"
        )
    if not state:
        raise CheckpointError(f"{path} holds no network weights (no 'net.*' keys in its state_dict)")
    not_tensor = next((k for k, v in state.items() if not isinstance(v, torch.Tensor)), None)
    if not_tensor is not None:
        raise CheckpointError(
            f"{path}: state_dict entry {not_tensor!r} is a {type(state[not_tensor]).__name__}, "
            "not a tensor; the file is damaged or not a checkpoint of this project"
        )
    classes = data.get("classes") or EMOTIONS
    if not isinstance(classes, list | tuple) or not all(isinstance(c, str) for c in classes):
        raise CheckpointError(f"{path}: 'classes' must be a list of class names, got {str(classes)[:100]}")
    return dict(net_config), state, list(classes)


def replace_network_state(data: dict[str, Any], state: dict[str, torch.Tensor], source: str | Path) -> None:
    """Put ``state`` (the network's own keys) into checkpoint ``data`` of either format, in place; every
    network key of the checkpoint must be replaced, so a different architecture cannot half-overwrite it."""
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


def write_network_state(source: str | Path, net: nn.Module, out_path: str | Path) -> Path:
    """A copy of checkpoint ``source`` (Lightning ``.ckpt`` or weights file) holding ``net``'s state,
    atomically — e.g. after precise BatchNorm changed its statistics; everything else in the file is kept as
    it was."""
    data = read_checkpoint(source)
    replace_network_state(data, net.state_dict(), source)
    return save_torch(data, out_path)


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
    """The network a checkpoint's ``net_config`` names (built by :func:`~fer_lightning.models.registry.
    instantiate_network`, so only allow-listed classes with literal arguments), ``state`` loaded strictly; a
    mismatch says which keys or shapes differ."""
    net = instantiate_network(net_config, source)
    return _load_checked(net, state, source, net_config["_target_"]).eval()


def _load_checked(net: nn.Module, state: dict[str, torch.Tensor], source: str | Path, name: str) -> nn.Module:
    """``net.load_state_dict(state)``, or an error naming every key or shape that differs."""
    detail = _describe_mismatch(net, state)
    if detail:
        raise CheckpointMismatchError(
            f"{source}: weights do not fit the network {name} (another architecture or class count?) — "
            f"{detail}"
        )
    net.load_state_dict(state)
    return net


def load_network(
    path: str | Path | None = None,
    expected_classes: Sequence[str] | None = None,
    device: str | torch.device = "cpu",
) -> tuple[nn.Module, list[str]]:
    """(network in eval mode, class names) from a Lightning ``.ckpt`` or a weights file (``None``: the
    default).

    ``expected_classes`` (e.g. :data:`EMOTIONS` for FER2013 labels) raises :class:`CheckpointMismatchError`
    when the checkpoint predicts other classes or another order.
    """
    device = resolve_device(device)
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


def load_matching_weights(net: nn.Module, path: str | Path) -> list[str]:
    """Copy every checkpoint tensor whose name and shape fit ``net``; keep ``net``'s own (fresh) tensors where
    the shapes differ — a classifier head for another class count — and return those keys. Used to fine-tune
    on other classes (FER2013's 7 → FER+'s 8). Other keys missing or extra mean another architecture: refused,
    as are shape differences in more than the last layer's tensors (weight and bias of one module)."""
    path = resolve_checkpoint(path)
    _, state, _ = _unpack(_read(path), path)
    own = net.state_dict()
    skipped = [k for k in own if k in state and state[k].shape != own[k].shape]
    modules = {k.rsplit(".", 1)[0] for k in skipped}
    if set(own) != set(state) or len(modules) > 1:
        raise CheckpointMismatchError(
            f"{path}: weights do not fit the network {type(net).__name__} beyond its output layer "
            f"(another architecture?) — {_describe_mismatch(net, state)}"
        )
    net.load_state_dict({k: (own[k] if k in skipped else v) for k, v in state.items()})
    return skipped


def network_parts(path: str | Path | None) -> tuple[dict, dict[str, torch.Tensor], list[str]]:
    """(net_config, network state_dict, classes) of a checkpoint in either format (``None``: the default
    weights)."""
    path = resolve_checkpoint(path)
    return _unpack(_read(path), path)


def export_weights(
    lightning_ckpt: str | Path, out_path: str | Path, meta: dict[str, Any] | None = None
) -> Path:
    """Write the weights-only file for a Lightning checkpoint (checked by rebuilding the network first)."""
    source = resolve_checkpoint(lightning_ckpt)
    data = _read(source)
    net_config, state, classes = _unpack(data, source)
    info = {
        "source": source.name,
        "epoch": data.get("epoch"),
        "global_step": data.get("global_step"),
        **(meta or {}),
    }
    return save_weights(net_config, state, classes, out_path, info, source=source)


def save_weights(
    net_config: dict,
    state: dict[str, torch.Tensor],
    classes: Sequence[str],
    out_path: str | Path,
    meta: dict[str, Any] | None = None,
    source: str | Path | None = None,
) -> Path:
    """Write a weights-only file atomically, after checking that the network rebuilds from it (an error names
    ``source``, where the weights came from, or else ``out_path``)."""
    build_network(net_config, state, source or out_path)  # refuse to write weights that would not load
    payload = {
        "net_config": dict(net_config),
        "state_dict": {k: v.detach().cpu().contiguous() for k, v in state.items()},
        "classes": list(classes),
        "meta": {
            k: v for k, v in {"format_version": FORMAT_VERSION, **(meta or {})}.items() if v is not None
        },
    }
    return save_torch(payload, out_path)
