"""Labelled photo sets derived from the data in ``$FER_DATA_DIR``, for judging the photo pipeline::

    python benchmarks/photo_sets.py [--out outputs/photo_sets] [--per-class 30] [--seed 0]

Writes ``<out>/<set>/<class>/<name>.<ext>`` (``labels=folder`` reads them) and ``<out>/manifest.json``:

- ``jaffe-crops``: every jaffe-dev photo cut tight around its face (dlib's box, -5 % to +10 % per side) and
  shrunk to 32-120 px: a face crop as people upload them, small and without context.
- ``crops-public`` / ``crops-private``: FER2013 faces (PublicTest / PrivateTest) blown up from 48 px to
  64-160 px, clean: already a face crop.
- ``wild-public`` / ``wild-private``: other faces of the same split, blown up to 96-256 px and damaged the way
  web photos are (exposure, blur, noise, JPEG quality 30-85).
- ``no-face``: 210 images without a face, made hard on purpose for the whole-photo fallback (near square,
  50-400 px): JAFFE backgrounds and clothing, FER2013 faces cut into shuffled 8x8 blocks, text, noise,
  gradients and flat grey. A face found here is a false one.

FER2013 faces carry their FER+ majority label (Microsoft's rule, FER2013's seven classes; faces without one
are not drawn): the ten annotators' verdict is cleaner than FER2013's single label. ``*-public`` sets are for
choosing photo settings; ``*-private`` sets are reported only, never used to choose (PrivateTest's rule).
Deterministic for a seed; nothing here enters training.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np
import yaml
from common import DATA_DIR, ROOT

from fer_lightning.data.fer2013 import load_fer2013_csv
from fer_lightning.data.ferplus import label_votes, read_votes
from fer_lightning.emotions import EMOTIONS, SPLITS
from fer_lightning.faces.detectors import DlibDetector, read_image, to_gray
from fer_lightning.faces.labels import RegexLabels


def jaffe_rule() -> RegexLabels:
    """The project's JAFFE file-name rule, read from conf/labels/jaffe.yaml (its one home)."""
    spec = yaml.safe_load((ROOT / "conf" / "labels" / "jaffe.yaml").read_text())
    return RegexLabels(spec["pattern"], spec["codes"], spec["match_on"])


JAFFE_RULE = jaffe_rule()
SETS = ("jaffe-crops", "crops-public", "wild-public", "crops-private", "wild-private", "no-face")


def jaffe_crops(out: Path, rng: np.random.Generator) -> int:
    detector = DlibDetector(upsample=1, margin=0.0)
    count = 0
    for path in sorted((DATA_DIR / "jaffe-dev").glob("*.tiff")):
        label, _ = JAFFE_RULE(Path(path.name))
        gray = to_gray(read_image(path))
        box = detector.detect(gray)[0]
        grow = rng.uniform(-0.05, 0.10)
        x0, y0 = round(box.x - grow * box.w), round(box.y - grow * box.h)
        x1, y1 = round(box.x + box.w * (1 + grow)), round(box.y + box.h * (1 + grow))
        face = gray[max(0, y0) : y1, max(0, x0) : x1]
        side = int(rng.integers(32, 121))
        small = cv2.resize(
            face, (side, round(side * face.shape[0] / face.shape[1])), interpolation=cv2.INTER_AREA
        )
        write(out / "jaffe-crops" / EMOTIONS[label] / f"{path.stem}.png", small)
        count += 1
    return count


def ferplus_faces(split: str) -> tuple[np.ndarray, np.ndarray]:
    """The split's FER2013 faces that have a FER+ majority among FER2013's seven classes, and that label."""
    votes = read_votes(DATA_DIR / "ferplus" / "fer2013new.csv")
    faces = load_fer2013_csv(DATA_DIR / "fer2013" / "fer2013.csv")
    labels = label_votes(votes.votes, votes.splits, "majority", "fer2013")
    keep = labels.keep & (faces.splits == SPLITS.index(split))
    return faces.images[keep], labels.labels[keep]


def damaged(face: np.ndarray, rng: np.random.Generator) -> bytes:
    """A blown-up face with a web photo's damage, as JPEG bytes."""
    x = face.astype(np.float32) / 255
    x = x ** rng.uniform(0.7, 1.4)
    x = (x - x.mean()) * rng.uniform(0.7, 1.3) + x.mean() + rng.uniform(-0.1, 0.1)
    x = np.clip(x * 255, 0, 255)
    if rng.random() < 0.5:
        x = cv2.GaussianBlur(x, (0, 0), rng.uniform(0.5, 2.0))
    if rng.random() < 0.5:
        x = x + rng.normal(0, rng.uniform(2, 8), x.shape)
    ok, data = cv2.imencode(
        ".jpg", np.clip(x, 0, 255).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(30, 86))]
    )
    assert ok
    return data.tobytes()


