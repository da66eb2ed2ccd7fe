"""A VGG-style backbone for 48×48 grayscale (after Khaireddin & Chen 2021): the 'larger model' option."""

from __future__ import annotations

import torch
from torch import nn


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
            nn.AdaptiveAvgPool2d(3),
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
