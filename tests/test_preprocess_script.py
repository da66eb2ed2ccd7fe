"""scripts/preprocess.py end to end, as a user runs it: a real subprocess on real photos."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from fer_lightning.data.fer2013 import parse_fer2013_csv
from tests.conftest import ROOT


def preprocess(tmp_path: Path, *overrides: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1"}
    cmd = [
        sys.executable,
        str(ROOT / "scripts" / "preprocess.py"),
        f"cache_dir={tmp_path / 'cache'}",
        f"hydra.run.dir={tmp_path / 'run'}",
        "progress=false",
        *overrides,
    ]
    return subprocess.run(
        cmd, check=False, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )


def test_jaffe_photos_to_fer2013_csv_then_cached_rerun(tmp_path, jaffe_dir):
    photos = tmp_path / "jaffe"
    photos.mkdir()
    for src in sorted(jaffe_dir.glob("*.tiff"))[::4]:
        (photos / src.name).symlink_to(src)
    (photos / "KA.HA9.99.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    # relative paths resolve against the working directory (Hydra does not chdir with version_base 1.3)
    first = preprocess(tmp_path, "input_dir=jaffe", "output=out/jaffe.csv", "labels=jaffe")
    assert first.returncode == 0, first.stderr
    assert (
        "27 with a face" in first.stdout and "unreadable: 1" in first.stdout and "CSV written" in first.stdout
    )
    arrays = parse_fer2013_csv(tmp_path / "out" / "jaffe.csv")
    assert len(arrays) == 27 and set(np.unique(arrays.labels)) == set(range(7))
    report = json.loads((tmp_path / "out" / "jaffe.report.json").read_text())
    assert (
        report["detector"]["name"] == "dlib" and report["unreadable"]["files"][0]["file"] == "KA.HA9.99.jpg"
    )

    second = preprocess(tmp_path, "input_dir=jaffe", "output=out/jaffe.csv", "labels=jaffe")
    assert second.returncode == 0, second.stderr
    assert "28 from cache, 0 processed" in second.stdout and "CSV unchanged" in second.stdout


def test_prefix_labels_haar_detector_and_test_split(tmp_path, jaffe_dir):
    photos = tmp_path / "mine"
    photos.mkdir()
    codes = {"AN": "anger", "HA": "happiness", "SU": "surprised"}
    for src in sorted(jaffe_dir.glob("*.tiff")):
        code = src.name.split(".")[1][:2]
        if code in codes and src.name.startswith(("KA", "KL")):
            Image.open(src).convert("RGB").save(photos / f"{codes[code]}_{src.stem}.JPG", quality=92)
    n = len(list(photos.iterdir()))
    result = preprocess(
        tmp_path,
        f"input_dir={photos}",
        f"output={tmp_path / 'mine.csv.gz'}",
        "labels=prefix",
        "detector=haar",
        "split=test",
        "seed=3",
    )
    assert result.returncode == 0, result.stderr
    arrays = parse_fer2013_csv(tmp_path / "mine.csv.gz")
    assert len(arrays) == n and not (arrays.splits == 0).any()  # split=test: no Training rows
    assert abs(int((arrays.splits == 1).sum()) - int((arrays.splits == 2).sum())) <= 3
    assert (tmp_path / "mine.report.json").is_file()


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    """Exit 1, no traceback, and the last stderr line is the one ``error:`` line holding every fragment."""
    assert result.returncode == 1, result.stderr[-2000:]
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and result.stderr.count("error: ") == 1, result.stderr[-2000:]
    assert all(f in last for f in fragments), last


def test_bad_arguments_fail_with_a_clear_message(tmp_path):
    missing = preprocess(tmp_path, "input_dir=does_not_exist", "output=x.csv")
    assert_one_line_error(missing, "input_dir=does_not_exist is not a folder")
    no_input = preprocess(tmp_path, "output=x.csv")
    assert no_input.returncode != 0 and "input_dir" in no_input.stderr


def test_wrong_settings_and_unwritable_places_are_one_line_errors(tmp_path, jaffe_dir):
    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy(next(jaffe_dir.glob("*.tiff")), photos)
    a_file = tmp_path / "a_file"
    a_file.write_text("not a folder")
    common = (f"input_dir={photos}", "labels=jaffe")
    assert_one_line_error(
        preprocess(tmp_path, *common, "output=x.csv", "+detector.upsampel=1"),
        "detector:",
        "unexpected keyword argument 'upsampel'",
    )
    assert_one_line_error(
        preprocess(tmp_path, *common, f"output={a_file}/x.csv"),
        f"output={a_file}/x.csv: cannot create its folder",
    )
    assert_one_line_error(
        preprocess(tmp_path, *common, "output=x.csv", f"cache_dir={a_file}/cache"),
        "cannot use the face cache",
        "use_cache=false",
    )
    assert_one_line_error(preprocess(tmp_path, *common, "output=x.csv", "split=val"), "split='val'")


def test_two_runs_sharing_the_face_cache_both_succeed_with_identical_csvs(tmp_path, jaffe_dir):
    """Two preprocessing processes at once on one cache: no "database is locked", and each CSV is complete."""
    photos = tmp_path / "photos"
    photos.mkdir()
    for src in sorted(jaffe_dir.glob("*.tiff"))[:40]:
        shutil.copy(src, photos / src.name)
    for attempt in range(2):  # a fresh cache each time: both runs detect every face and write their results
        cache, env = tmp_path / f"cache{attempt}", {**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1"}
        runs = [
            subprocess.Popen(
                [
                    sys.executable,
                    str(ROOT / "scripts" / "preprocess.py"),
                    f"input_dir={photos}",
                    f"output={tmp_path / f'{attempt}{who}.csv'}",
                    f"cache_dir={cache}",
                    "labels=jaffe",
                    "detector=haar",
                    "workers=0",
                    "progress=false",
                    f"hydra.run.dir={tmp_path / f'run{attempt}{who}'}",
                ],
                cwd=tmp_path,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for who in "ab"
        ]
        outputs = [run.communicate(timeout=300) for run in runs]
        for run, (_, stderr) in zip(runs, outputs):
            assert run.returncode == 0, stderr[-3000:]
        first, second = (parse_fer2013_csv(tmp_path / f"{attempt}{who}.csv") for who in "ab")
        assert len(first) == 40 and np.array_equal(first.images, second.images)
        assert np.array_equal(first.labels, second.labels) and np.array_equal(first.splits, second.splits)
    again = preprocess(
        tmp_path,
        f"input_dir={photos}",
        "output=again.csv",
        f"cache_dir={cache}",
        "labels=jaffe",
        "detector=haar",
    )
    assert again.returncode == 0 and "40 from cache, 0 processed" in again.stdout, again.stderr[-3000:]
