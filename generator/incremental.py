"""What a build may skip: stamps of every input a report's pages depend on.

A report's stamp hashes the facetrend sources and templates, the site settings,
the report's settings and narrative, its links to other reports, and every
photo's path, person and content hash (content, not mtime: a fresh CI
checkout resets mtimes). When the stamp matches the one recorded for the same
output folder and the pages are still there, the report is not computed again
and its pages are kept as they are. Stamps live in <cache>/site-stamps.json (cache.STAMPS),
one set per output folder, and are written only after a successful build.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict
from pathlib import Path

from . import cache
from .collect import Collection

log = logging.getLogger(__name__)

PACKAGE = Path(__file__).resolve().parent


def code_stamp(templates: Path) -> str:
    """Hash of facetrend's own sources and templates: a new version rebuilds everything."""
    h = hashlib.sha256()
    for root in (PACKAGE, templates):
        for path in sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in {".py", ".html", ".css"}):
            h.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def report_stamp(code: str, parts: list, photos: Collection | None) -> str:
    """Hash of the code stamp, JSON-able parts (settings, narrative, links) and the photos."""
    h = hashlib.sha256(code.encode())
    h.update(json.dumps([asdict(p) if hasattr(p, "__dataclass_fields__") else p for p in parts],
                        sort_keys=True, default=str).encode())
    for photo in photos.photos if photos else []:
        try:
            digest = photo.content_hash()
        except OSError:
            digest = "unreadable"
        h.update(f"{photo.source}\0{photo.person}\0{digest}\n".encode())
    for skipped in photos.skipped if photos else []:
        h.update(f"{skipped.path}\0{skipped.reason}\n".encode())
    return h.hexdigest()


def load(cache_dir: Path, out: Path) -> dict[str, str]:
    """The stamps recorded for this output folder (empty when there are none or they are unreadable)."""
    stamps = _read(cache_dir).get(str(out.resolve()), {})
    return stamps if isinstance(stamps, dict) else {}


def save(cache_dir: Path, out: Path, stamps: dict[str, str]) -> None:
    """Record this output folder's stamps beside the other folders' (a failure is logged: the next build
    recomputes everything)."""
    data = _read(cache_dir)
    data[str(out.resolve())] = dict(sorted(stamps.items()))
    cache.write_json(cache.stamps_file(cache_dir), data, "the record of what was built")


def _read(cache_dir: Path) -> dict:
    data = cache.read_json(cache.stamps_file(cache_dir), "the record of what was built")
    return data if isinstance(data, dict) else {}
