"""Stage 3, faces: decode each photo, find its faces, level, crop, grey, resize, equalise.

Images no larger than ``crop_max_side`` are face crops already when ``crops``
says so (yes; auto: when detect.py's crop check finds a face filling them):
their centred square is used (a 92x112 crop loses 10 rows at top and bottom,
so crops are never squashed). Larger photos go through face detection
(detect.py; pixels.py aligns them on their landmarks): the largest face, the
others counted, or every face with ``keep: all``. Identical files count once;
so do near-duplicates: detected faces whose aligned crops (or one and the
other's mirror image) correlate at NEAR_DUPLICATE_CORRELATION or more, so people
on one backdrop are never merged; crops used whole whose 256-bit difference
hashes are at most ``near_duplicate_bits`` apart (on the ORL faces, distinct
photos of one person differ in 16 bits or more, a resized or recompressed copy
in 9 or fewer). Results (crops, what alignment removed, or the reason there are none)
are cached per photo content hash and face settings, so a rebuild after adding
ten photos processes ten photos; those run on all cores.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from itertools import repeat
from pathlib import Path
from typing import IO, Any

import numpy as np

from . import cache, progress
from .collect import PHOTO_CHANGED, Collection, Photo, Skipped, collect
from .config import FaceSettings, Report
from .decode import Unreadable, decode, decode_colour
from .detect import Detector, Face
from .errors import UserError
from .pixels import (
    HASH_BITS,
    aligned,
    background_patch,
    centre_square,
    cut,
    difference_hash,
    equalise,
    face_signature,
    resize_crop,
)

log = logging.getLogger(__name__)

FACES_VERSION = 6  # bump when the crop procedure changes, to invalidate cached crops
PARALLEL_MIN = 64  # fewer photos than this are cropped in this process: starting workers costs more
PROBE = 16  # photos cropped here first, to learn what one costs
POOL_WORTH_S = 3.0  # the rest go to worker processes only when they would take longer than this here
THREADS_WORTH_S = 0.25  # else to threads, when they would take longer than this and the detector does the work
THUMB_PX = 240  # publish_photos: full: a face's photo is kept scaled to fit this square (never enlarged)
NEAR_DUPLICATE_CORRELATION = 0.97  # LFW: copies correlate at 0.98 and up, two photos of one person at 0.94 at most
SMALL_NO_FACE = "small image with no face: logo or thumbnail?"


@dataclass(frozen=True)
class Entry:
    """What one photo gave: its crops (maybe none), and why none, and its perceptual hash."""

    crops: np.ndarray  # (k, size, size) uint8
    detected: list[bool]
    phash: int  # 256-bit difference hash of the whole photo; 0 when unreadable
    reason: str = ""
    background: np.ndarray | None = None  # (b, size, size) uint8: patches of the photo away from its faces
    thumbnail: np.ndarray | None = None  # the photo scaled to fit THUMB_PX, when asked for (never cached with crops)
    tilt: list[float | None] = field(default_factory=list)  # per crop, degrees (Faces.tilt); None: used whole
    face_size: list[float | None] = field(default_factory=list)  # per crop, face side / photo's shorter side
    box: list[tuple[int, int, int, int] | None] = field(default_factory=list)  # per crop, detector's x, y, w, h
    found: int = 0  # faces the detector found in the photo (crops used whole: 1)
    colour: np.ndarray | None = None  # (k, size, size, 3) uint8: the crops in colour, not equalised; None: grey photo


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
    thumbnails: dict[str, np.ndarray] = field(default_factory=dict)  # face id -> its photo, grey, fit to THUMB_PX
    # what alignment removed, per face (None for crops used whole): the head's roll in degrees, positive when it
    # is turned anticlockwise as seen (leans to the viewer's left); the face's side (landmark template, or box
    # when not aligned) over the photo's shorter side; the detector's box (x, y, w, h) in the photo's pixels
    tilt: list[float | None] = field(default_factory=list)
    face_size: list[float | None] = field(default_factory=list)
    box: list[tuple[int, int, int, int] | None] = field(default_factory=list)
    other_faces: list[int] = field(default_factory=list)  # per face: further faces the detector found in its photo
    # (N, size, size, 3) uint8: the crops in colour, as cut (not equalised), for the composites a reader sees;
    # a grey photo's face is its grey crop in each channel; None when no photo held colour or none was asked for
    colour: np.ndarray | None = None

    @property
    def people(self) -> int | None:
        """Distinct known persons; None when no photo says whose it is."""
        known = {p for p in self.persons if p is not None}
        return len(known) if known else None


def person_keys(persons: list[str | None]) -> list[str]:
    """Whose each face is, for counting people: a face without a known person is a person of its own."""
    return [p if p is not None else f"\0{i}" for i, p in enumerate(persons)]


def find_faces(collection: Collection, settings: FaceSettings, cache_dir: Path, where: str,
               jobs: int = 1, exclude: frozenset[str] = frozenset(), model_dir: Path | None = None,
               thumbnails: bool = False, colour: bool = False) -> Faces:
    """Crop the faces of every photo; skip (and list) photos without one.

    Photos not in the cache are cropped on up to ``jobs`` threads or processes (0: one per core; see _crop_all).
    Face ids in ``exclude`` are left out silently. ``model_dir`` resolves ``yunet_model``.
    With ``thumbnails`` (publish_photos: full) each face's photo is kept too, small, cached apart from the crops.
    With ``colour`` the crops come in colour too (Faces.colour), read from the cache only when asked for.
    """
    store = _crop_store(cache_dir, settings)
    unique, skipped = _unique_photos(collection)
    entries = {digest: store.get(store.key(digest), partial(_load_entry, settings.size, colour))
               for _, digest in unique}
    misses = [(photo, digest) for photo, digest in unique if entries[digest] is None]
    yunet = str((model_dir or Path(".")) / settings.yunet_model) if settings.yunet_model else ""
    for (_, digest), entry in zip(misses, _crop_all([p for p, _ in misses], settings, jobs, yunet, thumbnails),
                                  strict=True):
        if PHOTO_CHANGED not in entry.reason:  # not this hash's outcome: the next build crops the new file
            store.put(store.key(digest), partial(_dump_entry, entry))
        entries[digest] = entry if colour else replace(entry, colour=None)  # not held in memory unasked
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
    ids, photos, persons, crops, detected, pose, tinted = faces
    excluded = collection.excluded + sum(len(entries[d].crops) for _, d in kept) - len(ids)
    profiles = {k: v for k, v in collection.people.items() if k in set(persons)}
    return Faces(ids, photos, persons, np.stack(crops), detected, total, skipped, not misses, profiles, excluded,
                 _backgrounds(kept, entries, exclude, settings.size),
                 _thumbnails(kept, entries, set(ids), cache_dir, settings) if thumbnails else {}, *pose,
                 colour=_colour(crops, tinted) if colour else None)


def report_faces(report: Report, settings: FaceSettings, cache_dir: Path, jobs: int = 0,
                 photos: Collection | None = None, colour: bool = False) -> Faces:
    """A report's faces, wired as the build wires them (`facetrend review` shows the same): collect, then crop.

    ``settings`` are the face settings that apply (the trends page crops every
    year with its own); ``photos`` is the report's collection when the caller
    collected it already. The report's `exclude:` ids are left out; with
    `publish_photos: full` the photos behind the faces are kept too, small.
    """
    photos = collect(report) if photos is None else photos
    return find_faces(photos, settings, cache_dir, str(report.source), jobs, frozenset(report.settings.exclude),
                      report.folder, thumbnails=report.settings.publish_photos == "full", colour=colour)


def _assemble(kept: list[tuple[Photo, str]], entries: dict[str, Entry], exclude: frozenset[str]) -> tuple:
    ids, photos, persons, crops, detected, tinted = [], [], [], [], [], []
    pose: tuple[list, list, list, list] = ([], [], [], [])  # tilt, face_size, box, other_faces
    for photo, digest in kept:
        entry = entries[digest]
        for k, (face_id, crop) in enumerate(zip(_face_ids(digest, entry), entry.crops, strict=True)):
            if face_id in exclude:
                continue
            ids.append(face_id)
            photos.append(photo.source)
            persons.append(photo.person)
            crops.append(crop)
            tinted.append(None if entry.colour is None else entry.colour[k])
            detected.append(entry.detected[k])
            for values, value in zip(pose, _pose(entry, k), strict=True):
                values.append(value)
    return ids, photos, persons, crops, detected, pose, tinted


def _colour(crops: list[np.ndarray], tinted: list[np.ndarray | None]) -> np.ndarray | None:
    """The faces in colour, a grey photo's as its grey crop in each channel; None when every photo was grey."""
    if all(t is None for t in tinted):
        return None
    return np.stack([as_rgb(c) if t is None else t for c, t in zip(crops, tinted, strict=True)])


