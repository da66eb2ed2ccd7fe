"""An exponential moving average of the weights whose update never waits for the GPU.

Why not torch's ``AveragedModel(avg_fn=get_ema_avg_fn())``, which Lightning's ``EMAWeightAveraging``
builds: its ``update_parameters`` reads the on-device counter ``n_averaged`` twice per call (``bool(n == 0)``
and ``n > 0``: two host syncs per optimizer step on a GPU), and with ``avg_fn`` it updates the ~94 tensors of
mini-Xception one kernel at a time. Here the count lives on the host and each (device, dtype) group is
updated by one ``torch._foreach_lerp_`` (torch's ``get_ema_multi_avg_fn``), with the same result.
"""

from __future__ import annotations

from collections import defaultdict

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn


class SyncFreeEMA(AveragedModel):
    """``AveragedModel`` for an EMA of ``decay`` per update: the first update copies the weights, later ones
    move them ``1 - decay`` of the way to the model's. ``n_averaged`` is still kept (checkpoints store it)."""

    def __init__(
        self,
        model: nn.Module,
        decay: float = 0.999,
        device: torch.device | None = None,
        use_buffers: bool = True,
    ) -> None:
        super().__init__(
            model, device=device, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=use_buffers
        )
        self._updates: int | None = None  # host copy of n_averaged, read once (after a resume it is restored)

    def _pairs(self, model: nn.Module) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        if self.use_buffers:
            mine = [*self.module.parameters(), *self.module.buffers()]
            theirs = [*model.parameters(), *model.buffers()]
        else:
            mine, theirs = list(self.module.parameters()), list(model.parameters())
        return [t.detach() for t in mine], [t.detach().to(a.device) for t, a in zip(theirs, mine)]

    @torch.no_grad()
    def update_parameters(self, model: nn.Module) -> None:
        if self._updates is None:
            self._updates = int(self.n_averaged)  # the only host sync, on the first update of a fit
        averaged, current = self._pairs(model)
        if self._updates == 0:
            torch._foreach_copy_(averaged, current)
        else:
            groups: dict[tuple, tuple[list, list]] = defaultdict(lambda: ([], []))
            for a, c in zip(averaged, current):
                group = groups[(a.device, a.dtype)]
                group[0].append(a)
                group[1].append(c)
            for mine, theirs in groups.values():
                self.multi_avg_fn(mine, theirs, None)
        if not self.use_buffers:  # as AveragedModel: buffers follow the model instead of being averaged
            for b_avg, b_model in zip(self.module.buffers(), model.buffers()):
                b_avg.detach().copy_(b_model.detach().to(b_avg.device))
        self.n_averaged += 1  # in place on the device: no sync
        self._updates += 1
