"""Training throughput of a real Lightning fit vs the notebook's loop vs the network's compute-only ceiling.

All in one process, same network (mini-Xception), same batch size, same torch threads:
- ``compute_only``: forward + backward + SGD step on one fixed, ready float batch (channels_last), the
ceiling;
- ``fit_batch``: ``Trainer.fit`` with FERDataModule + FERClassifier from the real configs (default callbacks
incl.
  the Rich progress bar, TensorBoard logger), fast path (uint8 batches, BatchAugment in
  ``on_after_batch_transfer``,
  channels_last);
- ``fit_albumentations``: the same fit with ``data/augmentation=albumentations`` (per sample), for reference;
- ``notebook``: the notebook's loop (PIL + torchvision transforms per sample, NCHW, plain SGD loop) on 48x48
faces
  (``RandomCrop(48, padding=4)``: the same work per image as the fit); ``notebook_crop44`` the same loop on
  44x44
  crops (the origin repository's transforms: 16 % fewer pixels per image, so a lighter workload, reported
  beside).
Fits are timed from batch-end to batch-end after ``--warmup`` batches (start-up excluded); every step pays its
own
batch fetch and augmentation. The compute-only probe runs *interleaved* with each contender, ``--block`` steps
after
every ``--block`` timed steps, so a change in machine load hits the contender and its ceiling alike:
``<name>_vs_compute_only`` compares each contender with the probe steps taken beside it.

    python benchmarks/bench_train.py [--batches 40] [--warmup 5] [--block 5] [--batch-size 128] [--quick]
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
from pathlib import Path

import hydra
import pytorch_lightning as pl
import torch
from common import compose, emit, fit, rate
from notebook_baseline import NotebookFER, notebook_train_throughput, notebook_train_transform
from PIL import Image
from torch import nn

from fer_lightning.models.mini_xception import MiniXception


class ComputeProbe:
    """The ceiling: the training step alone on a batch already normalised, in layout, in memory."""

    def __init__(self, batch_size: int, channels_last: bool = True, size: int = 48) -> None:
        torch.manual_seed(0)
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        self.net = MiniXception().to(memory_format=fmt)
        self.x = torch.randn(batch_size, 1, size, size).contiguous(memory_format=fmt)
        self.y = torch.randint(0, 7, (batch_size,))
        self.opt = torch.optim.SGD(self.net.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-3)
        self.loss = nn.CrossEntropyLoss()
        self.seconds, self.images = 0.0, 0
        self.run(2)  # untimed: allocator and oneDNN primitive caches
        self.seconds, self.images = 0.0, 0

    def run(self, steps: int) -> None:
        start = time.perf_counter()
        for _ in range(steps):
            self.opt.zero_grad()
            self.loss(self.net(self.x), self.y).backward()
            self.opt.step()
        self.seconds += time.perf_counter() - start
        self.images += steps * len(self.y)

    @property
    def img_s(self) -> float:
        return rate(self.images, self.seconds)


class BatchClock(pl.Callback):
    """Seconds and images of the training batches after the warm-up ones; runs the probe every ``block``
    batches (outside the timed intervals)."""

    def __init__(self, warmup: int, probe: ComputeProbe | None = None, block: int = 5) -> None:
        self.warmup, self.probe, self.block = warmup, probe, block
        self.seconds, self.images, self.last = 0.0, 0, None

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        now = time.perf_counter()
        if batch_idx >= self.warmup:
            self.seconds += now - self.last
            self.images += len(batch[1])
        if (
            self.probe is not None
            and batch_idx + 1 >= self.warmup
            and (batch_idx + 1 - self.warmup) % self.block == 0
        ):
            self.run_probes()
        self.last = time.perf_counter()

    def run_probes(self) -> None:
        self.probe.run(self.block)

    @property
    def img_s(self) -> float:
        return rate(self.images, self.seconds)


def lightning_fit(
    overrides: list[str],
    batches: int,
    warmup: int,
    block: int,
    workdir: Path,
    clock_type: type[BatchClock] = BatchClock,
) -> BatchClock:
    """A real fit (config → datamodule, model, callbacks, logger, trainer as fer_lightning.tasks.train does),
    timed by a ``clock_type`` callback whose probe steps on batches of the fit's (per-process) batch size."""
    cfg = compose(
        [
            "trainer.max_epochs=1",
            "trainer.accelerator=cpu",
            f"trainer.limit_train_batches={warmup + batches}",
            "trainer.limit_val_batches=1",
            *overrides,
        ],
        workdir,
    )
    clock = clock_type(warmup, ComputeProbe(cfg.data.batch_size), block)
    fit(cfg, [clock])
    return clock


