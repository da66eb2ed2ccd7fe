"""A checkpoint's network → an ONNX file (dynamic batch) plus a JSON of the same facts::

    from fer_lightning.onnx_export import export_checkpoint
    onnx_path, json_path, facts = export_checkpoint(None, "model.onnx")  # None: the shipped weights

The graph takes what the torch network takes — float32 NCHW (batch, 1, 48, 48), pixels scaled to [-1, 1] as
:func:`fer_lightning.inference.to_model_input` does — and returns logits. The class names, the input size and
that normalisation travel in the file's ``metadata_props`` (schema in :mod:`fer_lightning.onnx_backend`), so
the file is usable on its own. Every export is run once in ONNX Runtime against torch on probe faces before
anything is written: a network the exporter mistranslates is refused, not shipped.

Exporter: torch's TorchScript-based one (``dynamo=False``). The torch.export-based default of torch 2.14
needs the ``onnxscript`` package, which this project does not depend on; the TorchScript one handles every
network of :mod:`fer_lightning.models.registry` (each exported in ``tests/test_export.py``).
"""

from __future__ import annotations

import copy
import hashlib
import io
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from fer_lightning.pretrained import inference_settings
from fer_lightning.checkpoints import load_network, network_parts, resolve_checkpoint
from fer_lightning.emotions import IMAGE_SIZE
from fer_lightning.errors import CheckpointError, ConfigError
from fer_lightning.inference import predict_logits
from fer_lightning.onnx_backend import (
    INPUT_NAME,
    METADATA_VERSION,
    OUTPUT_NAME,
    OnnxNetwork,
    input_facts,
    require,
    to_metadata_props,
)
from fer_lightning.utils.io import atomic_path, write_json

FORMATS = ("onnx",)
#: ONNX opset: 17 is read by every ONNX Runtime since 1.11 and covers every layer of the registry's networks.
OPSET = 17
#: Export check: probability difference allowed between ONNX Runtime and torch on the probe faces.
TOLERANCE = 1e-4
PROBE_FACES = 64


def check_format(format: str) -> str:
    if format not in FORMATS:
        raise ConfigError(f"unknown format={format!r}; expected one of {', '.join(FORMATS)}")
    return format


def _traced_onnx(net: nn.Module, source: str) -> bytes:
    """``net`` (eval mode, on the CPU) as ONNX bytes with a dynamic batch axis, or a :class:`CheckpointError`
    naming what the exporter could not translate."""
    buffer = io.BytesIO()
    try:
        with warnings.catch_warnings():
            # the TorchScript exporter announces its own deprecation on every call; it is chosen on purpose
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.onnx.export(
                net,
                (torch.zeros(1, 1, IMAGE_SIZE, IMAGE_SIZE),),
                buffer,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
                opset_version=OPSET,
                dynamo=False,
            )
    except (
        Exception
    ) as e:  # the exporter raises many types (unsupported op, tracing failure): all mean "cannot"
        first_line = " ".join(str(e).split("\n", 1)[0].split())[:300]
        raise CheckpointError(
            f"{source}: the ONNX exporter cannot translate the network {type(net).__name__} "
            f"({type(e).__name__}: {first_line})"
        ) from None
    return buffer.getvalue()


def _probe_faces(count: int = PROBE_FACES) -> torch.Tensor:
    """Fixed pseudo-random uint8 faces: the same probe on every export, so the check is reproducible."""
    generator = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (count, IMAGE_SIZE, IMAGE_SIZE), dtype=torch.uint8, generator=generator)


def export_network(
    net: nn.Module, classes: list[str], source: str | Path = "", extra: dict[str, Any] | None = None
) -> tuple[bytes, dict[str, Any]]:
    """(ONNX bytes with metadata, the metadata as a dict) for ``net``; ``net`` itself is left as it was (a
    CPU copy in eval mode is exported). ``extra`` facts are added to the metadata; ``source`` names the
    network in errors."""
    onnx = require("onnx", "exporting to ONNX")
    source = str(source or type(net).__name__)
    net = copy.deepcopy(net).cpu().eval().to(memory_format=torch.contiguous_format)
    outputs = getattr(net, "num_classes", len(classes))
    if outputs != len(classes):
        raise CheckpointError(f"{source}: the network has {outputs} outputs but {len(classes)} class names")
    model = onnx.load_from_string(_traced_onnx(net, source))
    facts = {
        "fer_lightning.metadata_version": METADATA_VERSION,
        "classes": list(classes),
        **input_facts(),
        "network": type(net).__name__,
        "parameters": sum(p.numel() for p in net.parameters()),
        "opset": OPSET,
        "exporter": f"torch {torch.__version__} torch.onnx.export(dynamo=False)",
        **(extra or {}),
    }
    for key, value in to_metadata_props(facts).items():
        prop = model.metadata_props.add()
        prop.key, prop.value = key, value
    onnx.checker.check_model(model)
    data = model.SerializeToString()
    probe = _probe_faces()
    expected = predict_logits(net, probe, device="cpu").softmax(1)
    got = OnnxNetwork(data, source).predict_logits(probe, threads=1).softmax(1)
    difference = float((got - expected).abs().max())
    if not difference <= TOLERANCE:  # also catches NaN
        raise CheckpointError(
            f"{source}: the exported graph disagrees with torch (max probability difference {difference:.3g} "
            f"> {TOLERANCE:g} on {len(probe)} probe faces); the exporter mistranslated the network"
        )
    return data, {**facts, "check_max_probability_difference": difference, "check_faces": len(probe)}


def write_export(data: bytes, facts: dict[str, Any], out_path: str | Path) -> tuple[Path, Path]:
    """``out_path`` (the ONNX bytes) and the JSON beside it (same stem), each written atomically; the ONNX
    file appears only once its JSON is written, so a failure leaves neither half."""
    out_path = Path(out_path)
    json_path = out_path.with_suffix(".json")
    with atomic_path(out_path) as tmp:
        tmp.write_bytes(data)
        write_json(
            json_path,
            {"file": out_path.name, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(), **facts},
        )
    return out_path, json_path


def export_checkpoint(
    ckpt_path: str | Path | None, out_path: str | Path, format: str = "onnx"
) -> tuple[Path, Path, dict[str, Any]]:
    """A Lightning ``.ckpt`` or weights file (``None``: the shipped weights) exported to ``out_path`` (an
    ``.onnx`` file) and its JSON; returns (ONNX path, JSON path, facts)."""
    check_format(format)
    out_path = Path(out_path)
    if out_path.suffix != ".onnx":
        raise ConfigError(f"out={out_path}: an ONNX file's name must end in .onnx")
    source = resolve_checkpoint(ckpt_path)
    net, classes = load_network(source)
    net_config = network_parts(source)[0]
    extra = {
        "source": source.name,
        "source_sha256": hashlib.sha256(source.read_bytes()).hexdigest(),
        "net_config": net_config,
    }
    settings = inference_settings(source)  # the photos weights' TTA and prior correction travel too
    if settings:
        extra["inference"] = settings
    data, facts = export_network(net, classes, source, extra)
    return (*write_export(data, facts, out_path), facts)
