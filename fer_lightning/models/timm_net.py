"""Any timm model as a FER backbone: one input channel, 48x48 faces, randomly initialised.

``TimmNet("resnet18")`` is timm's ResNet-18 with ``in_chans=1`` and ``num_classes`` outputs. timm's families
downsample 32x (a 48-pixel face would end 2x2, if not 1x1), so ``stem_stride=1`` makes the stem's first
convolution stride 1 and drops a ResNet-style stem max-pool: 8x less downsampling, a 6x6 last stage at 48
pixels. Nothing is downloaded: ``pretrained`` stays off (ImageNet weights are RGB at 224 pixels anyway), and
timm builds architectures from code shipped in its wheel.
"""

from __future__ import annotations

import difflib

import torch
from torch import nn

from fer_lightning.errors import ConfigError


def _module(model: nn.Module, path: str) -> nn.Module:
    return model.get_submodule(path)


class TimmNet(nn.Module):
    """``timm.create_model(name, in_chans=1, num_classes=num_classes, pretrained=False, **kwargs)`` with the
    stem's downsampling reduced by ``stem_stride`` (1 = none, 2 = timm's own)."""

    def __init__(self, name: str | None = None, num_classes: int = 7, stem_stride: int = 1, **kwargs) -> None:
        super().__init__()
        import timm

        if not name:  # model=timm leaves it ??? (Hydra drops a missing value from a partial's arguments)
            raise ConfigError(
                "model=timm needs model.net.name=<timm model>, e.g. resnet18 (timm.list_models())"
            )
        if name not in timm.list_models():
            close = difflib.get_close_matches(name, timm.list_models(), n=5, cutoff=0.6)
            hint = f"; close matches: {', '.join(close)}" if close else "; list them with timm.list_models()"
            raise ConfigError(f"model.net.name={name!r} is not a timm model{hint}")
        self.name, self.num_classes = name, num_classes
        self.model = timm.create_model(name, pretrained=False, in_chans=1, num_classes=num_classes, **kwargs)
        if stem_stride not in (1, 2):
            raise ConfigError(f"model.net.stem_stride must be 1 or 2, got {stem_stride}")
        if stem_stride == 1:
            self._unstride_stem()
        # Grad-CAM's default layer: the last feature stage (6x6 or 3x3 for a 48-pixel face)
        self.cam_layer = "model." + self.model.feature_info[-1]["module"]

    def _unstride_stem(self) -> None:
        first = self.model.pretrained_cfg.get("first_conv") or ""
        names = [first] if isinstance(first, str) else list(first)
        for path in filter(None, names):
            conv = _module(self.model, path)
            if isinstance(conv, nn.Conv2d) and conv.stride != (1, 1):
                conv.stride = (1, 1)
        if isinstance(getattr(self.model, "maxpool", None), nn.MaxPool2d):  # ResNet-style stems pool 2x more
            self.model.maxpool = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)
