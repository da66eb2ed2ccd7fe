"""The browser demo: the analysis behind it on real JAFFE photos, its one-line start-up errors, and the real
server (``scripts/demo.py``) driven end to end by a headless chromium through selenium.

The browser test needs chromium and its driver (Debian: ``apt-get install -y chromium chromium-driver``);
without them it is skipped with that reason. ``FER_UPDATE_SCREENSHOTS=1`` also saves the result page to
``docs/demo.png``.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import cv2
import numpy as np
import pytest
from PIL import Image

from fer_lightning.demo.analysis import FACE_VIEW_PX, FaceAnalyser, face_view
from fer_lightning.errors import ConfigError, DetectorUnavailableError, FERError, ImageReadError
from fer_lightning.explain.review import explain_photos
from fer_lightning.images import read_image, to_gray
from fer_lightning.faces.align import FaceAligner
from fer_lightning.predict import Predictor
from fer_lightning.tasks import demo as demo_task
from fer_lightning.tasks.demo import checked_address
from fer_lightning.utils.io import write_bytes
from tests.conftest import ROOT, compose_config

SINGLE = "KA.SU3.38.tiff"
PAIR = ("KM.HA2.5.tiff", "KR.SU2.81.tiff")  # side by side: a photo with two faces
SCREENSHOT = ROOT / "docs" / "demo.png"
SCREENSHOT_MAX_BYTES = 300_000


@pytest.fixture(scope="module")
def predictor() -> Predictor:
    # the shipped weights with the eyes levelled, as the demo serves them by default (align: true)
    return Predictor.from_pretrained(aligner=FaceAligner())


@pytest.fixture(scope="module")
def analyser(predictor) -> FaceAnalyser:
    return FaceAnalyser(predictor)


def two_faces_png(jaffe_dir: Path, folder: Path) -> Path:
    """Two real JAFFE photos side by side, saved losslessly as PNG (a format every browser displays)."""
    path = folder / "two_faces.png"
    cv2.imwrite(str(path), np.hstack([to_gray(read_image(jaffe_dir / name)) for name in PAIR]))
    return path


def gray_png(folder: Path) -> Path:
    path = folder / "no_face.png"
    cv2.imwrite(str(path), np.full((240, 320, 3), 127, np.uint8))
    return path


# --- the analysis the page shows ---------------------------------------------------------------------------


def test_analysis_agrees_with_predict_and_gradcam_scripts(analyser, predictor, jaffe_dir):
    result = analyser.analyse(jaffe_dir / SINGLE)
    expected = predictor.predict(jaffe_dir / SINGLE)
    assert result.image.shape == (256, 256, 3) and result.image.dtype == np.uint8
    assert len(result.faces) == len(expected) == 1
    face, want = result.faces[0], expected[0]
    assert (face.number, face.box, face.label) == (1, want.box, want.label)
    assert face.probabilities == pytest.approx(want.probabilities)
    b = want.box
    assert result.boxes() == [((b.x, b.y, b.x + b.w, b.y + b.h), face.caption)]
    assert face.caption == f"face 1: {want.label} {want.confidence:.0%}"
    # the crop | Grad-CAM strip is the one scripts/gradcam.py draws for the same face
    explanation, found = explain_photos(predictor, jaffe_dir / SINGLE)
    assert np.array_equal(found.crops[0], want.crop)
    assert face.view.shape == (FACE_VIEW_PX, 2 * FACE_VIEW_PX, 3) and face.view.dtype == np.uint8
    assert np.array_equal(face.view, face_view(want.crop, explanation.cam[0]))
    crop_half, cam_half = face.view[:, :FACE_VIEW_PX], face.view[:, FACE_VIEW_PX:]
    assert np.ptp(crop_half[..., 0].astype(int) - crop_half[..., 2]) == 0  # the crop is gray
    assert np.abs(cam_half[..., 0].astype(int) - cam_half[..., 2]).mean() > 20  # the heat map is not


def test_every_face_of_a_photo_largest_first(analyser, predictor, jaffe_dir, tmp_path):
    photo = two_faces_png(jaffe_dir, tmp_path)
    result = analyser.analyse(photo)
    expected = predictor.predict(photo)
    assert len(result.faces) == 2
    assert [f.label for f in result.faces] == [f.label for f in expected]
    assert [f.number for f in result.faces] == [1, 2]
    assert result.faces[0].box.area > result.faces[1].box.area
    assert [box for box, _ in result.boxes()] == [
        (f.box.x, f.box.y, f.box.x + f.box.w, f.box.y + f.box.h) for f in expected
    ]


def test_no_face_and_unreadable_file(analyser, tmp_path):
    assert analyser.analyse(gray_png(tmp_path)).faces == []
    assert analyser.analyse(np.zeros((100, 100), np.uint8), color="gray").boxes() == []
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image at all")
    with pytest.raises(ImageReadError, match="not an image"):
        analyser.analyse(broken)


# --- scripts/demo.py's start-up errors ---------------------------------------------------------------------


def free_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as s:
        return s.getsockname()[1]


def test_a_taken_port_fails_before_the_model_loads(tmp_path, monkeypatch):
    def no_model(*args, **kwargs):
        raise AssertionError("the model was loaded before the port was checked")

    monkeypatch.setattr(Predictor, "from_checkpoint", no_model)
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        cfg = compose_config("demo", [f"port={port}"], tmp_path)
        with pytest.raises(ConfigError, match=f"cannot serve on host=127.0.0.1 port={port}: Address already"):
            demo_task.run(cfg)


@pytest.mark.parametrize("port", [0, 70000, "http", True])
def test_a_port_that_is_not_one(port):
    with pytest.raises(ConfigError, match="expected a TCP port number from 1 to 65535"):
        checked_address("127.0.0.1", port)


@pytest.fixture
def without_gradio(monkeypatch):
    """gradio made absent, as ``sys.modules[name] = None`` does (importing it raises ImportError): a run that
    got past its checks fails on the import instead of serving forever."""
    monkeypatch.setitem(sys.modules, "gradio", None)
    monkeypatch.delitem(sys.modules, "fer_lightning.demo.app", raising=False)


def test_without_gradio_the_error_names_the_extra(tmp_path, without_gradio):
    cfg = compose_config("demo", [f"port={free_port()}"], tmp_path)
    with pytest.raises(FERError, match=re.escape("scripts/demo.py needs gradio")) as failure:
        demo_task.run(cfg)
    assert str(failure.value).endswith("pip install -e '.[demo]'")


def test_settings_fail_before_serving(tmp_path, without_gradio, monkeypatch):
    cfg = compose_config("demo", [f"port={free_port()}", "target_layer=no.such.layer"], tmp_path)
    with pytest.raises(ConfigError, match=r"target_layer=.no.such.layer.: .* is not a module of MiniX"):
        demo_task.run(cfg)
    # an optional detector package that is missing fails at start-up, not on every upload
    monkeypatch.setitem(sys.modules, "facenet_pytorch", None)
    cfg = compose_config("demo", [f"port={free_port()}", "detector=mtcnn"], tmp_path)
    with pytest.raises(DetectorUnavailableError, match="detector=mtcnn needs the optional package"):
        demo_task.run(cfg)


# --- the real server in a real browser ---------------------------------------------------------------------


def browser_paths() -> tuple[str, str]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not (chromium and driver):
        pytest.skip("needs chromium and chromedriver (Debian: apt-get install -y chromium chromium-driver)")
    return chromium, driver


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """``scripts/demo.py`` as a real process on a free port; yields its URL, and its process for checks."""
    pytest.importorskip("gradio", reason="the demo extra is not installed: pip install -e '.[demo]'")
    run_dir = tmp_path_factory.mktemp("demo-run")
    port = free_port()
    log = open(run_dir / "server.log", "w")  # noqa: SIM115 - closed at teardown, after the process
    process = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "scripts" / "demo.py"),
            f"port={port}",
            "device=cpu",
            f"hydra.run.dir={run_dir}",
        ],
        cwd=ROOT,
        env={**os.environ, "GRADIO_TEMP_DIR": str(run_dir / "uploads")},  # not the shared /tmp/gradio
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                pytest.fail(
                    f"the demo exited with {process.returncode}:\n{(run_dir / 'server.log').read_text()}"
                )
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"the demo did not answer in 120 s:\n{(run_dir / 'server.log').read_text()}")
            time.sleep(0.5)
        yield url, process
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@pytest.fixture(scope="module")
def browser():
    chromium, driver_path = browser_paths()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    # --no-sandbox: chromium refuses to start as root (CI containers) with its sandbox on
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1200,1500"):
        options.add_argument(arg)
    # a camera without hardware or a permission prompt: a generated test pattern
    options.add_argument("--use-fake-device-for-media-stream")
    options.add_argument("--use-fake-ui-for-media-stream")
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})  # every request the page makes
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    try:
        yield driver
    finally:
        driver.quit()


class DemoPage:
    """The demo page in the browser: upload a file or take a picture, clear it, read what the page says."""

    ACCESS_WEBCAM = "//*[@id='photo']//button[contains(., 'Access Webcam')]"

    def __init__(self, driver, url: str) -> None:
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import WebDriverWait

        self.driver, self.by = driver, By
        self.wait = WebDriverWait(driver, 30)
        driver.get(url)
        self.wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#photo input[type=file]"))

    def texts(self, css: str) -> list[str]:
        """The visible text of every element matching ``css``, read in one step: the page re-renders while
        results arrive, and an element looked up in one call may be gone by the next."""
        script = "return Array.from(document.querySelectorAll(arguments[0])).map(e => e.innerText.trim())"
        return self.driver.execute_script(script, css)

    def status(self) -> str:
        return self.driver.execute_script("return document.querySelector('#status textarea').value")

    def labels(self) -> list[str]:
        return self.texts(".face-label [data-testid=label-output-value]")

    def block_labels(self) -> list[str]:
        return self.texts("[data-testid=block-label]")

    def broken_images(self) -> list[str]:
        """Sources of the page's images that the browser could not show (none may still be loading)."""
        script = (
            "return Array.from(document.images).filter(i => !i.complete || !i.naturalWidth).map(i => i.src)"
        )
        return self.driver.execute_script(script)

    def upload(self, path: Path, until: str, faces: int = 0) -> str:
        """Upload ``path``, wait for a status line containing ``until`` and for ``faces`` per-face rows (drawn
        by a second event once the status is in); returns the status line."""
        self.driver.find_element(self.by.CSS_SELECTOR, "#photo input[type=file]").send_keys(str(path))
        self.wait.until(lambda _: until in self.status() and len(self.labels()) == faces)
        return self.status()

    def clear(self) -> None:
        self.driver.find_element(self.by.CSS_SELECTOR, "#photo button[aria-label='Remove Image']").click()
        self.wait.until(lambda _: self.status().startswith("Upload a photo") and not self.labels())

    def capture_from_camera(self, until: str) -> str:
        """Switch the photo to the camera, take a picture, wait for a status line containing ``until``."""
        camera = "#photo button[aria-label='Capture from camera']"
        self.driver.find_element(self.by.CSS_SELECTOR, camera).click()
        self.wait.until(lambda d: d.find_elements(self.by.XPATH, self.ACCESS_WEBCAM))
        self.driver.find_element(self.by.XPATH, self.ACCESS_WEBCAM).click()
        capture = "#photo button[aria-label='capture photo']"
        self.wait.until(lambda d: d.find_elements(self.by.CSS_SELECTOR, capture))
        self.driver.find_element(self.by.CSS_SELECTOR, capture).click()
        self.wait.until(lambda _: until in self.status())
        return self.status()

    def external_requests(self) -> list[str]:
        """URLs the page asked for that are neither the demo's own server nor inline data."""
        urls = []
        for entry in self.driver.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            if message["method"] == "Network.requestWillBeSent":
                urls.append(message["params"]["request"]["url"])
        assert urls, "the browser reported no requests at all"
        return [
            u
            for u in urls
            if urlparse(u).scheme not in ("data", "blob") and urlparse(u).hostname != "127.0.0.1"
        ]


