"""Where a photo's expression label comes from: its class folder, or a pattern in its file name.

Presets live in ``conf/labels/``: ``folder`` (``happy/x.jpg``), ``prefix`` (``anger_01.jpg``), ``jaffe``
(``KA.AN1.39.tiff``) and ``regex`` (bring your own pattern and code map). Each rule maps a file's path,
relative to the input folder, to a label id or to the raw text it could not map, so unknown labels can be
reported.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import PurePosixPath

from fer_lightning.emotions import EMOTION_TO_ID, SYNONYMS, emotion_id


class LabelRule:
    """Maps a relative path to ``(label_id, raw)``; ``label_id`` is ``None`` when ``raw`` names no known
    class."""

    def __call__(self, relpath: PurePosixPath) -> tuple[int | None, str]:
        raise NotImplementedError

    def describe(self) -> dict[str, object]:
        return {"rule": type(self).__name__}


def _lookup(raw: str, codes: Mapping[str, str] | None) -> int | None:
    """Label id of ``raw`` through ``codes`` (if given) then the project's synonyms; ``None`` if neither knows
    it."""
    name = raw
    if codes:
        folded = {k.lower(): v for k, v in codes.items()}
        if raw.lower() not in folded:
            return None
        name = folded[raw.lower()]
    try:
        return emotion_id(name)
    except KeyError:
        return None


class FolderLabels(LabelRule):
    """Label = the nearest enclosing folder whose name is a class name or synonym (``train/happy/x.jpg`` →
    happy).

    The nearest *known* folder rather than the immediate parent, so ``happy/shoot1/x.jpg`` still works and the
    ``train/``/``test/`` level above the class folders is skipped. A file with no such folder reports its
    immediate parent's name (or ``""`` at the top level) as the unknown label.
    """

    def __init__(self, codes: Mapping[str, str] | None = None) -> None:
        self.codes = dict(codes) if codes else None

    def __call__(self, relpath: PurePosixPath) -> tuple[int | None, str]:
        folders = relpath.parts[:-1]
        for folder in reversed(folders):
            label = _lookup(folder, self.codes)
            if label is not None:
                return label, folder
        return None, folders[-1] if folders else ""

    def describe(self) -> dict[str, object]:
        return {"rule": "folder", "codes": self.codes}


class RegexLabels(LabelRule):
    """Label = a regex group matched against the file name (or the relative path, ``match_on="path"``).

    ``pattern`` must contain a group named ``label`` (or at least one group; the first is used). ``codes``
    maps the captured text (case-insensitive) to a class name or synonym; without ``codes`` the captured text
    itself must be one (``anger_01.jpg`` → ``anger`` → angry).
    """

    def __init__(self, pattern: str, codes: Mapping[str, str] | None = None, match_on: str = "name") -> None:
        if match_on not in ("name", "path"):
            raise ValueError(f"match_on must be 'name' or 'path', got {match_on!r}")
        self.regex = re.compile(pattern)
        if self.regex.groups == 0:
            raise ValueError(
                f"label pattern {pattern!r} has no capturing group; wrap the label part in (?P<label>...)"
            )
        self.codes = dict(codes) if codes else None
        self.match_on = match_on
        if self.codes:
            bad = {k: v for k, v in self.codes.items() if v.strip().lower() not in SYNONYMS}
            if bad:
                raise ValueError(
                    f"label codes {bad} map to unknown classes; use one of {sorted(EMOTION_TO_ID)}"
                )

    def __call__(self, relpath: PurePosixPath) -> tuple[int | None, str]:
        text = relpath.name if self.match_on == "name" else relpath.as_posix()
        match = self.regex.search(text)
        if match is None:
            return None, ""
        raw = match.group("label") if "label" in self.regex.groupindex else match.group(1)
        return _lookup(raw or "", self.codes), raw or ""

    def describe(self) -> dict[str, object]:
        return {
            "rule": "regex",
            "pattern": self.regex.pattern,
            "codes": self.codes,
            "match_on": self.match_on,
        }
