"""The one way the photo scripts (predict, gradcam, video, demo) build their :class:`Predictor` from a config:
``ckpt_path`` or ``weights``, ``detector``, ``device``, ``align`` and, where the script has them, ``backend``,
``batch_size``, ``tta`` and ``logit_adjustment``."""

from __future__ import annotations

from omegaconf import DictConfig

from fer_lightning.faces.align import FaceAligner
from fer_lightning.utils.instantiate import instantiate_setting


def predictor_from_config(cfg: DictConfig):
    """A :class:`~fer_lightning.predict.Predictor` for ``cfg`` (imported here: a script checks its inputs
    before paying for torch)."""
    from fer_lightning.checkpoints import chosen_weights
    from fer_lightning.predict import Predictor

    # tta / logit_adjustment: null keeps what the weights file recommends (meta.inference), if anything
    keys = ("batch_size", "backend", "tta", "logit_adjustment")
    extra = {key: cfg[key] for key in keys if cfg.get(key) is not None}
    return Predictor.from_checkpoint(
        chosen_weights(cfg.get("ckpt_path"), cfg.get("weights")),
        instantiate_setting(cfg, "detector"),
        device=cfg.device,
        aligner=FaceAligner() if cfg.get("align") else None,
        **extra,
    )