def as_rgb(grey: np.ndarray) -> np.ndarray:
    """Grey pixels (..., h, w) as colour ones (..., h, w, 3): the grey in each channel."""
    return np.repeat(grey[..., None], 3, axis=-1)


def _pose(entry: Entry, k: int) -> tuple:
    """Crop k's tilt, face size, box and other faces (entries cached before alignment have none)."""
    known = len(entry.tilt) == len(entry.crops)
    return (entry.tilt[k] if known else None, entry.face_size[k] if known else None,
            entry.box[k] if known else None, max(0, entry.found - 1))


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
    """Keep the first of every group of near-duplicates (``bits`` 0: none are looked for).

    A photo whose first crop was detected is compared by its face (_FaceIndex),
    one whose crop was used whole by its hash (_HashIndex); a photo that gave no
    crop by its hash too, so a copy of a photo without a face is listed once.
    """
    if bits <= 0:
        return unique, []
    by_face, by_hash = _FaceIndex(len(unique)), _HashIndex(bits)
    kept, skipped = [], []
    for photo, digest in unique:
        entry = entries[digest]
        index = by_face if len(entry.crops) and entry.detected[0] else by_hash
        twin = index.twin(entry)
        if twin is not None:
            skipped.append(Skipped(photo.source, f"near-duplicate of {twin}"))
            continue
        kept.append((photo, digest))
        index.add(entry, photo.source)
    return kept, skipped


