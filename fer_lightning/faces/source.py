"""``data=photos``: a folder of photos as a training data source (``conf/data/photos.yaml``).

It produces the same :class:`FERArrays` as the FER2013 sources: the folder goes through
:func:`~fer_lightning.faces.pipeline.preprocess_folder` (faces cached per photo) and the CSV it writes is read
back by the FER2013 reader, so training sees photo folders and Kaggle's file through one parser.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from fer_lightning.data.arrays import FERArrays
from fer_lightning.data.fer2013 import load_fer2013_csv
from fer_lightning.faces.detectors import FaceDetector
from fer_lightning.faces.labels import LabelRule
from fer_lightning.faces.pipeline import FaceSettings, process_folder, require_rows


class PhotoFolderSource:
    """Training data from a folder of photos: preprocess (cached per image) then read the CSV back.

    ``args``/``kwargs`` besides ``output`` are the fields of :class:`FaceSettings` (``detector``, ``labels``,
    ``split``, ``cache_dir``, ...). ``output`` defaults to ``<cache_dir>/photos/<folder>-<settings
    hash>.csv``. The DataModule calls the source (``source()``, i.e. :meth:`load`) in ``prepare_data`` and
    ``setup``; the second call reuses the first's arrays.
    """

    def __init__(
        self, input_dir: str | Path, *args: Any, output: str | Path | None = None, **kwargs: Any
    ) -> None:
        self.input_dir = Path(input_dir).expanduser()
        self.settings = FaceSettings(*args, **kwargs)
        self.output = Path(output).expanduser() if output is not None else self._default_output()
        self.report: dict[str, Any] | None = None
        self._arrays: FERArrays | None = None

    @property
    def detector(self) -> FaceDetector:
        return self.settings.detector

    @property
    def labels(self) -> LabelRule:
        return self.settings.labels

    @property
    def cache_dir(self) -> Path:
        return self.settings.cache_dir

    def _default_output(self) -> Path:
        ident = json.dumps(
            [
                str(self.input_dir.resolve()),
                self.detector.settings(),
                self.labels.describe(),
                self.settings.row_options(),
            ],
            sort_keys=True,
            default=str,
        )
        digest = hashlib.sha1(ident.encode()).hexdigest()[:12]
        return self.cache_dir / "photos" / f"{self.input_dir.resolve().name or 'root'}-{digest}.csv"

    def __call__(self) -> FERArrays:
        """The DataModule's source protocol: a callable returning :class:`FERArrays`."""
        return self.load()

    def load(self) -> FERArrays:
        """Faces of the folder; the first call preprocesses (cached per image), later calls reuse the
        arrays."""
        if self._arrays is None:
            self._arrays = self._load()
        return self._arrays

    def _load(self) -> FERArrays:
        self.report = process_folder(self.input_dir, self.output, self.settings)
        require_rows(self.report)
        return load_fer2013_csv(self.output, self.cache_dir)

    def __repr__(self) -> str:
        options = self.settings.row_options()
        return f"PhotoFolderSource({str(self.input_dir)!r}, detector={self.detector!r}, {options})"
