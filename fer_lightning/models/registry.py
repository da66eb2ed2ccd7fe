"""Which network classes a checkpoint file may build, and building them safely.

A checkpoint names its network as ``net_config`` (``{"_target_": "<dotted class>", **arguments}``). Files come
from anywhere, so this is the one gate between a file and code: only allow-listed classes, only plain literal
arguments, nothing imported before both checks pass. Training builds its networks from the (trusted) Hydra
config and never comes here.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from torch import nn

from fer_lightning.errors import CheckpointError, UnsafeCheckpointError

#: The only classes a checkpoint FILE may build, by the dotted name its ``net_config._target_`` gives;
#: anything else is refused before it is imported. A new architecture joins by adding its class's dotted path
#: here (code that registers one at run time: ``checkpoints.ALLOWED_NETWORKS += ("pkg.module.Net",)``). Its
#: module is imported only when a checkpoint names it. Training builds from the trusted Hydra config, not from
#: here.
ALLOWED_NETWORKS: tuple[str, ...] = (
    "fer_lightning.models.mini_xception.MiniXception",
    "fer_lightning.models.vgg.VGGNet",
    # any timm architecture, rebuilt by name from timm's own code (never with downloaded weights)
    "fer_lightning.models.timm_net.TimmNet",
)
#: Keys that make ``hydra.utils.instantiate`` build, call or convert something: never legitimate in a file.
_HYDRA_KEYS = frozenset({"_target_", "_partial_", "_args_", "_recursive_", "_convert_"})
_LITERALS = (bool, int, float, str, type(None))


def instantiate_network(net_config: dict, source: str | Path) -> nn.Module:
    """The network ``net_config`` names: an :data:`ALLOWED_NETWORKS` class, imported only once allowed, called
    directly with its literal arguments (never through ``hydra.utils.instantiate``, which would call whatever
    ``_target_`` a file names: ``builtins.open``, ``os.system``...)."""
    network_class = _allowed_network(net_config, source)
    target = net_config["_target_"]
    try:
        net = network_class(**{k: v for k, v in net_config.items() if k != "_target_"})
    except Exception as e:  # a wrong argument surfaces as several exception types
        reason = " ".join(str(e).split())  # one line, whatever the constructor raised
        raise CheckpointError(
            f"{source}: cannot build network {target!r} from its net_config ({reason})"
        ) from e
    return net


def _allowed_network(net_config: dict, source: str | Path) -> type[nn.Module]:
    """The class ``net_config`` names, imported only once it is known to be allowed and its arguments are
    plain literals: a file naming anything else is refused with nothing imported or called."""
    target = net_config.get("_target_")
    if target not in ALLOWED_NETWORKS:
        raise UnsafeCheckpointError(
            f"{source}: refused to build {target!r} — a checkpoint may only name an allowed network class "
            f"({', '.join(ALLOWED_NETWORKS)}); nothing was imported or run. If you trust the file and it "
            "names your own network class, add that class to fer_lightning.models.registry.ALLOWED_NETWORKS"
        )
    _check_literals({k: v for k, v in net_config.items() if k != "_target_"}, "net_config", source)
    module, _, name = target.rpartition(".")
    return getattr(importlib.import_module(module), name)


def _check_literals(value: Any, where: str, source: str | Path) -> None:
    """Refuse network arguments other than plain literals: no Hydra key that a later ``instantiate`` would act
    on, nothing else a weights-only load lets through (tensors, ...)."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key in _HYDRA_KEYS:
                raise UnsafeCheckpointError(
                    f"{source}: refused — {where} holds the key {key!r}, which would make Hydra build or "
                    "call something; network arguments in a checkpoint must be plain values, so nothing was "
                    "built"
                )
            name = f"{where}.{key}" if isinstance(key, str) and key.isidentifier() else f"{where}[{key!r}]"
            _check_literals(item, name, source)
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            _check_literals(item, f"{where}[{i}]", source)
    elif not isinstance(value, _LITERALS):
        raise UnsafeCheckpointError(
            f"{source}: refused — {where} is a {type(value).__name__}; network arguments in a checkpoint "
            "must be numbers, strings, booleans, None or lists/dicts of them, so nothing was built"
        )
