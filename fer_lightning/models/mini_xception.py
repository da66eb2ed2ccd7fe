"""The course notebook's mini-Xception (Arriaga et al. 2017): 56,951 trainable parameters for 7 classes."""

from __future__ import annotations

import torch
from torch import nn

#: PyTorch's BatchNorm momentum weights the *new* batch; Keras' 0.99 keeps 99 % of the running value, i.e.
# 0.01 here.
KERAS_BN_MOMENTUM = 0.01


class SeparableConv2d(nn.Sequential):
    """Depthwise 3×3 then pointwise 1×1, both without bias (BatchNorm follows)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(
            nn.Conv2d(in_channels, in_channels, 3, padding=1, groups=in_channels, bias=False),
            nn.Conv2d(in_channels, out_channels, 1, bias=False),
        )


class _Subsample(torch.autograd.Function):
    """``x[:, :, ::s, ::s]`` whose gradient keeps ``x``'s memory layout.

    Autograd's own slice backward scatters into a *contiguous* (NCHW) zero tensor; added to the residual
    body's channels_last gradient it turns the rest of the backward pass NCHW (the training step ran ~20 %
    slower).
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, s: int) -> torch.Tensor:
        # x itself is kept (no copy: the residual body saves it for its own backward anyway) so the gradient
        # can be made like it; no branching on x here, so FX / ONNX tracing passes through
        ctx.s = s
        ctx.save_for_backward(x)
        return x[:, :, ::s, ::s]

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor) -> tuple[torch.Tensor, None]:
        (x,) = ctx.saved_tensors
        grad = torch.zeros_like(x, dtype=grad_out.dtype)  # preserves x's memory format
        grad[:, :, :: ctx.s, :: ctx.s] = grad_out
        return grad, None


class SubsampledPointwiseConv2d(nn.Conv2d):
    """A 1×1 convolution with stride ``s``, computed as "keep every s-th pixel, then a stride-1 1×1
    convolution".

    Same parameters and state-dict keys as ``nn.Conv2d(c_in, c_out, 1, stride=s, bias=False)`` and the same
    output (a 1×1 kernel only reads the pixels the stride keeps). Why not the plain strided conv: with torch
    2.14.1 on a CPU, its oneDNN weight-gradient kernel in channels_last crashes the process (segfault or
    "double free") for odd batch sizes with more than one intra-op thread, and FER2013's last Training batch
    is 28,709 mod 128 = 37. The repro and the speed check are in ``benchmarks/README.md`` ("channels_last
    crash").
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 2) -> None:
        super().__init__(in_channels, out_channels, 1, bias=False)
        self.subsample = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(_Subsample.apply(x, self.subsample))


class ResidualBlock(nn.Module):
    """Two separable convs + 3×3/2 max-pool, added to a 1×1 stride-2 shortcut (both halve the resolution)."""

    def __init__(self, in_channels: int, out_channels: int, bn_momentum: float) -> None:
        super().__init__()
        self.shortcut = nn.Sequential(
            SubsampledPointwiseConv2d(in_channels, out_channels, stride=2),
            nn.BatchNorm2d(out_channels, momentum=bn_momentum),
        )
        self.body = nn.Sequential(
            SeparableConv2d(in_channels, out_channels),
            nn.BatchNorm2d(out_channels, momentum=bn_momentum),
            nn.ReLU(inplace=True),
            SeparableConv2d(out_channels, out_channels),
            nn.BatchNorm2d(out_channels, momentum=bn_momentum),
            nn.MaxPool2d(3, stride=2, padding=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + self.shortcut(x)


class MiniXception(nn.Module):
    """48×48 (or 44×44) grayscale → ``num_classes`` logits.

    Two valid 3×3 convs (48→44), four residual blocks (44→22→11→6→3), a 3×3 conv to the classes, global
    average pooling. ``blocks[2]`` (6×6) is the default Grad-CAM layer; ``classifier`` is the notebook's 3×3
    ``last_conv``.
    """

    def __init__(
        self,
        num_classes: int = 7,
        in_channels: int = 1,
        widths: tuple[int, ...] = (16, 32, 64, 128),
        stem_width: int = 8,
        bn_momentum: float = KERAS_BN_MOMENTUM,
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, stem_width, 3, bias=False),
            nn.BatchNorm2d(stem_width, momentum=bn_momentum),
            nn.ReLU(inplace=True),
            nn.Conv2d(stem_width, stem_width, 3, bias=False),
            nn.BatchNorm2d(stem_width, momentum=bn_momentum),
            nn.ReLU(inplace=True),
        )
        channels = (stem_width, *widths)
        self.blocks = nn.Sequential(
            *(ResidualBlock(c_in, c_out, bn_momentum) for c_in, c_out in zip(channels, channels[1:]))
        )
        self.classifier = nn.Conv2d(channels[-1], num_classes, 3, padding=1)
        self.pool = nn.AdaptiveAvgPool2d(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.classifier(self.blocks(self.stem(x)))).flatten(1)
