"""Finding faces in a photo and cutting them out level (part of the faces stage).

The default detector is OpenCV's Haar frontal-face cascade on a histogram-
equalised copy of the photo (shrunk to at most 1024 pixels). With
``verify_eyes``, a box counts as a face only when the eye cascade finds an eye
in its upper part: that drops most false positives on backgrounds. YuNet
(cv2.FaceDetectorYN) is used instead when ``detector: yunet`` and a model file
is given. When both eyes are found the face is rotated so they are level.
Every face is cut as a square around the box, grown by ``margin`` and shifted to
stay inside the photo, then resized.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .config import FaceSettings

DETECT_MAX_SIDE = 1024  # photos are shrunk to this before detection, for speed


@dataclass(frozen=True)
class Face:
    box: tuple[int, int, int, int]  # x, y, w, h in the photo's pixels
    eyes: tuple[tuple[float, float], tuple[float, float]] | None = None  # (left, right) in the image


class Detector:
    """Faces in a grey photo, largest first; models load on first use (one per process)."""

    def __init__(self, settings: FaceSettings, yunet_path: str = "") -> None:
        self.settings = settings
        self.yunet_path = yunet_path
        self._models: dict[str, object] = {}

    def faces(self, image: np.ndarray) -> list[Face]:
        import cv2

        scale = min(1.0, DETECT_MAX_SIDE / max(image.shape))
        small = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else image
        found = self._yunet(small) if self.settings.detector == "yunet" else self._haar(small)
        found = [_scaled(f, 1 / scale) for f in found]
        return sorted(found, key=lambda f: (-f.box[2] * f.box[3], f.box))

    def _model(self, name: str):
        import cv2

        if name not in self._models:
            if name == "yunet":
                self._models[name] = cv2.FaceDetectorYN.create(self.yunet_path, "", (320, 320))
            else:
                self._models[name] = cv2.CascadeClassifier(cv2.data.haarcascades + name)
        return self._models[name]

    def _haar(self, image: np.ndarray) -> list[Face]:
        import cv2

        s = self.settings
        side = max(8, int(s.min_face * min(1.0, DETECT_MAX_SIDE / max(image.shape))))
        boxes = self._model("haarcascade_frontalface_default.xml").detectMultiScale(
            cv2.equalizeHist(image), scaleFactor=s.scale_factor, minNeighbors=s.min_neighbors, minSize=(side, side))
        faces = [Face(tuple(int(v) for v in b), self._eyes(image, b)) for b in (boxes if len(boxes) else [])]
        return [f for f in faces if f.eyes is not None or not s.verify_eyes]

    def _eyes(self, image: np.ndarray, box) -> tuple | None:
        """Both eyes' centres (left, right) when found in the box's upper part; () for one eye; None for none."""
        x, y, w, h = (int(v) for v in box)
        region = image[y + h // 6:y + h * 3 // 5, x:x + w]
        found = self._model("haarcascade_eye.xml").detectMultiScale(
            region, scaleFactor=1.1, minNeighbors=4, minSize=(max(4, w // 10), max(4, w // 10)))
        centres = sorted((x + ex + ew / 2, y + h // 6 + ey + eh / 2) for ex, ey, ew, eh in
                         (found if len(found) else []))
        left = [c for c in centres if c[0] < x + w / 2]
        right = [c for c in centres if c[0] >= x + w / 2]
        if left and right:
            return (left[-1], right[0])
        return () if centres else None

    def _yunet(self, image: np.ndarray) -> list[Face]:
        import cv2

        model = self._model("yunet")
        model.setInputSize((image.shape[1], image.shape[0]))
        model.setScoreThreshold(0.8)
        _, rows = model.detect(cv2.cvtColor(image, cv2.COLOR_GRAY2BGR))
        faces = []
        for r in rows if rows is not None else []:
            x, y, w, h = (int(round(v)) for v in r[:4])
            if min(w, h) >= self.settings.min_face * min(1.0, DETECT_MAX_SIDE / max(image.shape)):
                eyes = tuple(sorted(((float(r[4]), float(r[5])), (float(r[6]), float(r[7])))))
                faces.append(Face((x, y, w, h), eyes))
        return faces


def _scaled(face: Face, k: float) -> Face:
    box = tuple(int(round(v * k)) for v in face.box)
    eyes = tuple((ex * k, ey * k) for ex, ey in face.eyes) if face.eyes else face.eyes
    return Face(box, eyes)


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
    """Resize a grey image to size x size (area filter down, cubic up)."""
    import cv2

    shrink = max(image.shape) > size
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
