"""Reading a photo file into a grey image, whatever the file holds (part of the faces stage).

Pillow opens the file and reads only its header first, so a file that declares
more pixels than ``max_pixels`` is refused before anything is decoded (a
decompression bomb). EXIF orientation is applied; CMYK, 16-bit, palette and
alpha images become 8-bit grey (and, for the composites readers see, colour
photos are kept in RGB beside it); an animated image gives its first frame.
Anything that cannot be read raises ``Unreadable`` with a reason in plain words:
any exception from Pillow while reading one file (its decoders are fed hostile bytes,
and a malformed block raises TypeError, struct.error and others) is that file's
problem, never the build's. Metadata that cannot be read costs only the orientation.
"""

from __future__ import annotations

import io
import logging
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

log = logging.getLogger(__name__)


class Unreadable(Exception):
    """The file is not a photo facetrend can use; str() is the reason."""


def decode(data: bytes, max_pixels: int) -> np.ndarray:
    """Grey uint8 (h, w) pixels of an image file's bytes."""
    return decode_colour(data, max_pixels, colour=False)[0]


def decode_colour(data: bytes, max_pixels: int, colour: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
    """Grey uint8 (h, w) pixels of an image file's bytes, and (with ``colour``) its (h, w, 3) RGB pixels when
    the file holds colour (None for a grey one)."""
    if not data:
        raise Unreadable("empty file")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Pillow warns on oddities it can still read
        image = _open(data, max_pixels)
        try:
            image.seek(0)  # first frame of an animation
            image = _upright(image)
            return _grey(image), _rgb(image) if colour else None
        except Exception as exc:  # noqa: BLE001 - whatever Pillow raises on these bytes, the photo is skipped
            raise Unreadable(f"broken or truncated image ({_short(exc)})") from None


def _upright(image: Image.Image) -> Image.Image:
    """The image turned as its EXIF orientation says; as stored when the EXIF block cannot be read."""
    try:
        return ImageOps.exif_transpose(image)
    except Exception as exc:  # noqa: BLE001 - a malformed EXIF block: keep the pixels, drop the orientation
        log.info("unreadable EXIF metadata (%s): the photo is used as stored, not turned", _short(exc))
        return image


def _open(data: bytes, max_pixels: int) -> Image.Image:
    Image.MAX_IMAGE_PIXELS = None  # facetrend's own cap below applies, with the photo's size in the reason
    try:
        image = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise Unreadable("not an image file") from None
    except Image.DecompressionBombError:
        raise Unreadable(f"too many pixels (faces.max_pixels is {max_pixels})") from None
    except Exception as exc:  # noqa: BLE001 - OSError, SyntaxError, struct.error, TypeError...: not our bug
        raise Unreadable(f"not a readable image ({_short(exc)})") from None
    width, height = image.size
    if width * height > max_pixels:
        raise Unreadable(f"too many pixels ({width}x{height}; faces.max_pixels is {max_pixels})")
    if width == 0 or height == 0:
        raise Unreadable("an image with no pixels")
    return image


def _grey(image: Image.Image) -> np.ndarray:
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):  # 16/32-bit grey: scale to 8 bits
        pixels = np.asarray(image, dtype=np.float64)
        top = pixels.max() or 1.0
        return np.round(pixels * (255.0 / (65535.0 if top > 255 else 255.0))).clip(0, 255).astype(np.uint8)
    return np.asarray(_opaque(image).convert("L"), dtype=np.uint8)


GREY_MODES = ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F")


def _rgb(image: Image.Image) -> np.ndarray | None:
    """The photo's colour pixels, (h, w, 3) uint8; None when it holds grey only (kept for the composites a
    reader sees, in colour: the network itself learns from the grey crops)."""
    if image.mode in GREY_MODES:
        return None
    return np.asarray(_opaque(image).convert("RGB"), dtype=np.uint8)


def _opaque(image: Image.Image) -> Image.Image:
    """Transparent parts become white, not black."""
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        image = image.convert("RGBA")
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, image)
    return image


def _short(exc: BaseException) -> str:
    return str(exc).splitlines()[0][:80] if str(exc).strip() else type(exc).__name__
