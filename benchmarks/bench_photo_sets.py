"""Photo accuracy of shipped or trained weights on jaffe-dev and the derived photo sets, plus FER2013 / FER+
PrivateTest, under inference options (hflip TTA, class-prior logit adjustment)::

    python benchmarks/bench_photo_sets.py [--weights photos fer2013 ferplus <file.pt|.ckpt> ...]
        [--tta none hflip] [--tau 0 0.5 1] [--report private] [--detector finder|dlib]

Each photo goes through the photo pipeline as ``scripts/predict.py`` runs it (the detector, then eye alignment
at FER2013's framing); its largest face is scored, and a photo without a face counts as wrong. The sets come
from ``benchmarks/photo_sets.py`` (built into ``outputs/photo_sets`` when missing): ``*-public`` ones are for
choosing, ``--report private`` adds the ``*-private`` ones, which are reported only. ``tau``: logits minus tau
x log(class prior of FER2013 Training) — the prior correction that :class:`~fer_lightning.predict.Predictor`'s
``logit_adjustment`` applies. ``--sitters``: jaffe-dev / jaffe-crops rows of those sitters only (held out of a
run that trained on the others). FER+ figures use its majority labels over FER2013's seven classes
(Microsoft's rule). The table goes to stderr, one JSON line to stdout.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from common import DATA_DIR, ROOT, emit

import photo_sets
from fer_lightning.checkpoints import PRETRAINED, load_network
from fer_lightning.data.fer2013 import load_fer2013_csv
from fer_lightning.data.ferplus import label_votes, read_votes
from fer_lightning.emotions import EMOTIONS, SPLITS, canonical_emotion
from fer_lightning.faces.align import FaceAligner
from fer_lightning.faces.detectors import DlibDetector
from fer_lightning.faces.fallback import FaceFinder
from fer_lightning.faces.walk import find_photos
from fer_lightning.inference import predict_log_probs
from fer_lightning.inference import class_log_prior
from fer_lightning.predict import Predictor


def photo_set(name: str, sets: Path) -> tuple[Path, list[tuple[Path, int]]]:
    """(folder, [(photo, label)]) of jaffe-dev (labels from file names) or a derived set (folder names)."""
    if name == "jaffe-dev":
        folder = DATA_DIR / "jaffe-dev"
        return folder, [(p, photo_sets.JAFFE_RULE(Path(p.name))[0]) for p in sorted(folder.glob("*.tiff"))]
    folder = sets / name
    photos, _ = find_photos(folder, None)
    label = {name: i for i, name in enumerate(EMOTIONS)} | {"none": -1}  # no-face/none/: no face to find
    return folder, [(folder / p.rel, label[p.rel.parts[0]]) for p in photos]


def face_crops(
    predictor: Predictor, items: list[tuple[Path, int]]
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The largest face's 48x48 crop of each photo (zeros where none), its label, and how it was found."""
    crops, labels, sources = [], [], []
    for path, label in items:
        image, bgr = predictor.load_image(path)  # decoded once, as RGB or gray
        boxes, found = predictor.detect(image, bgr)
        crops.append(found[0] if found else np.zeros((48, 48), np.uint8))
        labels.append(label)
        sources.append(boxes[0].source if boxes else "none")
    return np.stack(crops), np.array(labels), sources


