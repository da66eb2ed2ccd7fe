"""``scripts/demo.py``: serve the browser demo until interrupted (Ctrl+C).

Usage: ``python scripts/demo.py [port=7860] [host=0.0.0.0] [ckpt_path=...] [detector=haar]`` (settings:
``conf/demo.yaml``). The page is ``demo/app.py``; what it shows per face comes from ``demo/analysis.py``.
"""

from __future__ import annotations

import logging
import os
import socket

import numpy as np
from omegaconf import DictConfig

from fer_lightning.tasks.predictor import predictor_from_config
from fer_lightning.demo.analysis import FaceAnalyser
from fer_lightning.errors import ConfigError, FERError
from fer_lightning.predict import Predictor

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install -e '.[demo]'"


def checked_address(host: str, port: object) -> int:
    """``port`` as an int, once a trial bind shows that ``host:port`` can be served: a port already taken or
    an unknown host fails here, before the model and gradio take seconds to load; else
    :class:`ConfigError`."""
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise ConfigError(f"port={port!r}: expected a TCP port number from 1 to 65535 (default 7860)")
    family = socket.AF_INET6 if ":" in str(host) else socket.AF_INET
    try:
        with socket.create_server((str(host), port), family=family):  # SO_REUSEADDR: closes cleanly
            pass
    except OSError as e:
        raise ConfigError(
            f"cannot serve on host={host} port={port}: {e.strerror or e}; pass another port=... or host=..."
        ) from e
    return port


def analyser_for(predictor: Predictor, target_layer: str | None) -> FaceAnalyser:
    """The page's analyser, with its settings checked now rather than on the first upload."""
    try:
        analyser = FaceAnalyser(predictor, target_layer)
    except ValueError as e:  # GradCAMExplainer: no such module in the network (the message lists them)
        raise ConfigError(f"target_layer={target_layer!r}: {' '.join(str(e).split())}") from e
    # one detection on a blank frame: a detector whose optional package is missing (detector=mtcnn) fails
    # here as one line instead of on every upload, and the first visitor does not wait for it to load
    predictor.detect(np.zeros((64, 64), np.uint8))
    return analyser


def run(cfg: DictConfig) -> None:
    """Check the settings, load the model, then serve the page on ``cfg.host:cfg.port`` until interrupted."""
    port = checked_address(cfg.host, cfg.port)
    predictor = predictor_from_config(cfg)
    analyser = analyser_for(predictor, cfg.get("target_layer"))
    # read by gradio when it is imported and when it launches: the demo must work without the internet
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    try:
        from fer_lightning.demo.app import build_app, serve
    except ImportError as e:  # the optional extra is missing (or broken): say how to install it
        raise FERError(f"scripts/demo.py needs gradio, which failed to import ({e}): {INSTALL_HINT}") from e
    logging.getLogger("httpx").setLevel(logging.WARNING)  # gradio's start-up requests to itself

    log.info(
        "starting the demo at http://%s:%d with detector %r (Ctrl+C stops it)",
        cfg.host,
        port,
        predictor.detector,
    )
    try:
        serve(build_app(analyser), cfg.host, port)
    except OSError as e:  # taken since the trial bind; gradio says "Cannot find empty port ..."
        raise ConfigError(
            f"cannot serve on host={cfg.host} port={port} ({' '.join(str(e).split())}); pass another "
            "port=... or host=..."
        ) from e
