"""Stage 3, faces: decode each photo, find its faces, level, crop, grey, resize, equalise.

Images no larger than ``crop_max_side`` are taken as face crops already: their
centred square is used (a 92x112 crop loses 10 rows at top and bottom, so
crops are never squashed). Larger photos go through face detection
(detect.py): the largest face, or every face with ``keep: all``. Identical
files count once; so do near-identical photos (256-bit difference hashes at most
``near_duplicate_bits`` apart: on the ORL faces, distinct photos of one person
differ in 16 bits or more, a resized or recompressed copy in 9 or fewer). Results (crops, or the reason there are none)
are cached per photo content hash and face settings, so a rebuild after adding
ten photos processes ten photos; those run on all cores.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import multiprocessing
import os
import time
import zipfile
import zlib
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from itertools import repeat
from pathlib import Path

import numpy as np
from tqdm import tqdm

from .collect import Collection, Photo, Skipped
from .config import FaceSettings
from .decode import Unreadable, decode
from .detect import Detector, background_patch, cut, resize_crop
from .errors import UserError

log = logging.getLogger(__name__)

FACES_VERSION = 4  # bump when the crop procedure changes, to invalidate cached crops
PARALLEL_MIN = 64  # fewer photos than this are cropped in this process: starting workers costs more
PROBE = 16  # photos cropped here first, to learn what one costs
POOL_WORTH_S = 3.0  # the rest go to worker processes only when they would take longer than this here


@dataclass(frozen=True)
class Entry:
    """What one photo gave: its crops (maybe none), and why none, and its perceptual hash."""

    crops: np.ndarray  # (k, size, size) uint8
    detected: list[bool]
    phash: int  # 256-bit difference hash of the whole photo; 0 when unreadable
    reason: str = ""
    background: np.ndarray | None = None  # (b, size, size) uint8: patches of the photo away from its faces


@dataclass(frozen=True)
class Faces:
    """The face crops of one report, in photo order, and what was skipped."""

    ids: list[str]  # stable: derived from the photo's content hash (-1, -2, ... for further faces)
    photos: list[str]  # Photo.source of each face
    persons: list[str | None]
    pixels: np.ndarray  # (N, size, size) uint8 grey
    detected: list[bool]  # True when found by the detector, False when used whole
    total: int  # photos looked at, skipped ones included
    skipped: list[Skipped]
    cached: bool  # every crop came from the cache
    profiles: dict[str, dict[str, str]] = field(default_factory=dict)  # person -> name, profile (people.csv)
    excluded: int = 0  # photos and faces left out on the author's request
    backgrounds: np.ndarray | None = None  # (M, size, size) uint8 non-face patches of these photos (never published)

    @property
    def people(self) -> int | None:
        """Distinct known persons; None when no photo says whose it is."""
        known = {p for p in self.persons if p is not None}
        return len(known) if known else None


def person_keys(persons: list[str | None]) -> list[str]:
    """Whose each face is, for counting people: a face without a known person is a person of its own."""
    return [p if p is not None else f"\0{i}" for i, p in enumerate(persons)]


def find_faces(collection: Collection, settings: FaceSettings, cache_dir: Path, where: str,
               jobs: int = 1, exclude: frozenset[str] = frozenset(), model_dir: Path | None = None) -> Faces:
    """Crop the faces of every photo; skip (and list) photos without one.

    Photos not in the cache are cropped by ``jobs`` processes (0: one per core).
    Face ids in ``exclude`` are left out silently. ``model_dir`` resolves ``yunet_model``.
    """
    store = _CropStore(cache_dir / "faces", settings)
    unique, skipped = _unique_photos(collection)
    entries = {digest: store.get(digest) for _, digest in unique}
    misses = [(photo, digest) for photo, digest in unique if entries[digest] is None]
    yunet = str((model_dir or Path(".")) / settings.yunet_model) if settings.yunet_model else ""
    for (_, digest), entry in zip(misses, _crop_all([p for p, _ in misses], settings, jobs, yunet), strict=True):
        store.put(digest, entry)
        entries[digest] = entry
    kept, near = _drop_near_duplicates(unique, entries, settings.near_duplicate_bits)
    faces = _assemble(kept, entries, exclude)
    skipped += near + [Skipped(p.source, entries[d].reason) for p, d in kept if not len(entries[d].crops)]
    total = len(collection.photos) + len(collection.skipped) + collection.excluded
    if not faces[0]:
        left_out = f", {collection.excluded} left out by `exclude`/`exclude_people`" if collection.excluded else ""
        raise UserError(
            f"{where}: none of the {total} files under `photos` gave a face "
            f"({len(skipped)} skipped{left_out}; the build log lists why). Fix: add portrait "
            "photos (one subfolder per person), check the `faces:` settings, or exclude fewer."
        )
    log.info("faces: %d from %d photos (%d from cache), %d skipped",
             len(faces[0]), total, len(unique) - len(misses), len(skipped))
    ids, photos, persons, crops, detected = faces
    excluded = collection.excluded + sum(len(entries[d].crops) for _, d in kept) - len(ids)
    profiles = {k: v for k, v in collection.people.items() if k in set(persons)}
    return Faces(ids, photos, persons, np.stack(crops), detected, total, skipped, not misses, profiles, excluded,
                 _backgrounds(kept, entries, exclude, settings.size))


def _assemble(kept: list[tuple[Photo, str]], entries: dict[str, Entry], exclude: frozenset[str]) -> tuple:
    ids, photos, persons, crops, detected = [], [], [], [], []
    for photo, digest in kept:
        entry = entries[digest]
        for k, (face_id, crop) in enumerate(zip(_face_ids(digest, entry), entry.crops, strict=True)):
            if face_id in exclude:
                continue
            ids.append(face_id)
            photos.append(photo.source)
            persons.append(photo.person)
            crops.append(crop)
            detected.append(entry.detected[k])
    return ids, photos, persons, crops, detected


def _backgrounds(kept: list[tuple[Photo, str]], entries: dict[str, Entry], exclude: frozenset[str],
                 size: int) -> np.ndarray:
    """The background patches of the kept photos; a photo with an excluded face gives none."""
    patches = [entries[d].background for _, d in kept
               if entries[d].background is not None and not any(i in exclude for i in _face_ids(d, entries[d]))]
    patches = [b for b in patches if len(b)]
    return np.concatenate(patches) if patches else np.zeros((0, size, size), np.uint8)


def _face_ids(digest: str, entry: Entry) -> list[str]:
    return [digest[:10] + (f"-{k}" if k else "") for k in range(len(entry.crops))]


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


def _drop_near_duplicates(unique: list[tuple[Photo, str]], entries: dict[str, Entry],
                          bits: int) -> tuple[list[tuple[Photo, str]], list[Skipped]]:
    """Keep the first of every group of photos whose hashes differ in at most ``bits`` bits.

    By the pigeonhole principle two hashes that differ in at most ``bits`` bits
    agree on at least one of ``bits + 1`` bands, so only photos sharing a band
    are compared: linear time, not quadratic.
    """
    if bits <= 0:
        return unique, []
    bands = [(HASH_BITS * i // (bits + 1), HASH_BITS * (i + 1) // (bits + 1)) for i in range(bits + 1)]
    index: dict[tuple[int, int], list[tuple[int, str]]] = {}
    kept, skipped = [], []
    for photo, digest in unique:
        h = entries[digest].phash
        if not h:  # unreadable: nothing to compare
            kept.append((photo, digest))
            continue
        keys = [(i, (h >> lo) & ((1 << (hi - lo)) - 1)) for i, (lo, hi) in enumerate(bands)]
        twin = next((src for key in keys for other, src in index.get(key, [])
                     if (h ^ other).bit_count() <= bits), None)
        if twin is not None:
            skipped.append(Skipped(photo.source, f"near-duplicate of {twin}"))
            continue
        kept.append((photo, digest))
        for key in keys:
            index.setdefault(key, []).append((h, photo.source))
    return kept, skipped


def _crop_all(photos: list[Photo], settings: FaceSettings, jobs: int, yunet: str) -> list[Entry]:
    """Crop every photo, in order, on ``jobs`` processes (0: all cores), with a progress bar."""
    jobs = jobs or os.cpu_count() or 1
    bar = tqdm(total=len(photos), desc="faces", unit="photo", disable=None if photos else True)
    with bar:
        detector = Detector(settings, yunet)
        start = time.perf_counter()
        done = [_tick(bar, crop_photo(p, settings, detector)) for p in photos[:PROBE]]
        rest = photos[PROBE:]
        each = (time.perf_counter() - start) / max(1, len(done))
        if jobs == 1 or len(photos) < PARALLEL_MIN or each * len(rest) < POOL_WORTH_S:  # cheap: crops already
            return done + [_tick(bar, crop_photo(p, settings, detector)) for p in rest]
        context = multiprocessing.get_context("spawn")  # never fork a process whose torch threads are running
        with ProcessPoolExecutor(jobs, mp_context=context) as pool:
            chunk = max(1, min(16, len(rest) // (jobs * 8)))
            work = pool.map(_crop_in_worker, rest, repeat(settings), repeat(yunet), chunksize=chunk)
            return done + [_tick(bar, e) for e in work]


def _tick(bar: tqdm, entry: Entry) -> Entry:
    bar.update()
    return entry


_worker_detectors: dict[tuple[FaceSettings, str], Detector] = {}


def _crop_in_worker(photo: Photo, settings: FaceSettings, yunet: str) -> Entry:
    if not _worker_detectors:  # first photo in this worker: one OpenCV thread, the processes share the cores
        import cv2

        cv2.setNumThreads(1)
    detector = _worker_detectors.setdefault((settings, yunet), Detector(settings, yunet))
    return crop_photo(photo, settings, detector)


# ---------------------------------------------------------------- one photo


def crop_photo(photo: Photo, settings: FaceSettings, detector: Detector) -> Entry:
    """The faces of one photo, cut, levelled, resized and equalised."""
    none = np.zeros((0, settings.size, settings.size), np.uint8)
    try:
        image = photo.pixels if photo.pixels is not None else decode(_read(photo), settings.max_pixels)
    except Unreadable as exc:
        return Entry(none, [], 0, f"not a readable image: {exc}")
    except OSError as exc:
        return Entry(none, [], 0, f"could not be read ({exc.strerror or exc})")
    phash = difference_hash(image)
    if max(image.shape) <= settings.crop_max_side:
        return Entry(equalise(resize_crop(centre_square(image), settings.size), settings)[None], [False], phash)
    every = detector.faces(image)
    found = every[:1] if settings.keep == "largest" else every
    if not found:
        return Entry(none, [], phash, "no face found")
    crops = [equalise(cut(image, f, settings.margin, settings.size, settings.align), settings) for f in found]
    patch = background_patch(image, every, settings.margin, settings.size)
    background = none if patch is None else equalise(patch, settings)[None]
    return Entry(np.stack(crops), [True] * len(crops), phash, background=background)


def _read(photo: Photo) -> bytes:
    assert photo.path is not None
    return photo.path.read_bytes()


def centre_square(image: np.ndarray) -> np.ndarray:
    """The largest centred square of an image, so crops are never squashed."""
    h, w = image.shape
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


HASH_SIDE = 16
HASH_BITS = HASH_SIDE * HASH_SIDE


def difference_hash(image: np.ndarray) -> int:
    """A 256-bit perceptual hash: is each pixel of a 17x16 thumbnail brighter than its right neighbour?"""
    import cv2

    small = cv2.resize(image, (HASH_SIDE + 1, HASH_SIDE), interpolation=cv2.INTER_AREA).astype(np.int16)
    bits = np.packbits((small[:, 1:] > small[:, :-1]).ravel())
    return int.from_bytes(bits.tobytes(), "big") or 1  # 0 is kept for "no hash"


# ---------------------------------------------------------------- cache


class _CropStore:
    """Cached crop results, one small compressed file per (photo content, face settings)."""

    def __init__(self, folder: Path, settings: FaceSettings) -> None:
        self.folder = folder
        self.stamp = json.dumps({"v": FACES_VERSION, **asdict(settings)}, sort_keys=True)
        self.size = settings.size

    def _path(self, digest: str) -> Path:
        key = hashlib.sha256((digest + self.stamp).encode()).hexdigest()
        return self.folder / key[:2] / f"{key}.npz"

    def get(self, digest: str) -> Entry | None:
        path = self._path(digest)
        if not path.exists():
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                crops, detected, background = data["crops"], data["detected"].tolist(), data["background"]
                entry = Entry(crops, detected, int.from_bytes(data["phash"].tobytes(), "big"), str(data["reason"]),
                              background)
            square = (self.size, self.size)
            if crops.dtype == background.dtype == np.uint8 and crops.shape[1:] == background.shape[1:] == square \
                    and len(detected) == len(crops):
                return entry
            raise ValueError("unexpected contents")
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
            log.warning("cached crop %s is unreadable (%s); cropping again", path.name, exc)
            return None

    def put(self, digest: str, entry: Entry) -> None:
        path = self._path(digest)
        buffer = io.BytesIO()
        np.savez_compressed(buffer, crops=entry.crops, detected=np.array(entry.detected, bool),
                            phash=np.frombuffer(entry.phash.to_bytes(HASH_BITS // 8, "big"), np.uint8),
                            reason=np.array(entry.reason),
                            background=entry.background if entry.background is not None else entry.crops[:0])
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
            tmp.write_bytes(buffer.getvalue())
            tmp.replace(path)
        except OSError as exc:  # a cache that cannot be written only costs time
            log.warning("could not cache crop %s (%s)", path.name, exc)
