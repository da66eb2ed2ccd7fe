"""Shared fixtures: the real data directory and Hydra configs composed with the compose API (tiny limits)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from omegaconf import DictConfig, open_dict

from fer_lightning.utils.compose import compose_config as compose_conf_dir

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
os.environ.setdefault("PROJECT_ROOT", str(ROOT))
DATA_DIR = Path(os.environ.get("FER_DATA_DIR", ROOT.parent / "shared" / "data")).resolve()
os.environ["FER_DATA_DIR"] = str(DATA_DIR)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """FER_DATA_DIR (CI: ../shared/data). Every capability is exercised on this real data at least once."""
    if not (DATA_DIR / "fer2013").is_dir():
        pytest.fail(f"real data not found at {DATA_DIR}: set FER_DATA_DIR (CI uses ../shared/data)")
    return DATA_DIR


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    """One parse cache per test session, so the real CSV is parsed once and reused by every test."""
    path = tmp_path_factory.mktemp("fer-cache")
    os.environ["FER_CACHE_DIR"] = str(path)
    return path


def compose_config(config_name: str, overrides: list[str], output_dir: Path) -> DictConfig:
    """Compose a real config from conf/ as the script would, with run outputs in ``output_dir``."""
    return compose_conf_dir(ROOT / "conf", config_name, overrides, output_dir)


TINY_TRAIN = [
    "trainer.max_epochs=1",
    "trainer.accelerator=cpu",
    "trainer.limit_train_batches=3",
    "trainer.limit_val_batches=2",
    "trainer.limit_test_batches=2",
    "trainer.log_every_n_steps=1",
    "data.batch_size=32",
    "data.eval_batch_size=64",
    "callbacks.rich_progress_bar=null",
    "callbacks.model_summary=null",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
]


@pytest.fixture
def train_cfg(tmp_path, cache_dir, data_dir) -> DictConfig:
    """conf/train.yaml on the real FER2013 with a few batches per stage."""
    cfg = compose_config("train", TINY_TRAIN, tmp_path)
    with open_dict(cfg):
        cfg.paths.cache_dir = str(cache_dir)
    return cfg


# --- evaluation / prediction / Grad-CAM fixtures
# -------------------------------------------------------------------

JAFFE_PHOTOS = "jaffe-dev"


@pytest.fixture(scope="session")
def jaffe_dir(data_dir) -> Path:
    """The real JAFFE photos (256x256 gray TIFFs, one face each): the prediction and Grad-CAM tests' input."""
    path = data_dir / JAFFE_PHOTOS
    if not any(path.glob("*.tiff")):
        pytest.fail(f"JAFFE photos not found in {path}")
    return path


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory, cache_dir, data_dir) -> Path:
    """A Lightning checkpoint trained once per session on real FER2013 (a few batches, as in
    test_train.py)."""
    out = tmp_path_factory.mktemp("tiny-train")
    cfg = compose_config("train", [*TINY_TRAIN, "test=false"], out)
    with open_dict(cfg):
        cfg.paths.cache_dir = str(cache_dir)
    from fer_lightning.tasks import train  # imported here: collecting other tests stays fast

    train.run(cfg)
    ckpt = out / "checkpoints" / "last.ckpt"
    assert ckpt.is_file()
    return ckpt


@pytest.fixture(scope="session")
def tiny_weights(tiny_checkpoint, tmp_path_factory) -> Path:
    """The session checkpoint exported to the weights-only format that fer_lightning/weights/ ships."""
    from fer_lightning.checkpoints import export_weights

    return export_weights(
        tiny_checkpoint, tmp_path_factory.mktemp("weights") / "tiny.pt", meta={"note": "test"}
    )


def run_script(name: str, *overrides: str, env: dict | None = None, timeout: int = 600):
    """Run ``scripts/<name>.py`` as a real process with Hydra overrides; returns the CompletedProcess."""
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / f"{name}.py"), *overrides],
        check=False,
        cwd=ROOT,
        env=env or os.environ.copy(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def assert_one_line_error(name: str, message: str, *overrides: str) -> None:
    """``scripts/<name>.py`` with ``overrides`` exits 1 and its last stderr line starts with ``message``."""
    result = run_script(name, *overrides)
    assert result.returncode == 1, result.stderr[-2000:]
    assert result.stderr.strip().splitlines()[-1].startswith(message), result.stderr[-2000:]


def unreadable_photos(folder: Path) -> Path:
    """``folder`` with two files that carry a photo suffix but no decoder can read: empty, and text."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "notes.jpg").write_text("not a photo")
    return folder
