"""``python scripts/<any>.py --help`` prints without importing torch: the scripts import their task (and with
it torch and Lightning) only inside ``main()``, which help never reaches. Checked on the real command with the
interpreter's own import log (``-X importtime``), not with a clock: timings belong in benchmarks."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from tests.conftest import ROOT

SCRIPTS = sorted(p.stem for p in (ROOT / "scripts").glob("*.py"))
ARGPARSE = {"compare"}  # plain argparse, no Hydra: --help only
#: importing any of these is what made --help slow
HEAVY = re.compile(
    r"^(torch|torchvision|torchmetrics|pytorch_lightning|lightning|lightning_fabric|timm)(\.|$)"
)
CASES = [
    (name, flag)
    for name in SCRIPTS
    for flag in ("--help", "--hydra-help")
    if name not in ARGPARSE or flag == "--help"
]


def _imports(stderr: str) -> set[str]:
    """Module names in ``-X importtime``'s log (``import time: self | cumulative | name``)."""
    return {m.strip() for m in re.findall(r"^import time:\s+\d+\s+\|\s+\d+\s+\|(.+)$", stderr, re.MULTILINE)}


@pytest.mark.parametrize("name, flag", CASES, ids=[f"{n}{f}" for n, f in CASES])
def test_help_prints_without_importing_torch(name, flag):
    done = subprocess.run(
        [sys.executable, "-X", "importtime", str(ROOT / "scripts" / f"{name}.py"), flag],
        cwd=ROOT,
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    imported = _imports(done.stderr)
    assert "argparse" in imported or "hydra" in imported  # the log was read
    assert not sorted(m for m in imported if HEAVY.match(m))
    if name in ARGPARSE:
        assert done.stdout.startswith(f"usage: {name}.py")
    elif flag == "--help":
        assert f"python scripts/{name}.py" in done.stdout and "== Config ==" in done.stdout
    else:
        assert done.stdout.startswith("Hydra (") and "== Flags ==" in done.stdout
