"""Stage 2, collect: a report's `photos` setting -> the photos, each with its person."""

from __future__ import annotations

import csv
import hashlib
import logging
import os
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .config import BUILTIN_PREFIX, Report
from .errors import UserError

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".pgm", ".ppm", ".pbm", ".tif", ".tiff"}
)
LFW_FACES = 100  # skimage.data.lfw_subset(): the first 100 images are faces, the rest are not


@dataclass(frozen=True)
class Skipped:
    """A file the build could not use, and why. Listed in report.json and the summary."""

    path: str
    reason: str


@dataclass(frozen=True)
class Photo:
    """One photo: where it came from (never an absolute path) and whose it is."""

    source: str  # relative to the photos folder, or "builtin:<name>/<index>"
    person: str | None  # None when the collection does not say
    path: Path | None = None  # on disk, for folder sources
    pixels: np.ndarray | None = None  # grey uint8, for built-in sources

    def content_hash(self) -> str:
        """SHA-256 of the photo's bytes: the identity used by caches and face ids.

        A build asks for it more than once (the build's stamp, the faces stage,
        the trends page); the file is read once while its size and mtime stay.
        """
        if self.pixels is not None:
            return hashlib.sha256(self.pixels.tobytes() + repr(self.pixels.shape).encode()).hexdigest()
        assert self.path is not None
        stat = self.path.stat()
        key = (str(self.path), stat.st_size, stat.st_mtime_ns)
        if key not in _HASHES:
            _HASHES[key] = hashlib.sha256(self.path.read_bytes()).hexdigest()
        return _HASHES[key]


_HASHES: dict[tuple[str, int, int], str] = {}  # (path, size, mtime) -> content hash, for this process


@dataclass(frozen=True)
class Collection:
    photos: list[Photo]
    skipped: list[Skipped]
    people: dict[str, dict[str, str]] = field(default_factory=dict)  # person -> name and profile (people.csv)
    excluded: int = 0  # photos left out by `exclude` / `exclude_people`: counted, never named


def collect(report: Report) -> Collection:
    """Every photo of the report, sorted, plus the files that are not photos, minus the excluded."""
    found = _photos(report)
    people = read_people(report)
    return _exclude(Collection(found.photos, found.skipped, people), report)


def _exclude(found: Collection, report: Report) -> Collection:
    """Drop excluded people and photos; nothing about them survives but a count."""
    people, paths = set(report.settings.exclude_people), set(report.settings.exclude)

    def out(path: str, person: str | None) -> bool:
        return person in people or path in paths or path.split("/", 1)[0] in people

    photos = [p for p in found.photos if not out(p.source, p.person)]
    skipped = [s for s in found.skipped if not out(s.path, None)]
    kept = {k: v for k, v in found.people.items() if k not in people}
    excluded = len(found.photos) + len(found.skipped) - len(photos) - len(skipped)
    return Collection(photos, skipped, kept, excluded)


def photos_root(report: Report) -> Path:
    """The report's photos folder, links resolved; a link loop is a user error naming the setting."""
    try:
        return (report.folder / report.settings.photos).resolve()
    except (RuntimeError, OSError) as exc:  # Path.resolve raises RuntimeError on a symbolic link loop
        raise UserError(f"{report.source}: setting `photos` points to {report.settings.photos!r}, which cannot be "
                        f"resolved ({exc}). Fix: replace the link loop with a real folder of photos.") from None


def _photos(report: Report) -> Collection:
    spec = report.settings.photos
    if spec.startswith(BUILTIN_PREFIX):
        return _builtin(spec[len(BUILTIN_PREFIX):])
    root = photos_root(report)
    if not root.is_dir():
        raise UserError(
            f"{report.source}: setting `photos` points to {spec!r}, which is not a folder "
            f"(looked for {report.folder.name}/{spec}). Fix: create it with one subfolder "
            "per person holding their photos, or set `photos:` to an existing folder or "
            "to builtin:lfw-subset."
        )
    return _folder(root)


def _folder(root: Path) -> Collection:
    """Every file under root, sorted; symbolic links are listed, never followed (they may lead anywhere)."""
    photos, skipped = [], []
    for path, rel in _walk(root):
        name = display_path(rel)
        if path.is_symlink():
            skipped.append(Skipped(name, "symbolic link (not followed)"))
        elif not path.is_file():  # a FIFO would hang the read, a device never end it
            skipped.append(Skipped(name, "not a regular file (a pipe, socket or device): not read"))
        elif path.suffix.lower() not in IMAGE_EXTENSIONS:
            skipped.append(Skipped(name, "not a photo (unsupported file type)"))
        else:
            person = display_path(rel.parts[0]) if len(rel.parts) > 1 else None
            photos.append(Photo(name, person, path=path))
    log.info("collected %d photos from %s (%d other files skipped)", len(photos), root.name, len(skipped))
    return Collection(photos, skipped)


