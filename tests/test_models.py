import pytest
import torch

from fer_lightning.models.mini_xception import KERAS_BN_MOMENTUM, MiniXception
from fer_lightning.models.vgg import VGGNet


def trainable(net: torch.nn.Module) -> int:
    return sum(p.numel() for p in net.parameters() if p.requires_grad)


def test_mini_xception_has_the_notebooks_parameter_count():
    assert trainable(MiniXception(num_classes=7)) == 56_951


@pytest.mark.parametrize(("size", "cam_size"), [(48, 6), (44, 5)])
def test_mini_xception_output_shape(size, cam_size):
    net = MiniXception().eval()
    assert net(torch.rand(3, 1, size, size)).shape == (3, 7)
    # the default Grad-CAM layer (blocks[2]) keeps >= 5x5; the notebook's last conv is 3x3
    assert net.blocks[:3](net.stem(torch.rand(1, 1, size, size))).shape[-2:] == (cam_size, cam_size)
    assert net.blocks(net.stem(torch.rand(1, 1, size, size))).shape[-2:] == (3, 3)


def test_batchnorm_momentum_is_the_keras_equivalent_by_default():
    moms = {m.momentum for m in MiniXception().modules() if isinstance(m, torch.nn.BatchNorm2d)}
    assert moms == {KERAS_BN_MOMENTUM} == {0.01}
    moms = {m.momentum for m in MiniXception(bn_momentum=0.99).modules() if isinstance(m, torch.nn.BatchNorm2d)}
    assert moms == {0.99}


def test_vgg_backbone_shape_and_size():
    net = VGGNet().eval()
    assert net(torch.rand(2, 1, 48, 48)).shape == (2, 7)
    assert trainable(net) > 5_000_000
