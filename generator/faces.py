"""Stage 3, faces: decode each photo, find its face, crop, grey, resize.

Images no larger than ``crop_max_side`` are taken as face crops already: their
centred square is used (a 92x112 crop loses 10 rows at top and bottom, so
crops are never squashed). Larger photos go through OpenCV's Haar frontal-face cascade and
the largest face is cropped with a margin. Results (a crop, or the reason
there is none) are cached per photo content hash and face settings, so a
rebuild decodes nothing that did not change.
"""

from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from itertools import repeat
from pathlib import Path

import numpy as np
from tqdm import tqdm

from .collect import Collection, Photo, Skipped
from .config import FaceSettings
from .errors import UserError

log = logging.getLogger(__name__)

FACES_VERSION = 2  # bump when the crop procedure changes, to invalidate cached crops
DETECT_MAX_SIDE = 1024  # photos are shrunk to this before detection, for speed

_Entry = tuple  # (crop | None, detected: bool, reason: str)


@dataclass(frozen=True)
class Faces:
    """The face crops of one report, in photo order, and what was skipped."""

    ids: list[str]  # stable: derived from the photo's content hash
    photos: list[str]  # Photo.source of each face
    persons: list[str | None]
    pixels: np.ndarray  # (N, size, size) uint8 grey
    detected: list[bool]  # True when found by the detector, False when used whole
    total: int  # photos looked at, skipped ones included
    skipped: list[Skipped]
    cached: bool  # every crop came from the cache

    @property
    def people(self) -> int | None:
        """Distinct known persons; None when no photo says whose it is."""
        known = {p for p in self.persons if p is not None}
        return len(known) if known else None


def find_faces(collection: Collection, settings: FaceSettings, cache_dir: Path, where: str,
               jobs: int = 1) -> Faces:
    """Crop one face per photo; skip (and list) photos without one.

    Photos not in the cache are cropped by ``jobs`` processes (0: one per core).
    """
    store = _CropStore(cache_dir / "faces", settings)
    unique, skipped = _unique_photos(collection)
    entries = {digest: store.get(digest) for _, digest in unique}
    misses = [(photo, digest) for photo, digest in unique if entries[digest] is None]
    for (_, digest), entry in zip(misses, _crop_all([p for p, _ in misses], settings, jobs), strict=True):
        store.put(digest, entry)
        entries[digest] = entry
    ids, photos, persons, crops, detected = [], [], [], [], []
    for photo, digest in unique:
        crop, found, reason = entries[digest]
        if crop is None:
            skipped.append(Skipped(photo.source, reason))
            continue
        ids.append(digest[:10])
        photos.append(photo.source)
        persons.append(photo.person)
        crops.append(crop)
        detected.append(found)
    total = len(collection.photos) + len(collection.skipped)
    if not crops:
        raise UserError(
            f"{where}: none of the {total} files under `photos` gave a face "
            f"({len(skipped)} skipped; the build log lists why). Fix: add portrait "
            "photos (one subfolder per person) or check the `faces:` settings."
        )
    log.info("faces: %d of %d photos (%d from cache), %d skipped",
             len(crops), total, len(unique) - len(misses), len(skipped))
    pixels = np.stack(crops).astype(np.uint8)
    return Faces(ids, photos, persons, pixels, detected, total, skipped, not misses)


def _unique_photos(collection: Collection) -> tuple[list[tuple[Photo, str]], list[Skipped]]:
    """Each photo with its content hash, identical files once; unreadable files skipped."""
    unique, skipped = [], list(collection.skipped)
    seen: dict[str, str] = {}
    for photo in collection.photos:
        try:
            digest = photo.content_hash()
        except OSError as exc:
            skipped.append(Skipped(photo.source, f"could not be read ({exc.strerror or exc})"))
            continue
        if digest in seen:
            skipped.append(Skipped(photo.source, f"duplicate of {seen[digest]}"))
            continue
        seen[digest] = photo.source
        unique.append((photo, digest))
    return unique, skipped


PARALLEL_MIN = 64  # fewer photos than this are cropped in this process: starting workers costs more


