"""The network in ONNX Runtime (``backend=onnxruntime``): uint8 faces → logits, the same contract as
:func:`fer_lightning.inference.predict_logits`, so :class:`~fer_lightning.predict.Predictor` swaps one for the
other::

    from fer_lightning.onnx_backend import OnnxNetwork
    runtime = OnnxNetwork.from_file("mini_xception_fer2013.onnx")  # made by scripts/export.py
    logits = runtime.predict_logits(faces)  # faces: uint8 (N, 48, 48)

Why: classifying one face takes ~8x less time in ONNX Runtime than in eager torch on the 2-core dev CPU (0.31
against 2.4 ms on a quiet machine with ``benchmarks/bench_predict.py``; 0.9 against 7.0 ms on a busy one with
``benchmarks/bench_latency.py``, figures in ``benchmarks/README.md``), and an ``.onnx`` file runs elsewhere
without torch or this package.

This module is also the one home of the metadata an exported file carries (:data:`METADATA_VERSION`, the
class names, the input size and the input normalisation): :mod:`fer_lightning.onnx_export` writes it, and
:class:`OnnxNetwork` refuses a file whose metadata this version would misread. ``onnxruntime`` (and ``onnx``,
for exporting) are the optional extra ``pip install -e '.[onnx]'``; they are imported only when used.
"""

from __future__ import annotations

import importlib
import json
import math
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import torch

from fer_lightning.emotions import IMAGE_SIZE
from fer_lightning.errors import CheckpointError, CheckpointNotFoundError, ConfigError
from fer_lightning.inference import model_batches, to_model_input

BACKENDS = ("torch", "onnxruntime")
#: The graph's input and output names.
INPUT_NAME, OUTPUT_NAME = "faces", "logits"
#: Written to ``fer_lightning.metadata_version``; a file with a higher one is refused.
METADATA_VERSION = 1
EXTRA = "pip install -e '.[onnx]'"


