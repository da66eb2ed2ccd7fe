"""Face detectors on the real JAFFE photos: images/s and detection rate, plus the notebook's Haar loop.

    python benchmarks/bench_faces.py [--data-dir ../shared/data] [--parallel-repeat 5] [--quick]

Prints ONE JSON line. Per detector (haar, dlib, mtcnn if facenet-pytorch imports, none as the decode+crop
floor): ``seq_img_s`` = the pipeline (decode, detect, largest face, crop) in one process
(``seq_img_per_cpu_s``: per CPU-second of this process, which a busy shared machine distorts less; MTCNN's
torch threads inflate its CPU time); ``par_img_s`` = the same through the process pool on all cores, pool
start-up included, over the photo list repeated ``--parallel-repeat`` times so start-up is amortised as in a
real folder; ``detection_rate`` = photos with >= 1 face. ``notebook`` = the course notebook's approach:
sequential, cv2.imread, Haar (1.1, 5), first detection, whole frame resized when none; ``first_not_largest``
counts photos where its first box is not the largest one. ``stress`` = detection rate on harder in-memory
variants of the same photos (JAFFE is easy: every detector finds every face): ``small`` face ~40 px in a 512
px frame, ``tilt30`` rotated 30 degrees, ``half_occluded`` left half of the frame blacked out (plus dlib's
``small`` without its upsample retry). ``box_side_cv`` = spread (std/mean) of the largest box's side across
one subject's photos, averaged over subjects: JAFFE was shot with a fixed camera and head position, so this is
detector jitter, which becomes scale noise in the 48x48 crops.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import cv2
import numpy as np
from common import DATA_DIR, emit, rate

from fer_lightning.faces.extract import FileRef, map_files, process_file
from fer_lightning.faces.detectors import (
    DetectorUnavailableError,
    DlibDetector,
    FaceDetector,
    HaarDetector,
    NoDetector,
    read_image,
    to_gray,
)
from fer_lightning.faces.mtcnn import MTCNNDetector


def bench_detector(detector: FaceDetector, refs: list[FileRef], repeat: int) -> dict:
    for ref in refs[:3]:  # warm-up: model load and first-call allocations are not per-image costs
        process_file(ref, detector)
    start, cpu_start = time.perf_counter(), time.process_time()
    results = [process_file(ref, detector) for ref in refs]
    seq_s, seq_cpu_s = time.perf_counter() - start, time.process_time() - cpu_start
    start = time.perf_counter()
    n_par = sum(1 for _ in map_files(refs * repeat, detector, workers=None, probe_s=0.0))
    par_s = time.perf_counter() - start
    found = sum(r.status == "face" for r in results)
    return {
        "seq_img_s": rate(len(refs), seq_s),
        "seq_img_per_cpu_s": rate(len(refs), seq_cpu_s),
        "par_img_s": rate(n_par, par_s),
        "detection_rate": round(found / len(refs), 4),
        "multi_face": sum(r.n_faces > 1 for r in results),
        "unreadable": sum(r.status == "unreadable" for r in results),
        "settings": detector.settings(),
    }


def _stress_variants(images: list[np.ndarray]) -> dict[str, list[np.ndarray]]:
    def small(im: np.ndarray) -> np.ndarray:
        frame = np.full((512, 512), int(im.mean()), np.uint8)
        frame[200:280, 200:280] = cv2.resize(im, (80, 80), interpolation=cv2.INTER_AREA)
        return frame

    def tilt(im: np.ndarray) -> np.ndarray:
        h, w = im.shape
        rotation = cv2.getRotationMatrix2D((w / 2, h / 2), 30, 1.0)
        return cv2.warpAffine(im, rotation, (w, h), borderMode=cv2.BORDER_REPLICATE)

    def half(im: np.ndarray) -> np.ndarray:
        out = im.copy()
        out[:, : im.shape[1] // 2] = 0
        return out

    return {
        name: [f(im) for im in images]
        for name, f in (("small", small), ("tilt30", tilt), ("half_occluded", half))
    }


def bench_stress(detector: FaceDetector, variants: dict[str, list[np.ndarray]]) -> dict[str, float]:
    return {
        name: round(float(np.mean([bool(detector.detect(im)) for im in ims])), 4)
        for name, ims in variants.items()
    }


def box_jitter(detector: FaceDetector, paths: list[Path], images: list[np.ndarray]) -> float:
    sides: dict[str, list[int]] = {}
    for path, image in zip(paths, images):
        boxes = detector.detect(image)
        if boxes:
            sides.setdefault(path.name.split(".")[0], []).append(max(boxes[0].w, boxes[0].h))
    return round(float(np.mean([np.std(v) / np.mean(v) for v in sides.values()])), 4)


def bench_notebook(paths: list[Path]) -> dict:
    """The notebook's step 1, one image at a time (cascade loaded once, to be fair to it)."""
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    found = first_not_largest = 0
    start, cpu_start = time.perf_counter(), time.process_time()
    for path in paths:
        image = cv2.imread(str(path))
        gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        faces = cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5)
        if len(faces):
            x, y, w, h = faces[0]
            face = gray[y : y + h, x : x + w]
            found += 1
            first_not_largest += int(np.argmax(faces[:, 2] * faces[:, 3]) != 0)
        else:
            face = gray
        cv2.resize(face, (48, 48))
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    return {
        "seq_img_s": rate(len(paths), seconds),
        "seq_img_per_cpu_s": rate(len(paths), cpu_seconds),
        "detection_rate": round(found / len(paths), 4),
        "first_not_largest": first_not_largest,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR)
    parser.add_argument("--parallel-repeat", type=int, default=5)
    parser.add_argument(
        "--quick", action="store_true", help="12 photos, no repeat: checks the script, not speed"
    )
    args = parser.parse_args()
    paths = sorted((args.data_dir / "jaffe-dev").glob("*.tiff"))
    if args.quick:
        paths, args.parallel_repeat = paths[::9], 1
    if not paths:
        raise SystemExit(f"no JAFFE photos in {args.data_dir / 'jaffe-dev'}; set --data-dir or FER_DATA_DIR")
    refs = [FileRef.of(p) for p in paths]
    out: dict = {
        "bench": "faces",
        "dataset": "jaffe-dev",
        "images": len(paths),
        "usable_cpus": len(os.sched_getaffinity(0)),
        "opencv": cv2.__version__,
        "detectors": {},
    }
    originals = [to_gray(read_image(p)) for p in paths]
    variants = _stress_variants(originals)
    for detector in (HaarDetector(), DlibDetector(), MTCNNDetector(), NoDetector()):
        try:
            out["detectors"][detector.name] = bench_detector(detector, refs, args.parallel_repeat)
            if detector.name != "none":
                out["detectors"][detector.name]["stress"] = bench_stress(detector, variants)
                out["detectors"][detector.name]["box_side_cv"] = box_jitter(detector, paths, originals)
            if detector.name == "dlib":  # what the retry at upsample 1 buys on small faces
                no_retry = DlibDetector(retry_upsample=None)
                out["detectors"]["dlib"]["stress"]["small_without_retry"] = bench_stress(no_retry, variants)[
                    "small"
                ]
        except DetectorUnavailableError as e:
            out["detectors"][detector.name] = {"unavailable": str(e).split(" (")[0]}
    out["notebook"] = bench_notebook(paths)
    emit(out)


if __name__ == "__main__":
    main()
