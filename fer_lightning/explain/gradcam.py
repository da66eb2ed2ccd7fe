"""Grad-CAM, guided backpropagation and guided Grad-CAM for FER networks, via ``pytorch_grad_cam``.

The explainer works on its own copy of the network, with every ReLU switched to ``inplace=False``. Two
reasons:

* ``GuidedBackpropReLUModel`` swaps ReLU modules for its guided ReLU and back, and puts back *new*
``nn.ReLU()``
  objects — on the caller's network that would silently change its modules (and drop ``inplace``).
* Grad-CAM's forward hook keeps the target layer's output tensor. If an in-place ReLU follows that layer (e.g.
a
  BatchNorm inside a block), the kept activation is overwritten with its ReLU'd values while the gradient hook
  sees the pre-ReLU tensor: a wrong CAM without any error. ``tests/test_gradcam.py`` shows both effects.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from pytorch_grad_cam import GradCAM, GuidedBackpropReLUModel
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from torch import nn

from fer_lightning.emotions import EMOTIONS
from fer_lightning.inference import face_batch, to_model_input
from fer_lightning.utils.threads import intra_op_threads

#: Grad-CAM layer per architecture (class name → module path). MiniXception: ``blocks.2`` is 6x6 for a 48x48
#: face, fine enough to separate eyes from mouth; ``classifier`` (the notebook's layer) is only 3x3. VGGNet:
#: 6x6 too.
DEFAULT_LAYERS = {"MiniXception": "blocks.2", "VGGNet": "blocks.2"}


def default_target_layer(net: nn.Module) -> str:
    """:data:`DEFAULT_LAYERS` for known networks, a network's own ``cam_layer``, else the last ``Conv2d`` (the
    usual Grad-CAM choice)."""
    name = type(net).__name__
    if name in DEFAULT_LAYERS:
        return DEFAULT_LAYERS[name]
    if getattr(net, "cam_layer", None):  # a network that names its own (TimmNet: its last feature stage)
        return net.cam_layer
    convs = [n for n, m in net.named_modules() if isinstance(m, nn.Conv2d)]
    if not convs:
        raise ValueError(f"{name} has no Conv2d layer; pass target_layer=<module path> explicitly")
    return convs[-1]


def explainable_copy(net: nn.Module) -> nn.Module:
    """A float32, eval-mode, contiguous-format copy of ``net`` (unwrapped from ``torch.compile``) whose ReLUs
    are not in place and whose parameters require gradients (Grad-CAM needs the graph through them)."""
    net = getattr(net, "_orig_mod", net)
    twin = copy.deepcopy(net).float().eval().to(memory_format=torch.contiguous_format)
    for module in twin.modules():
        if isinstance(module, nn.ReLU):
            module.inplace = False
    for p in twin.parameters():
        p.requires_grad_(True)
    return twin


@dataclass(frozen=True)
class Explanation:
    """Per face: the crop, class probabilities, the class explained, and three maps at the crop's resolution.

    ``cam`` is Grad-CAM in 0..1; ``guided`` the guided-backprop input gradient (signed, raw);
    ``guided_cam`` = ``guided * cam`` (guided Grad-CAM). All maps are (N, H, W) float32.
    """

    faces: np.ndarray
    probs: np.ndarray
    targets: np.ndarray
    cam: np.ndarray
    guided: np.ndarray
    guided_cam: np.ndarray

    def __len__(self) -> int:
        return len(self.faces)

    def predictions(self) -> np.ndarray:
        return self.probs.argmax(1)


class GradCAMExplainer:
    """``explain(faces)`` for uint8 48x48 faces (N, 48, 48) or (N, 1, 48, 48); see :class:`Explanation`."""

    def __init__(
        self,
        net: nn.Module,
        target_layer: str | None = None,
        classes: Sequence[str] | None = None,
        device: str | torch.device | None = None,
    ) -> None:
        self.net = explainable_copy(net)
        self.device = torch.device(device) if device is not None else next(net.parameters()).device
        self.net.to(self.device)
        # the checkpoint's own names (load_network returns them); FER2013's only for a 7-output network
        outputs = getattr(net, "num_classes", None)
        self.classes = list(
            EMOTIONS if classes is None and outputs in (None, len(EMOTIONS)) else classes or []
        )
        if outputs is not None and len(self.classes) != outputs:
            raise ValueError(
                f"the network has {outputs} outputs but {len(self.classes)} class names were given "
                f"({self.classes}): pass the checkpoint's classes (load_network returns them)"
            )
        self.layer_name = target_layer or default_target_layer(self.net)
        try:
            self.layer = self.net.get_submodule(self.layer_name)
        except AttributeError as e:
            names = [n for n, _ in self.net.named_children()]
            raise ValueError(
                f"target_layer {self.layer_name!r} is not a module of {type(self.net).__name__} "
                f"(top-level modules: {names}; nested ones are dotted paths like 'blocks.2')"
            ) from e

    def _inputs(self, faces: np.ndarray | torch.Tensor) -> tuple[np.ndarray, torch.Tensor]:
        faces = face_batch(np.asarray(faces) if not isinstance(faces, torch.Tensor) else faces).cpu().clone()
        if faces.dtype != torch.uint8 or faces.ndim != 4 or faces.shape[1] != 1:
            raise ValueError(
                f"expected uint8 faces (N, 48, 48) or (N, 1, 48, 48), got {faces.dtype} {tuple(faces.shape)}"
            )
        # contiguous layout, not channels_last: the explainable copy runs in the default format
        # (explainable_copy)
        return faces[:, 0].numpy(), to_model_input(faces).to(self.device)

    def explain(self, faces: np.ndarray | torch.Tensor, targets: Sequence[int] | None = None) -> Explanation:
        """Explain the predicted class of each face (or ``targets``, class ids per face)."""
        # callers may be inside no_grad/inference_mode (a validation hook): the inputs are made inside the
        # block so that they are normal tensors autograd can use; small batches run best on one CPU thread
        threads = 1 if self.device.type == "cpu" else None
        with torch.enable_grad(), torch.inference_mode(False), intra_op_threads(threads):
            crops, x = self._inputs(faces)
            if len(crops) == 0:
                empty = np.zeros((0, *crops.shape[1:]), np.float32)
                return Explanation(
                    crops,
                    np.zeros((0, len(self.classes)), np.float32),
                    np.zeros(0, np.int64),
                    empty,
                    empty,
                    empty,
                )
            with torch.no_grad():
                probs = self.net(x).float().softmax(1).cpu().numpy()
            chosen = probs.argmax(1) if targets is None else np.asarray(targets, dtype=np.int64)
            with GradCAM(model=self.net, target_layers=[self.layer]) as cam:
                cams = cam(input_tensor=x, targets=[ClassifierOutputTarget(int(c)) for c in chosen])
            guided = self._guided_backprop(x, chosen)
        return Explanation(crops, probs, chosen, cams.astype(np.float32), guided, guided * cams)

    def _guided_backprop(self, x: torch.Tensor, targets: np.ndarray) -> np.ndarray:
        # GuidedBackpropReLUModel explains one image per call (it indexes output[0, target])
        model = GuidedBackpropReLUModel(model=self.net, device=self.device)
        maps = [model(x[i : i + 1].clone(), target_category=int(t))[:, :, 0] for i, t in enumerate(targets)]
        self.net.zero_grad(set_to_none=True)
        return np.stack(maps).astype(np.float32)
