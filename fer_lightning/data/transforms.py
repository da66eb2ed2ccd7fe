"""Augmentation: batched tensor ops on the training device (fast path) or albumentations per sample.

Batches travel as uint8 (N, 1, 48, 48); :func:`fer_lightning.inference.to_model_input` turns them into the
float range the networks are trained on, after augmentation, on whatever device the batch is on.
"""

from __future__ import annotations

import math

import albumentations as A
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def affine_grid(theta: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """``F.affine_grid(theta, (N, C, h, w), align_corners=False)`` as one (2N x 3) @ (3 x hw) matmul.

    affine_grid does N batched (hw x 3) @ (3 x 2) products, which hit MKL's slow small-matrix path on the CPU:
    ~7 ms per 128-image batch of 48x48, more than grid_sample itself; this form takes ~0.15 ms. The result is
    a permuted view (N, h, w, 2) that grid_sample reads as fast as a contiguous grid.
    """
    xs = torch.linspace(1 / w - 1, 1 - 1 / w, w, device=theta.device, dtype=theta.dtype)
    ys = torch.linspace(1 / h - 1, 1 - 1 / h, h, device=theta.device, dtype=theta.dtype)
    base = torch.stack(
        [
            xs.expand(h, w),
            ys.view(h, 1).expand(h, w),
            torch.ones(h, w, device=theta.device, dtype=theta.dtype),
        ]
    )
    n = len(theta)
    return (theta.reshape(n * 2, 3) @ base.view(3, h * w)).view(n, 2, h, w).permute(0, 2, 3, 1)


class BatchAugment(nn.Module):
    """Random affine (shift, scale, rotation, horizontal flip) and random erasing for a whole batch at once.

    One ``affine_grid`` + ``grid_sample`` call replaces per-sample crop/flip/affine, so augmentation costs ~1
    % of a training step on the CPU and runs on the GPU when training there. Shifts are in pixels of a
    48-pixel image (``max_shift=4`` ≈ the classic pad-4 random crop).
    """

    def __init__(
        self,
        max_shift: float = 4.0,
        scale: tuple[float, float] = (0.9, 1.1),
        max_rotation: float = 10.0,
        hflip: float = 0.5,
        erase_p: float = 0.0,
        erase_scale: tuple[float, float] = (0.02, 0.15),
        padding_mode: str = "zeros",
    ) -> None:
        super().__init__()
        self.max_shift, self.scale, self.max_rotation = max_shift, tuple(scale), max_rotation
        self.hflip, self.erase_p, self.erase_scale = hflip, erase_p, tuple(erase_scale)
        self.padding_mode = padding_mode

    def _affine(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        u = torch.rand(n, 5, device=x.device)
        angle = (u[:, 0] * 2 - 1) * math.radians(self.max_rotation)
        # sample the inverse scale: the grid maps output coords to input coords
        scale = 1.0 / (self.scale[0] + u[:, 1] * (self.scale[1] - self.scale[0]))
        flip = torch.where(u[:, 2] < self.hflip, -1.0, 1.0)
        # Python-scalar factors: a torch.tensor([w, h]) made here would be a blocking host→GPU copy per batch
        shift_x = (u[:, 3] * 2 - 1) * (2 * self.max_shift / w)
        shift_y = (u[:, 4] * 2 - 1) * (2 * self.max_shift / h)
        cos, sin = torch.cos(angle) * scale, torch.sin(angle) * scale
        theta = torch.stack(
            [torch.stack([cos * flip, -sin, shift_x], 1), torch.stack([sin * flip, cos, shift_y], 1)], 1
        )
        return F.grid_sample(
            x, affine_grid(theta, h, w), mode="bilinear", padding_mode=self.padding_mode, align_corners=False
        )

    def _erase(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        u = torch.rand(n, 4, device=x.device)
        area = self.erase_scale[0] + u[:, 0] * (self.erase_scale[1] - self.erase_scale[0])
        side = area.sqrt()
        y0, x0 = u[:, 1] * (1 - side), u[:, 2] * (1 - side)
        ys = torch.linspace(0, 1, h, device=x.device).view(1, h, 1)
        xs = torch.linspace(0, 1, w, device=x.device).view(1, 1, w)
        # row and column masks first (N, h, 1) and (N, 1, w): one full-size op instead of seven
        erase = (u[:, 3] < self.erase_p).view(-1, 1, 1)
        rows = (ys >= y0.view(-1, 1, 1)) & (ys <= (y0 + side).view(-1, 1, 1)) & erase
        cols = (xs >= x0.view(-1, 1, 1)) & (xs <= (x0 + side).view(-1, 1, 1))
        # in place: x is the fresh output of grid_sample; mid-grey = 0 after normalisation
        return x.masked_fill_((rows & cols).unsqueeze(1), 127.5)

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """uint8/float (N, 1, H, W) in 0..255 → augmented float in 0..255."""
        x = images.float()
        x = self._affine(x)
        if self.erase_p > 0:
            x = self._erase(x)
        return x


class AlbumentationsAugment:
    """Per-sample albumentations pipeline (the straightforward path); called by the dataset on (48, 48)
    uint8."""

    def __init__(self, transform: A.BasicTransform | A.Compose) -> None:
        self.transform = transform

    def __call__(self, image: np.ndarray) -> np.ndarray:
        return self.transform(image=image)["image"]

    def batch(self, images: np.ndarray) -> np.ndarray:
        """Augment (N, 48, 48) uint8 faces. The pipeline is reseeded from torch's generator first:
        albumentations keeps generators of its own, seeded from the OS, which neither ``seed_everything`` nor
        a resumed run's restored state would reach."""
        self.transform.set_random_seed(int(torch.randint(1 << 31, ()).item()))
        return np.stack([self(image) for image in images])


class PhotoAugment(BatchAugment):
    """:class:`BatchAugment` plus the damage real photos carry and FER2013's faces mostly do not: exposure
    (gamma, contrast, brightness), low resolution (shrunk and blown up again, as a small face in a phone or
    web photo is), blur, sensor noise and JPEG compression. Each is drawn per face with its probability.

    Why: the network meets photos through a detector and a resize to 48x48; a face that was 40 px in the
    photo, or saved at JPEG quality 30, looks nothing like FER2013's clean crops (docs/results.md, "Training
    for photos", has the measured effect). Runs on the batch's device except JPEG, which torchvision codes on
    the CPU.
    """

    def __init__(
        self,
        *args,
        exposure_p: float = 0.5,
        gamma: tuple[float, float] = (0.6, 1.6),
        contrast: tuple[float, float] = (0.6, 1.4),
        brightness: float = 30.0,
        lowres_p: float = 0.3,
        lowres_sides: tuple[int, ...] = (16, 20, 24, 32, 40),
        blur_p: float = 0.2,
        blur_sigma: tuple[float, float] = (0.3, 1.5),
        noise_p: float = 0.2,
        noise_sigma: float = 8.0,
        jpeg_p: float = 0.3,
        jpeg_quality: tuple[int, int] = (20, 90),
        **kwargs,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.exposure_p, self.gamma, self.contrast = exposure_p, tuple(gamma), tuple(contrast)
        self.brightness, self.lowres_p, self.lowres_sides = brightness, lowres_p, tuple(lowres_sides)
        self.blur_p, self.blur_sigma = blur_p, tuple(blur_sigma)
        self.noise_p, self.noise_sigma = noise_p, noise_sigma
        self.jpeg_p, self.jpeg_quality = jpeg_p, tuple(jpeg_quality)

    def _exposure(self, x: torch.Tensor, chosen: torch.Tensor) -> torch.Tensor:
        n = int(chosen.sum())
        if n == 0:
            return x
        u = torch.rand(n, 3, 1, 1, device=x.device)
        log_g = math.log(self.gamma[0]) + u[:, 0:1] * (math.log(self.gamma[1]) - math.log(self.gamma[0]))
        c = self.contrast[0] + u[:, 1:2] * (self.contrast[1] - self.contrast[0])
        b = (u[:, 2:3] * 2 - 1) * self.brightness
        y = (x[chosen].clamp(0, 255) / 255).pow(log_g.exp()) * 255
        mean = y.mean((2, 3), keepdim=True)
        x = x.clone()
        x[chosen] = ((y - mean) * c + mean + b).clamp(0, 255)
        return x

    def _lowres(self, x: torch.Tensor, chosen: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        sides = torch.randint(len(self.lowres_sides), (len(x),), device=x.device)
        x = x.clone()
        for i, side in enumerate(self.lowres_sides):
            pick = chosen & (sides == i)
            if pick.any():
                small = F.interpolate(x[pick], size=(side, side), mode="area")
                x[pick] = F.interpolate(small, size=(h, w), mode="bilinear", align_corners=False)
        return x

    def _blur(self, x: torch.Tensor, chosen: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        sigma = self.blur_sigma[0] + torch.rand(n, device=x.device) * (
            self.blur_sigma[1] - self.blur_sigma[0]
        )
        taps = torch.arange(-3, 4, device=x.device, dtype=x.dtype)
        k1 = torch.exp(-(taps.view(1, -1) ** 2) / (2 * sigma.view(-1, 1) ** 2))
        k1 = k1 / k1.sum(1, keepdim=True)
        kernel = (k1.view(n, 7, 1) * k1.view(n, 1, 7)).unsqueeze(1)  # (N, 1, 7, 7), one per face
        padded = F.pad(x.view(1, n, h, w), (3, 3, 3, 3), mode="replicate")
        y = F.conv2d(padded, kernel, groups=n).view(n, 1, h, w)
        return torch.where(chosen.view(-1, 1, 1, 1), y, x)

    def _jpeg(self, x: torch.Tensor, chosen: torch.Tensor) -> torch.Tensor:
        from torchvision.io import decode_jpeg, encode_jpeg

        x = x.clone()
        low, high = self.jpeg_quality
        for i in chosen.nonzero().flatten().tolist():
            face = x[i].clamp(0, 255).round().to(torch.uint8).cpu()
            quality = int(torch.randint(low, high + 1, ()))
            x[i] = decode_jpeg(encode_jpeg(face, quality=quality)).to(x.device, x.dtype)
        return x

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = super().forward(images)
        n = len(x)
        u = torch.rand(n, 5, device=x.device)
        x = self._exposure(x, u[:, 0] < self.exposure_p)
        x = self._lowres(x, u[:, 1] < self.lowres_p)
        x = self._blur(x, u[:, 2] < self.blur_p)
        noisy = (u[:, 3] < self.noise_p).view(-1, 1, 1, 1)
        x = torch.where(
            noisy, x + torch.randn_like(x) * self.noise_sigma * torch.rand(n, 1, 1, 1, device=x.device), x
        )
        return self._jpeg(x.clamp(0, 255), u[:, 4] < self.jpeg_p)
