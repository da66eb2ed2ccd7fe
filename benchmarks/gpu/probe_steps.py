"""The measurements behind benchmarks/gpu/probe.py, each returning plain figures for its JSON."""

from __future__ import annotations

import copy
import time
from contextlib import ExitStack, nullcontext
from pathlib import Path
from tempfile import TemporaryDirectory

import hydra
import numpy as np
import pytorch_lightning as pl
import torch
import torch.nn.functional as F

from fer_lightning.checkpoints import load_network
from fer_lightning.data.arrays import SPLITS, FERArrays
from fer_lightning.data.transforms import BatchAugment
from fer_lightning.inference import model_batches
from fer_lightning.models.mini_xception import MiniXception
from fer_lightning.utils.compose import compose_config
from fer_lightning.utils.precision import exact_fp32

ROOT = Path(__file__).resolve().parents[2]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _faces(arrays: FERArrays, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    images, labels = arrays.split(split)
    return torch.from_numpy(images).unsqueeze(1), torch.from_numpy(labels).long()


@torch.inference_mode()
def _logits(net: torch.nn.Module, faces: torch.Tensor, device: torch.device, mode: str) -> torch.Tensor:
    """Logits in one arithmetic: ``fp32`` exact, ``tf32`` (cuDNN/cuBLAS TF32 on) or ``bf16`` autocast."""
    with ExitStack() as stack:
        stack.enter_context(exact_fp32())
        if mode == "tf32":
            torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = True
        if mode == "bf16":
            stack.enter_context(torch.autocast(device.type, dtype=torch.bfloat16))
        return torch.cat([net(x).float().cpu() for x in model_batches(faces, 512, device)])


def parity(arrays: FERArrays, device: torch.device) -> dict:
    """The shipped weights on every PrivateTest face: the CPU's exact fp32 as the reference, then ``device``
    in fp32, TF32 and bf16; predictions that flip against the reference are counted."""
    faces, labels = _faces(arrays, "private")
    net, _ = load_network(None)
    reference = _logits(net.eval(), faces, torch.device("cpu"), "fp32")
    on_device = copy.deepcopy(net).to(device, memory_format=torch.channels_last).eval()
    out = {
        "faces": len(labels),
        "cpu_fp32_acc": round(float((reference.argmax(1) == labels).float().mean()), 5),
    }
    modes = ("fp32", "tf32", "bf16") if device.type == "cuda" else ("fp32", "bf16")
    for mode in modes:
        logits = _logits(on_device, faces, device, mode)
        probs, ref_probs = logits.softmax(1), reference.softmax(1)
        out[f"{device.type}_{mode}"] = {
            "acc": round(float((logits.argmax(1) == labels).float().mean()), 5),
            "flipped_vs_cpu": int((logits.argmax(1) != reference.argmax(1)).sum()),
            "max_prob_diff": float((probs - ref_probs).abs().max()),
        }
    return out


def _train_step(device: torch.device, faces: torch.Tensor, labels: torch.Tensor, bf16: bool):
    """One SGD step of mini-Xception on ready device tensors: batch augmentation, forward, loss, backward."""
    net = MiniXception().to(device, memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-3)
    augment = BatchAugment()

    def step() -> None:
        x = augment(faces).mul_(1 / 127.5).sub_(1.0).contiguous(memory_format=torch.channels_last)
        autocast = torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else nullcontext()
        with autocast:
            logits = net(x)
        F.cross_entropy(logits.float(), labels).backward()
        optimizer.step()

    return step, optimizer


def _rate(step, optimizer, device: torch.device, batch: int, steps: int) -> float:
    for _ in range(3):  # warm-up: cuDNN autotuning, allocator
        optimizer.zero_grad(set_to_none=False)
        step()
    _sync(device)
    started = time.perf_counter()
    for _ in range(steps):
        optimizer.zero_grad(set_to_none=False)
        step()
    _sync(device)
    return batch * steps / (time.perf_counter() - started)


def _graph_rate(step, optimizer, device: torch.device, batch: int, steps: int) -> float:
    """The same step captured once as a CUDA graph and replayed: no Python, no launches, the ceiling."""
    stream = torch.cuda.Stream(device)
    stream.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(stream):
        for _ in range(3):
            optimizer.zero_grad(set_to_none=True)
            step()
    torch.cuda.current_stream(device).wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    optimizer.zero_grad(set_to_none=True)
    with torch.cuda.graph(graph):
        step()
    graph.replay()
    _sync(device)
    started = time.perf_counter()
    for _ in range(steps):
        graph.replay()
    _sync(device)
    return batch * steps / (time.perf_counter() - started)


def step_rates(arrays: FERArrays, device: torch.device, batches: tuple[int, ...], steps: int) -> dict:
    """Training img/s of the compute-only step (and its CUDA graph) per batch size and precision."""
    images, labels = _faces(arrays, "train")
    out: dict = {}
    for batch in batches:
        pick = torch.arange(batch) % len(labels)
        faces, targets = images[pick].to(device), labels[pick].to(device)
        for name, bf16 in (("fp32", False), ("bf16", True)):
            torch.backends.cudnn.benchmark = True
            step, optimizer = _train_step(device, faces, targets, bf16)
            entry = {"img_per_s": round(_rate(step, optimizer, device, batch, steps))}
            if device.type == "cuda":
                try:
                    step, optimizer = _train_step(device, faces, targets, bf16)
                    entry["cuda_graph_img_per_s"] = round(_graph_rate(step, optimizer, device, batch, steps))
                except Exception as e:  # capture limits differ between torch releases: report, go on
                    entry["cuda_graph_error"] = f"{type(e).__name__}: {e}"[:300]
            else:
                entry["cuda_graph"] = "skipped: no CUDA device"
            out[f"{name}_b{batch}"] = entry
    return out


class _EpochClock(pl.Callback):
    """Per epoch: training seconds (first batch to validation start) and wall seconds (to validation end)."""

    def __init__(self, device: torch.device) -> None:
        self.device, self.train_s, self.wall_s = device, [], []

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        _sync(self.device)
        self._start = time.perf_counter()

    def on_validation_epoch_start(self, trainer, pl_module) -> None:
        if not trainer.sanity_checking:
            _sync(self.device)
            self.train_s.append(time.perf_counter() - self._start)

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        if not trainer.sanity_checking:
            _sync(self.device)
            self.wall_s.append(time.perf_counter() - self._start)


def _tiled(arrays: FERArrays, train_faces: int) -> FERArrays:
    """The test splits as they are, the Training rows repeated to ``train_faces`` (a full-size epoch)."""
    train = np.flatnonzero(arrays.splits == SPLITS.index("train"))
    rest = np.flatnonzero(arrays.splits != SPLITS.index("train"))
    keep = np.concatenate([np.resize(train, train_faces), rest])
    return FERArrays(arrays.images[keep], arrays.labels[keep], arrays.splits[keep], arrays.origin)


def fit_run(
    arrays: FERArrays,
    device: torch.device,
    batch: int,
    precision: str,
    train_faces: int,
    epochs: int,
    val_batches: int | None = None,
) -> dict:
    """``Trainer.fit`` of experiment=seed under trainer=gpu (both test splits validated every epoch) on
    ``train_faces`` Training faces: training img/s and epoch wall time (median after the first epoch), and the
    last epoch's PublicTest figures. ``val_batches`` limits validation (dry runs only)."""
    data = _tiled(arrays, train_faces)
    with TemporaryDirectory() as tmp:
        overrides = [
            "experiment=seed",
            "trainer=gpu",
            f"trainer.precision={precision}",
            f"data.batch_size={batch}",
        ]
        if device.type != "cuda":
            overrides.append("trainer.accelerator=cpu")
        cfg = compose_config(ROOT / "conf", "train", overrides, Path(tmp))
        pl.seed_everything(0, verbose=False)
        model = hydra.utils.instantiate(cfg.model)
        datamodule = hydra.utils.instantiate(cfg.data, source=lambda: data)
        clock = _EpochClock(device)
        trainer = hydra.utils.instantiate(
            cfg.trainer,
            max_epochs=epochs,
            logger=False,
            callbacks=[clock],
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            num_sanity_val_steps=0,
            limit_val_batches=val_batches or 1.0,
        )
        trainer.fit(model, datamodule=datamodule)
    later = slice(1, None) if epochs > 1 else slice(None)
    train_s, wall_s = float(np.median(clock.train_s[later])), float(np.median(clock.wall_s[later]))
    return {
        "train_faces": train_faces,
        "epochs": epochs,
        "train_img_per_s": round(train_faces / train_s),
        "epoch_wall_s": round(wall_s, 3),
        "val_loss": round(float(trainer.callback_metrics["val/loss"]), 5),
        "val_acc": round(float(trainer.callback_metrics["val/acc"]), 5),
    }
