"""What a build may skip: stamps of every input a report's pages depend on.

A report's stamp hashes the facetrend sources and templates, the site settings,
the report's settings and narrative, its links to other reports, and every
photo's path, person and content hash (content, not mtime: a fresh CI
checkout resets mtimes). When the stamp matches the one recorded for the same
output folder and the pages are still there, the report is not computed again
and its pages are kept as they are. Stamps live in <cache>/site-stamps.json (cache.STAMPS),
one set per output folder, and are written only after a successful build.

Content hashes are remembered between builds (PhotoHashes, in the same file
under HASHES_KEY): a photo whose path, size, mtime, ctime and inode are what
they were when it was hashed is not read again. Anything else (a fresh
checkout, a copy, an edit, a file hashed within RACY_NS of its last change)
is read and hashed, so content still decides.

The site's front (index, method page, feeds, stylesheet) is recorded there too,
under FRONT_KEY: the stamp of what it is rendered from and each file's hash
(front_record), so a build whose every page is kept need not render it to find
it unchanged (render.front_unchanged).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from dataclasses import asdict
from pathlib import Path

from . import cache, collect
from .collect import Collection, Photo

log = logging.getLogger(__name__)

PACKAGE = Path(__file__).resolve().parent


def code_stamp(templates: Path) -> str:
    """Hash of facetrend's own sources and templates: a new version rebuilds everything."""
    h = hashlib.sha256()
    for root in (PACKAGE, templates):
        for path in sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in {".py", ".html", ".css"}):
            h.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def report_stamp(code: str, parts: list, photos: Collection | None, hashes: PhotoHashes | None = None) -> str:
    """Hash of the code stamp, JSON-able parts (settings, narrative, links) and the photos (their content
    hashes from ``hashes`` where it remembers them)."""
    h = hashlib.sha256(code.encode())
    h.update(json.dumps([asdict(p) if hasattr(p, "__dataclass_fields__") else p for p in parts],
                        sort_keys=True, default=str).encode())
    hashes = hashes or PhotoHashes({})
    for photo in photos.photos if photos else []:
        try:
            digest = hashes.digest(photo)
        except OSError:
            digest = "unreadable"
        h.update(f"{photo.source}\0{photo.person}\0{digest}\n".encode())
    for skipped in photos.skipped if photos else []:
        h.update(f"{skipped.path}\0{skipped.reason}\n".encode())
    return h.hexdigest()


FRONT_KEY = "#front"  # beside the report slugs (which begin with a letter or digit): the site's front, below


def front_stamp(code: str, parts: list) -> str:
    """Hash of everything the site's front (the index, the method page, the feeds and the stylesheet) is
    rendered from: the code stamp and ``parts`` (the site settings, each page's report.json by its hash, by slug;
    the trends flag; the build date)."""
    h = hashlib.sha256(code.encode())
    h.update(json.dumps([asdict(p) if hasattr(p, "__dataclass_fields__") else p for p in parts],
                        sort_keys=True, default=str).encode())
    return h.hexdigest()


def front_record(stamp: str, files: dict[str, bytes]) -> dict:
    """What a build records of the front it rendered: its stamp, and each file's content hash. A later build
    whose every page is kept, with the same stamp and the files still as they were, need not render the
    front again (nor import what renders it: numpy, Jinja2, Markdown)."""
    return {"stamp": stamp, "files": {rel: hashlib.sha256(data).hexdigest() for rel, data in sorted(files.items())}}


def load(cache_dir: Path, out: Path) -> dict:
    """The stamps recorded for this output folder (empty when there are none or they are unreadable): report slug
    -> stamp, and FRONT_KEY -> the front's record (front_record)."""
    stamps = _read(cache_dir).get(str(out.resolve()), {})
    return stamps if isinstance(stamps, dict) else {}


def save(cache_dir: Path, out: Path, stamps: dict) -> None:
    """Record this output folder's stamps beside the other folders' (a failure is logged: the next build
    recomputes everything)."""
    data = _read(cache_dir)
    data[str(out.resolve())] = dict(sorted(stamps.items()))
    cache.write_json(cache.stamps_file(cache_dir), data, "the record of what was built")


def _read(cache_dir: Path) -> dict:
    data = cache.read_json(cache.stamps_file(cache_dir), "the record of what was built")
    return data if isinstance(data, dict) else {}


HASHES_KEY = "#photo-hashes"  # in the stamps file; never an output folder's key (those are absolute paths)
RACY_NS = 2_000_000_000  # a photo changed this recently when hashed may change again within one mtime tick


class PhotoHashes:
    """Content hashes of photos by path, remembered with the file's size, mtime, ctime and inode when hashed."""

    def __init__(self, known: dict[str, str]) -> None:
        self.known = known  # path -> "size mtime_ns ctime_ns inode sha256", from the last build
        self.seen: dict[str, str] = {}  # the same, for the photos hashed or recognised in this build

    @classmethod
    def load(cls, cache_dir: Path) -> PhotoHashes:
        known = _read(cache_dir).get(HASHES_KEY)
        return cls({k: v for k, v in known.items() if isinstance(v, str)} if isinstance(known, dict) else {})

    def digest(self, photo: Photo) -> str:
        """The photo's content hash: remembered when the file is as it was, else read (and remembered)."""
        if photo.path is None:
            return photo.content_hash()
        path, st = str(photo.path), os.stat(photo.path)
        signature = f"{st.st_size} {st.st_mtime_ns} {st.st_ctime_ns} {st.st_ino}"
        known = self.known.get(path, "").rsplit(" ", 1)
        if len(known) == 2 and known[0] == signature and len(known[1]) == 64:
            # Photo.content_hash's own per-process memo: the faces stage does not read the file again either
            collect._HASHES.setdefault((path, st.st_size, st.st_mtime_ns), known[1])
            digest = known[1]
        else:
            digest = photo.content_hash()
        if time.time_ns() - st.st_mtime_ns > RACY_NS:
            self.seen[path] = f"{signature} {digest}"
        return digest

    def save(self, cache_dir: Path) -> None:
        """Remember this build's hashes, and those of the last build's photos that still exist (other reports',
        with --report); nothing is written when they are the same."""
        kept = {p: v for p, v in self.known.items() if p not in self.seen and os.path.isfile(p)}
        remembered = dict(sorted((kept | self.seen).items()))
        if remembered == self.known:
            return
        data = _read(cache_dir)
        data[HASHES_KEY] = remembered
        cache.write_json(cache.stamps_file(cache_dir), data, "the record of what was built")
