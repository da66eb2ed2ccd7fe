"""Photo folder → FER2013 CSV + report, per-image cache, splits, labels, and PhotoFolderSource, on real
photos."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path, PurePosixPath

import cv2
import numpy as np
import pytest
from PIL import Image

from fer_lightning.faces import fer2013_csv
from fer_lightning.data.arrays import SPLITS, FERArrays
from fer_lightning.faces.extract import extract_faces
from fer_lightning.faces.detectors import DlibDetector, NoDetector
from fer_lightning.data.fer2013 import load_fer2013_csv, parse_fer2013_csv
from fer_lightning.faces.labels import FolderLabels, RegexLabels
from fer_lightning.faces.pipeline import preprocess_folder, report_path
from fer_lightning.faces.source import PhotoFolderSource
from fer_lightning.faces.walk import find_photos
from fer_lightning.faces.splits import OUTSIDE, PRIVATE, PUBLIC, TRAIN, assign_splits
from fer_lightning.emotions import EMOTION_TO_ID
from fer_lightning.tasks.preprocess import summarize
from tests.conftest import compose_config

JAFFE = RegexLabels(
    r"^[A-Za-z]+\.(?P<label>[A-Za-z]{2})\d*\.",
    {
        "AN": "angry",
        "DI": "disgust",
        "FE": "fear",
        "HA": "happy",
        "SA": "sad",
        "SU": "surprise",
        "NE": "neutral",
    },
)
CLASSES = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")


@pytest.fixture
def jaffe_folder(tmp_path: Path, jaffe_dir: Path) -> Path:
    """22 real JAFFE photos (symlinked) plus the awkward files a real collection has, nested, mixed case."""
    folder = tmp_path / "photos"
    (folder / "Session 2").mkdir(parents=True)
    photos = sorted(jaffe_dir.glob("*.tiff"))[::5]
    for i, src in enumerate(photos):
        dst = folder / ("Session 2" if i % 3 == 0 else "") / (src.stem + (".TIFF" if i % 4 == 0 else ".tiff"))
        dst.symlink_to(src)
    face = np.asarray(Image.open(photos[0]).convert("L"))
    jpg = folder / "KA.HA9.900.jpg"
    Image.fromarray(face).save(jpg, quality=90)
    (folder / "KA.SA9.901.jpg").write_bytes(jpg.read_bytes()[:3000])  # truncated
    (folder / "KA.SU9.902.jpg").write_text("not a photo")  # text with a photo suffix
    rgba = np.dstack([face, face, face, np.full_like(face, 255)])
    Image.fromarray(rgba, "RGBA").save(folder / "KA.NE9.903.png")
    Image.fromarray(face.astype(np.uint16) * 257).save(folder / "KA.AN9.904.png")  # 16-bit
    cv2.imwrite(str(folder / "KA.FE9.905.bmp"), np.full((200, 300), 127, np.uint8))  # no face
    Image.fromarray(face).save(folder / "XX.ZZ1.906.jpg")  # unknown label code
    (folder / "notes.txt").write_text("ignored: not a photo suffix")
    (folder / "._KA.HA1.29.jpg").write_bytes(b"\x00\x05\x16\x07")  # macOS resource fork: hidden, skipped
    return folder


def run(folder: Path, tmp_path: Path, **kwargs) -> dict:
    kwargs = {
        "detector": DlibDetector(),
        "labels": JAFFE,
        "cache_dir": tmp_path / "cache",
        "progress": False,
        **kwargs,
    }
    return preprocess_folder(folder, tmp_path / "out" / "faces.csv", **kwargs)


def test_preprocess_writes_csv_and_report_and_survives_bad_files(jaffe_folder, tmp_path):
    report = run(jaffe_folder, tmp_path)
    assert report["files_seen"] == 29  # 22 JAFFE + 7 generated photo files; .txt and ._ files not counted
    assert report["unknown_labels"]["files"] == [{"file": "XX.ZZ1.906.jpg", "label": "ZZ"}]
    assert {u["file"] for u in report["unreadable"]["files"]} == {"KA.SA9.901.jpg", "KA.SU9.902.jpg"}
    assert report["no_face"] == {"policy": "skip", "count": 1, "files": ["KA.FE9.905.bmp"]}
    assert report["faces_found"] == 25 and report["rows_written"] == 25  # 22 + jpg + RGBA + 16-bit
    assert report["from_cache"] == 0 and report["csv_written"]
    on_disk = json.loads(report_path(tmp_path / "out" / "faces.csv").read_text())
    assert on_disk["rows_by_usage"] == report["rows_by_usage"]
    assert sum(report["rows_by_usage"].values()) == 25 and report["rows_by_usage"]["Training"] > 12

    arrays = load_fer2013_csv(tmp_path / "out" / "faces.csv", tmp_path / "cache")
    assert len(arrays) == 25 and arrays.images.dtype == np.uint8
    assert np.bincount(arrays.labels, minlength=7).tolist() == list(report["rows_by_class"].values())
    assert not list((tmp_path / "out").glob(".*tmp"))  # no temp files left behind


def test_rerun_uses_the_cache_and_processes_only_new_or_changed_files(jaffe_folder, tmp_path):
    first = run(jaffe_folder, tmp_path)
    csv = tmp_path / "out" / "faces.csv"
    mtime = csv.stat().st_mtime_ns
    again = run(jaffe_folder, tmp_path)
    assert again["from_cache"] == first["files_processed"] and again["files_processed"] == 0
    assert not again["csv_written"] and csv.stat().st_mtime_ns == mtime  # unchanged CSV keeps its parse cache
    assert again["content_sha1"] == first["content_sha1"]

    changed = jaffe_folder / "KA.HA9.900.jpg"
    os.utime(changed, ns=(changed.stat().st_atime_ns, changed.stat().st_mtime_ns + 10**9))
    Image.open(changed).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(jaffe_folder / "KA.HA9.907.jpg")
    third = run(jaffe_folder, tmp_path)
    assert third["files_processed"] == 2 and third["rows_written"] == first["rows_written"] + 1
    assert third["csv_written"]
    # other detector settings are a different cache key
    assert run(jaffe_folder, tmp_path, detector=DlibDetector(margin=0.2))["from_cache"] == 0


def test_center_crop_policy_keeps_no_face_photos_and_lists_them(jaffe_folder, tmp_path):
    report = run(jaffe_folder, tmp_path, no_face="center_crop")
    assert report["no_face"]["files"] == ["KA.FE9.905.bmp"] and report["rows_written"] == 26


def test_fer2013_image_folders_with_no_detector(tmp_path, data_dir):
    """A small slice of the Kaggle image folders: labels from class folders, Usage from train/ test/ +
    names."""
    src = data_dir / "fer2013-images"
    for top in ("train", "test"):
        for cls in CLASSES:
            (tmp_path / "fer" / top / cls).mkdir(parents=True)
            for f in sorted((src / top / cls).glob("*.jpg"))[:4]:
                (tmp_path / "fer" / top / cls / f.name).symlink_to(f)
    report = preprocess_folder(
        tmp_path / "fer",
        tmp_path / "fer.csv",
        NoDetector(),
        FolderLabels(),
        cache_dir=tmp_path / "cache",
        progress=False,
    )
    assert report["rows_written"] == 56 and report["rows_by_usage"]["Training"] == 28
    arrays = parse_fer2013_csv(tmp_path / "fer.csv")
    photos = [p.rel for p in find_photos(tmp_path / "fer").photos]
    for i in (0, 27, 28, 55):  # rows follow the sorted relative paths; the crop of a 48x48 face is the face
        rel = photos[i]
        expected = cv2.imread(str(src / rel), cv2.IMREAD_GRAYSCALE)
        np.testing.assert_array_equal(arrays.images[i], expected)
        assert arrays.labels[i] == EMOTION_TO_ID[rel.parts[1]]
        name_split = {"PublicTest": PUBLIC, "PrivateTest": PRIVATE}.get(rel.name.split("_")[0], TRAIN)
        assert arrays.splits[i] == name_split  # the original FER2013 split survives via the file names


def test_photo_folder_source_loads_arrays_and_reuses_them(jaffe_folder, tmp_path):
    source = PhotoFolderSource(
        jaffe_folder, DlibDetector(), JAFFE, cache_dir=tmp_path / "cache", progress=False
    )
    arrays = source()
    assert isinstance(arrays, FERArrays) and len(arrays) == 25
    assert all(len(arrays.split(s)[0]) for s in SPLITS)  # auto split of a flat folder still has val/test rows
    assert source.load() is arrays
    assert source.output.parent == tmp_path / "cache" / "photos" and source.output.is_file()
    again = PhotoFolderSource(
        jaffe_folder, DlibDetector(), JAFFE, cache_dir=tmp_path / "cache", progress=False
    )
    assert again.output == source.output and np.array_equal(again.load().images, arrays.images)
    assert again.report["from_cache"] == 28  # every photo with a known label, unreadable ones too


def test_photos_data_config_composes_and_instantiates(tmp_path, jaffe_folder):
    import hydra

    cfg = compose_config(
        "train",
        [
            "data=photos",
            f"data.source.input_dir={jaffe_folder}",
            "detector@data.source.detector=haar",
            "labels@data.source.labels=jaffe",
            f"paths.cache_dir={tmp_path / 'cache'}",
        ],
        tmp_path,
    )
    source = hydra.utils.instantiate(cfg.data.source)
    assert isinstance(source, PhotoFolderSource) and source.detector.name == "haar"
    assert source.labels(PurePosixPath("KA.HA1.29.tiff"))[0] == EMOTION_TO_ID["happy"]
    assert source.cache_dir == tmp_path / "cache"
    with pytest.raises(Exception, match="input_dir"):
        hydra.utils.instantiate(compose_config("train", ["data=photos"], tmp_path).data.source)


def test_labels_presets():
    folder = FolderLabels()
    assert folder(PurePosixPath("train/happy/x.jpg")) == (EMOTION_TO_ID["happy"], "happy")
    assert folder(PurePosixPath("Anger/day 1/x.jpg")) == (EMOTION_TO_ID["angry"], "Anger")
    assert folder(PurePosixPath("misc/x.jpg")) == (None, "misc")
    prefix = RegexLabels(r"^(?P<label>[A-Za-z]+)")
    assert prefix(PurePosixPath("sub/anger_01.jpg")) == (EMOTION_TO_ID["angry"], "anger")
    assert prefix(PurePosixPath("Surprised-3.png"))[0] == EMOTION_TO_ID["surprise"]
    assert prefix(PurePosixPath("IMG_0001.jpg")) == (None, "IMG")
    assert JAFFE(PurePosixPath("KA.AN1.39.tiff")) == (EMOTION_TO_ID["angry"], "AN")
    assert JAFFE(PurePosixPath("KM.NE3.3.tiff"))[0] == EMOTION_TO_ID["neutral"]
    with pytest.raises(ValueError, match="capturing group"):
        RegexLabels(r"^[a-z]+")
    with pytest.raises(ValueError, match="unknown classes"):
        RegexLabels(r"(x)", {"x": "bored"})


def test_splits_are_stratified_deterministic_and_honour_folders():
    rels = [PurePosixPath(f"p{i:03d}.jpg") for i in range(140)]
    labels = [i % 7 for i in range(140)]
    test = assign_splits(rels, labels, "test", seed=1)
    assert set(test) == {PUBLIC, PRIVATE}
    for c in range(7):  # each class halved
        in_class = test[np.array(labels) == c]
        assert abs(int((in_class == PUBLIC).sum()) - int((in_class == PRIVATE).sum())) <= 1
    shuffled = assign_splits(rels[::-1], labels[::-1], "test", seed=1)
    np.testing.assert_array_equal(shuffled[::-1], test)  # the walk order does not matter, the seed does
    assert not np.array_equal(assign_splits(rels, labels, "test", seed=2), test)

    flat = assign_splits(rels, labels, "auto", seed=0, test_fraction=0.2)
    assert (flat == TRAIN).sum() == 112 and (flat != TRAIN).sum() == 28
    nested = [
        PurePosixPath("train/a.jpg"),
        PurePosixPath("Test/b.jpg"),
        PurePosixPath("test/PrivateTest_1.jpg"),
        PurePosixPath("extra/c.jpg"),
    ]
    split = assign_splits(nested, [0, 0, 0, 0], "auto")
    assert split[0] == TRAIN and split[2] == PRIVATE and split[1] in (PUBLIC, PRIVATE) and split[3] == OUTSIDE
    assert (assign_splits(nested, [0] * 4, "train") == TRAIN).all()


def test_csv_write_is_atomic_and_round_trips(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    arrays = FERArrays(
        rng.integers(0, 256, (5, 48, 48), dtype=np.uint8),
        np.arange(5, dtype=np.int64),
        np.array([0, 1, 2, 0, 1], np.int8),
    )
    out = tmp_path / "faces.csv"
    fer2013_csv.write_fer2013_csv(out, arrays)
    back = parse_fer2013_csv(out)
    for a, b in zip((arrays.images, arrays.labels, arrays.splits), (back.images, back.labels, back.splits)):
        np.testing.assert_array_equal(a, b)
    before = out.read_bytes()

    def broken_lines(_arrays):
        yield b"emotion,pixels,Usage\n"
        raise RuntimeError("disk full")

    monkeypatch.setattr(fer2013_csv, "_lines", broken_lines)
    with pytest.raises(RuntimeError, match="disk full"):
        fer2013_csv.write_fer2013_csv(out, arrays)
    assert out.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["faces.csv"]


def test_missing_input_folder_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="is not a folder"):
        preprocess_folder(tmp_path / "nope", tmp_path / "x.csv", NoDetector(), progress=False)


def test_process_pool_matches_in_process_results(jaffe_folder):
    refs = [p.ref for p in find_photos(jaffe_folder).photos if p.ref is not None]
    serial, _ = extract_faces(refs, DlibDetector(), None, workers=0, progress=False)
    pooled, _ = extract_faces(
        refs, DlibDetector(), None, workers=2, progress=False, probe_s=0.0
    )  # forces the pool
    assert serial.keys() == pooled.keys()
    assert all(serial[k] == pooled[k] for k in serial)


@pytest.mark.slow
def test_all_fer2013_image_folders_reproduce_the_csv_split_and_class_counts(tmp_path, data_dir):
    report = preprocess_folder(
        data_dir / "fer2013-images",
        tmp_path / "fer.csv",
        NoDetector(),
        FolderLabels(),
        cache_dir=tmp_path / "cache",
        progress=False,
    )
    reference = load_fer2013_csv(data_dir / "fer2013" / "fer2013.csv", tmp_path / "cache")
    arrays = load_fer2013_csv(tmp_path / "fer.csv", tmp_path / "cache")
    assert report["rows_written"] == len(reference) == 35887 and report["unreadable"]["count"] == 0
    assert arrays.counts() == reference.counts()


class _ChokesOnSmallImages(NoDetector):
    """A stand-in for a backend bug that only some images trigger."""

    def detect(self, image, bgr=False):
        if min(np.asarray(image).shape[:2]) < 100:
            raise ValueError("pyramid is empty")
        return super().detect(image, bgr)


def test_a_detector_error_on_one_file_is_reported_not_fatal(jaffe_folder, tmp_path):
    Image.fromarray(np.zeros((20, 20), np.uint8)).save(jaffe_folder / "KA.HA9.950.png")
    report = run(jaffe_folder, tmp_path, detector=_ChokesOnSmallImages())
    failed = [u for u in report["unreadable"]["files"] if u["file"] == "KA.HA9.950.png"]
    assert failed and "detector failed (ValueError: pyramid is empty)" in failed[0]["error"]
    assert (
        report["rows_written"] == 26
    )  # everything else still came through (the no-face bmp too: none detector)


# --- the folder walk: symlink loops, links out of the folder, entries that cannot be read
# ---------------------


@pytest.fixture
def ten_photos(tmp_path: Path, jaffe_dir: Path) -> Path:
    """Ten real JAFFE photos copied into a folder of their own."""
    folder = tmp_path / "ten"
    folder.mkdir()
    for src in sorted(jaffe_dir.glob("*.tiff"))[:10]:
        shutil.copy(src, folder / src.name)
    return folder


def test_a_symlink_loop_skips_that_entry_only_and_is_counted_in_the_report(ten_photos, tmp_path):
    for name in (
        "a_loop",
        "m_loop",
        "z_loop",
    ):  # wherever the directory order puts them, none may hide a photo
        (ten_photos / name).symlink_to(name)
    (ten_photos / "self.jpg").symlink_to("self.jpg")
    photos, skipped = find_photos(ten_photos)
    assert len(photos) == 10 and all(p.ref is not None for p in photos)
    assert [(s.rel.as_posix(), s.reason) for s in skipped] == [
        ("a_loop", "symlink loop"),
        ("m_loop", "symlink loop"),
        ("self.jpg", "symlink loop"),
        ("z_loop", "symlink loop"),
    ]

    report = run(ten_photos, tmp_path)
    assert report["files_seen"] == 10 and report["rows_written"] == 10
    assert report["skipped_entries"]["count"] == 4
    assert {"file": "self.jpg", "reason": "symlink loop"} in report["skipped_entries"]["files"]
    assert "4 entries skipped while listing (first: 'a_loop': symlink loop)" in summarize(report)


def test_links_out_of_the_folder_are_followed_and_loops_or_second_links_skipped(
    ten_photos, tmp_path, jaffe_dir
):
    """The policy: follow links wherever they lead, list each real folder once, skip (and count) the rest."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for src in sorted(jaffe_dir.glob("*.tiff"))[20:23]:
        shutil.copy(src, elsewhere / src.name)
    (ten_photos / "linked").symlink_to(elsewhere)  # a folder outside: followed
    (ten_photos / "KL.HA1.999.tiff").symlink_to(elsewhere / next(elsewhere.iterdir()).name)  # a file outside
    (ten_photos / "linked_again").symlink_to(elsewhere)  # the same real folder twice: listed once
    (ten_photos / "sub").mkdir()
    (ten_photos / "sub" / "up").symlink_to(tmp_path)  # a folder above the input folder: a loop
    (ten_photos / "broken.jpg").symlink_to(
        tmp_path / "missing.jpg"
    )  # a photo name leading nowhere: unreadable
    os.mkfifo(ten_photos / "pipe.jpg")  # would block the decoder forever if it were opened

    photos, skipped = find_photos(ten_photos)
    readable = [p.rel.as_posix() for p in photos if p.ref is not None]
    assert len(readable) == 14 and sum(r.startswith("linked/") for r in readable) == 3
    assert "KL.HA1.999.tiff" in readable and not any(
        r.startswith(("linked_again/", "sub/")) for r in readable
    )
    assert {p.rel.as_posix(): p.error for p in photos if p.ref is None} == {
        "broken.jpg": "cannot stat (No such file or directory)",
        "pipe.jpg": "not a regular file",
    }
    assert {s.rel.as_posix(): s.reason for s in skipped} == {
        "linked_again": "links to a folder already listed as 'linked'",
        "sub/up": "symlink loop (links to a folder that contains it)",
    }

    report = run(ten_photos, tmp_path)
    assert report["rows_written"] == 14 and report["unreadable"]["count"] == 2
    assert report["skipped_entries"]["count"] == 2
