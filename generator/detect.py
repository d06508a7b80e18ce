"""Finding faces in a photo and their five landmarks (part of the faces stage).

The default detector, ``hog``, is dlib's HOG frontal-face detector (in the
dlib-bin wheel, no model file). ``haar`` is OpenCV's Haar cascade (the 2015
original), by default with an eye check; ``yunet`` is cv2.FaceDetectorYN with
a model file the user gives. Every photo is searched on one resized copy chosen
so that the smallest face looked for, ``max(min_face, shorter side / 32)``
pixels, meets the detector's smallest window: small photos are enlarged, large
ones shrunk, so a 24 MP photo costs about a second, not a minute. Each face's
five landmarks (two corners of each eye, the base of the nose) come from
dlib's 5-point shape predictor, shipped in face-recognition-models (CC0);
pixels.py aligns the face with them. Why a photo gives no face is always said:
the detector found none, or a named check rejected what it found.
"""

from __future__ import annotations

import copy
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .config import FaceSettings
from .errors import UserError

FACE_SHARE = 1 / 32  # faces smaller than this share of the photo's shorter side are not looked for
WINDOW = {"hog": 80, "haar": 40, "yunet": 20}  # the smallest face, in pixels, each detector finds
MAX_ENLARGE = 2.0  # a small photo is enlarged at most this much before searching
NO_FACE = "no face found by the detector"
LANDMARKS_FILE = "shape_predictor_5_face_landmarks.dat"
CROP_CHECK_SIDE = 160  # a small image is padded and resized to this before the crop check looks for a face
CROP_CHECK_THRESHOLD = -0.3  # the HOG score a face in a small image needs (dlib's default for photos: 0)


@dataclass(frozen=True)
class Face:
    box: tuple[int, int, int, int]  # x, y, w, h in the photo's pixels
    landmarks: tuple[tuple[float, float], ...] | None = None  # dlib's 5 points in the photo's pixels

    @property
    def eyes(self) -> tuple[tuple[float, float], tuple[float, float]] | None:
        """Both eyes' centres, (left, right) as seen, from the landmarks (each eye's two corners)."""
        if not self.landmarks or len(self.landmarks) != 5:
            return None
        one, other = (tuple(float(v) for v in np.mean(self.landmarks[k:k + 2], axis=0)) for k in (0, 2))
        return (one, other) if one[0] < other[0] else (other, one)


@dataclass(frozen=True)
class Found:
    """What a search of one photo gave: its faces (largest first), or why there are none."""

    faces: list[Face] = field(default_factory=list)
    rejected: str = ""  # "" when the detector found nothing or something was kept; else the first rejection

    @property
    def reason(self) -> str:
        """Why there is no face ("" when there is one), naming the step that said so."""
        return "" if self.faces else self.rejected or NO_FACE