def notebook_loop(
    batch_size: int, batches: int, warmup: int, block: int, workdir: Path, crop: int = 48
) -> tuple[float, float]:
    """The notebook's loop on PIL images of the training rows (built from our arrays: loading is timed by
    bench_data.py, not here): (loop img/s, interleaved compute-only img/s)."""
    images, labels = hydra.utils.instantiate(compose([], workdir).data.source)().split("train")
    n = (warmup + batches) * batch_size
    dataset = NotebookFER(
        [Image.fromarray(im) for im in images[:n]], labels[:n].tolist(), notebook_train_transform(crop)
    )
    probe = ComputeProbe(batch_size)
    torch.manual_seed(0)
    img_s = notebook_train_throughput(
        MiniXception(), dataset, batch_size, batches, warmup, between=lambda: probe.run(block), every=block
    )
    return round(img_s, 1), probe.img_s


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batches", type=int, default=40, help="timed batches per contender")
    parser.add_argument(
        "--warmup", type=int, default=5, help="untimed batches first (start-up, allocator, caches)"
    )
    parser.add_argument("--block", type=int, default=5, help="compute-only steps run after every this many")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's, = cores)")
    parser.add_argument("--albumentations-workers", type=int, default=0)
    parser.add_argument(
        "--skip", nargs="*", default=[], choices=["albumentations", "notebook", "crop44", "nchw"]
    )
    parser.add_argument(
        "--overrides",
        nargs="*",
        default=[],
        help="extra Hydra overrides for every fit, e.g. "
        "callbacks.rich_progress_bar=null trainer.enable_progress_bar=false",
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for tests")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.quick:
        args.batch_size, args.warmup, args.batches, args.block = 16, 1, 3, 3
    b, w, k, bs = args.batches, args.warmup, args.block, args.batch_size
    common = [f"data.batch_size={bs}", "data.eval_batch_size=256", *args.overrides]

    figures = {
        "bench": "train",
        "batch_size": bs,
        "batches": b,
        "warmup": w,
        "block": k,
        "overrides": args.overrides,
    }
    with (
        tempfile.TemporaryDirectory(prefix="fer-bench-train-") as tmp,
        contextlib.redirect_stdout(sys.stderr),
    ):
        work = Path(tmp)
        if "notebook" not in args.skip:
            figures["notebook_img_s"], figures["compute_only_beside_notebook_img_s"] = notebook_loop(
                bs, b, w, k, work / "notebook"
            )
        if "crop44" not in args.skip:
            figures["notebook_crop44_img_s"], figures["compute_only_beside_crop44_img_s"] = notebook_loop(
                bs, b, w, k, work / "notebook-crop44", crop=44
            )
        if "nchw" not in args.skip:  # the layout the notebook used, on ready tensors (reference only)
            probe = ComputeProbe(bs, channels_last=False)
            probe.run(b)
            figures["compute_only_nchw_img_s"] = probe.img_s
        clock = lightning_fit(common, b, w, k, work / "fit")
        figures["fit_batch_img_s"], figures["compute_only_img_s"] = clock.img_s, clock.probe.img_s
        if "albumentations" not in args.skip:
            clock = lightning_fit(
                [
                    *common,
                    "data/augmentation=albumentations",
                    f"data.num_workers={args.albumentations_workers}",
                ],
                b,
                w,
                k,
                work / "fit-albumentations",
            )
            figures["fit_albumentations_img_s"] = clock.img_s
            figures["compute_only_beside_albumentations_img_s"] = clock.probe.img_s
            figures["albumentations_workers"] = args.albumentations_workers
        # measured once more at the end, so a drift in machine load shows up
        probe = ComputeProbe(bs)
        probe.run(b)
        figures["compute_only_end_img_s"] = probe.img_s

    def ratio(name: str, a: str, b: str, digits: int = 2) -> None:
        if a in figures and b in figures:
            figures[name] = round(figures[a] / figures[b], digits)

    ratio("fit_vs_compute_only", "fit_batch_img_s", "compute_only_img_s", 3)  # goal: within 10 %
    ratio(
        "albumentations_vs_compute_only",
        "fit_albumentations_img_s",
        "compute_only_beside_albumentations_img_s",
        3,
    )
    ratio("fit_vs_notebook", "fit_batch_img_s", "notebook_img_s")  # goal: >= 2.0
    ratio("fit_vs_notebook_crop44", "fit_batch_img_s", "notebook_crop44_img_s")
    ratio("notebook_vs_compute_only", "notebook_img_s", "compute_only_beside_notebook_img_s", 3)
    ratio("notebook_crop44_vs_compute_only", "notebook_crop44_img_s", "compute_only_beside_crop44_img_s", 3)
    # each side over the ceiling measured beside it: the ratio that is immune to load drift between contenders
    for loop in ("notebook", "notebook_crop44"):
        ratio(f"fit_vs_{loop}_same_ceiling", "fit_vs_compute_only", f"{loop}_vs_compute_only")
    emit(figures)


if __name__ == "__main__":
    main()