def fer_sets(out: Path, split: str, per_class: int, rng: np.random.Generator) -> dict[str, int]:
    images, labels = ferplus_faces(split)
    counts = {}
    for c, name in enumerate(EMOTIONS):
        idx = rng.permutation(np.flatnonzero(labels == c))
        n = min(per_class, len(idx) // 2)  # a rare class (disgust) is shared between the two sets
        crops, wild = idx[:n], idx[n : 2 * n]
        for i in crops:
            side = int(rng.integers(64, 161))
            write(
                out / f"crops-{split}" / name / f"{split}_{i}.png",
                cv2.resize(images[i], (side, side), interpolation=cv2.INTER_CUBIC),
            )
        for i in wild:
            side = int(rng.integers(96, 257))
            big = cv2.resize(images[i], (side, side), interpolation=cv2.INTER_CUBIC)
            path = out / f"wild-{split}" / name / f"{split}_{i}.jpg"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(damaged(big, rng))
        counts[name] = (len(crops), len(wild))
    return counts


def shuffled_face(face: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A 48x48 face cut into 36 blocks of 8x8 put back in random order: face statistics, no face."""
    blocks = face.reshape(6, 8, 6, 8).transpose(0, 2, 1, 3).reshape(36, 8, 8)[rng.permutation(36)]
    return blocks.reshape(6, 6, 8, 8).transpose(0, 2, 1, 3).reshape(48, 48)


def no_face(out: Path, rng: np.random.Generator) -> int:
    folder = out / "no-face" / "none"
    jaffe = [to_gray(read_image(p)) for p in sorted((DATA_DIR / "jaffe-dev").glob("*.tiff"))]
    faces = load_fer2013_csv(DATA_DIR / "fer2013" / "fer2013.csv").images
    for i, gray in enumerate(jaffe[:40]):  # corners: wall and hair, small
        side = int(rng.integers(50, 110))
        y, x = [(0, 0), (0, 256 - side), (256 - side, 0), (256 - side, 256 - side)][i % 4]
        write(folder / f"jaffe_corner_{i}.png", gray[y : y + side, x : x + side])
    for i, gray in enumerate(jaffe[40:70]):  # shoulders or a side strip, blown up to photo size
        side = int(rng.integers(170, 400))
        write(
            folder / f"jaffe_part_{i}.png", cv2.resize(gray[170:, :] if i % 2 else gray[:, :60], (side, side))
        )
    for i in range(60):
        side = int(rng.integers(64, 400))
        face = shuffled_face(faces[rng.integers(len(faces))], rng)
        write(folder / f"shuffled_{i}.png", cv2.resize(face, (side, side), interpolation=cv2.INTER_CUBIC))
    for i in range(30):
        side = int(rng.integers(48, 400))
        noise = rng.integers(0, 256, (side, side)).astype(np.uint8)
        write(folder / f"noise_{i}.png", cv2.GaussianBlur(noise, (0, 0), 1 + i % 3))
        page = np.full((side, side), 200, np.uint8)
        cv2.putText(page, "FER 2013", (5, side // 2), cv2.FONT_HERSHEY_SIMPLEX, side / 150, 30, 2)
        write(folder / f"text_{i}.png", page)
    for i in range(10):
        side = int(rng.integers(48, 200))
        y, x = np.mgrid[0:side, 0:side]
        write(folder / f"gradient_{i}.png", ((x * (i + 1) + y * 3) % 256).astype(np.uint8))
        write(folder / f"flat_{i}.png", np.full((side, side), 20 * i, np.uint8))
    return len(list(folder.iterdir()))


def write(path: Path, image: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), image):
        raise OSError(f"could not write {path}")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "outputs" / "photo_sets")
    parser.add_argument("--per-class", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    manifest = {"seed": args.seed, "per_class": args.per_class, "jaffe-crops": jaffe_crops(args.out, rng)}
    for split in ("public", "private"):
        manifest[split] = fer_sets(args.out, split, args.per_class, rng)
    manifest["no-face"] = no_face(args.out, rng)
    (args.out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    print(json.dumps(manifest), file=sys.__stdout__)
    return manifest


if __name__ == "__main__":
    main()
