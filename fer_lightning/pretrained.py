"""Pretrained predictors as folders, the way Hugging Face users expect::

    predictor = Predictor.from_pretrained("photos")          # shipped weights by name
    predictor.save_pretrained("my-model")                    # weights.pt + config.json + README.md
    Predictor.from_pretrained("my-model")                    # the folder, or any weights file

A folder holds ``weights.pt`` (the weights-only format of :mod:`fer_lightning.checkpoints`, with the inference
settings in ``meta.inference``), ``config.json`` (the photo pipeline: detector and alignment settings,
classes, inference settings; for people and tools, the weights file alone is what loads) and a short
``README.md`` card.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fer_lightning.checkpoints import (
    PRETRAINED,
    _read,
    _unpack,
    read_checkpoint,
    resolve_checkpoint,
    save_weights,
)
from fer_lightning.errors import ConfigError, InputError
from fer_lightning.utils.io import write_json, write_text

WEIGHTS_FILE = "weights.pt"

#: The inference options a weights file may recommend in ``meta.inference`` (the photos weights do).
INFERENCE_KEYS = ("tta", "logit_adjustment", "class_prior")


def inference_settings(path: str | Path | None) -> dict[str, Any]:
    """The inference options stored with a weights file (``meta.inference``), ``{}`` when it has none."""
    meta = read_checkpoint(path).get("meta") if path is not None else None
    stored = meta.get("inference") if isinstance(meta, dict) else None
    return {k: v for k, v in stored.items() if k in INFERENCE_KEYS} if isinstance(stored, dict) else {}


def resolve_pretrained(name_or_path: str | Path) -> Path:
    """A shipped name (:data:`PRETRAINED`), a weights or checkpoint file, or a folder written by
    :func:`save_pretrained` → the file to load; :class:`InputError` naming the choices otherwise."""
    if isinstance(name_or_path, str) and name_or_path in PRETRAINED:
        return PRETRAINED[name_or_path]
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        if not (path / WEIGHTS_FILE).is_file():
            raise InputError(f"{path} is a folder without {WEIGHTS_FILE}: not one written by save_pretrained")
        return path / WEIGHTS_FILE
    if path.is_file():
        return path
    raise InputError(
        f"no shipped weights named {str(name_or_path)!r} and no such file or folder: choose one of "
        f"{', '.join(PRETRAINED)}, a weights file or a folder written by save_pretrained"
    )


def save_pretrained(predictor: Any, folder: str | Path) -> Path:
    """Write ``predictor``'s network (its current weights), classes and settings to ``folder``."""
    source = getattr(predictor, "source", None)
    if source is None or predictor.net is None:
        raise ConfigError("save_pretrained needs a Predictor loaded from a weights or checkpoint file")
    source = resolve_checkpoint(source)
    data = _read(source)
    net_config, _, classes = _unpack(data, source)
    inference = {"tta": predictor.tta, "logit_adjustment": predictor.logit_adjustment}
    if predictor.class_prior is not None:
        inference["class_prior"] = list(predictor.class_prior)
    old_meta = data.get("meta") if isinstance(data.get("meta"), dict) else {}
    meta = {**{k: v for k, v in old_meta.items() if k != "format_version"}, "inference": inference}
    folder = Path(folder).expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v for k, v in predictor.net.state_dict().items()}
    save_weights(net_config, state, classes, folder / WEIGHTS_FILE, meta, source=source)
    aligner = predictor.aligner.settings() if predictor.aligner is not None else None
    config = {
        "classes": list(classes),
        "detector": predictor.detector.settings(),
        "aligner": aligner,
        "inference": inference,
        "saved_from": str(source),
    }
    write_json(folder / "config.json", config)
    card = (
        f"# fer-lightning predictor\n\nSaved from `{source.name}`. Classes: {', '.join(classes)}.\n\n"
        f"Inference settings: TTA {inference['tta'] or 'none'}, "
        f"logit adjustment {inference['logit_adjustment']}."
        '\n\nLoad with `Predictor.from_pretrained("<this folder>")`; `config.json` records the photo '
        "pipeline it was saved with.\n"
    )
    write_text(folder / "README.md", card)
    return folder
