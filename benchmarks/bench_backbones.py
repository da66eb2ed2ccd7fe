"""Size and speed of every backbone config side by side: parameters, training img/s, inference img/s and
one-face latency, each network built from its real ``conf/model/<name>.yaml`` (48x48 faces, 7 classes).

- ``train_img_s``: forward + backward + the config's own optimiser step on one ready batch (channels_last
  where the config asks for it), the ceiling a fit approaches (bench_train.py: the fast path runs at
  97-102 % of it);
- ``eval_img_s``: ``no_grad`` forward at ``--batch-size`` in eval mode;
- ``one_face_ms``: median ``no_grad`` forward of a single face.

Every model is timed after one untimed warm-up step, on the torch threads of the process (set
``OMP_NUM_THREADS``). docs/results.md quotes these beside each family's training run.

    python benchmarks/bench_backbones.py [--models mini_xception vgg ...] [--steps 3] [--batch-size 64]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import hydra
import torch
from common import compose, emit, rate

MODELS = (
    "mini_xception",
    "vgg",
    "timm_mobilenetv3",
    "timm_regnet",
    "timm_efficientnet",
    "timm_resnet",
)


def build(model: str, output_dir: Path) -> tuple[torch.nn.Module, torch.optim.Optimizer, bool]:
    """The network, its configured optimiser and whether it trains channels_last, from ``model=<model>``."""
    cfg = compose([f"model={model}"], output_dir)
    module = hydra.utils.instantiate(cfg.model)
    optimizer = hydra.utils.instantiate(cfg.model.optimizer)(module.net.parameters())
    return module.net, optimizer, bool(cfg.model.get("channels_last", False))


def time_model(model: str, steps: int, batch_size: int, output_dir: Path) -> dict:
    torch.manual_seed(0)
    net, optimizer, channels_last = build(model, output_dir)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    net = net.to(memory_format=fmt)
    x = torch.randn(batch_size, 1, 48, 48).contiguous(memory_format=fmt)
    y = torch.randint(0, 7, (batch_size,))

    def train_step() -> None:
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(net(x), y).backward()
        optimizer.step()

    net.train()
    train_step()  # untimed: allocator and oneDNN primitive caches
    start = time.perf_counter()
    for _ in range(steps):
        train_step()
    train_s = time.perf_counter() - start

    net.eval()
    with torch.no_grad():
        net(x)
        start = time.perf_counter()
        for _ in range(steps):
            net(x)
        eval_s = time.perf_counter() - start
        one = x[:1]
        net(one)
        latencies = []
        for _ in range(max(5, steps * 3)):
            start = time.perf_counter()
            net(one)
            latencies.append(time.perf_counter() - start)
    return {
        "params": sum(p.numel() for p in net.parameters()),
        "train_img_s": rate(steps * batch_size, train_s),
        "eval_img_s": rate(steps * batch_size, eval_s),
        "one_face_ms": round(1000 * statistics.median(latencies), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS), help="conf/model choices to time")
    parser.add_argument("--steps", type=int, default=3, help="timed batches per model and mode")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--quick", action="store_true", help="one step, batch 8 (for tests)")
    args = parser.parse_args()
    steps, batch_size = (1, 8) if args.quick else (args.steps, args.batch_size)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for model in args.models:
            results[model] = time_model(model, steps, batch_size, Path(tmp))
    emit({"bench": "backbones", "models": results, "steps": steps, "batch_size": batch_size})


if __name__ == "__main__":
    main()
