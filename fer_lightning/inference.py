"""The one batched forward pass: uint8 faces → model input → logits or (TTA-averaged) log-probabilities::

    from fer_lightning.inference import predict_log_probs
    log_probs = predict_log_probs(net, faces, tta="hflip")  # faces: uint8 (N, 48, 48) or (N, 1, 48, 48)

Evaluation, the Predictor, precise BatchNorm, the refine tools and Grad-CAM all feed networks through here, so
the input scaling, the memory layout and the batching are written once.

TTA views: ``hflip`` is the face and its mirror image (2 views); ``tencrop`` the four corner and the centre
44x44 crops of the 48x48 face, each also mirrored (10 views), the classic FER2013 protocol. The crops go to
the network at 44x44 as they are — mini-Xception (valid stem convs, strided blocks, global pooling) and the
VGG backbone (adaptive pooling) both accept any input from 44 pixels up — so no resize adds interpolation blur
and no padding adds false borders. Views are averaged as softmax probabilities, in log space.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import torch
from torch import nn

from fer_lightning.emotions import EMOTIONS, IMAGE_SIZE
from fer_lightning.errors import ConfigError, InputError
from fer_lightning.images import as_uint8_image
from fer_lightning.utils.precision import exact_fp32

TTA_MODES = ("hflip", "tencrop")
#: FER2013 Training faces per class, in :data:`~fer_lightning.emotions.EMOTIONS` order: the class prior a
#: network trained on FER2013 has absorbed, which ``logit_adjustment`` divides back out.
FER2013_TRAINING_COUNTS = (3995, 436, 4097, 7215, 4830, 3171, 4965)
CROP_SIZE = 44


def to_model_input(images: torch.Tensor) -> torch.Tensor:
    """uint8 or float-in-0..255 images (N, 1, H, W) → float in [-1, 1] (mini-Xception's Keras
    preprocessing)."""
    # one new tensor, then in place; the caller's tensor is never modified
    if images.dtype == torch.uint8:
        return images.float().mul_(1 / 127.5).sub_(1.0)
    return images.mul(1 / 127.5).sub_(1.0)


def face_batch(images: torch.Tensor | np.ndarray) -> torch.Tensor:
    """Faces (N, H, W) or (N, 1, H, W), numpy or torch → a tensor (N, 1, H, W), not copied when already
    one."""
    images = torch.as_tensor(images)
    return images.unsqueeze(1) if images.ndim == 3 else images


def model_batches(
    images: torch.Tensor | np.ndarray, batch_size: int, device: torch.device | str
) -> Iterator[torch.Tensor]:
    """Model-input batches of ``batch_size`` faces on ``device``, channels_last (the layout these convnets run
    fastest in: ~1.7x on the CPU), in order."""
    images = face_batch(images)
    for start in range(0, len(images), batch_size):
        batch = to_model_input(images[start : start + batch_size].to(device))
        yield batch.contiguous(memory_format=torch.channels_last)


def class_log_prior(counts: Sequence[float] = FER2013_TRAINING_COUNTS) -> torch.Tensor:
    """log p(class) from class counts (or probabilities): what logit adjustment subtracts, ``tau`` times."""
    prior = torch.tensor([float(c) for c in counts], dtype=torch.float32)
    return (prior / prior.sum()).log()


def log_prior_for(classes: Sequence[str], class_prior: Sequence[float] | None = None) -> torch.Tensor:
    """The log prior that ``logit_adjustment`` subtracts for a network's ``classes``: ``class_prior`` (counts
    or probabilities, one per class), or FER2013's Training counts for FER2013's seven classes."""
    if class_prior is None:
        if list(classes) != list(EMOTIONS):
            raise ConfigError(
                f"logit_adjustment needs class_prior for the classes {list(classes)} "
                "(the FER2013 prior covers its seven classes only)"
            )
        return class_log_prior()
    if len(class_prior) != len(classes) or min(class_prior) <= 0:
        raise ConfigError(
            f"class_prior needs one positive value per class {list(classes)}, got {class_prior}"
        )
    return class_log_prior(class_prior)


def _device_of(net: nn.Module) -> torch.device:
    return next(net.parameters()).device


def _no_rows(net: nn.Module) -> torch.Tensor:
    return torch.empty(0, getattr(net, "num_classes", len(EMOTIONS)))


@torch.inference_mode()
def predict_logits(
    net: nn.Module,
    images: torch.Tensor | np.ndarray,
    batch_size: int = 512,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Float logits (N, classes) on the CPU for uint8 faces, ``batch_size`` faces per forward pass; ``device``
    defaults to the network's. ``net`` is used in the mode it is in; the arithmetic is exact fp32."""
    device = _device_of(net) if device is None else device
    with exact_fp32():
        chunks = [net(x).float().cpu() for x in model_batches(images, batch_size, device)]
    return torch.cat(chunks) if chunks else _no_rows(net)


@torch.inference_mode()
def predict_log_probs(
    net: nn.Module, images: torch.Tensor | np.ndarray, tta: str | None = None, batch_size: int = 512
) -> torch.Tensor:
    """Class log-probabilities (N, C) on the CPU for uint8 faces (N, 48, 48) or (N, 1, 48, 48), averaged over
    the views of TTA mode ``tta`` (None: the faces as they are), in exact fp32. Puts ``net`` in eval mode."""
    net.eval()

    def forward(
        x: torch.Tensor,
    ) -> torch.Tensor:  # crops of a channels_last batch are strided: re-lay them out
        return net(x.contiguous(memory_format=torch.channels_last))

    with exact_fp32():
        chunks = [
            tta_log_probs(forward, x, tta).cpu() for x in model_batches(images, batch_size, _device_of(net))
        ]
    return torch.cat(chunks) if chunks else _no_rows(net)


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
            f"unknown TTA mode(s) {unknown} in tta={modes}; expected any of {', '.join(TTA_MODES)}, a list "
            "of them, or null"
        )
    return list(dict.fromkeys(modes))


def crop_batch(crops: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
    """Contiguous uint8 (N, 48, 48) from 48x48 crops; :class:`InputError` naming the first that is not one."""
    if isinstance(crops, np.ndarray | np.generic):  # np.generic: a numpy scalar passed by mistake
        if crops.ndim != 3:
            raise InputError(
                f"classify needs an (N, {IMAGE_SIZE}, {IMAGE_SIZE}) array of face crops or a list "
                f"of ({IMAGE_SIZE}, {IMAGE_SIZE}) crops, got an array shaped {crops.shape}"
            )
        if crops.dtype == np.uint8 and crops.shape[1:] == (IMAGE_SIZE, IMAGE_SIZE):
            return np.ascontiguousarray(crops)  # the common case, as detect() makes them: nothing to convert
    checked = []
    for i, crop in enumerate(crops):
        crop = np.asarray(crop)
        if crop.shape != (IMAGE_SIZE, IMAGE_SIZE):
            raise InputError(
                f"classify needs {IMAGE_SIZE}x{IMAGE_SIZE} gray face crops (as detect() makes "
                f"them); crop {i} has shape {crop.shape}"
            )
        try:
            checked.append(as_uint8_image(crop))
        except InputError as e:
            raise InputError(f"crop {i}: {e}") from None
    return np.stack(checked) if checked else np.zeros((0, IMAGE_SIZE, IMAGE_SIZE), np.uint8)
