"""Photo → label latency: one 256x256 JAFFE photo at a time through ``Predictor.predict`` (detection +
network), p50/p95 per network backend (torch, onnxruntime) and per face detector, in one run.

Photos: ``$FER_DATA_DIR/jaffe-dev/*.tiff`` (108 photos, 256x256 gray, one frontal face each), decoded once
before timing (reading a TIFF is reported apart as ``read_ms_p50``). Every photo is timed ``--repeats`` times
per row; rows are interleaved pass by pass, so a change in machine load hits all of them alike. Besides
speed, each row reports what it costs in results on the same photos: faces found, accuracy against the JAFFE
labels in the file names (``conf/labels/jaffe.yaml``) and labels that differ from the shipped default
pipeline's (first row) — the evidence a faster detector setting would need before it became a default.
Network: the shipped weights.

Rows: the default pipeline as ``scripts/predict.py`` and ``Predictor.from_pretrained()`` run it (detector
``finder``, eye alignment, the ``photos`` weights with their hflip TTA and prior correction), with torch and
with ONNX Runtime; then the earlier pipeline with the FER2013 weights and no alignment (dlib HOG at upsample 0
with a retry at 1) with torch and ONNX Runtime, and detector variants of it with ONNX Runtime: dlib at
upsample 1 (finds faces down to ~40 px, 4x the pixels to scan), dlib scanning a copy at most 192 or 160 px on
its longest side (``detector.max_side``; the crop still comes from the full photo), and OpenCV's Haar cascade.

    python benchmarks/bench_latency.py [--repeats 5] [--quick]

Besides wall-clock latency, each row reports the process CPU time per photo (``cpu_ms``, all threads): on a
shared machine a busy core stretches wall time but not CPU time, which for the single-threaded rows (dlib,
1 torch or ONNX Runtime thread) is what the photo costs on an idle core. OpenCV runs Haar on several threads.

Prints a table on stderr and one JSON line on stdout.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import time
from pathlib import Path, PurePosixPath

import hydra
import numpy as np
from common import DATA_DIR, ROOT, emit
from omegaconf import OmegaConf
from rich.console import Console
from rich.table import Table

from fer_lightning.checkpoints import load_network
from fer_lightning.emotions import EMOTIONS
from fer_lightning.faces.detectors import DlibDetector, FaceDetector, HaarDetector
from fer_lightning.images import read_image
from fer_lightning.onnx_backend import OnnxNetwork
from fer_lightning.predict import Predictor

#: the latency goal for photo → label (p50, ms)
GOAL_MS = 3.0
#: the `fer` package's p50 on the same photos, measured once (benchmarks/README.md, "Photo → label latency")
FER_PACKAGE_MS = 23.0


def rows() -> list[tuple[str, str, FaceDetector | None]]:
    """(backend, detector description, detector) per table row; ``None``: the default pipeline (first)."""
    return [
        ("torch", "default: finder + alignment, photos weights, hflip, prior correction", None),
        ("onnxruntime", "default: finder + alignment, photos weights, hflip, prior correction", None),
        ("torch", "dlib upsample 0 + retry 1, no alignment, fer2013 weights", DlibDetector()),
        ("onnxruntime", "dlib upsample 0 + retry 1, no alignment, fer2013 weights", DlibDetector()),
        ("onnxruntime", "dlib upsample 1", DlibDetector(upsample=1, retry_upsample=None)),
        ("onnxruntime", "dlib default, max_side=192", DlibDetector(max_side=192)),
        ("onnxruntime", "dlib default, max_side=160", DlibDetector(max_side=160)),
        ("onnxruntime", "haar (default settings)", HaarDetector()),
    ]


def percentiles(ms: list[float]) -> dict[str, float]:
    return {"p50": round(statistics.median(ms), 2), "p95": round(float(np.percentile(ms, 95)), 2)}


def jaffe_labels(paths: list[Path]) -> list[str | None]:
    """Each photo's class from its file name, by the project's own rule (``labels=jaffe``)."""
    rule = hydra.utils.instantiate(OmegaConf.load(ROOT / "conf" / "labels" / "jaffe.yaml"))
    return [None if (i := rule(PurePosixPath(p.name))[0]) is None else EMOTIONS[i] for p in paths]


def color_of(image: np.ndarray) -> str:
    return "gray" if image.ndim == 2 else "rgb"  # read_image decodes JAFFE TIFFs as gray or RGB


def print_table(figures: dict, console: Console) -> None:
    table = Table(
        title=f"photo → label, {figures['photos']} JAFFE photos (256x256) x {figures['repeats']} repeats, "
        f"shipped weights; goal p50 ≤ {GOAL_MS:g} ms"
    )
    for column in (
        "backend",
        "detector",
        "p50 ms",
        "p95 ms",
        "CPU ms p50",
        "detect p50",
        "classify 1 face p50",
        "faces found",
        "JAFFE acc",
        "labels ≠ default",
    ):
        table.add_column(column, justify="left" if column in ("backend", "detector") else "right")
    for row in figures["rows"]:
        table.add_row(
            row["backend"],
            row["detector"],
            f"{row['latency_ms']['p50']:.2f}",
            f"{row['latency_ms']['p95']:.2f}",
            f"{row['cpu_ms']['p50']:.2f}",
            f"{row['detect_ms']['p50']:.2f}",
            f"{row['classify_1_face_ms']['p50']:.2f}",
            f"{row['faces_found']}/{figures['photos']}",
            f"{row['jaffe_correct']}/{row['jaffe_labelled']} = {row['jaffe_acc']:.1%}",
            str(row["labels_differing_from_default"]),
        )
    console.print(table)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--photos", type=Path, default=DATA_DIR / "jaffe-dev")
    parser.add_argument("--repeats", type=int, default=5, help="timed passes over the photos, per row")
    parser.add_argument("--quick", action="store_true", help="3 photos, 2 repeats (tests)")
    args = parser.parse_args()

    paths = sorted(args.photos.glob("*.tiff"))[: 3 if args.quick else None]
    if not paths:
        raise SystemExit(f"no .tiff photos in {args.photos}")
    repeats = 2 if args.quick else args.repeats
    with contextlib.redirect_stdout(sys.stderr):  # stdout carries the JSON line only
        read_ms = []
        for path in paths:
            start = time.perf_counter()
            read_image(path)
            read_ms.append((time.perf_counter() - start) * 1e3)
        images = [read_image(p) for p in paths]
        truth = jaffe_labels(paths)
        net, classes = load_network(None)
        runtime = OnnxNetwork.from_network(net, classes)  # exported once, shared by the onnxruntime rows
        predictors = [
            (
                backend,
                name,
                Predictor.from_pretrained(backend=backend)
                if detector is None
                else Predictor(
                    runtime if backend == "onnxruntime" else net,
                    classes,
                    detector,
                    backend=backend,
                    aligner=None,
                ),
            )
            for backend, name, detector in rows()
        ]
        for *_, predictor in predictors:  # warm-up: detector model load, allocators, kernel caches
            for image in images[:3]:
                predictor.predict(image, color_of(image))

        latency: list[list[float]] = [[] for _ in predictors]
        cpu: list[list[float]] = [[] for _ in predictors]
        detect: list[list[float]] = [[] for _ in predictors]
        classify: list[list[float]] = [[] for _ in predictors]
        for _ in range(repeats):
            for i, (*_, predictor) in enumerate(predictors):
                for image in images:
                    start, start_cpu = time.perf_counter(), time.process_time()
                    predictor.predict(image, color_of(image))
                    latency[i].append((time.perf_counter() - start) * 1e3)
                    cpu[i].append((time.process_time() - start_cpu) * 1e3)
                for image in images:
                    start = time.perf_counter()
                    _, crops = predictor.detect(image, False)
                    detect[i].append((time.perf_counter() - start) * 1e3)
                    if crops:
                        start = time.perf_counter()
                        predictor.classify(crops[:1])
                        classify[i].append((time.perf_counter() - start) * 1e3)
        labels = [  # the largest face's label per photo, None where no face was found
            [faces[0].label if faces else None for faces in (p.predict(im, color_of(im)) for im in images)]
            for *_, p in predictors
        ]

        table_rows = []
        for i, (backend, name, predictor) in enumerate(predictors):
            scored = [(got, want) for got, want in zip(labels[i], truth) if want is not None]
            correct = sum(got == want for got, want in scored)
            table_rows.append(
                {
                    "backend": backend,
                    "detector": name,
                    "detector_settings": predictor.detector.settings(),
                    "latency_ms": percentiles(latency[i]),
                    "cpu_ms": percentiles(cpu[i]),
                    "detect_ms": percentiles(detect[i]),
                    "classify_1_face_ms": percentiles(classify[i]) if classify[i] else None,
                    "faces_found": sum(label is not None for label in labels[i]),
                    "jaffe_correct": correct,
                    "jaffe_labelled": len(scored),
                    "jaffe_acc": round(correct / len(scored), 4) if scored else float("nan"),
                    "labels_differing_from_default": sum(a != b for a, b in zip(labels[i], labels[0])),
                }
            )
        figures = {
            "bench": "latency",
            "photos": len(paths),
            "photo_shape": list(images[0].shape),
            "repeats": repeats,
            "samples_per_row": len(paths) * repeats,
            "read_ms_p50": round(statistics.median(read_ms), 2),
            "rows": table_rows,
        }
        default_detector = [r for r in table_rows if r["detector"] == table_rows[0]["detector"]]
        figures["torch_ms"] = default_detector[0]["latency_ms"]
        figures["onnxruntime_ms"] = default_detector[1]["latency_ms"]
        figures["fer_package_ms_p50"] = FER_PACKAGE_MS
        figures["ratio_to_fer_package"] = round(
            min(r["latency_ms"]["p50"] for r in default_detector) / FER_PACKAGE_MS, 3
        )
        figures["goal_ms"] = GOAL_MS
        figures["goal_met_with_default_detector"] = (
            min(r["latency_ms"]["p50"] for r in default_detector) <= GOAL_MS
        )
        print_table(figures, Console(file=sys.stderr, width=200))
    emit(figures)


if __name__ == "__main__":
    main()
