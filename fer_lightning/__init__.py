"""fer-lightning: facial expression recognition on FER2013-style data with PyTorch Lightning + Hydra.

Public API (imported lazily so that ``import fer_lightning`` stays cheap)::

    from fer_lightning import EMOTIONS, FERDataModule, FERClassifier, Predictor
"""

from __future__ import annotations

from importlib import import_module

from fer_lightning.emotions import EMOTIONS
from fer_lightning.utils.runtime import register_resolvers

# the configs' own resolvers (${class_count:...}, ${pid:}, ...): with them registered, Hydra's compose API
# works on conf/ straight after `import fer_lightning`, as in a notebook or a test
register_resolvers()

_LAZY = {
    "FERDataModule": "fer_lightning.data.datamodule",
    "FERClassifier": "fer_lightning.models.classifier",
    "Predictor": "fer_lightning.predict",
}
__all__ = ["EMOTIONS", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'fer_lightning' has no attribute {name!r}")