class _HashIndex:
    """Photos by 256-bit difference hash. Two hashes that differ in at most ``bits`` bits agree on at least
    one of ``bits + 1`` bands (pigeonhole), so only photos sharing a band are compared: linear time."""

    def __init__(self, bits: int) -> None:
        self.bits = bits
        self.bands = [(HASH_BITS * i // (bits + 1), HASH_BITS * (i + 1) // (bits + 1)) for i in range(bits + 1)]
        self.index: dict[tuple[int, int], list[tuple[int, str]]] = {}

    def _keys(self, h: int) -> list[tuple[int, int]]:
        return [(i, (h >> lo) & ((1 << (hi - lo)) - 1)) for i, (lo, hi) in enumerate(self.bands)]

    def twin(self, entry: Entry) -> str | None:
        h = entry.phash
        if not h:  # unreadable: nothing to compare
            return None
        return next((src for key in self._keys(h) for other, src in self.index.get(key, [])
                     if (h ^ other).bit_count() <= self.bits), None)

    def add(self, entry: Entry, source: str) -> None:
        for key in self._keys(entry.phash) if entry.phash else []:
            self.index.setdefault(key, []).append((entry.phash, source))


class _FaceIndex:
    """Photos by their first face's aligned crop: a twin correlates at NEAR_DUPLICATE_CORRELATION or more,
    as it is or mirrored (pixels.face_signature). Each photo is compared with every kept one (a 256-long dot
    product each: 1,000 photos take milliseconds, 10,000 a few seconds)."""

    def __init__(self, capacity: int) -> None:
        self.signatures = np.zeros((max(1, capacity), 256), np.float32)
        self.sources: list[str] = []

    def twin(self, entry: Entry) -> str | None:
        if not self.sources:
            return None
        kept = self.signatures[:len(self.sources)]
        crop = entry.crops[0]
        best = np.maximum(kept @ face_signature(crop), kept @ face_signature(crop[:, ::-1]))
        hits = np.flatnonzero(best >= NEAR_DUPLICATE_CORRELATION)
        return self.sources[hits[0]] if len(hits) else None

    def add(self, entry: Entry, source: str) -> None:
        self.signatures[len(self.sources)] = face_signature(entry.crops[0])
        self.sources.append(source)


def _crop_all(photos: list[Photo], settings: FaceSettings, jobs: int, yunet: str,
              thumbnails: bool) -> Iterator[Entry]:
    """Crop every photo, in order, on ``jobs`` threads or processes (0: one per core), with a progress bar.

    Entries are yielded as they come, so the caller caches each while the next ones are cropped. The first
    photo loads the detector's models (the HOG detector alone takes a third of a second), so what one photo
    costs is learnt from the PROBE - 1 after it.
    """
    if not photos:
        return
    jobs = jobs or os.cpu_count() or 1
    bar = progress.bar(total=len(photos), desc="faces", unit="photo")
    with bar:
        detector = Detector(settings, yunet)
        first = _tick(bar, crop_photo(photos[0], settings, detector, thumbnails))
        start = time.perf_counter()
        done = [first] + [_tick(bar, crop_photo(p, settings, detector, thumbnails)) for p in photos[1:PROBE]]
        rest = photos[PROBE:]
        cost = (time.perf_counter() - start) / max(1, len(done) - 1) * len(rest)
        yield from done
        if jobs == 1 or len(photos) < PARALLEL_MIN or cost < THREADS_WORTH_S or (
                cost < POOL_WORTH_S and not detector.loaded):  # cheap, or work that holds Python's lock
            yield from (_tick(bar, crop_photo(p, settings, detector, thumbnails)) for p in rest)
        elif cost < POOL_WORTH_S:
            yield from (_tick(bar, e) for e in _crop_in_threads(rest, settings, jobs, yunet, thumbnails))
        else:
            yield from (_tick(bar, e) for e in _crop_in_processes(rest, settings, jobs, yunet, thumbnails))


def _crop_in_threads(photos: list[Photo], settings: FaceSettings, jobs: int, yunet: str,
                     thumbnails: bool) -> Iterator[Entry]:
    """Crop on ``jobs`` threads, each with a Detector of its own: no process to start (a worker takes 0.6 s
    to import and load the HOG detector), and the detector's work runs outside Python's lock (the ORL crop
    check: 1.5 times as fast on two cores as in one thread)."""
    local = threading.local()

    def crop(photo: Photo) -> Entry:
        if not hasattr(local, "detector"):
            local.detector = Detector(settings, yunet)
        return crop_photo(photo, settings, local.detector, thumbnails)

    pool = ThreadPoolExecutor(jobs, thread_name_prefix="faces")
    try:
        yield from pool.map(crop, photos)
    finally:
        pool.shutdown(cancel_futures=True)  # interrupted (Ctrl-C): the photos not started are not cropped first


def _crop_in_processes(photos: list[Photo], settings: FaceSettings, jobs: int, yunet: str,
                       thumbnails: bool) -> Iterator[Entry]:
    """Crop on ``jobs`` worker processes: for work long enough to pay for starting them."""
    context = multiprocessing.get_context("spawn")  # never fork a process whose torch threads are running
    with ProcessPoolExecutor(jobs, mp_context=context) as pool:
        chunk = max(1, min(16, len(photos) // (jobs * 8)))
        yield from pool.map(_crop_in_worker, photos, repeat(settings), repeat(yunet), repeat(thumbnails),
                            chunksize=chunk)


def _tick(bar: Any, entry: Entry) -> Entry:
    bar.update()
    return entry


_worker_detectors: dict[tuple[FaceSettings, str], Detector] = {}


def _crop_in_worker(photo: Photo, settings: FaceSettings, yunet: str, thumbnail: bool) -> Entry:
    if not _worker_detectors:  # first photo in this worker: one OpenCV thread, the processes share the cores
        import cv2

        cv2.setNumThreads(1)
    detector = _worker_detectors.setdefault((settings, yunet), Detector(settings, yunet))
    return crop_photo(photo, settings, detector, thumbnail)


# ---------------------------------------------------------------- one photo


def crop_photo(photo: Photo, settings: FaceSettings, detector: Detector, thumbnail: bool = False) -> Entry:
    """The faces of one photo, cut, levelled, resized and equalised (and the photo, small, with ``thumbnail``)."""
    none = np.zeros((0, settings.size, settings.size), np.uint8)
    try:
        image, rgb = (photo.pixels, None) if photo.pixels is not None else decode_colour(_read(photo),
                                                                                          settings.max_pixels)
    except Unreadable as exc:
        return Entry(none, [], 0, f"not a readable image: {exc}")
    except OSError as exc:
        return Entry(none, [], 0, f"could not be read ({exc.strerror or exc})")
    phash = difference_hash(image)
    thumb = photo_thumbnail(image) if thumbnail else None
    if max(image.shape) <= settings.crop_max_side and settings.crops != "no":
        if not _is_crop(photo, image, settings, detector):
            return Entry(none, [], phash, SMALL_NO_FACE)
        colour = None if rgb is None else resize_crop(centre_square(rgb), settings.size)[None]
        return Entry(equalise(resize_crop(centre_square(image), settings.size), settings)[None], [False], phash,
                     thumbnail=thumb, tilt=[None], face_size=[None], box=[None], found=1, colour=colour)
    search = detector.search(image, 1 if settings.keep == "largest" else None)  # landmarks: kept faces only
    every = search.faces
    found = every[:1] if settings.keep == "largest" else every
    if not found:
        return Entry(none, [], phash, search.reason)
    crops, tilts, sizes = zip(*(_cut_face(image, f, settings) for f in found), strict=True)
    colour = None if rgb is None else np.stack([_cut_colour(rgb, f, settings) for f in found])
    patch = background_patch(image, every, settings.margin, settings.size)
    background = none if patch is None else equalise(patch, settings)[None]
    return Entry(np.stack(crops), [True] * len(crops), phash, background=background, thumbnail=thumb,
                 tilt=list(tilts), face_size=list(sizes), box=[f.box for f in found], found=len(every),
                 colour=colour)


def _is_crop(photo: Photo, image: np.ndarray, settings: FaceSettings, detector: Detector) -> bool:
    """Whether a small image is used whole: declared (`crops: yes`, a built-in source) or passing the face check."""
    return settings.crops == "yes" or photo.pixels is not None or detector.is_face_crop(image)


def _cut_face(image: np.ndarray, face: Face, settings: FaceSettings) -> tuple[np.ndarray, float | None, float]:
    """A face's crop, its tilt (None when not aligned) and its size relative to the photo's shorter side."""
    short = min(image.shape)
    if settings.align and face.landmarks:
        crop, pose = aligned(image, face.landmarks, settings.margin, settings.size)
        return equalise(crop, settings), round(pose.tilt, 2), round(pose.side / short, 4)
    crop = cut(image, face, settings.margin, settings.size, align=False)
    return equalise(crop, settings), None, round(max(face.box[2:]) / short, 4)


def _cut_colour(rgb: np.ndarray, face: Face, settings: FaceSettings) -> np.ndarray:
    """The face's crop in colour, cut as _cut_face cuts the grey one (not equalised: a reader's colours)."""
    if settings.align and face.landmarks:
        return aligned(rgb, face.landmarks, settings.margin, settings.size)[0]
    return cut(rgb, face, settings.margin, settings.size, align=False)


def _read(photo: Photo) -> bytes:
    """The bytes to decode: those the photo's content hash is of (PhotoChanged, an OSError, when the file was
    replaced since), so a crop is never cached or published under another photo's hash."""
    return photo.read()


# ---------------------------------------------------------------- cache


def _crop_store(cache_dir: Path, settings: FaceSettings) -> cache.Store:
    """Crop results, one small file per (photo content, face settings)."""
    return cache.Store(cache_dir, cache.FACES, {"v": FACES_VERSION, **asdict(settings)}, ".npz", "cached crop")


def _thumbnail_store(cache_dir: Path, settings: FaceSettings) -> cache.Store:
    """Photo thumbnails, one per photo content: apart from the crops, which stay small without them."""
    stamp = {"v": FACES_VERSION, "thumbnail": THUMB_PX, "max_pixels": settings.max_pixels}
    return cache.Store(cache_dir, cache.FACES, stamp, ".thumb.npz", "cached thumbnail")


def _dump_entry(entry: Entry, handle: IO[bytes]) -> None:
    # uncompressed: an LFW face's entry (grey and colour crop) 17.9 kB, not 15.8, but no zlib to write or read it
    cache.save_arrays(handle, {
        "crops": entry.crops, "detected": np.array(entry.detected, bool),
        "phash": np.frombuffer(entry.phash.to_bytes(HASH_BITS // 8, "big"), np.uint8),
        "reason": np.array(entry.reason),
        "background": entry.background if entry.background is not None else entry.crops[:0],
        "tilt": np.array([np.nan if t is None else t for t in entry.tilt], float),
        "face_size": np.array([np.nan if v is None else v for v in entry.face_size], float),
        "box": np.array([b or (-1, -1, -1, -1) for b in entry.box], np.int64).reshape(-1, 4),
        "found": np.array(entry.found),
        "colour": entry.colour if entry.colour is not None else np.zeros((0, *entry.crops.shape[1:], 3), np.uint8)})


def _load_entry(size: int, colour: bool, path: Path) -> Entry:
    """A cached crop result (cache.load_arrays: entries np.savez wrote before read the same); its colour crops
    are kept only when ``colour`` asks for them."""
    data = cache.load_arrays(path)
    crops, detected, background = data["crops"], data["detected"].tolist(), data["background"]
    tinted = data["colour"] if colour else None
    entry = Entry(crops, detected, int.from_bytes(data["phash"].tobytes(), "big"), str(data["reason"]),
                  background, None, _nones(data["tilt"]), _nones(data["face_size"]),
                  [None if b[0] < 0 else tuple(int(v) for v in b) for b in data["box"]], int(data["found"]),
                  None if tinted is None or not len(tinted) else tinted)
    if crops.dtype == background.dtype == np.uint8 and crops.shape[1:] == background.shape[1:] == (size, size) \
            and len(detected) == len(crops) and (entry.colour is None or (
                entry.colour.dtype == np.uint8 and entry.colour.shape == (*crops.shape, 3))):
        return entry
    raise ValueError("unexpected contents")


def _nones(values: np.ndarray) -> list[float | None]:
    return [None if np.isnan(v) else float(v) for v in values]


def _thumbnails(kept: list[tuple[Photo, str]], entries: dict[str, Entry], ids: set[str], cache_dir: Path,
                settings: FaceSettings) -> dict[str, np.ndarray]:
    """Face id -> the thumbnail of its photo, for the faces in ``ids``: cached, made in cropping, or made now."""
    store, out = _thumbnail_store(cache_dir, settings), {}
    for photo, digest in kept:
        wanted = [i for i in _face_ids(digest, entries[digest]) if i in ids]
        if not wanted:
            continue
        key = store.key(digest)
        thumb = store.get(key, _load_thumbnail)
        if thumb is None:
            fresh = entries[digest].thumbnail  # made while cropping, when the crops were not cached either
            thumb = fresh if fresh is not None else _thumbnail_of(photo, settings)
            if thumb is None:
                continue
            store.put(key, partial(_dump_thumbnail, thumb))
        out.update(dict.fromkeys(wanted, thumb))
    return out


def _thumbnail_of(photo: Photo, settings: FaceSettings) -> np.ndarray | None:
    """A photo whose crops came from the cache: decoded again for its thumbnail; None when unreadable now."""
    try:
        image = photo.pixels if photo.pixels is not None else decode(_read(photo), settings.max_pixels)
    except (Unreadable, OSError) as exc:
        log.warning("%s: no thumbnail, the photo cannot be read now (%s)", photo.source, exc)
        return None
    return photo_thumbnail(image)


def photo_thumbnail(image: np.ndarray) -> np.ndarray:
    """A grey photo scaled to fit THUMB_PX x THUMB_PX (never enlarged), as PIL's Image.thumbnail scales it."""
    from PIL import Image

    picture = Image.fromarray(np.ascontiguousarray(image, np.uint8), "L")
    picture.thumbnail((THUMB_PX, THUMB_PX))
    return np.asarray(picture)


def _dump_thumbnail(thumb: np.ndarray, handle: IO[bytes]) -> None:
    # uncompressed: 58 kB, not 39, but a warm read of 264 LFW faces 0.5 s, not 1.2
    cache.save_arrays(handle, {"thumbnail": thumb})


def _load_thumbnail(path: Path) -> np.ndarray:
    thumb = cache.load_arrays(path)["thumbnail"]
    if thumb.dtype == np.uint8 and thumb.ndim == 2 and 0 < min(thumb.shape) and max(thumb.shape) <= THUMB_PX:
        return thumb
    raise ValueError("unexpected contents")
