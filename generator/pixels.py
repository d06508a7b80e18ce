"""Pixel operations of the faces stage: cut, level, resize, equalise, hash.

detect.py finds faces (boxes and eyes); this module turns a photo and those
boxes into crops. Every face is cut as a square around its box, grown by
``margin`` and shifted to stay inside the photo; when both eyes are known it
is rotated so they are level, then resized. Nothing here decides what is a face.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .config import FaceSettings

if TYPE_CHECKING:  # a Face is only read here (its box and eyes); detect.py makes them
    from .detect import Face

HASH_SIDE = 16
HASH_BITS = HASH_SIDE * HASH_SIDE


def cut(image: np.ndarray, face: Face, margin: float, size: int, align: bool) -> np.ndarray:
    """The face as a size x size grey square, level when its eyes are known and ``align`` is on."""
    import cv2

    x0, y0, x1, y1 = square_with_margin(face.box, image.shape, margin)
    side = x1 - x0
    angle = 0.0
    if align and face.eyes:
        (lx, ly), (rx, ry) = face.eyes
        angle = math.degrees(math.atan2(ry - ly, rx - lx))
    if abs(angle) < 0.5:
        return resize_crop(image[y0:y1, x0:x1], size)
    work = 2 * size  # rotate and cut at twice the size, then shrink with area filtering
    matrix = cv2.getRotationMatrix2D(((x0 + x1) / 2, (y0 + y1) / 2), angle, work / side)
    matrix[0, 2] += work / 2 - (x0 + x1) / 2
    matrix[1, 2] += work / 2 - (y0 + y1) / 2
    level = cv2.warpAffine(image, matrix, (work, work), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return cv2.resize(level, (size, size), interpolation=cv2.INTER_AREA)


def resize_crop(image: np.ndarray, size: int) -> np.ndarray:
    """Resize a grey (or RGB) image to size x size (area filter down, cubic up)."""
    import cv2

    shrink = max(image.shape[:2]) > size
    return cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)


def square_with_margin(box: tuple, shape: tuple, margin: float) -> tuple[int, int, int, int]:
    """A square around ``box`` grown by ``margin``, shifted and clipped to fit the image."""
    x, y, w, h = box
    side = min(int(round(max(w, h) * (1 + 2 * margin))), shape[0], shape[1])
    cx, cy = x + w / 2, y + h / 2
    x0 = int(round(min(max(cx - side / 2, 0), shape[1] - side)))
    y0 = int(round(min(max(cy - side / 2, 0), shape[0] - side)))
    return x0, y0, x0 + side, y0 + side


def background_patch(image: np.ndarray, faces: list[Face], margin: float, size: int) -> np.ndarray | None:
    """A square of the photo, as large as the first face's crop, that overlaps no face's crop; None if none fits.

    Candidates are scanned in rows from the top left in steps of half a side,
    so the patch is the same in every build. Used as a non-face for selectivity.
    """
    if not faces:
        return None
    boxes = [square_with_margin(f.box, image.shape, margin) for f in faces]
    side = boxes[0][2] - boxes[0][0]
    step = max(1, side // 2)
    for y in range(0, image.shape[0] - side + 1, step):
        for x in range(0, image.shape[1] - side + 1, step):
            if all(x + side <= x0 or x >= x1 or y + side <= y0 or y >= y1 for x0, y0, x1, y1 in boxes):
                return resize_crop(image[y:y + side, x:x + side], size)
    return None


def centre_square(image: np.ndarray) -> np.ndarray:
    """The largest centred square of an image, so crops are never squashed."""
    h, w = image.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    return image[top:top + side, left:left + side]


def equalise(crop: np.ndarray, settings: FaceSettings) -> np.ndarray:
    """The crop's contrast as the `equalize` setting asks."""
    import cv2

    if settings.equalize == "histogram":
        return cv2.equalizeHist(crop)
    if settings.equalize == "clahe":
        tile = max(1, settings.size // 16)
        return cv2.createCLAHE(clipLimit=2.0, tileGridSize=(tile, tile)).apply(crop)
    return crop


def difference_hash(image: np.ndarray) -> int:
    """A 256-bit perceptual hash: is each pixel of a 17x16 thumbnail brighter than its right neighbour?"""
    import cv2

    small = cv2.resize(image, (HASH_SIDE + 1, HASH_SIDE), interpolation=cv2.INTER_AREA).astype(np.int16)
    bits = np.packbits((small[:, 1:] > small[:, :-1]).ravel())
    return int.from_bytes(bits.tobytes(), "big") or 1  # 0 is kept for "no hash"


# ---------------------------------------------------------------- landmark alignment

# Where dlib's five landmarks sit on a level face, as fractions of the face's side: image-right eye's outer and
# inner corner, image-left eye's outer and inner corner, base of the nose. Measured in dlib's face-chip frame
# on 333 LFW faces and made mirror-symmetric, so a level face reads as tilt 0.
TEMPLATE = np.array([[0.867, 0.220], [0.655, 0.224], [0.133, 0.220], [0.345, 0.224], [0.5, 0.630]])


@dataclass(frozen=True)
class Pose:
    """What alignment removed from one face."""

    tilt: float  # roll in degrees, positive when the head is turned anticlockwise as seen (leans to the viewer's left)
    side: float  # the face's side in the photo's pixels (the template's unit square)


def similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The 2x3 rotation, uniform scale and shift that maps ``src`` points nearest to ``dst`` (Umeyama, 1991)."""
    src_mean, dst_mean = src.mean(0), dst.mean(0)
    a, b = src - src_mean, dst - dst_mean
    u, s, vt = np.linalg.svd(b.T @ a / len(src))
    d = np.diag([1.0, np.sign(np.linalg.det(u @ vt))])
    rotation = u @ d @ vt
    scale = np.trace(np.diag(s) @ d) / a.var(0).sum()
    return np.hstack([scale * rotation, (dst_mean - scale * rotation @ src_mean)[:, None]])


def aligned(image: np.ndarray, landmarks, margin: float, size: int) -> tuple[np.ndarray, Pose]:
    """The face levelled, scaled and centred on TEMPLATE (grown by ``margin``) as a size x size square.

    The warp is done at twice the size and shrunk with area filtering; a face much
    larger than that is first cut out and shrunk, so no pixel is skipped.
    """
    import cv2

    target = (TEMPLATE + margin) / (1 + 2 * margin) * size
    matrix = similarity(np.asarray(landmarks, float), target)
    scale = math.hypot(matrix[0, 0], matrix[1, 0])  # crop pixels per photo pixel
    pose = Pose(math.degrees(math.atan2(matrix[1, 0], matrix[0, 0])), size / (1 + 2 * margin) / scale)
    if scale < 0.25:
        image, matrix = _shrunk_around(image, matrix, size, 4 * scale)
    work = 2 * size
    level = cv2.warpAffine(image, matrix * 2, (work, work), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return cv2.resize(level, (size, size), interpolation=cv2.INTER_AREA), pose


def _shrunk_around(image: np.ndarray, matrix: np.ndarray, size: int, k: float) -> tuple[np.ndarray, np.ndarray]:
    """The part of ``image`` the crop comes from, shrunk by ``k``, and the crop's matrix for it."""
    import cv2

    corners = np.array([[0, 0, 1], [size, 0, 1], [0, size, 1], [size, size, 1]], float)
    inside = corners @ cv2.invertAffineTransform(matrix).T
    x0, y0 = np.maximum(np.floor(inside.min(0)).astype(int) - 2, 0)
    x1, y1 = np.minimum(np.ceil(inside.max(0)).astype(int) + 2, (image.shape[1], image.shape[0]))
    small = cv2.resize(image[y0:y1, x0:x1], None, fx=k, fy=k, interpolation=cv2.INTER_AREA)
    fx, fy = small.shape[1] / (x1 - x0), small.shape[0] / (y1 - y0)
    to_small = np.array([[fx, 0, -x0 * fx], [0, fy, -y0 * fy], [0, 0, 1]])
    return small, (np.vstack([matrix, [0, 0, 1]]) @ np.linalg.inv(to_small))[:2]


def face_signature(crop: np.ndarray) -> np.ndarray:
    """A crop blurred to 16x16, zero-mean and unit length: two crops' dot product is their correlation."""
    import cv2

    small = cv2.resize(cv2.GaussianBlur(crop, (0, 0), crop.shape[0] / 40), (16, 16), interpolation=cv2.INTER_AREA)
    v = small.astype(np.float32).ravel()
    v -= v.mean()
    return v / (np.linalg.norm(v) or 1.0)