def _crop_all(photos: list[Photo], settings: FaceSettings, jobs: int) -> list[_Entry]:
    """Crop every photo, in order, on ``jobs`` processes (0: all cores), with a progress bar."""
    jobs = jobs or os.cpu_count() or 1
    bar = tqdm(total=len(photos), desc="faces", unit="photo", disable=None if photos else True)
    with bar:
        if jobs == 1 or len(photos) < PARALLEL_MIN:
            detector = _Detector(settings)
            return [_tick(bar, _crop(p, settings, detector)) for p in photos]
        context = multiprocessing.get_context("spawn")  # never fork a process whose torch threads are running
        with ProcessPoolExecutor(jobs, mp_context=context) as pool:
            chunk = max(1, min(64, len(photos) // (jobs * 8)))
            return [_tick(bar, e) for e in pool.map(_crop_in_worker, photos, repeat(settings), chunksize=chunk)]


def _tick(bar: tqdm, entry: _Entry) -> _Entry:
    bar.update()
    return entry


_worker_detectors: dict[FaceSettings, _Detector] = {}


def _crop_in_worker(photo: Photo, settings: FaceSettings) -> _Entry:
    detector = _worker_detectors.setdefault(settings, _Detector(settings))
    return _crop(photo, settings, detector)


# ---------------------------------------------------------------- one photo


def _decode(photo: Photo) -> np.ndarray | None:
    import cv2

    if photo.pixels is not None:
        return photo.pixels
    data = np.frombuffer(photo.path.read_bytes(), np.uint8)  # type: ignore[union-attr]
    if data.size == 0:
        return None
    return cv2.imdecode(data, cv2.IMREAD_GRAYSCALE)  # applies EXIF orientation


def resize_crop(image: np.ndarray, size: int) -> np.ndarray:
    """Resize a grey image to size x size (area filter down, cubic up)."""
    import cv2

    shrink = max(image.shape) > size
    return cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)


def _crop(photo: Photo, settings: FaceSettings, detector: _Detector) -> _Entry:
    import cv2

    try:
        image = _decode(photo)
    except OSError as exc:
        return None, False, f"could not be read ({exc.strerror or exc})"
    except cv2.error:  # e.g. a header declaring more pixels than OpenCV allows
        return None, False, "not a readable image (corrupt, or too many pixels)"
    if image is None or image.size == 0:
        return None, False, "not a readable image (empty, broken or unsupported)"
    if max(image.shape) <= settings.crop_max_side:
        return resize_crop(_centre_square(image), settings.size), False, ""
    box = detector.largest_face(image)
    if box is None:
        return None, False, "no face found"
    x0, y0, x1, y1 = _square_with_margin(box, image.shape, settings.margin)
    return resize_crop(image[y0:y1, x0:x1], settings.size), True, ""


def _centre_square(image: np.ndarray) -> np.ndarray:
    """The largest centred square of an image, so crops are never squashed."""
    h, w = image.shape
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    return image[top:top + side, left:left + side]


def _square_with_margin(box: tuple, shape: tuple, margin: float) -> tuple[int, int, int, int]:
    """A square around ``box`` grown by ``margin``, shifted and clipped to fit the image."""
    x, y, w, h = box
    side = min(int(round(max(w, h) * (1 + 2 * margin))), shape[0], shape[1])
    cx, cy = x + w / 2, y + h / 2
    x0 = int(round(min(max(cx - side / 2, 0), shape[1] - side)))
    y0 = int(round(min(max(cy - side / 2, 0), shape[0] - side)))
    return x0, y0, x0 + side, y0 + side


class _Detector:
    """OpenCV's Haar frontal-face cascade, loaded on first use."""

    def __init__(self, settings: FaceSettings) -> None:
        self.settings = settings
        self._cascade = None

    def largest_face(self, image: np.ndarray) -> tuple | None:
        import cv2

        if self._cascade is None:
            self._cascade = cv2.CascadeClassifier(
                cv2.data.haarcascades + "haarcascade_frontalface_default.xml"
            )
        scale = min(1.0, DETECT_MAX_SIDE / max(image.shape))
        small = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else image
        min_side = max(8, int(self.settings.min_face * scale))
        boxes = self._cascade.detectMultiScale(
            cv2.equalizeHist(small),
            scaleFactor=self.settings.scale_factor,
            minNeighbors=self.settings.min_neighbors,
            minSize=(min_side, min_side),
        )
        if len(boxes) == 0:
            return None
        x, y, w, h = max(boxes.tolist(), key=lambda b: (b[2] * b[3], b))
        return tuple(int(round(v / scale)) for v in (x, y, w, h))


# ---------------------------------------------------------------- cache


class _CropStore:
    """Cached crop results, one small file per (photo content, face settings)."""

    def __init__(self, folder: Path, settings: FaceSettings) -> None:
        self.folder = folder
        self.stamp = json.dumps({"v": FACES_VERSION, **asdict(settings)}, sort_keys=True)

    def _path(self, digest: str) -> Path:
        key = hashlib.sha256((digest + self.stamp).encode()).hexdigest()
        return self.folder / key[:2] / f"{key}.png"

    def get(self, digest: str) -> _Entry | None:
        import cv2

        path = self._path(digest)
        skip = path.with_suffix(".skip.json")
        try:
            if skip.exists():
                return None, False, json.loads(skip.read_text(encoding="utf-8"))["reason"]
            if path.exists():
                crop = cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_UNCHANGED)
                found = path.with_suffix(".detected").exists()
                if crop is not None and crop.ndim == 2:
                    return crop, found, ""
                log.warning("cached crop %s is unreadable; cropping again", path.name)
        except (OSError, ValueError, KeyError) as exc:
            log.warning("cached crop %s is unreadable (%s); cropping again", path.name, exc)
        return None

    def put(self, digest: str, entry: _Entry) -> None:
        import cv2

        crop, found, reason = entry
        path = self._path(digest)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if crop is None:
                _atomic_write(path.with_suffix(".skip.json"), json.dumps({"reason": reason}).encode())
                return
            if found:
                path.with_suffix(".detected").touch()
            _atomic_write(path, cv2.imencode(".png", crop)[1].tobytes())
        except OSError as exc:  # a cache that cannot be written only costs time
            log.warning("could not cache crop %s (%s)", path.name, exc)


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
