"""Test-time augmentation: average the softmax of several views of each face (in log space, for the loss).

``hflip``: the face and its mirror image (2 views). ``tencrop``: the four corner and the centre 44x44 crops of the
48x48 face, each also mirrored (10 views), the classic FER2013 protocol. The crops go to the network at 44x44 as
they are — mini-Xception (valid stem convs, strided blocks, global pooling) and the VGG backbone (adaptive pooling)
both accept any input from 44 pixels up — so no resize adds interpolation blur and no padding adds false borders.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch

from fer_lightning.errors import ConfigError

TTA_MODES = ("hflip", "tencrop")
CROP_SIZE = 44


def _ten_crops(x: torch.Tensor, size: int = CROP_SIZE) -> list[torch.Tensor]:
    h, w = x.shape[-2:]
    if h < size or w < size:
        raise ValueError(f"tencrop needs faces of at least {size}x{size}, got {h}x{w}")
    top, left = (h - size) // 2, (w - size) // 2
    corners = [(0, 0), (0, w - size), (h - size, 0), (h - size, w - size), (top, left)]
    crops = [x[..., y : y + size, x0 : x0 + size] for y, x0 in corners]
    return crops + [c.flip(-1) for c in crops]


def views(x: torch.Tensor, mode: str | None) -> list[torch.Tensor]:
    """The batches the network sees for one TTA ``mode`` (``None``: just ``x``)."""
    if mode is None or mode == "none":
        return [x]
    if mode == "hflip":
        return [x, x.flip(-1)]
    if mode == "tencrop":
        return _ten_crops(x)
    raise ValueError(f"unknown TTA mode {mode!r}; expected one of {TTA_MODES} (or none)")


def tta_log_probs(
    forward: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, mode: str | None = None
) -> torch.Tensor:
    """log of the mean softmax over the views of ``x`` (model-input floats, N×C×H×W) → (N, classes)."""
    log_probs = [forward(v).float().log_softmax(1) for v in views(x, mode)]
    if len(log_probs) == 1:
        return log_probs[0]
    return torch.stack(log_probs).logsumexp(0) - math.log(len(log_probs))


def normalise_modes(tta: str | Sequence[str] | None) -> list[str]:
    """``tta=hflip`` (a string), ``tta=[hflip,tencrop]`` or ``null`` from the config → a validated list."""
    if tta is None or tta == "" or tta == "none":
        return []
    modes = [str(m) for m in tta] if isinstance(tta, Sequence) and not isinstance(tta, str) else [str(tta)]
    unknown = [m for m in modes if m not in TTA_MODES]
    if unknown:
        raise ConfigError(
            f"unknown TTA mode(s) {unknown} in tta={modes}; expected any of {', '.join(TTA_MODES)}, a list of them, "
            "or null"
        )
    return list(dict.fromkeys(modes))
