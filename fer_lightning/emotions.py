"""The expression classes (FER2013's seven, FER+'s eight), the three splits and the face size: the one place
each is spelled."""

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

#: FER+ (Barsoum et al. 2016) emotion classes in the vote file's column order, spelled canonically.
FERPLUS_EMOTIONS: tuple[str, ...] = (
    "neutral",
    "happy",
    "surprise",
    "sad",
    "angry",
    "disgust",
    "fear",
    "contempt",
)
#: Class sets a data source can label its faces with: ``data.source.classes`` names one.
CLASS_SETS: dict[str, tuple[str, ...]] = {"fer2013": EMOTIONS, "ferplus": FERPLUS_EMOTIONS}

#: Side of the square uint8 faces every data source produces (FER2013's 48x48).
IMAGE_SIZE = 48

#: Split names the project uses, in split-id order (``FERArrays.splits`` indexes this), and FER2013's
#: ``Usage`` value of each (the CSV column, and the file-name prefix of Kaggle's test images:
#: ``PublicTest_123.jpg``).
SPLITS: tuple[str, ...] = ("train", "public", "private")
USAGES: tuple[str, ...] = ("Training", "PublicTest", "PrivateTest")
SPLIT_TO_USAGE: dict[str, str] = dict(zip(SPLITS, USAGES))
USAGE_TO_SPLIT: dict[str, str] = dict(zip(USAGES, SPLITS))
#: Lower-cased file-name prefix of FER2013 test images → split id (``PublicTest_12.jpg`` → 1).
TEST_PREFIX_TO_SPLIT_ID: dict[str, int] = {USAGES[i].lower(): i for i in (1, 2)}


def emotion_id(name: str) -> int:
    """Label id for a class name or a known synonym (case-insensitive); ``KeyError`` names the valid ones."""
    canonical = SYNONYMS.get(name.strip().lower())
    if canonical is None:
        raise KeyError(f"unknown emotion {name!r}; expected one of {sorted(SYNONYMS)}")
    return EMOTION_TO_ID[canonical]


def canonical_emotion(name: str) -> str:
    """The canonical spelling of a class name (``happiness`` → ``happy``), or the name itself, lower-cased,
    when it has no synonym (``contempt``): how classes of different class sets are matched by name."""
    key = name.strip().lower()
    return SYNONYMS.get(key, key)