class Detector:
    """Faces in a grey photo, largest first; models load on first use (one set per Detector).

    A Detector is used by one thread at a time: dlib's detectors keep the image they scan in themselves.
    """

    def __init__(self, settings: FaceSettings, yunet_path: str = "") -> None:
        self.settings = settings
        self.yunet_path = yunet_path
        self._models: dict[str, object] = {}

    def faces(self, image: np.ndarray) -> list[Face]:
        return self.search(image).faces

    def search(self, image: np.ndarray, landmarked: int | None = None) -> Found:
        """Every face of at least the smallest size looked for, and the first rejection; the first
        ``landmarked`` faces (all when None) get landmarks, the others none (the faces stage keeps only the
        largest face by default, and locating landmarks on faces it drops would be wasted)."""
        import cv2

        kind = self.settings.detector
        smallest = max(self.settings.min_face, FACE_SHARE * min(image.shape))
        scale = min(MAX_ENLARGE, WINDOW[kind] / smallest)
        work = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA if scale < 1
                          else cv2.INTER_LINEAR) if abs(scale - 1) > 0.01 else image
        boxes, rejected = getattr(self, f"_{kind}")(work)
        boxes = [b for b in (_scaled(b, 1 / scale) for b in boxes) if min(b[2], b[3]) >= 0.8 * smallest]
        boxes.sort(key=lambda b: (-b[2] * b[3], b))
        marked = len(boxes) if landmarked is None else landmarked
        faces = [Face(b, self._landmarks(image, b) if self.settings.align and i < marked else None)
                 for i, b in enumerate(boxes)]
        return Found(faces, "" if faces else rejected)

    def is_face_crop(self, image: np.ndarray) -> bool:
        """Whether a small image shows one face that fills much of it (the `crops: auto` check)."""
        import cv2

        h, w = image.shape
        pad = max(h, w) // 4
        big = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        k = CROP_CHECK_SIDE / max(big.shape)
        big = cv2.resize(big, None, fx=k, fy=k, interpolation=cv2.INTER_CUBIC if k > 1 else cv2.INTER_AREA)
        for upsample in (0, 1):  # a face filling the image shows without upsampling, a quarter of the work
            rects, _, _ = self._model("hog").run(big, upsample, CROP_CHECK_THRESHOLD)  # (ORL: 4.4 ms, not 18.6)
            if any(r.width() / k >= min(h, w) / 3 for r in rects):
                return True
        return False

    def _model(self, name: str):
        if name not in self._models:
            self._models[name] = _hog() if name == "hog" else _load(name, self.yunet_path)
        return self._models[name]

    @property
    def loaded(self) -> bool:
        """Whether any model was used: the photos so far needed the detector, whose work (dlib, OpenCV) runs
        outside Python's global lock, so threads share it out over the cores."""
        return bool(self._models)

    def _hog(self, image: np.ndarray) -> tuple[list[tuple], str]:
        rects = self._model("hog")(image, 0)
        return [(r.left(), r.top(), r.width(), r.height()) for r in rects], ""

    def _haar(self, image: np.ndarray) -> tuple[list[tuple], str]:
        import cv2

        s = self.settings
        side = WINDOW["haar"]
        found = self._model("haarcascade_frontalface_default.xml").detectMultiScale(
            cv2.equalizeHist(image), scaleFactor=s.scale_factor, minNeighbors=s.min_neighbors, minSize=(side, side))
        boxes = [tuple(int(v) for v in b) for b in (found if len(found) else [])]
        kept = [b for b in boxes if not s.verify_eyes or self._has_eye(image, b)]
        rejected = "face found but rejected by the eye check: no eye found in its upper half" if boxes else ""
        return kept, rejected

    def _has_eye(self, image: np.ndarray, box: tuple) -> bool:
        x, y, w, h = box
        region = image[y + h // 6:y + h * 3 // 5, x:x + w]
        side = max(4, w // 10)
        return len(self._model("haarcascade_eye.xml").detectMultiScale(region, 1.1, 4, minSize=(side, side))) > 0

    def _yunet(self, image: np.ndarray) -> tuple[list[tuple], str]:
        import cv2

        model = self._model("yunet")
        model.setInputSize((image.shape[1], image.shape[0]))
        model.setScoreThreshold(0.8)
        _, rows = model.detect(cv2.cvtColor(image, cv2.COLOR_GRAY2BGR))
        return [tuple(int(round(v)) for v in r[:4]) for r in (rows if rows is not None else [])], ""

    def _landmarks(self, image: np.ndarray, box: tuple) -> tuple[tuple[float, float], ...]:
        import dlib

        x, y, w, h = box
        shape = self._model("landmarks")(image, dlib.rectangle(x, y, x + w - 1, y + h - 1))
        return tuple((float(shape.part(i).x), float(shape.part(i).y)) for i in range(shape.num_parts))


_HOG: list = []  # dlib's HOG detector as first loaded in this process, never run itself: Detectors get copies
_HOG_LOCK = threading.Lock()


def _hog():
    """A HOG detector of the caller's own: loading one takes a third of a second (dlib decodes it from its
    source), a copy 3 ms, so each Detector after the first in a process (threads, the trends page's years, one
    per report) costs little."""
    with _HOG_LOCK:
        if not _HOG:
            _HOG.append(_load("hog", ""))
        return copy.copy(_HOG[0])


def _load(name: str, yunet_path: str):
    if name == "hog":
        import dlib

        return dlib.get_frontal_face_detector()
    if name == "landmarks":
        import dlib

        return dlib.shape_predictor(str(landmarks_path()))
    import cv2

    if name == "yunet":
        return cv2.FaceDetectorYN.create(yunet_path, "", (320, 320))
    return cv2.CascadeClassifier(cv2.data.haarcascades + name)


def landmarks_path() -> Path:
    """The 5-point landmark model in the installed face-recognition-models package (found, not imported:
    its __init__ needs pkg_resources, which current setuptools no longer ships)."""
    import importlib.util

    spec = importlib.util.find_spec("face_recognition_models")
    folders = list(spec.submodule_search_locations or []) if spec else []
    for folder in folders:
        path = Path(folder) / "models" / LANDMARKS_FILE
        if path.is_file():
            return path
    raise UserError(f"the face landmark model {LANDMARKS_FILE} was not found: the package face-recognition-models "
                    "is missing. Fix: reinstall facetrend (`pip install -e .`), which installs it, or set "
                    "`faces: align: false` in the report's index.md to cut faces without landmarks.")


def _scaled(box: tuple, k: float) -> tuple[int, int, int, int]:
    return tuple(int(round(v * k)) for v in box)
