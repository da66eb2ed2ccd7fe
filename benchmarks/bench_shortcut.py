"""The channels_last crash and its fix: a minimal repro in a child process, then training img/s of
mini-Xception with the fixed shortcut vs the strided 1x1 convolution it replaces, interleaved in one process.

torch 2.14.1 on this CPU: a lone ``nn.Conv2d(8, 16, 1, stride=2, bias=False)`` in channels_last, forward +
backward on an odd batch with 2 intra-op threads, kills the process (SIGSEGV, sometimes "double free"); the
weight-gradient kernel is at fault (input-gradient alone, one thread, even batches or NCHW pass). The speed
runs use batch 128 (even: the old form is safe there) so both forms can be timed on the same machine load.

    python benchmarks/bench_shortcut.py [--steps 10] [--rounds 6] [--threads 1]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

import torch
from common import emit, rate
from torch import nn

from fer_lightning.models import mini_xception

REPRO = """
import sys, torch
torch.set_num_threads(2)
conv = torch.nn.Conv2d(8, 16, 1, stride=2, bias=False).to(memory_format=torch.channels_last)
x = torch.randn(int(sys.argv[1]), 8, 44, 44).contiguous(memory_format=torch.channels_last)
conv(x).sum().backward()
"""


def repro_exit_codes(batches: tuple[int, ...] = (36, 37)) -> dict[str, int]:
    """Exit code of the minimal repro per batch size (0 = fine, -11 = SIGSEGV, -6 = abort)."""
    return {
        str(n): subprocess.run(
            [sys.executable, "-c", REPRO, str(n)], capture_output=True, check=False, timeout=120
        ).returncode
        for n in batches
    }


class StridedShortcut(nn.Conv2d):
    """The original shortcut: a plain strided 1x1 convolution (same parameters as the fixed one)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 2) -> None:
        super().__init__(in_channels, out_channels, 1, stride=stride, bias=False)


def network(shortcut: type[nn.Module]) -> nn.Module:
    fixed = mini_xception.SubsampledPointwiseConv2d
    mini_xception.SubsampledPointwiseConv2d = shortcut  # ResidualBlock looks the class up when it is built
    try:
        torch.manual_seed(0)
        return mini_xception.MiniXception().to(memory_format=torch.channels_last)
    finally:
        mini_xception.SubsampledPointwiseConv2d = fixed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=128)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    nets = {"fixed": network(mini_xception.SubsampledPointwiseConv2d), "strided": network(StridedShortcut)}
    x = torch.randn(args.batch_size, 1, 48, 48).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 7, (args.batch_size,))
    optimisers = {k: torch.optim.SGD(n.parameters(), lr=0.01, momentum=0.9) for k, n in nets.items()}
    seconds = dict.fromkeys(nets, 0.0)
    for round_ in range(args.rounds + 1):  # round 0 warms the allocator and oneDNN caches, untimed
        for name, net in nets.items():
            start = time.perf_counter()
            for _ in range(args.steps):
                optimisers[name].zero_grad()
                nn.functional.cross_entropy(net(x), y).backward()
                optimisers[name].step()
            if round_:
                seconds[name] += time.perf_counter() - start
    images = args.rounds * args.steps * args.batch_size
    fixed, strided = rate(images, seconds["fixed"]), rate(images, seconds["strided"])
    emit(
        {
            "bench": "shortcut",
            "fixed_img_s": fixed,
            "strided_img_s": strided,
            "fixed_vs_strided": round(fixed / strided, 3),
            "repro_exit_codes": repro_exit_codes(),
            "batch_size": args.batch_size,
            "threads": args.threads,
        }
    )


if __name__ == "__main__":
    main()
