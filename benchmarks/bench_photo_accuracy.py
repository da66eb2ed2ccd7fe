"""Accuracy on real photos: the JAFFE photos through the photo pipeline with and without eye alignment.

    python benchmarks/bench_photo_accuracy.py [--data-dir ../shared/data] [--weights <file.pt> ...]
        [--measure-fer2013] [--quick]

Every row scores every photo of ``$FER_DATA_DIR/jaffe-dev`` (labels from the file names, ``labels=jaffe``)
through :func:`fer_lightning.faces.evaluate.evaluate_photo_folder`, the code behind ``scripts/eval.py
data=photos``: a photo whose face is not found counts as an error. Rows:

- the detector's crop without alignment: dlib with its 10 % margin (the default before alignment), and Haar
  with none (OpenCV's face detector, the notebook's; its boxes happen to frame JAFFE faces much as FER2013 is
  framed);
- eye alignment at FER2013's framing (the default), after each detector;
- ``tilt±15`` / ``tilt±25``: the same photos turned by that many degrees (written to a temporary folder), each
  with and without alignment: what alignment is for, since the JAFFE sitters hold their heads level.

Each row gives faces found, faces whose eyes were found (aligned), correct photos and accuracy, plain and with
hflip TTA. The table goes to stderr, the one JSON line to stdout. ``--weights``: the weights files to score
(default: the shipped FER2013 weights, plus ``fer_lightning/weights/mini_xception_ferplus.pt`` when present;
its classes are matched to JAFFE's by name, a contempt prediction is an error). ``--measure-fer2013`` also
measures where the eye finder puts the eyes in 2,000 FER2013 Training faces, which is where the aligner's
defaults come from. ``--quick``: the untilted rows only.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np
from common import CSV, DATA_DIR, ROOT, emit

from fer_lightning.checkpoints import load_network
from fer_lightning.faces.align import FaceAligner
from fer_lightning.faces.detectors import Box, DlibDetector, HaarDetector, read_image, to_gray
from fer_lightning.faces.evaluate import PHOTOS, evaluate_photo_folder
from fer_lightning.faces.labels import RegexLabels
from fer_lightning.faces.pipeline import FaceSettings
from fer_lightning.utils.compose import compose_config

WEIGHTS = ROOT / "fer_lightning" / "weights"
SETTINGS = {  # name: (detector, align)
    "dlib, margin 0.1, no alignment": (DlibDetector, False),
    "dlib + alignment (default)": (DlibDetector, True),
    "haar, margin 0, no alignment": (HaarDetector, False),
    "haar + alignment": (HaarDetector, True),
}
TILTS = (15, -15, 25, -25)


def jaffe_labels() -> RegexLabels:
    """The rule of ``conf/labels/jaffe.yaml``, composed from the config itself."""
    import hydra

    with tempfile.TemporaryDirectory() as scratch:  # composing writes nothing; the run folder must be named
        cfg = compose_config(ROOT / "conf", "eval", ["labels=jaffe"], scratch)
    return hydra.utils.instantiate(cfg.labels)


def tilted_copies(source: Path, degrees: float, folder: Path) -> Path:
    """Every photo of ``source`` turned by ``degrees`` about its centre (edges replicated), as PNG files of
    the same stem, so the label rule reads them alike."""
    folder.mkdir(parents=True, exist_ok=True)
    for path in sorted(source.glob("*.tiff")):
        gray = to_gray(read_image(path))
        h, w = gray.shape
        turn = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
        turned = cv2.warpAffine(gray, turn, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        cv2.imwrite(str(folder / f"{path.stem}.png"), turned)
    return folder


def score(net, classes, folder: Path, labels: RegexLabels, detector_cls, align: bool) -> dict:
    settings = FaceSettings(
        detector=detector_cls(), labels=labels, align=align, use_cache=False, workers=0, progress=False
    )
    m = evaluate_photo_folder(net, classes, folder, settings, tta=["hflip"])
    n = m[f"{PHOTOS}/n"]
    return {
        "photos": n,
        "faces_found": m[f"{PHOTOS}/faces_found"],
        "eyes_aligned": m[f"{PHOTOS}/aligned"],
        "correct": round(m[f"{PHOTOS}/acc"] * n),
        "acc": round(m[f"{PHOTOS}/acc"], 4),
        "hflip_correct": round(m[f"{PHOTOS}/tta_hflip/acc"] * n),
        "macro_f1": round(m[f"{PHOTOS}/macro_f1"], 4),
        "per_class_recall": {c: round(r, 3) for c, r in m[f"{PHOTOS}/per_class_recall"].items()},
    }


def measure_fer2013(faces: int = 2000, upscale: int = 4, seed: int = 0) -> dict:
    """Median eye midpoint height and eye distance (fractions of the side) the eye finder sees in FER2013."""
    from fer_lightning.data.fer2013 import load_fer2013_csv

    arrays = load_fer2013_csv(CSV)  # resolves fer2013.csv.gz; parsed arrays cached under $FER_CACHE_DIR
    rows = np.random.default_rng(seed).choice(np.flatnonzero(arrays.splits == 0), faces, replace=False)
    aligner, side = FaceAligner(), 48 * upscale
    found = []
    for row in rows:
        face = cv2.resize(arrays.images[row], (side, side), interpolation=cv2.INTER_CUBIC)
        eyes = aligner.find_eyes(face, Box(0, 0, side, side))
        if eyes is not None:
            found.append((eyes.centre[0] / side, eyes.centre[1] / side, eyes.distance / side))
    x, y, d = np.array(found).T
    return {
        "faces": faces,
        "eyes_found": len(found),
        "eye_x_median": round(float(np.median(x)), 3),
        "eye_y_median": round(float(np.median(y)), 3),
        "eye_distance_median": round(float(np.median(d)), 3),
        "eye_y_quartiles": np.round(np.percentile(y, [25, 75]), 3).tolist(),
        "eye_distance_quartiles": np.round(np.percentile(d, [25, 75]), 3).tolist(),
    }


def table(rows: dict[str, dict]) -> str:
    lines = [
        "| setting | faces found | eyes aligned | correct | accuracy | + hflip TTA |",
        "|---|---|---|---|---|---|",
    ]
    for name, r in rows.items():
        lines.append(
            f"| {name} | {r['faces_found']} / {r['photos']} | {r['eyes_aligned']} | {r['correct']} / "
            f"{r['photos']} | {100 * r['acc']:.1f} % | {r['hflip_correct']} / {r['photos']} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR)
    parser.add_argument("--weights", type=Path, nargs="+", default=None)
    parser.add_argument("--measure-fer2013", action="store_true")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    jaffe = args.data_dir / "jaffe-dev"
    weights = args.weights or [
        w for w in (WEIGHTS / "mini_xception_fer2013.pt", WEIGHTS / "mini_xception_ferplus.pt") if w.exists()
    ]
    labels = jaffe_labels()
    figures: dict = {"photos_dir": str(jaffe)}
    with tempfile.TemporaryDirectory() as tmp:
        folders = {"": jaffe}
        if not args.quick:
            folders |= {f"tilt{t:+d}, ": tilted_copies(jaffe, t, Path(tmp) / f"tilt{t}") for t in TILTS}
        for path in weights:
            net, classes = load_network(path, device="cpu")
            rows = {}
            for prefix, folder in folders.items():
                for name, (detector_cls, align) in SETTINGS.items():
                    if prefix and detector_cls is HaarDetector:  # tilted rows: the default detector only
                        continue
                    rows[f"{prefix}{name}"] = score(net, classes, folder, labels, detector_cls, align)
            print(f"\n{path.name} (classes {classes}) on {jaffe}:\n{table(rows)}", file=sys.stderr)
            figures[path.name] = rows
    if args.measure_fer2013:
        figures["fer2013_eyes"] = measure_fer2013()
        print(f"\nFER2013 eye geometry: {figures['fer2013_eyes']}", file=sys.stderr)
    emit(figures)


if __name__ == "__main__":
    os.environ.setdefault("FER_DATA_DIR", str(DATA_DIR))
    main()
