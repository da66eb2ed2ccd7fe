"""Hydra's compose API on the project's configs, as a notebook uses it: `import fer_lightning` is all the
set-up the configs' resolvers need."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT

NOTEBOOK_CELL = f"""
import fer_lightning
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

with initialize_config_dir(config_dir="{ROOT / "conf"}", version_base="1.3"):
    cfg = compose("train", overrides=["data=ferplus"])
print(OmegaConf.to_container(cfg.model.net, resolve=True)["num_classes"])
"""


def test_compose_api_resolves_the_configs_after_a_plain_import():
    # a fresh interpreter: this test process has the resolvers registered already
    done = subprocess.run([sys.executable, "-c", NOTEBOOK_CELL], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "8"  # ${class_count:${data.class_set}} for FER+
