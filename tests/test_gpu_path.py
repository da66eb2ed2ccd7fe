"""The GPU path's settings, checked where they are visible without a GPU: composed trainers, device names,
per-rank augmentation, the EMA update, exact-fp32 selection metrics, deterministic VGG, compile caching."""

from __future__ import annotations

from types import SimpleNamespace
from unittest import mock

import pytest
import torch
from torch.optim.swa_utils import AveragedModel, get_ema_avg_fn

from fer_lightning.data.datamodule import FERDataModule
from fer_lightning.errors import ConfigError
from fer_lightning.inference import predict_logits
from fer_lightning.models.classifier import FERClassifier, compile_options
from fer_lightning.models.mini_xception import MiniXception
from fer_lightning.models.vgg import VGGNet
from fer_lightning.refine.ema import SyncFreeEMA
from fer_lightning.utils.devices import resolve_device
from tests.conftest import compose_config


@pytest.mark.parametrize("debug", ["default", "limit", "fdr"])
def test_debug_configs_keep_the_trainers_accelerator(debug, tmp_path):
    cfg = compose_config("train", ["trainer=gpu", f"debug={debug}"], tmp_path)
    assert cfg.trainer.accelerator == "gpu" and cfg.trainer.precision == "bf16-mixed"


def test_gpu_trainer_is_the_fast_path_and_ddp_states_its_accelerator(tmp_path):
    gpu = compose_config("train", ["trainer=gpu"], tmp_path)
    assert gpu.trainer.benchmark is True and gpu.data.keep_on_device is True
    cpu_ddp = compose_config("train", ["trainer=ddp", "trainer.devices=2"], tmp_path)
    assert (cpu_ddp.trainer.accelerator, cpu_ddp.trainer.precision) == ("cpu", "32-true")
    gpu_ddp = compose_config("train", ["trainer=ddp_gpu"], tmp_path)
    assert (gpu_ddp.trainer.accelerator, gpu_ddp.trainer.strategy) == ("gpu", "ddp")
    assert gpu_ddp.trainer.precision == "bf16-mixed" and gpu_ddp.trainer.sync_batchnorm is True


@pytest.mark.parametrize("script", ["eval", "predict", "gradcam", "soup", "precise_bn", "teacher_targets"])
def test_inference_scripts_default_to_the_best_device_this_machine_has(script, tmp_path):
    cfg = compose_config(script, [], tmp_path)
    assert cfg.device == "auto"
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device(cfg.device).type == expected


@pytest.mark.parametrize("name", ["gpu0", "cuda:7"])
def test_devices_this_machine_lacks_are_named(name):
    if name == "cuda:7" and torch.cuda.device_count() > 7:
        pytest.skip("this machine has 8 GPUs")
    with pytest.raises(ConfigError, match=f"device='?{name}"):
        resolve_device(name)


def test_ddp_ranks_draw_different_augmentation_and_rank_zero_draws_as_one_process(train_cfg):
    import hydra

    def first_draw(rank: int, world: int) -> torch.Tensor:
        torch.manual_seed(42)
        dm: FERDataModule = hydra.utils.instantiate(train_cfg.data)
        cpu = SimpleNamespace(root_device=torch.device("cpu"))
        dm.trainer = SimpleNamespace(world_size=world, global_rank=rank, current_epoch=0, strategy=cpu)
        dm.setup("fit")
        images = dm.tensors["train"][0][:16]
        return dm.augmentation(images)

    alone, rank0, rank1 = first_draw(0, 1), first_draw(0, 2), first_draw(1, 2)
    assert torch.equal(alone, rank0)
    assert not torch.allclose(rank0, rank1)


def test_ema_update_is_multi_tensor_and_matches_torchs_per_tensor_average():
    torch.manual_seed(0)
    model = MiniXception()
    old = AveragedModel(model, avg_fn=get_ema_avg_fn(0.99), use_buffers=True)
    new = SyncFreeEMA(model, decay=0.99)
    lerp = torch._foreach_lerp_
    with mock.patch.object(torch, "_foreach_lerp_", side_effect=lerp) as foreach:
        for _ in range(4):
            with torch.no_grad():
                for p in model.parameters():
                    p.add_(torch.randn_like(p) * 0.1)
                for m in model.modules():
                    if isinstance(m, torch.nn.BatchNorm2d):
                        m.running_mean.add_(0.05)
            old.update_parameters(model)
            new.update_parameters(model)
    # the first update copies; each later one is a single lerp over all float tensors of the one device
    assert foreach.call_count == 3
    for a, b in zip(old.state_dict().values(), new.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
    assert int(new.n_averaged) == 4


def test_selection_and_test_metrics_are_exact_fp32_under_bf16_autocast():
    torch.manual_seed(0)
    model = FERClassifier(MiniXception(), optimizer=torch.optim.SGD).eval()
    images, labels = torch.randn(64, 1, 48, 48), torch.randint(0, 7, (64,))
    exact_loss, exact_preds, _ = model._exact_step((images, labels))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss, preds, _ = model._exact_step((images, labels))
        mixed_loss, _, _ = model._step((images, labels))
        logits = predict_logits(model.net, (images * 40 + 128).clamp(0, 255).to(torch.uint8))
    assert loss.dtype == torch.float32 and torch.equal(loss, exact_loss) and torch.equal(preds, exact_preds)
    assert mixed_loss.dtype == torch.float32 and not torch.equal(mixed_loss, exact_loss)  # autocast was on
    plain = predict_logits(model.net, (images * 40 + 128).clamp(0, 255).to(torch.uint8))
    assert torch.equal(logits, plain)


def test_vgg_backward_has_no_adaptive_pooling_at_48_pixels():
    net = VGGNet(widths=(8, 8, 8, 8), hidden=16)
    out = net(torch.randn(2, 1, 48, 48))
    seen, stack = set(), [out.grad_fn]
    while stack:
        fn = stack.pop()
        if fn is not None and fn not in seen:
            seen.add(fn)
            stack.extend(f for f, _ in fn.next_functions)
    assert not [fn for fn in seen if "Adaptive" in type(fn).__name__]
    assert net(torch.randn(2, 1, 44, 44)).shape == (2, 7)  # TTA crops still pool to 3x3


def test_compile_options():
    assert compile_options(False) is None and compile_options(True) == {"dynamic": False}
    assert compile_options("reduce-overhead") == {"mode": "reduce-overhead", "dynamic": False}
    assert compile_options({"backend": "eager"}) == {"dynamic": False, "backend": "eager"}
    with pytest.raises(ConfigError, match="model.compile"):
        compile_options(3)


def test_compiled_network_does_not_recompile_after_the_first_epoch(train_cfg):
    import hydra
    import pytorch_lightning as pl
    from torch._dynamo.utils import counters

    class CountCompiles(pl.Callback):
        def __init__(self) -> None:
            self.per_epoch: list[int] = []

        def on_train_epoch_end(self, trainer, pl_module) -> None:
            self.per_epoch.append(counters["stats"]["unique_graphs"])

    torch._dynamo.reset()
    counters.clear()
    data = hydra.utils.instantiate(train_cfg.data)
    model = hydra.utils.instantiate(train_cfg.model, compile={"backend": "eager"})
    count = CountCompiles()
    trainer = pl.Trainer(
        accelerator="cpu",
        max_epochs=3,
        limit_train_batches=3,
        limit_val_batches=2,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[count],
    )
    trainer.fit(model, datamodule=data)
    assert count.per_epoch[0] > 0 and count.per_epoch == [count.per_epoch[0]] * 3, count.per_epoch
    torch._dynamo.reset()
