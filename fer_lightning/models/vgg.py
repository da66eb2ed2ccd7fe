"""A VGG-style backbone for 48×48 grayscale (after Khaireddin & Chen 2021): the 'larger model' option."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class PoolTo(nn.Module):
    """Average-pool to ``size``x``size``; a no-op when the input already is that size (48x48 faces after four
    stages). Why not ``nn.AdaptiveAvgPool2d``: its CUDA backward has no deterministic kernel, so
    ``trainer.deterministic=true`` failed on GPUs, although for 48-pixel faces it pools nothing."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2:] == (self.size, self.size):
            return x
        return F.adaptive_avg_pool2d(x, self.size)  # other input sizes (e.g. 44-pixel TTA crops)


def _stage(c_in: int, c_out: int, convs: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(convs):
        layers += [
            nn.Conv2d(c_in if i == 0 else c_out, c_out, 3, padding=1, bias=False),
            nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=True),
        ]
    layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers)


class VGGNet(nn.Module):
    """Four conv stages (48→24→12→6→3) and a two-layer classifier with dropout."""

    def __init__(
        self,
        num_classes: int = 7,
        in_channels: int = 1,
        widths: tuple[int, ...] = (64, 128, 256, 512),
        convs_per_stage: int = 2,
        hidden: int = 1024,
        dropout: float = 0.4,
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        channels = (in_channels, *widths)
        self.blocks = nn.Sequential(*(_stage(a, b, convs_per_stage) for a, b in zip(channels, channels[1:])))
        self.classifier = nn.Sequential(
            PoolTo(3),
            nn.Flatten(),
            nn.Linear(widths[-1] * 9, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.blocks(x))
