"""Optuna's own plots of a stored study, saved beside the sweep's summary."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

from fer_lightning.utils.io import save_figure

log = logging.getLogger(__name__)


def save_study_plots(storage: str, study_name: str, folder: str | Path) -> list[Path]:
    """``optuna_history.png`` (objective per trial, best so far) and, once two trials completed,
    ``optuna_importance.png`` (parameter importances) for the study in ``storage``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import optuna
    from optuna.visualization import matplotlib as optuna_plots

    study = optuna.load_study(study_name=study_name, storage=storage)
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    written = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # optuna marks its matplotlib backend experimental on every call
        axes = optuna_plots.plot_optimization_history(study)
        written.append(save_figure(axes.figure, Path(folder) / "optuna_history.png"))
        plt.close(axes.figure)
    if len(complete) >= 2:
        written.append(_importance_plot(study, Path(folder) / "optuna_importance.png"))
    log.info(
        "optuna study %r: %d trial(s), %d complete; plots %s",
        study_name,
        len(study.trials),
        len(complete),
        ", ".join(p.name for p in written),
    )
    return written


def _importance_plot(study, path: Path) -> Path:
    """Parameter importances as horizontal bars. Drawn here: optuna 2.x (the version hydra-optuna-sweeper
    allows) computes fANOVA importances with an indexing numpy 2 refuses, and its matplotlib plot calls
    ``matplotlib.cm.get_cmap``, gone since matplotlib 3.9; the random-forest (mean decrease in impurity)
    evaluator works."""
    import matplotlib.pyplot as plt
    from optuna.importance import MeanDecreaseImpurityImportanceEvaluator, get_param_importances

    importances = get_param_importances(study, evaluator=MeanDecreaseImpurityImportanceEvaluator(seed=0))
    names = list(importances)[::-1]
    fig, ax = plt.subplots(figsize=(7, 0.5 * len(names) + 1.5))
    ax.barh(names, [importances[n] for n in names], color="#4C72B0")
    ax.set_xlabel("importance for the objective (mean decrease in impurity, random forest)")
    ax.set_title(f"Optuna study {study.study_name!r}: {len(study.trials)} trial(s)")
    fig.tight_layout()
    try:
        return save_figure(fig, path)
    finally:
        plt.close(fig)
