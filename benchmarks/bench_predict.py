"""Prediction latency (photo → label: detection + network) and batched model-only throughput.

Photos: ``$FER_DATA_DIR/jaffe-dev/*.tiff`` (256x256 gray, one face each), decoded once before timing (the
peer's figure is for an in-memory image too; reading a TIFF adds ``read_ms_p50``). Contenders:
- ``torch``: the project's :class:`fer_lightning.predict.Predictor` as shipped (dlib HOG + eager
  mini-Xception, channels_last, 1 intra-op thread for small batches);
- ``onnx``: the same Predictor with ``backend="onnxruntime"`` (the network exported in memory and run by ONNX
  Runtime, :mod:`fer_lightning.onnx_backend`).
Peer (not measured here; reference figures): the ``fer`` package's default pipeline (Haar + quantized TFLite
mini-Xception) takes a median 23 ms per photo and its model alone ~1,750-2,100 img/s.
The network's weights do not change its speed: random init unless ``--ckpt`` is given. Per-detector latency
with the shipped weights: ``bench_latency.py``.

    python benchmarks/bench_predict.py [--passes 3] [--batch-size 256] [--seconds 3] [--quick]
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from common import DATA_DIR, emit, rate
from torch.fx.experimental.optimization import fuse

from fer_lightning.faces.detectors import DlibDetector
from fer_lightning.images import read_image
from fer_lightning.emotions import EMOTIONS
from fer_lightning.inference import to_model_input
from fer_lightning.models.mini_xception import MiniXception
from fer_lightning.predict import Predictor

PEER = {"latency_ms_p50": 23.0, "model_img_s": [1750, 2100]}


def percentiles(ms: list[float]) -> dict:
    return {"p50": round(statistics.median(ms), 2), "p95": round(float(np.percentile(ms, 95)), 2)}


def timed(fn, items, passes: int) -> list[float]:
    out = []
    for _ in range(passes):
        for item in items:
            start = time.perf_counter()
            fn(item)
            out.append((time.perf_counter() - start) * 1e3)
    return out


def throughput(fn, count: int, seconds: float) -> float:
    for _ in range(2):
        fn()
    start, done = time.perf_counter(), 0
    while (elapsed := time.perf_counter() - start) < seconds:
        fn()
        done += count
    return rate(done, elapsed)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--photos", type=Path, default=DATA_DIR / "jaffe-dev")
    parser.add_argument("--passes", type=int, default=3, help="passes over all photos (latency samples)")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--seconds", type=float, default=3.0, help="per throughput figure")
    parser.add_argument(
        "--ckpt", type=Path, default=None, help="weights to load (speed does not depend on them)"
    )
    parser.add_argument(
        "--quick", action="store_true", help="5 photos, 1 pass, short throughput runs (tests)"
    )
    args = parser.parse_args()

    paths = sorted(args.photos.glob("*.tiff"))[: 5 if args.quick else None]
    if not paths:
        raise SystemExit(f"no .tiff photos in {args.photos}")
    passes, seconds = (1, 0.3) if args.quick else (args.passes, args.seconds)
    with contextlib.redirect_stdout(sys.stderr):
        torch.manual_seed(0)
        if args.ckpt:
            from fer_lightning.checkpoints import load_network

            net = load_network(args.ckpt)[0]
        else:
            net = MiniXception()
        net.eval()
        threads = torch.get_num_threads()
        plain = Predictor(net, EMOTIONS, detector=DlibDetector(), batch_size=args.batch_size)
        # 1 ONNX Runtime thread for a photo's faces, its default (one per core) for batches, as for torch
        fast = Predictor(
            net, EMOTIONS, detector=DlibDetector(), batch_size=args.batch_size, backend="onnxruntime"
        )
        images = [read_image(p) for p in paths]
        read_ms = timed(read_image, paths, 1)
        for predictor in (plain, fast):  # warm-up: detector model load, allocator, oneDNN primitive caches
            for image in images[:3]:
                predictor.predict(image, color="gray")
        found = sum(bool(plain.predict(image, color="gray")) for image in images)
        crops = [c for image in images for c in plain.detect(image, False)[1]]

        figures = {
            "bench": "predict",
            "photos": len(paths),
            "faces_found": found,
            "passes": passes,
            "photo_shape": list(images[0].shape),
            "detector": "dlib",
            "torch_threads": threads,
        }
        figures["torch_latency_ms"] = percentiles(
            timed(lambda im: plain.predict(im, color="gray"), images, passes)
        )
        figures["onnx_latency_ms"] = percentiles(
            timed(lambda im: fast.predict(im, color="gray"), images, passes)
        )
        figures["detect_ms"] = percentiles(timed(lambda im: plain.detect(im, False), images, passes))
        figures["classify_1_face_torch_ms"] = percentiles(timed(lambda c: plain.classify([c]), crops, passes))
        figures["classify_1_face_onnx_ms"] = percentiles(timed(lambda c: fast.classify([c]), crops, passes))
        figures["read_ms_p50"] = round(statistics.median(read_ms), 2)

        batch = np.stack([crops[i % len(crops)] for i in range(args.batch_size)])
        ready = to_model_input(torch.from_numpy(batch).unsqueeze(1)).contiguous(
            memory_format=torch.channels_last
        )
        # inference-time BatchNorm folding into the preceding convs (torch.fx), and TorchScript freezing
        # (which folds too and lets oneDNN fuse conv+ReLU): levers measured for the torch path, not used by
        # Predictor
        folded = fuse(copy.deepcopy(plain.net).eval()).to(memory_format=torch.channels_last)
        with torch.inference_mode():
            frozen = torch.jit.optimize_for_inference(
                torch.jit.freeze(torch.jit.trace(copy.deepcopy(plain.net), ready))
            )
            figures["model_torch_img_s"] = throughput(lambda: plain.classify(batch), len(batch), seconds)
            figures["model_torch_ready_img_s"] = throughput(lambda: plain.net(ready), len(batch), seconds)
            figures["model_torch_bn_folded_ready_img_s"] = throughput(
                lambda: folded(ready), len(batch), seconds
            )
            figures["model_torchscript_frozen_ready_img_s"] = throughput(
                lambda: frozen(ready), len(batch), seconds
            )
        figures["model_onnx_img_s"] = throughput(lambda: fast.classify(batch), len(batch), seconds)
        # same network, same outputs: the ONNX path is a faster runtime, not a different model
        with torch.inference_mode():
            logits = plain.net(ready).numpy()
        onnx_logits = fast.runtime.predict_logits(batch, args.batch_size, threads=None).numpy()
        figures["onnx_vs_torch_max_logit_diff"] = float(abs(onnx_logits - logits).max())

    best_latency = min(figures["torch_latency_ms"]["p50"], figures["onnx_latency_ms"]["p50"])
    best_model = max(figures["model_torch_img_s"], figures["model_onnx_img_s"])
    figures.update(
        peer=PEER,
        batch_size=args.batch_size,
        goal_half_peer_latency=best_latency <= PEER["latency_ms_p50"] / 2,
        goal_model_above_peer=best_model > max(PEER["model_img_s"]),
    )
    emit(figures)


if __name__ == "__main__":
    main()