def require(module: str, purpose: str) -> ModuleType:
    """``import module``, or a :class:`ConfigError` naming the optional extra that provides it."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ConfigError(f"{purpose} needs the {module} package, which is not installed: {EXTRA}") from e


def check_backend(backend: str) -> str:
    if backend not in BACKENDS:
        raise ConfigError(f"unknown backend={backend!r}; expected one of {', '.join(BACKENDS)}")
    return backend


def input_normalisation() -> dict[str, Any]:
    """How a uint8 pixel becomes the network's input, read off :func:`~fer_lightning.inference.to_model_input`
    (the one place it is written) by probing it with 0 and 255: ``x = pixel * scale + offset``."""
    low, high = to_model_input(torch.tensor([[[[0, 255]]]], dtype=torch.uint8)).flatten().tolist()
    return {
        "pixels": "uint8 gray, 0..255",
        "formula": "x = pixel * scale + offset",
        "scale": (high - low) / 255,
        "offset": low,
        "range": [low, high],
    }


def input_facts() -> dict[str, Any]:
    """What a caller must feed an exported network: name, layout, size, dtype and normalisation."""
    return {
        "input_name": INPUT_NAME,
        "input_shape": ["batch", 1, IMAGE_SIZE, IMAGE_SIZE],
        "input_layout": "NCHW",
        "input_dtype": "float32",
        "input_size": [IMAGE_SIZE, IMAGE_SIZE],
        "input_normalisation": input_normalisation(),
        "output_name": OUTPUT_NAME,
        "output": "logits (batch, classes); softmax over classes gives the probabilities",
    }


def to_metadata_props(facts: dict[str, Any]) -> dict[str, str]:
    """ONNX ``metadata_props`` are strings: plain strings stay, everything else is JSON."""
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in facts.items()}


def _decoded(value: str) -> Any:
    try:
        return json.loads(value)
    except ValueError:
        return value


class OnnxNetwork:
    """An exported network run by ONNX Runtime on the CPU; :meth:`predict_logits` takes uint8 faces as
    :func:`~fer_lightning.inference.predict_logits` does and feeds them through the same normalisation.

    One ONNX Runtime ``InferenceSession`` per thread count, made on first use: 1 intra-op thread for a photo's
    few faces (a pool would wait for busy cores, as with torch in :mod:`fer_lightning.utils.threads`), ONNX
    Runtime's default (one per physical core) for large batches.
    """

    def __init__(self, model: bytes | str | Path, source: str | Path) -> None:
        """``model``: the ONNX file's bytes or its path; ``source`` names it in errors."""
        self.ort = require("onnxruntime", "backend=onnxruntime")
        self.model = model if isinstance(model, bytes) else str(model)
        self.source = str(source)
        self._runners: dict[int, Any] = {}
        runner = self.runner(1)  # reads and checks the file now, not at the first photo
        self.metadata = {k: _decoded(v) for k, v in runner.get_modelmeta().custom_metadata_map.items()}
        self.classes = self._check(runner)

    @classmethod
    def from_file(cls, path: str | Path) -> OnnxNetwork:
        """An ``.onnx`` file written by ``scripts/export.py`` (or :func:`~fer_lightning.onnx_export.
        export_checkpoint`)."""
        path = Path(path).expanduser()
        if not path.is_file():
            raise CheckpointNotFoundError(f"ONNX model not found: looked for {path.resolve()}")
        return cls(path, path)

    @classmethod
    def from_network(cls, net: torch.nn.Module, classes: list[str], source: str = "") -> OnnxNetwork:
        """``net`` exported in memory (nothing is written to disk) and loaded into ONNX Runtime."""
        from fer_lightning.onnx_export import export_network  # torch.onnx and onnx load only when exporting

        model, _ = export_network(net, classes, source)
        return cls(model, source or f"{type(net).__name__} exported in memory")

    def runner(self, threads: int | None) -> Any:
        """The ``InferenceSession`` for ``threads`` intra-op threads (``None``: ONNX Runtime's default)."""
        key = threads or 0  # 0 is ONNX Runtime's "choose for me"
        if key not in self._runners:
            options = self.ort.SessionOptions()
            options.intra_op_num_threads = key
            options.inter_op_num_threads = 1  # the graph is a chain of layers: nothing to run side by side
            options.log_severity_level = 3  # errors only: stderr keeps the project's own one-line messages
            try:
                self._runners[key] = self.ort.InferenceSession(
                    self.model, options, providers=["CPUExecutionProvider"]
                )
            except Exception as e:  # onnxruntime raises its own pybind types: all mean "not a usable model"
                first_line = " ".join(str(e).split("\n", 1)[0].split())[:300]
                raise CheckpointError(
                    f"{self.source} is not a model ONNX Runtime can load ({type(e).__name__}: {first_line}); "
                    "export one with python scripts/export.py"
                ) from None
        return self._runners[key]

    def _check(self, runner: Any) -> list[str]:
        """The class names, after checking that the file is an export of this project that takes the faces
        :meth:`predict_logits` feeds it."""
        meta = self.metadata
        version = meta.get("fer_lightning.metadata_version")
        classes = meta.get("classes")
        if version is None or not isinstance(classes, list) or not all(isinstance(c, str) for c in classes):
            raise CheckpointError(
                f"{self.source} carries no fer-lightning metadata (class names, input normalisation): it was "
                "not made by scripts/export.py; export the checkpoint with it"
            )
        if not isinstance(version, int) or version > METADATA_VERSION:
            raise CheckpointError(
                f"{self.source} has metadata version {version!r}, newer than the {METADATA_VERSION} this "
                "fer-lightning reads; upgrade fer-lightning or re-export the checkpoint"
            )
        expected, recorded = input_normalisation(), meta.get("input_normalisation") or {}
        if not all(
            isinstance(recorded.get(k), int | float) and math.isclose(recorded[k], expected[k], abs_tol=1e-6)
            for k in ("scale", "offset")
        ):
            raise CheckpointError(
                f"{self.source} expects inputs normalised as {recorded}, but this fer-lightning feeds "
                f"pixel * {expected['scale']:.6g} + {expected['offset']:g}; re-export the checkpoint"
            )
        inputs = runner.get_inputs()
        if len(inputs) != 1 or list(inputs[0].shape[1:]) != [1, IMAGE_SIZE, IMAGE_SIZE]:
            shapes = [i.shape for i in inputs]
            raise CheckpointError(
                f"{self.source} takes inputs shaped {shapes}, not one (batch, 1, {IMAGE_SIZE}, {IMAGE_SIZE})"
            )
        return list(classes)

    def predict_logits(
        self, images: torch.Tensor | np.ndarray, batch_size: int = 512, threads: int | None = 1
    ) -> torch.Tensor:
        """Float logits (N, classes) for uint8 faces (N, 48, 48) or (N, 1, 48, 48), ``batch_size`` per run,
        on ``threads`` intra-op threads (``None``: ONNX Runtime's default)."""
        runner = self.runner(threads)
        name = runner.get_inputs()[0].name
        chunks = [
            # model_batches: the same scaling as the torch path; ONNX takes plain NCHW, not channels_last
            torch.from_numpy(runner.run(None, {name: batch.contiguous().numpy()})[0])
            for batch in model_batches(images, batch_size, "cpu")
        ]
        return torch.cat(chunks) if chunks else torch.empty(0, len(self.classes))

    def __repr__(self) -> str:
        return f"OnnxNetwork({self.source!r}, classes={self.classes})"
