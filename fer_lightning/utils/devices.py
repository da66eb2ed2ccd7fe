"""The one place a device name from a config or an argument becomes a ``torch.device``."""

from __future__ import annotations

import torch

from fer_lightning.errors import ConfigError


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``device`` as a ``torch.device`` this machine has; ``"auto"`` = the first CUDA GPU if torch sees
    one, else the CPU. An unknown name or a GPU index this machine lacks is a :class:`ConfigError`."""
    if isinstance(device, str) and device.strip().lower() == "auto":
        return torch.device("cuda", 0) if torch.cuda.is_available() else torch.device("cpu")
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise ConfigError(f"device={device!r} is not a torch device; use auto, cpu, cuda or cuda:1") from e
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise ConfigError(
            f"device={device}, but torch sees {torch.cuda.device_count()} CUDA GPU(s) on this machine; use "
            "device=auto or device=cpu"
        )
    return device
