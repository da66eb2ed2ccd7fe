"""Screenshot of TensorBoard's HParams tab for a sweep, taken from a running ``tensorboard`` in headless
chromium (Debian's chromium and chromium-driver; selenium from the dev extra)::

    python benchmarks/hparams_screenshot.py outputs/train/multiruns/<sweep> docs/hparams.png

The README's "Compare experiments" figure is made this way.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


#: rows of the HParams table view, counted across shadow roots
_COUNT_ROWS = """
let rows = 0;
function walk(node) {
  if (!node) return;
  if (node.tagName === 'TF-HPARAMS-TABLE-VIEW') {
    const root = node.shadowRoot || node;
    rows += root.querySelectorAll('tr, .row, vaadin-grid-cell-content').length;
  }
  if (node.shadowRoot) walk(node.shadowRoot);
  for (const child of node.children || []) walk(child);
}
walk(document.documentElement);
return rows;
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url: str, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            time.sleep(1)
    sys.exit(f"error: {url} did not answer within {seconds:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("logdir", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--width", type=int, default=1500)
    parser.add_argument("--height", type=int, default=900)
    parser.add_argument("--rows", type=int, default=2, help="table rows to wait for (header included)")
    args = parser.parse_args()
    chromium, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver_path):
        sys.exit(
            "error: needs chromium and chromedriver (Debian: apt-get install -y chromium chromium-driver)"
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    port = free_port()
    board = subprocess.Popen(
        [sys.executable, "-m", "tensorboard.main", "--logdir", str(args.logdir), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        f"--window-size={args.width},{args.height}",
    ):
        options.add_argument(arg)
    driver = None
    try:
        wait_for(f"http://127.0.0.1:{port}/data/runs")
        driver = webdriver.Chrome(service=Service(driver_path), options=options)
        driver.get(f"http://127.0.0.1:{port}/#hparams")
        # TensorBoard draws inside shadow DOMs: poll the page's text (every shadow root) until each run's row
        # shows its final figure
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and driver.execute_script(_COUNT_ROWS) < args.rows:
            time.sleep(2)
        time.sleep(3)  # the last column widths settle
        args.out.parent.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(args.out))
        print(f"{args.out}: HParams tab of {args.logdir}")
    finally:
        if driver is not None:
            driver.quit()
        board.terminate()
        board.wait(timeout=30)


if __name__ == "__main__":
    main()
