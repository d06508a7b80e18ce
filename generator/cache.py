"""The cache: everything one build keeps for the next, keyed, read and written one way.

In the manner of Pelican's cache.py. An entry's key is the SHA-256 of a stamp
(a version number and the settings it was made with, as JSON) and the
contents of its inputs (content, never mtimes: a fresh CI checkout resets
them). Entries are written whole or not at all (a temp file in the same
folder, then os.replace). A cache costs time, never a build: an entry that is
missing is a miss; one that is damaged, truncated, foreign, blocked (a file
where a folder should be) or not readable is logged and is a miss too; a write
that fails, with any exception (torch.save raises RuntimeError on a full
disk), is logged and the build goes on.

Every path under the cache folder is named in this module, and nowhere else.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TypeVar, Union

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger(__name__)

T = TypeVar("T")
Content = Union[bytes, str, memoryview, "np.ndarray"]  # what a key hashes: bytes, text, C-contiguous arrays

# ---------------------------------------------------------------- layout: <cache>/...
FACES = "faces"  # faces/<ab>/<key>.npz: one photo's crops (or why none) per photo content + face settings;
#                  faces/<ab>/<key>.thumb.npz: its thumbnail, kept only for reports that publish photos
MODELS = "model"  # model/<key>.pt: self-describing checkpoints, per crops + model settings
BASELINES = "baselines"  # baselines/<key>.npz: PCA and NMF fits, per crops + split + settings
IMAGES = "images"  # images/<slug>.zip: the encoded pictures of the report's last build
FETCH = "fetch"  # fetch/<slug>.json: `facetrend fetch` state, url -> {path, etag, last_modified, sha256}
REVIEW = "review"  # review/<slug>/: `facetrend review` pages (not a cache entry, never published)
STAMPS = "site-stamps.json"  # output folder -> report slug -> the stamp of the inputs its pages were built from
RECORD = "last-build.json"  # the last build's timings and cache hits (DESIGN.md: contracts)

LAYOUT = (FACES, MODELS, BASELINES, IMAGES, FETCH, REVIEW, STAMPS, RECORD)  # everything directly under <cache>

NAME_CHARS = 24  # hex digits of a key in an entry's file name: 96 bits
_FAN_OUT = {FACES}  # kinds with thousands of entries: spread over 256 subfolders by the key's first two digits


def entry_path(cache_dir: Path, kind: str, key: str, suffix: str) -> Path:
    """Where the entry of ``kind`` (FACES, MODELS, BASELINES) with this key lives."""
    folder = cache_dir / kind / key[:2] if kind in _FAN_OUT else cache_dir / kind
    return folder / f"{key[:NAME_CHARS]}{suffix}"


def images_archive(cache_dir: Path, slug: str) -> Path:
    """The zip of a report's encoded pictures (pictures.EncodedImages)."""
    return cache_dir / IMAGES / f"{slug}.zip"


def fetch_state(cache_dir: Path, slug: str) -> Path:
    """The `facetrend fetch` state file of a report (fetch.load_state, fetch.save_state)."""
    return cache_dir / FETCH / f"{slug}.json"


def review_root(cache_dir: Path) -> Path:
    """Where `facetrend review` writes its pages (one folder per report) when no --out is given."""
    return cache_dir / REVIEW


def stamps_file(cache_dir: Path) -> Path:
    """The stamps of the last successful build, per output folder (incremental.load, incremental.save)."""
    return cache_dir / STAMPS


def record_file(cache_dir: Path) -> Path:
    """last-build.json: what each stage of the last build cost and whether it came from the cache."""
    return cache_dir / RECORD


# ---------------------------------------------------------------- keys


def key(stamp: Any, *contents: Content) -> str:
    """The key of an entry: SHA-256 (hex) of ``stamp`` as canonical JSON, then each of ``contents``.

    ``stamp`` holds what is small: a version number, settings, ids. ``contents``
    holds what is large: bytes, text, or C-contiguous NumPy arrays (hashed in
    place, not copied).
    """
    h = hashlib.sha256(json.dumps(stamp, sort_keys=True).encode())  # TypeError for what JSON cannot say exactly
    for part in contents:
        data = part.encode() if isinstance(part, str) else part
        h.update(memoryview(data).nbytes.to_bytes(8, "big"))  # no two splits of the same bytes collide
        h.update(data)
    return h.hexdigest()


# ---------------------------------------------------------------- read and write


