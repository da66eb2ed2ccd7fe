import pytest
import torch

from fer_lightning.models.schedulers import SteppedDecayLR


def notebook_lr(epoch: int, lr: float = 0.01) -> float:
    return lr * 0.9 ** ((epoch - 80) // 5) if epoch > 80 else lr


def _optimizer() -> torch.optim.SGD:
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.01, momentum=0.9, weight_decay=5e-3)


def test_lr_matches_the_notebook_at_every_epoch():
    opt = _optimizer()
    sched = SteppedDecayLR(opt, start=80, every=5, rate=0.9)
    for epoch in range(300):
        assert opt.param_groups[0]["lr"] == pytest.approx(notebook_lr(epoch), rel=1e-9), epoch
        opt.step()
        sched.step()


def test_resume_from_state_dict_continues_the_same_schedule():
    opt = _optimizer()
    sched = SteppedDecayLR(opt)
    for _ in range(123):
        opt.step(), sched.step()
    opt2 = _optimizer()
    sched2 = SteppedDecayLR(opt2)
    sched2.load_state_dict(sched.state_dict())
    opt2.load_state_dict(opt.state_dict())
    for epoch in range(123, 160):
        assert opt2.param_groups[0]["lr"] == pytest.approx(notebook_lr(epoch)), epoch
        opt2.step(), sched2.step()


def test_rejects_a_zero_period():
    with pytest.raises(ValueError, match="every"):
        SteppedDecayLR(_optimizer(), every=0)