def _walk(root: Path):
    """(path, path relative to root) of every non-hidden file or link, sorted, links not followed."""
    found = []
    for folder, dirs, files in os.walk(root, followlinks=False):
        base = Path(folder)
        dirs[:] = [d for d in dirs if not d.startswith(".") and not (base / d).is_symlink()]
        links = [d for d in os.listdir(base) if (base / d).is_symlink() and (base / d).is_dir()]
        for name in files + links:
            if not name.startswith("."):
                found.append(base / name)
    return [(p, p.relative_to(root)) for p in sorted(found)]


def display_path(path: Path | str) -> str:
    """A file name as text that is safe to show and store: undecodable bytes and control characters replaced."""
    text = str(path.as_posix() if isinstance(path, Path) else path)
    text = text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return "".join(c if c.isprintable() else "\ufffd" for c in text)


def load_photo(report: Report, source: str, max_pixels: int) -> np.ndarray | None:
    """A collected photo's grey pixels again, by its source; None when it cannot be read now."""
    from .decode import Unreadable, decode

    if source.startswith(BUILTIN_PREFIX):
        return next((p.pixels for p in _photos(report).photos if p.source == source), None)
    path = photos_root(report) / source
    try:
        return decode(path.read_bytes(), max_pixels)
    except (OSError, Unreadable):
        return None


PEOPLE_CSV = "people.csv"


def read_people(report: Report) -> dict[str, dict[str, str]]:
    """content/<report>/people.csv: person (folder name), name, any profile columns; photo_url is not profile."""
    rows = _people_rows(report)
    people: dict[str, dict[str, str]] = {}
    for row in rows:
        profile = people.setdefault(safe_person(row["person"]), {})
        for key, value in row.items():
            if key not in ("person", "photo_url") and value and key not in profile:
                profile[key] = value
        profile.setdefault("name", row["person"])
    return people


def safe_person(name: str) -> str:
    """The folder a person's photos go in (`facetrend fetch` makes it): cannot leave the photos folder.

    Unicode letters are kept; slashes become '_', control characters and leading dots go.
    """
    text = unicodedata.normalize("NFC", name)
    text = "".join("_" if ch in "/\\" else ch for ch in text if unicodedata.category(ch)[0] != "C")
    text = re.sub(r"\.{2,}", ".", text).strip().lstrip(".").strip()
    text = text.encode("utf-8")[:200].decode("utf-8", "ignore").rstrip(". ")  # file systems allow 255 bytes
    return text or "unknown"


def photo_urls(report: Report) -> list[tuple[str, str]]:
    """(person, url) for every photo_url in people.csv: the manifest `facetrend fetch` downloads."""
    return [(row["person"], url) for row in _people_rows(report)
            for url in (row.get("photo_url") or "").split() if url]


def _people_rows(report: Report) -> list[dict[str, str]]:
    path = report.folder / PEOPLE_CSV
    if not path.is_file():
        return []
    try:
        with path.open(encoding="utf-8-sig", newline="") as f:
            reader = csv.DictReader(f)
            if "person" not in (reader.fieldnames or []):
                raise UserError(f"{path}: has no `person` column. Fix: make the first line a header such as "
                                "person,name,university,photo_url (person = the photo folder's name).")
            return [{k.strip(): (v or "").strip() for k, v in row.items() if k} for row in reader if row.get("person")]
    except (UnicodeDecodeError, csv.Error) as exc:
        raise UserError(f"{path}: cannot be read as CSV ({exc}). Fix: save it as UTF-8 CSV.") from None


def _builtin(name: str) -> Collection:
    if name == "lfw-subset":
        from skimage import data

        faces = data.lfw_subset()[:LFW_FACES]
        pixels = (faces * 255).round().astype(np.uint8)
        photos = [Photo(f"builtin:lfw-subset/{i:03d}", None, pixels=p) for i, p in enumerate(pixels)]
        return Collection(photos, [])
    raise UserError(f"unknown built-in photo source {name!r}. Fix: use builtin:lfw-subset.")


def lfw_nonfaces() -> np.ndarray:
    """The 100 non-face patches bundled with scikit-image, grey uint8 (N, 25, 25)."""
    from skimage import data

    return (data.lfw_subset()[LFW_FACES:] * 255).round().astype(np.uint8)