def read(path: Path, load: Callable[[Path], T], what: str) -> T | None:
    """``load(path)``, or None (a miss) when the entry is missing or cannot be used.

    ``load`` raises on anything it cannot use (ValueError for foreign or
    unexpected contents). A missing file is a silent miss; any other failure
    is logged and is a miss.
    """
    found, error = _attempt_read(path, load)
    if error is not None:
        log.warning("%s %s is unusable (%s); making it again", what, path, describe(error))
    return found


def write(path: Path, dump: Callable[[IO[bytes]], None], what: str) -> bool:
    """Write an entry whole or not at all: ``dump`` fills a temp file beside ``path``, which then replaces it.

    Returns whether it was written. A failure of any kind is logged and the
    temp file removed; only an interrupt (Ctrl-C) goes on up, leaving the old
    entry as it was.
    """
    error = _attempt_write(path, dump)
    if error is not None:
        log.warning("could not write %s %s (%s)", what, path, describe(error))
    return error is None


def _attempt_read(path: Path, load: Callable[[Path], T]) -> tuple[T | None, Exception | None]:
    try:
        return load(path), None
    except FileNotFoundError:
        return None, None
    except Exception as exc:  # noqa: BLE001 - whatever is wrong with a cache entry, the answer is: make it again
        return None, exc


def _attempt_write(path: Path, dump: Callable[[IO[bytes]], None]) -> Exception | None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "xb") as handle:
            dump(handle)
        os.replace(tmp, path)
        return None
    except Exception as exc:  # noqa: BLE001 - a cache that cannot be written costs time next build, nothing more
        return exc
    finally:
        with contextlib.suppress(OSError):  # gone already once replaced; a blocked folder: nothing was written
            tmp.unlink(missing_ok=True)


def read_json(path: Path, what: str) -> Any:
    """A JSON cache file's contents, or None when missing or unusable (logged)."""
    return read(path, lambda p: json.loads(p.read_text(encoding="utf-8")), what)


def write_json(path: Path, data: Any, what: str, indent: int = 1) -> bool:
    """Write JSON (keys sorted, UTF-8, a final newline) atomically; a failure is logged."""
    text = json.dumps(data, indent=indent, sort_keys=True, ensure_ascii=False) + "\n"
    return write(path, lambda handle: handle.write(text.encode("utf-8")), what)


def write_record(cache_dir: Path, record: dict) -> bool:
    """Write last-build.json (a failure is logged, never fatal)."""
    return write_json(record_file(cache_dir), record, "the build record")


def describe(exc: BaseException) -> str:
    """An exception in a few words for a log line: its first line (at most 200 characters), else its type."""
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


class Store:
    """Entries of one kind (FACES, MODELS, BASELINES) under a cache folder, all under one stamp.

    The first unusable entry and the first failed write are logged as
    warnings, later ones at debug level: a cache folder that is blocked or
    full is said once, not once per photo.
    """

    def __init__(self, cache_dir: Path, kind: str, stamp: Any, suffix: str, what: str) -> None:
        self.cache_dir, self.kind, self.stamp, self.suffix, self.what = cache_dir, kind, stamp, suffix, what
        self.failures = {"read": 0, "write": 0}

    def key(self, *contents: Content) -> str:
        """The key of the entry made from these contents under this store's stamp."""
        return key(self.stamp, *contents)

    def path(self, entry_key: str) -> Path:
        return entry_path(self.cache_dir, self.kind, entry_key, self.suffix)

    def get(self, entry_key: str, load: Callable[[Path], T]) -> T | None:
        """The entry, or None: missing, or unusable (logged)."""
        path = self.path(entry_key)
        found, error = _attempt_read(path, load)
        if error is not None:
            self._failed("read", "%s %s is unusable (%s); making it again", path, error)
        return found

    def put(self, entry_key: str, dump: Callable[[IO[bytes]], None]) -> bool:
        """Write the entry atomically; a failure is logged, never raised."""
        path = self.path(entry_key)
        error = _attempt_write(path, dump)
        if error is not None:
            self._failed("write", "could not write %s %s (%s)", path, error)
        return error is None

    def _failed(self, how: str, message: str, path: Path, error: Exception) -> None:
        level = logging.DEBUG if self.failures[how] else logging.WARNING
        if self.failures[how] == 1:
            log.warning("further %s failures of the %s cache are logged at debug level", how, self.kind)
        self.failures[how] += 1
        log.log(level, message, self.what, path, describe(error))