def save_screenshot(driver) -> None:
    """The page as PNG, quantized to 256 colours to keep docs/ small."""
    image = Image.open(io.BytesIO(driver.get_screenshot_as_png())).convert("RGB").quantize(256)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    assert len(buffer.getvalue()) <= SCREENSHOT_MAX_BYTES, len(buffer.getvalue())
    write_bytes(SCREENSHOT, buffer.getvalue())


def test_the_page_in_a_browser(browser, server, predictor, jaffe_dir, tmp_path):
    url, process = server
    page = DemoPage(browser, url)
    assert page.status().startswith("Upload a photo")

    # a real JAFFE photo straight from the data folder (a TIFF: the browser cannot show it, the server can)
    status = page.upload(jaffe_dir / SINGLE, until="found (detector: finder)", faces=1)
    want = predictor.predict(jaffe_dir / SINGLE)[0]
    assert page.labels() == [want.label]
    assert status.startswith("1 face found") and f"face 1: {want.label} {want.confidence:.0%}" in status

    # two faces in one photo: one box, one label and one Grad-CAM strip each, in the predictor's order
    page.clear()
    photo = two_faces_png(jaffe_dir, tmp_path)
    status = page.upload(photo, until="found (detector: finder)", faces=2)
    assert status.startswith("2 faces found")
    faces = predictor.predict(photo)
    assert page.labels() == [f.label for f in faces]
    captions = page.block_labels()
    for i, face in enumerate(faces, 1):
        assert f"face {i}: crop | Grad-CAM for {face.label}" in captions and f"face {i}" in captions
    page.wait.until(lambda _: page.broken_images() == [])  # the photo, its boxes and both strips are shown
    if os.environ.get("FER_UPDATE_SCREENSHOTS") == "1":
        save_screenshot(browser)

    # errors are shown on the page, and the server keeps serving
    page.clear()
    assert page.upload(gray_png(tmp_path), until="No face found").startswith("No face found in this photo")
    assert page.labels() == []
    page.clear()
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image at all")
    assert page.upload(broken, until="Could not read").startswith("Could not read broken.png: not an image")
    assert process.poll() is None, "the server died"

    # the camera: chromium's fake device films a test pattern (no face), which still makes the round trip
    page.clear()
    assert page.capture_from_camera(until="No face found").startswith("No face found in this photo")
    assert process.poll() is None, "the server died"

    assert page.external_requests() == []  # nothing but the demo's own server: works offline
