"""Decode any photo a user might hand us into a uint8 numpy image, or fail with one specific error; and the
one list of image suffixes. Shared by ``data/`` (FER2013 image folders) and ``faces/`` (photo folders).

PIL rather than ``cv2.imread``: cv2 silently returns ``None`` (or a half-grey image) for truncated files,
ignores EXIF orientation in some flag combinations, and has no notion of palette/alpha modes. PIL raises on
truncation, applies ``exif_transpose``, and tells us the pixel mode so 16-bit and float data can be scaled
instead of wrapped.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from fer_lightning.emotions import IMAGE_SIZE
from fer_lightning.errors import ImageReadError, InputError

#: Suffixes every folder walk treats as images (compared lower-case).
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")
_JPEG_START, _JPEG_END = b"\xff\xd8", b"\xff\xd9"

# Alpha is composited onto white: cut-out portraits usually have a transparent background, and the RGB values
# hidden under alpha=0 are arbitrary (often black), which would hand the detector a false silhouette.
_ALPHA_BACKGROUND = 255


def _high_depth_to_uint8(img: Image.Image) -> np.ndarray:
    """16/32-bit integer or float grayscale → uint8, scaled by the type's range rather than wrapped mod
    256."""
    arr = np.asarray(img)
    if img.mode == "F":  # float TIFFs have no fixed range: stretch what is there
        lo, hi = float(np.nanmin(arr)), float(np.nanmax(arr))
        scaled = (arr - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(arr)
        return np.nan_to_num(scaled).clip(0, 255).astype(np.uint8)
    # "I;16*" are uint16; "I" (int32) is how PIL loads most 16-bit PNGs, still holding 0..65535.
    return (arr.astype(np.float32) / 257.0).round().clip(0, 255).astype(np.uint8)


def _gray_palette(img: Image.Image) -> bool:
    palette = np.asarray(img.getpalette() or [], np.uint8).reshape(-1, 3)
    return len(palette) > 0 and bool((palette == palette[:, :1]).all())


def _to_array(img: Image.Image) -> np.ndarray:
    """uint8 (H, W) for grayscale sources, (H, W, 3) RGB for everything else."""
    mode = img.mode
    if mode in ("1", "L"):
        return np.asarray(img.convert("L"))
    if mode.startswith("I") or mode == "F":
        return _high_depth_to_uint8(img)
    if mode == "P" and "transparency" not in img.info and _gray_palette(img):
        return np.asarray(img.convert("L"))  # e.g. the JAFFE TIFFs: palette images whose colours are all grey
    if mode in ("RGBA", "RGBa", "LA", "La", "PA") or "transparency" in img.info:
        rgba = img.convert("RGBA")
        flat = Image.new("RGB", img.size, (_ALPHA_BACKGROUND,) * 3)
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return np.asarray(flat.convert("L") if mode in ("LA", "La") else flat)
    return np.asarray(img.convert("RGB"))  # RGB, P, CMYK, YCbCr, LAB, HSV, 16-bit RGB


def read_image(path: str | Path) -> np.ndarray:
    """Decode ``path`` upright (EXIF orientation applied) as uint8 (H, W) gray or (H, W, 3) **RGB**.

    Raises :class:`ImageReadError` for a missing, truncated or non-image file, or one beyond PIL's
    decompression-bomb limit (``PIL.Image.MAX_IMAGE_PIXELS``, about 179 megapixels).
    """
    path = Path(path)
    try:
        with warnings.catch_warnings():
            # Over ~89 MP PIL only warns; a 60+ MP camera frame is legitimate, so keep going quietly.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                img.load()  # decode now, inside the try: truncation surfaces here, not later
                img = ImageOps.exif_transpose(img)
                arr = _to_array(img)
    except FileNotFoundError as e:
        raise ImageReadError(path, "file not found") from e
    except UnidentifiedImageError as e:
        raise ImageReadError(path, "not an image (no decoder recognises its content)") from e
    except Image.DecompressionBombError as e:
        raise ImageReadError(path, f"too large to decode safely ({e})") from e
    except Exception as e:
        raise ImageReadError(path, f"cannot decode ({type(e).__name__}: {e})") from e
    if arr.size == 0:
        raise ImageReadError(path, "image has zero width or height")
    return np.ascontiguousarray(arr)


def read_gray48(path: str | Path) -> np.ndarray:
    """An already cropped face file as uint8 (48, 48) gray (resized with area interpolation if needed).

    OpenCV decodes about 3x faster than PIL but pads a truncated JPEG with grey instead of failing, so it only
    gets JPEGs that reach their end marker; anything else (other formats, cut or odd JPEGs) goes to
    :func:`read_image`, which raises :class:`ImageReadError` on truncation, as this function does.
    """
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise ImageReadError(Path(path), f"cannot open ({e.strerror or e})") from e
    img = None
    if data.startswith(_JPEG_START) and data.endswith(_JPEG_END):
        img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE)
    if img is None:
        img = to_gray(read_image(path))
    if img.shape != (IMAGE_SIZE, IMAGE_SIZE):
        img = cv2.resize(img, (IMAGE_SIZE, IMAGE_SIZE), interpolation=cv2.INTER_AREA)
    return img


def to_gray(image: np.ndarray, bgr: bool = False) -> np.ndarray:
    """uint8 (H, W) from a gray, 3-channel or 4-channel image; ``bgr`` says the channel order (cv2 frames)."""
    image = as_uint8_image(image)
    if image.ndim == 2:
        return image
    if image.shape[2] == 1:
        return image[:, :, 0]
    code = {
        (3, False): cv2.COLOR_RGB2GRAY,
        (3, True): cv2.COLOR_BGR2GRAY,
        (4, False): cv2.COLOR_RGBA2GRAY,
        (4, True): cv2.COLOR_BGRA2GRAY,
    }[(image.shape[2], bgr)]
    return cv2.cvtColor(image, code)


def to_rgb(image: np.ndarray, bgr: bool = False) -> np.ndarray:
    """uint8 (H, W, 3) RGB from a gray, 3-channel or 4-channel image."""
    image = as_uint8_image(image)
    if image.ndim == 2 or image.shape[2] == 1:
        return cv2.cvtColor(image.reshape(image.shape[:2]), cv2.COLOR_GRAY2RGB)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2RGB if bgr else cv2.COLOR_RGBA2RGB)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB) if bgr else image


def as_uint8_image(image: np.ndarray) -> np.ndarray:
    """``image`` checked and converted to a contiguous uint8 (H, W) or (H, W, C) array, C in 1, 3 or 4.

    Floats whose maximum is at most 1 are taken as 0..1 (torchvision's convention) and scaled by 255; larger
    floats as 0..255 (what arithmetic on a uint8 photo gives), so a 0..255 float photo is not clipped to
    white. uint16 is scaled by its range; other integer types must hold values in 0..255. Raises
    :class:`InputError` naming the shape or dtype for anything else: empty, wrong number of dimensions or
    channels, NaN or inf, a non-numeric dtype.
    """
    image = np.asarray(image)
    _check_shape(image)
    if image.dtype == np.uint8:
        return np.ascontiguousarray(image)
    if image.dtype == np.uint16:
        return (image.astype(np.float32) / 257.0).round().astype(np.uint8)
    if np.issubdtype(image.dtype, np.integer):
        lo, hi = int(image.min()), int(image.max())
        if lo < 0 or hi > 255:
            raise InputError(
                f"{image.dtype} image values span {lo}..{hi}; expected 0..255 "
                "(or pass a uint8 or uint16 image)"
            )
        return image.astype(np.uint8)
    if np.issubdtype(image.dtype, np.floating):
        return _float_to_uint8(image)
    raise InputError(
        f"unsupported image dtype {image.dtype} (shape {image.shape}); "
        "expected uint8, uint16, another integer type in 0..255, or float"
    )


def _check_shape(image: np.ndarray) -> None:
    shape = image.shape
    if image.ndim not in (2, 3) or (image.ndim == 3 and shape[2] not in (1, 3, 4)):
        raise InputError(
            f"expected an image shaped (H, W) or (H, W, C) with C = 1, 3 or 4, got shape {shape}"
        )
    if shape[0] == 0 or shape[1] == 0:
        raise InputError(f"image is empty (shape {shape}): it needs at least one row and one column")


def _float_to_uint8(image: np.ndarray) -> np.ndarray:
    if not np.isfinite(image).all():
        raise InputError(
            f"{image.dtype} image (shape {image.shape}) holds NaN or infinite values; "
            "replace them (e.g. np.nan_to_num) before passing it"
        )
    scale = 255.0 if image.max() <= 1.0 else 1.0
    return (image * scale).clip(0.0, 255.0).round().astype(np.uint8)


#: The colour orders a numpy image may be given in.
COLORS = ("bgr", "rgb", "gray")


def load_photo(image: np.ndarray | str | Path, color: str = "bgr") -> tuple[np.ndarray, bool]:
    """(uint8 image, whether it is BGR) from a path (decoded as RGB or gray) or a numpy image in ``color``.

    Arrays go through :func:`as_uint8_image`: float images in 0..1 or 0..255 are both accepted; an empty,
    wrongly shaped, non-finite or non-numeric array raises :class:`InputError` naming its shape and dtype.
    """
    if isinstance(image, str | Path):
        return read_image(image), False  # raises ImageReadError naming the file and the cause
    if color not in COLORS:
        raise InputError(f"color must be one of {COLORS}, got {color!r}")
    image = as_uint8_image(image)
    if color == "gray" and image.ndim != 2 and image.shape[2] != 1:
        raise InputError(f"color='gray' needs an (H, W) image, got shape {image.shape}")
    return image, color == "bgr"
