"""The seven FER2013 expression classes: the one place their ids and spellings live."""

from __future__ import annotations

#: Class names in FER2013 label-id order (``emotion`` column: 0 angry ... 6 neutral).
EMOTIONS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
NUM_CLASSES = len(EMOTIONS)
EMOTION_TO_ID: dict[str, int] = {name: i for i, name in enumerate(EMOTIONS)}

#: Spellings seen in photo collections and other datasets, mapped to the canonical name.
SYNONYMS: dict[str, str] = {
    "anger": "angry",
    "angry": "angry",
    "disgust": "disgust",
    "disgusted": "disgust",
    "fear": "fear",
    "fearful": "fear",
    "scared": "fear",
    "happy": "happy",
    "happiness": "happy",
    "sad": "sad",
    "sadness": "sad",
    "surprise": "surprise",
    "surprised": "surprise",
    "neutral": "neutral",
}

#: FER2013 ``Usage`` values and the split names the project uses for them.
USAGE_TO_SPLIT: dict[str, str] = {"Training": "train", "PublicTest": "public", "PrivateTest": "private"}
SPLIT_TO_USAGE: dict[str, str] = {split: usage for usage, split in USAGE_TO_SPLIT.items()}


def emotion_id(name: str) -> int:
    """Label id for a class name or a known synonym (case-insensitive); ``KeyError`` names the valid ones."""
    canonical = SYNONYMS.get(name.strip().lower())
    if canonical is None:
        raise KeyError(f"unknown emotion {name!r}; expected one of {sorted(SYNONYMS)}")
    return EMOTION_TO_ID[canonical]