def cached_crops(
    pipeline: Predictor, name: str, detector: str, sets: Path
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """:func:`face_crops` of a set, kept in ``<sets>/<name>.<detector>.npz`` while its file list and the
    pipeline's settings are unchanged (scoring many weights then costs no detection)."""
    items = photo_set(name, sets)[1]
    key = repr(([str(p) for p, _ in items], pipeline.detector.settings(), pipeline.aligner.settings()))
    path = sets / f"{name}.{detector}.npz"
    if path.is_file():
        data = np.load(path, allow_pickle=False)
        if str(data["key"]) == key:
            return data["crops"], data["labels"], list(data["sources"])
    crops, labels, sources = face_crops(pipeline, items)
    np.savez(path, crops=crops, labels=labels, sources=np.array(sources), key=np.array(key))
    return crops, labels, sources


def seven_class_log_probs(net, classes, faces, tta) -> torch.Tensor:
    """Log-probabilities over FER2013's seven classes (an 8-class FER+ net loses its contempt column)."""
    log_probs = predict_log_probs(net, torch.from_numpy(faces), tta)
    order = [[canonical_emotion(c) for c in classes].index(e) for e in EMOTIONS]
    return log_probs[:, order]


def scores(log_probs: torch.Tensor, labels: np.ndarray, found: np.ndarray, tau: float) -> dict:
    pred = (log_probs - tau * class_log_prior()).argmax(1).numpy()
    right = (pred == labels) & found
    recall = {
        EMOTIONS[c]: round(float(right[labels == c].mean()), 3) for c in range(7) if (labels == c).any()
    }
    return {
        "n": len(labels),
        "acc": round(float(right.mean()), 4),
        "min_recall": min(recall.values()),
        "recall": recall,
    }


def fer_private() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    faces = load_fer2013_csv(DATA_DIR / "fer2013" / "fer2013.csv")
    private = faces.splits == SPLITS.index("private")
    votes = read_votes(DATA_DIR / "ferplus" / "fer2013new.csv")
    plus = label_votes(votes.votes, votes.splits, "majority", "fer2013")
    keep = plus.keep & private
    return {
        "FER2013 PrivateTest": (faces.images[private], faces.labels[private]),
        "FER+ PrivateTest (7)": (faces.images[keep], plus.labels[keep]),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--sets", type=Path, default=ROOT / "outputs" / "photo_sets", help="photo_sets.py --out"
    )
    parser.add_argument("--weights", nargs="+", default=list(PRETRAINED))
    parser.add_argument("--tta", nargs="+", default=["none", "hflip"])
    parser.add_argument("--tau", nargs="+", type=float, default=[0.0])
    parser.add_argument("--report", choices=["public", "private"], default="public")
    parser.add_argument("--detector", choices=["finder", "dlib"], default="finder")
    parser.add_argument("--no-fer", action="store_true", help="skip the FER2013/FER+ PrivateTest columns")
    parser.add_argument(
        "--sitters", nargs="+", help="score only these JAFFE sitters (e.g. KR MK: those a run left out)"
    )
    args = parser.parse_args(argv)
    if not (args.sets / "manifest.json").is_file():
        photo_sets.main(["--out", str(args.sets)])
    detector = FaceFinder() if args.detector == "finder" else DlibDetector()
    pipeline = Predictor(torch.nn.Identity(), EMOTIONS, detector, aligner=FaceAligner())
    names = ["jaffe-dev", "jaffe-crops", "crops-public", "wild-public"]
    if args.report == "private":
        names += ["crops-private", "wild-private"]
    sets = {}
    for name in names:
        crops, labels, sources = cached_crops(pipeline, name, args.detector, args.sets)
        if args.sitters and name.startswith("jaffe"):
            keep = np.array([p.name.split(".")[0] in args.sitters for p, _ in photo_set(name, args.sets)[1]])
            crops, labels, sources = crops[keep], labels[keep], [s for s, k in zip(sources, keep) if k]
        found = np.array([s != "none" for s in sources])
        sets[name] = (crops, labels, found)
        print(
            f"{name}: {found.sum()}/{len(found)} faces ({sources.count('fallback')} fallback)",
            file=sys.stderr,
        )
    _, _, sources = cached_crops(pipeline, "no-face", args.detector, args.sets)
    false_faces = {"images": len(sources), **{k: sources.count(k) for k in ("detected", "fallback")}}
    print(f"no-face: faces found in {false_faces} (each a false face)", file=sys.stderr)
    fer = {} if args.no_fer else fer_private()
    rows = []
    for weights in args.weights:
        net, classes = load_network(PRETRAINED.get(weights, weights))
        for tta in args.tta:
            mode = None if tta == "none" else tta
            cached = {n: seven_class_log_probs(net, classes, c, mode) for n, (c, _, _) in sets.items()}
            cached_fer = {n: seven_class_log_probs(net, classes, f, mode) for n, (f, _) in fer.items()}
            for tau in args.tau:
                row = {"weights": str(weights), "tta": tta, "tau": tau}
                for n, (_, labels, found) in sets.items():
                    row[n] = scores(cached[n], labels, found, tau)
                for n, (_, labels) in fer.items():
                    row[n] = scores(cached_fer[n], labels, np.ones(len(labels), bool), tau)
                rows.append(row)
                cells = "  ".join(
                    f"{n} {row[n]['acc']:.3f}/{row[n]['min_recall']:.2f}" for n in [*sets, *fer]
                )
                print(f"{Path(str(weights)).stem:>24} {tta:>5} tau {tau:<4} {cells}", file=sys.stderr)
    faces_found = {n: int(f.sum()) for n, (_, _, f) in sets.items()}
    result = {
        "rows": rows,
        "faces_found": faces_found,
        "no_face_false_faces": false_faces,
        "set_sizes": {n: len(f) for n, (_, _, f) in sets.items()},
    }
    emit(result)
    return result


if __name__ == "__main__":
    main()
