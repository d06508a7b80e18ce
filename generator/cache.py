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
import math
import os
import re
import secrets
import struct
import zlib
from collections.abc import Callable
from functools import lru_cache
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
STAMPS = "site-stamps.json"  # output folder -> report slug (and the front) -> the stamp its pages were built from
RECORD = "last-build.json"  # the last build's timings and cache hits (DESIGN.md: contracts)

LAYOUT = (FACES, MODELS, BASELINES, IMAGES, FETCH, REVIEW, STAMPS, RECORD)  # everything directly under <cache>

NAME_CHARS = 24  # hex digits of a key in an entry's file name: 96 bits
_FAN_OUT = {FACES}  # kinds with thousands of entries: spread over 256 subfolders by the key's first two digits


def entry_path(cache_dir: Path, kind: str, key: str, suffix: str) -> Path:
    """Where the entry of ``kind`` (FACES, MODELS, BASELINES) with this key lives."""
    name = f"{key[:NAME_CHARS]}{suffix}"
    return cache_dir.joinpath(kind, key[:2], name) if kind in _FAN_OUT else cache_dir.joinpath(kind, name)


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
    return _key_from(_stamp_hash(stamp), *contents)


def _stamp_hash(stamp: Any) -> hashlib._Hash:
    return hashlib.sha256(json.dumps(stamp, sort_keys=True).encode())  # TypeError for what JSON cannot say exactly


def _key_from(h: hashlib._Hash, *contents: Content) -> str:
    """``key``, from the hash of its stamp (which this consumes)."""
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
    replaced = False
    try:
        with _create(tmp) as handle:
            dump(handle)
        os.replace(tmp, path)
        replaced = True
        return None
    except Exception as exc:  # noqa: BLE001 - a cache that cannot be written costs time next build, nothing more
        return exc
    finally:
        if not replaced:
            with contextlib.suppress(OSError):  # a blocked folder: nothing was written
                tmp.unlink(missing_ok=True)


def _create(tmp: Path) -> IO[bytes]:
    """A new file, its folder made when missing (by the first write into it: a cold faces stage writes 20,000
    entries into 256 folders)."""
    try:
        return open(tmp, "xb")
    except FileNotFoundError:
        tmp.parent.mkdir(parents=True, exist_ok=True)
        return open(tmp, "xb")


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
        self._stamped = _stamp_hash(stamp)  # the stamp as JSON, hashed once: the faces stage asks for 20,000 keys

    def key(self, *contents: Content) -> str:
        """The key of the entry made from these contents under this store's stamp (as ``key`` gives it)."""
        return _key_from(self._stamped.copy(), *contents)

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


# ---------------------------------------------------------------- arrays: .npz entries
#
# The faces stage keeps one small .npz per photo (ten arrays) and reads 20,000 of them on a rebuild of a large
# report. np.load reads each member through zipfile and parses its header with ast (0.6 ms an entry, most of a
# warm faces stage); np.savez writes it as piecemeal (0.3 ms). These read and write the same files, uncompressed
# zip archives of .npy members, whole: np.load reads what save_arrays writes, and load_arrays reads anything
# np.savez wrote, handing what it does not recognise (compressed, zip64, unusual headers) to NumPy itself.

_ZIP_LOCAL = struct.Struct("<4s5H3L2H")  # local file header: signature ... crc, sizes, name and extra lengths
_ZIP_CENTRAL = struct.Struct("<4s6H3L5H2L")  # central directory entry
_ZIP_END = struct.Struct("<4s4H2LH")  # end of central directory record
_ZIP_DATE = (0, 0x21)  # DOS time and date of every member: 1980-01-01, so an entry's bytes depend on its contents
_ZIP_LIMIT = 0xFFFF_FFFF  # beyond this a zip needs zip64 records: left to np.savez and np.load
_NPY_MAGIC = b"\x93NUMPY"
_NPY_HEADER = re.compile(rb"\{'descr': '([^']+)', 'fortran_order': False, 'shape': \(([0-9, ]*)\), \} *\n")
_NPY_ALIGN = 64  # NumPy pads a member's header so its data starts at a multiple of this


def save_arrays(handle: IO[bytes], arrays: dict[str, Any]) -> None:
    """Write ``arrays`` (name -> array) to ``handle`` as np.savez writes them: an uncompressed .npz.

    Object arrays raise ValueError (np.load would not read them back without pickle).
    """
    import numpy as np

    members = [(f"{name}.npy".encode("ascii"), _npy_bytes(np.asarray(value))) for name, value in arrays.items()]
    if sum(len(data) for _, data in members) >= _ZIP_LIMIT // 2:
        np.savez(handle, **arrays)
        return
    handle.write(_stored_zip(members))


def load_arrays(path: Path) -> dict[str, np.ndarray]:
    """The arrays of an .npz file (name -> array), as ``np.load(path, allow_pickle=False)`` gives them.

    The file is read once and each member's array copied out of it, its CRC-32 checked as zipfile checks it:
    a damaged entry raises (ValueError), as np.load raises, and is a miss.
    """
    import numpy as np

    data = path.read_bytes()
    members = _stored_members(data)
    if members is None:
        with np.load(path, allow_pickle=False) as archive:
            return {name: archive[name] for name in archive.files}
    return {name: _npy_array(data, start, end) for name, (start, end) in members.items()}


