"""Every ``python scripts/<name>.py …`` line in README.md's bash blocks composes, as that script would compose
it.

A README command that names a key, group or option conf/ does not have fails here. Placeholders (``<run>``,
``<folder>``, ``…``) become a temporary path: composing reads no file, so no command needs a real checkpoint.
``[key=value]`` marks an optional override (it is composed), ``a|b`` alternatives are each composed, ``-m``
sweeps are expanded the way Hydra's basic sweeper does, and a sweeper's ``params`` must name keys of the
composed config.
"""

from __future__ import annotations

import os
import re
import shlex
from itertools import product
from pathlib import Path

import pytest
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

from tests.conftest import ROOT, compose_config

README = ROOT / "README.md"
PLACEHOLDER = re.compile(r"<[^<>]*>|…")
COMMAND = re.compile(r"^python\s+scripts/(\w+)\.py(?:\s+(.*))?$")


def readme_commands() -> list[str]:
    """The ``python scripts/<name>.py …`` lines of README.md's ```bash blocks, comments after ``#``
    removed."""
    commands, in_bash = [], False
    for line in README.read_text(encoding="utf-8").splitlines():
        fence = line.strip()
        if fence.startswith("```"):
            in_bash = not in_bash and fence == "```bash"
            continue
        if not in_bash:
            continue
        text = re.split(r"\s#", " " + line, maxsplit=1)[0].strip()
        # a command may follow set-up steps on one line (`… && . .venv/bin/activate && python
        # scripts/train.py`)
        text = text.split("&&")[-1].strip()
        if COMMAND.match(text):
            commands.append(text)
    return commands


def override_variants(args: str, scratch: Path) -> tuple[bool, list[list[str]]]:
    """(multirun?, every override list the command stands for), placeholders replaced by a path under
    ``scratch``."""
    args = PLACEHOLDER.sub(lambda m: "" if m.group() == "…" else str(scratch / "placeholder"), args)
    tokens = shlex.split(os.path.expandvars(args))
    multirun = "-m" in tokens or "--multirun" in tokens
    choices: list[list[str]] = []
    for token in tokens:
        if token in ("-m", "--multirun"):
            continue
        if token.startswith("[") and token.endswith("]") and "=" in token:  # [key=value]: optional, composed
            token = token[1:-1]
        key, _, value = token.partition("=")
        # a|b in the README's usage lines: alternatives, each composed
        options = value.split("|") if "|" in value and not value.startswith(("'", '"')) else [value]
        choices.append([f"{key}={option}" for option in options])
    variants = [list(combination) for combination in product(*choices)]
    if multirun:
        parser = OverridesParser.create()
        variants = [
            job
            for variant in variants
            for batch in BasicSweeper.split_arguments(parser.parse_overrides(variant), None)
            for job in batch
        ]
    return multirun, variants


COMMANDS = readme_commands()
#: scripts that take plain arguments rather than a Hydra config (tested in their own test files)
ARGPARSE_SCRIPTS = {"compare"}


def short(command: str, width: int = 90) -> str:
    return command if len(command) <= width else command[: width - 1] + "…"


def test_readme_has_commands():
    assert len(COMMANDS) >= 10, COMMANDS


@pytest.mark.parametrize("command", COMMANDS, ids=[short(c) for c in COMMANDS])
def test_readme_command_composes(command, tmp_path):
    name, args = COMMAND.match(command).groups()
    assert (ROOT / "scripts" / f"{name}.py").is_file(), (
        f"README names scripts/{name}.py, which does not exist"
    )
    if name in ARGPARSE_SCRIPTS:  # no config to compose: its arguments are paths, checked by the script
        return
    assert (ROOT / "conf" / f"{name}.yaml").is_file(), f"scripts/{name}.py has no conf/{name}.yaml"
    multirun, variants = override_variants(args or "", tmp_path)
    for overrides in variants:
        cfg = compose_config(name, overrides, tmp_path / "run")  # raises on an unknown key, group or option
        # the job's config (not hydra's own node, whose sweep fields exist only in a running sweep) resolves
        # too
        OmegaConf.to_container(
            OmegaConf.masked_copy(cfg, [key for key in cfg if key != "hydra"]), resolve=True
        )
        if multirun:  # keys a sweeper varies (hparams_search=optuna) must exist in the composed config
            for key in OmegaConf.select(cfg, "hydra.sweeper.params") or {}:
                assert OmegaConf.select(cfg, key, default="<absent>") != "<absent>", (
                    f"{command}: the sweeper varies {key}, which the config does not have"
                )


def test_readme_python_examples_run(jaffe_dir, tmp_path):
    """README's Python examples, as printed, with real inputs in place of their file names: a JAFFE photo
    for ``photo.jpg``, a video of JAFFE photos for ``clip.mp4``, the shipped weights exported for
    ``model.onnx``."""
    import subprocess
    import sys

    import cv2

    from fer_lightning.onnx_export import export_checkpoint

    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)
    assert blocks, "README.md has no ```python block"
    photos = sorted(jaffe_dir.glob("*.tiff"))
    clip = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), 10, (256, 256))
    for photo in photos[:2]:
        frame = cv2.cvtColor(cv2.imread(str(photo), cv2.IMREAD_GRAYSCALE), cv2.COLOR_GRAY2BGR)
        for _ in range(5):
            writer.write(frame)
    writer.release()
    inputs = {
        '"photo.jpg"': repr(str(photos[0])),
        '"clip.mp4"': repr(str(clip)),
        '"model.onnx"': repr(str(export_checkpoint(None, tmp_path / "model.onnx")[0])),
    }
    for code in blocks:
        assert any(name in code for name in inputs), f"an example with no input this test knows: {code}"
        for name, real in inputs.items():
            code = code.replace(name, real)
        result = subprocess.run(
            [sys.executable, "-c", code],
            cwd=ROOT,
            env=os.environ.copy(),
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert result.returncode == 0, result.stderr[-2000:]
        assert result.stdout.strip(), f"the example printed nothing: {code}"
