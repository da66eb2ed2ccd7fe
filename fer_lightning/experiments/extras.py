"""Optional features named on a command line, checked before Hydra composes anything: a missing extra is one
line naming what to install, not Hydra's "could not find hydra/launcher/joblib" or an ImportError deep in a
run."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Sequence

from fer_lightning.errors import ConfigError

#: command-line choice → (module that provides it, the extra that installs it)
NEEDS: dict[str, tuple[str, str]] = {
    "hydra/launcher=joblib": ("hydra_plugins.hydra_joblib_launcher", "sweeps"),
    "hydra/launcher=submitit_local": ("hydra_plugins.hydra_submitit_launcher", "sweeps"),
    "hydra/launcher=submitit_slurm": ("hydra_plugins.hydra_submitit_launcher", "sweeps"),
    "cluster=slurm": ("hydra_plugins.hydra_submitit_launcher", "sweeps"),
    "cluster=local": ("hydra_plugins.hydra_submitit_launcher", "sweeps"),
    "hparams_search=optuna": ("hydra_plugins.hydra_optuna_sweeper", "sweeps"),
    "logger=mlflow": ("mlflow", "mlflow"),
    "model=timm": ("timm", "the project's own dependencies"),
}


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # a parent package is missing
        return False


def check_extras(argv: Sequence[str], installed: Callable[[str], bool] = _installed) -> None:
    """:class:`ConfigError` for the first choice in ``argv`` whose package is not installed."""
    for arg in argv:
        key = arg.lstrip("+~")
        for choice, (module, extra) in NEEDS.items():
            group, option = choice.split("=")
            name, _, value = key.partition("=")
            listed = value.strip("[]").split(",") if name == group else []
            if option in listed and not installed(module):
                install = (
                    f"pip install -e '.[{extra}]'" if not extra.startswith("the ") else "pip install -e ."
                )
                raise ConfigError(f"{choice} needs the {extra} extra, which is not installed: {install}")