def _npy_bytes(array: np.ndarray) -> bytes:
    """One .npy member: its header, then the array's bytes in C order."""
    return _npy_preamble(array.dtype, array.shape) + array.tobytes()


@lru_cache(maxsize=1024)
def _npy_preamble(dtype: np.dtype, shape: tuple[int, ...]) -> bytes:
    """A .npy format 1.0 header, padded as NumPy pads it (entries of one kind share a few, each made once)."""
    import numpy as np

    descr = np.lib.format.dtype_to_descr(dtype)
    if dtype.hasobject or not isinstance(descr, str):
        raise ValueError(f"cannot store {dtype} arrays without pickle")
    header = f"{{'descr': {descr!r}, 'fortran_order': False, 'shape': {shape!r}, }}".encode("latin1")
    header += b" " * (-(len(_NPY_MAGIC) + 4 + len(header) + 1) % _NPY_ALIGN) + b"\n"
    return _NPY_MAGIC + b"\x01\x00" + struct.pack("<H", len(header)) + header


def _stored_zip(members: list[tuple[bytes, bytes]]) -> bytes:
    """An uncompressed zip archive of (name, data) members."""
    local, central, offset = [], [], 0
    for name, data in members:
        crc = zlib.crc32(data)
        local += [_ZIP_LOCAL.pack(b"PK\x03\x04", 20, 0, 0, *_ZIP_DATE, crc, len(data), len(data), len(name), 0),
                  name, data]
        central += [_ZIP_CENTRAL.pack(b"PK\x01\x02", 20, 20, 0, 0, *_ZIP_DATE, crc, len(data), len(data),
                                      len(name), 0, 0, 0, 0, 0, offset), name]
        offset += _ZIP_LOCAL.size + len(name) + len(data)
    directory = b"".join(central)
    end = _ZIP_END.pack(b"PK\x05\x06", 0, 0, len(members), len(members), len(directory), offset, 0)
    return b"".join(local) + directory + end


def _stored_members(data: bytes) -> dict[str, tuple[int, int]] | None:
    """Where each .npy member's bytes lie in an uncompressed zip archive (name without .npy -> start, end);
    None for an archive of another kind (compressed, zip64, split, encrypted, not all .npy members)."""
    at = data.rfind(b"PK\x05\x06", max(0, len(data) - _ZIP_END.size - 0xFFFF))
    if at < 0:
        return None
    _, disk, _, count, total, size, offset, _ = _ZIP_END.unpack_from(data, at)
    if disk or count != total or _ZIP_LIMIT in (size, offset) or offset + size > at:
        return None
    members, entry = {}, offset
    for _ in range(count):
        if data[entry:entry + 4] != b"PK\x01\x02" or entry + _ZIP_CENTRAL.size > at:
            return None
        _, _, _, flags, method, _, _, crc, packed, length, name_len, extra_len, comment_len, *_, local = \
            _ZIP_CENTRAL.unpack_from(data, entry)
        name = data[entry + _ZIP_CENTRAL.size:entry + _ZIP_CENTRAL.size + name_len]
        entry += _ZIP_CENTRAL.size + name_len + extra_len + comment_len
        if method or flags & 1 or packed != length or _ZIP_LIMIT in (packed, local) or not name.endswith(b".npy"):
            return None
        header = _ZIP_LOCAL.unpack_from(data, local) if local + _ZIP_LOCAL.size <= at else None
        if header is None or header[0] != b"PK\x03\x04":
            return None
        start = local + _ZIP_LOCAL.size + header[-2] + header[-1]
        if start + length > at:
            return None
        if zlib.crc32(memoryview(data)[start:start + length]) != crc:
            raise ValueError(f"bad CRC-32 for {name.decode('utf-8', 'replace')}")
        members[name[:-4].decode("utf-8" if flags & 0x800 else "cp437")] = (start, start + length)
    return members


def _npy_array(data: bytes, start: int, end: int) -> np.ndarray:
    """The array of the .npy member at data[start:end], a copy that owns its memory, as np.load gives it."""
    import numpy as np

    if data[start:start + 6] != _NPY_MAGIC or data[start + 6] not in (1, 2, 3):
        raise ValueError("not a .npy member")
    head = start + (10 if data[start + 6] == 1 else 12)
    length = struct.unpack_from("<H" if data[start + 6] == 1 else "<I", data, start + 8)[0]
    parsed = _npy_header(data[head:head + length])
    if parsed is None:  # another writer's header: NumPy's own reader, which checks what it says
        import io

        return np.lib.format.read_array(io.BytesIO(data[start:end]), allow_pickle=False)
    dtype, shape, count = parsed
    if head + length + count * dtype.itemsize != end:
        raise ValueError("unexpected .npy member")
    return np.frombuffer(data, dtype, count, head + length).reshape(shape).copy()


@lru_cache(maxsize=1024)
def _npy_header(header: bytes) -> tuple[np.dtype, tuple[int, ...], int] | None:
    """A .npy header as NumPy writes it: the dtype, shape and element count; None for any other (entries of
    one kind share a few headers, so each is parsed once)."""
    import numpy as np

    found = _NPY_HEADER.fullmatch(header)
    if found is None:
        return None
    dtype, shape = np.dtype(found[1].decode("latin1")), tuple(int(v) for v in found[2].split(b",") if v.strip())
    return None if dtype.hasobject else (dtype, shape, math.prod(shape))
