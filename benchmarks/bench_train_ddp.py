"""Training throughput with one process per core: Lightning DDP (gloo) with one torch thread per process.

Why: on this 2-core CPU one process with 2 intra-op threads trains the mini-Xception only ~1.3-1.4x faster
than with one thread (the fit: 733-781 img/s on one, ~1,000 on two); two processes with one thread each use
both cores fully (benchmarks/README.md). The global batch stays at ``--batch-size`` (each rank takes
``batch_size / processes``, the learning rate unchanged); BatchNorm statistics are per rank (64 faces per rank
at the default sizes).

Same protocol as ``bench_train.py``: a real ``Trainer.fit`` from the project's configs (here ``trainer=ddp``),
timed from batch-end to batch-end after ``--warmup`` batches, and two compute-only steps (forward + backward +
SGD on a ready per-rank batch) run interleaved in *every* rank at the same batch indices, so the ranks probe
concurrently: ``compute_only_ddp`` without a gradient exchange (the cores' raw capacity) and
``compute_only_ddp_allreduce`` wrapped in torch's DistributedDataParallel (gradients all-reduced, ranks
waiting for each other: the ceiling of data-parallel training itself, the goal's reference). Rank 0 prints the
JSON line with the figures summed over ranks. Lightning re-launches this script for the other ranks.

    python benchmarks/bench_train_ddp.py [--processes 2] [--batches 40] [--warmup 5] [--block 5] [--quick]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
from pathlib import Path

import torch
from torch.nn.parallel import DistributedDataParallel
from bench_train import BatchClock, ComputeProbe, lightning_fit, notebook_loop
from common import emit

WORKDIR_ENV = "FER_BENCH_DDP_WORKDIR"  # rank 0 makes it; the ranks Lightning launches inherit the environment


class SummedClock(BatchClock):
    """BatchClock whose figures are summed over the ranks when training ends (while the process group is up).

    Two ceilings: ``probe`` steps each rank alone (no gradient exchange: the cores' raw capacity), ``synced``
    wraps the same step in torch's DistributedDataParallel on the fit's process group, so its gradients are
    all-reduced and the ranks wait for each other as in any data-parallel step: the compute-only ceiling of
    DDP training itself, against which the fit's remaining gap is the data handling and Lightning's loop."""

    def __init__(self, warmup: int, probe: ComputeProbe, block: int = 5) -> None:
        super().__init__(warmup, probe, block)
        self.synced = ComputeProbe(len(probe.y))  # wrapped in DDP once the process group exists

    def on_train_start(self, trainer, pl_module) -> None:
        self.synced.net = DistributedDataParallel(self.synced.net)
        self.synced.run(2)  # untimed: DDP builds its gradient buckets in the first steps
        self.synced.seconds, self.synced.images = 0.0, 0

    def run_probes(self) -> None:
        super().run_probes()
        self.synced.run(self.block)

    def on_train_end(self, trainer, pl_module) -> None:
        self.rank = trainer.global_rank
        mine = torch.tensor([self.img_s, self.probe.img_s, self.synced.img_s], dtype=torch.float64)
        summed = trainer.strategy.reduce(mine, reduce_op="sum")
        self.totals = {
            "fit_ddp_img_s": round(float(summed[0]), 1),
            "compute_only_ddp_img_s": round(float(summed[1]), 1),
            "compute_only_ddp_allreduce_img_s": round(float(summed[2]), 1),
            "rank0_fit_img_s": self.img_s,
            "rank0_compute_only_img_s": self.probe.img_s,
        }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--processes", type=int, default=2, help="DDP ranks (default: 2, one per core here)")
    parser.add_argument("--batches", type=int, default=40, help="timed batches per rank")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--block", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=128, help="global batch, split over the ranks")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per rank")
    parser.add_argument("--overrides", nargs="*", default=[], help="extra Hydra overrides for the fit")
    parser.add_argument("--skip-notebook", action="store_true", help="no notebook loop before the fit")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for tests")
    # Lightning sees the composed Hydra config and appends hydra.* overrides when it re-launches this script
    args, extra = parser.parse_known_args()
    if unknown := [a for a in extra if not a.startswith("hydra.")]:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    if args.quick:
        args.batch_size, args.warmup, args.batches, args.block = 16, 1, 3, 3
    if args.batch_size % args.processes:
        parser.error(f"--batch-size {args.batch_size} does not split evenly over {args.processes} processes")
    per_rank = args.batch_size // args.processes
    b, w, k = args.batches, args.warmup, args.block
    figures = {
        "bench": "train_ddp",
        "processes": args.processes,
        "threads_per_process": args.threads,
        "batch_size": args.batch_size,
        "batch_per_rank": per_rank,
        "batches": b,
        "warmup": w,
        "block": k,
        "overrides": args.overrides,
    }

    with contextlib.ExitStack() as stack:
        stack.enter_context(contextlib.redirect_stdout(sys.stderr))
        if WORKDIR_ENV not in os.environ:  # rank 0, before the other ranks exist
            # one output folder shared by all ranks, removed at the end
            os.environ[WORKDIR_ENV] = stack.enter_context(
                tempfile.TemporaryDirectory(prefix="fer-bench-ddp-")
            )
            if not args.skip_notebook:  # the notebook's loop in the same run, with torch's default threads
                figures["torch_threads_notebook"] = torch.get_num_threads()
                figures["notebook_img_s"], figures["compute_only_beside_notebook_img_s"] = notebook_loop(
                    args.batch_size, b, w, k, Path(os.environ[WORKDIR_ENV], "notebook")
                )
        torch.set_num_threads(args.threads)
        clock = lightning_fit(
            [
                "trainer=ddp",
                f"trainer.devices={args.processes}",
                f"data.batch_size={per_rank}",
                "data.eval_batch_size=256",
                *args.overrides,
            ],
            b,
            w,
            k,
            Path(os.environ[WORKDIR_ENV]),
            SummedClock,
        )
        if clock.rank != 0:
            return
    figures.update(clock.totals)
    figures["fit_ddp_vs_compute_only"] = round(
        figures["fit_ddp_img_s"] / figures["compute_only_ddp_img_s"], 3
    )
    figures["fit_ddp_vs_compute_only_allreduce"] = round(
        figures["fit_ddp_img_s"] / figures["compute_only_ddp_allreduce_img_s"], 3
    )  # goal: within 10 %
    if "notebook_img_s" in figures:
        figures["fit_ddp_vs_notebook"] = round(figures["fit_ddp_img_s"] / figures["notebook_img_s"], 2)
    emit(figures)


if __name__ == "__main__":
    main()
