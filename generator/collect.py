"""Stage 2, collect: a report's `photos` setting -> the photos, each with its person."""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import os
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .config import BUILTIN_PREFIX, TEXT_MAX_CHARS, TEXT_REFUSED, Report, read_bounded
from .errors import UserError

if TYPE_CHECKING:  # numpy only where pixels are made: collecting and hashing photos needs none (a no-change build)
    import numpy as np

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
    named: bool = True  # False: a file that is not a photo, whose name collect() withholds (NAME_WITHHELD)


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
        This Photo keeps the first hash it gives (it travels with it to the crop
        workers), and ``read`` hands out only bytes with that hash.
        """
        if self.pixels is not None:
            return hashlib.sha256(self.pixels.tobytes() + repr(self.pixels.shape).encode()).hexdigest()
        known = self.__dict__.get("_digest")
        if known is None:
            known = _hash_file(self.path)
            object.__setattr__(self, "_digest", known)  # frozen: the one field set after creation
        return known

    def read(self) -> bytes:
        """The photo file's bytes, for decoding: the bytes its content hash is of, or PhotoChanged.

        A photo replaced while the build runs would otherwise be cropped from the
        new file and cached, and published, under the old file's hash.
        """
        assert self.path is not None
        data = self.path.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        known = self.__dict__.setdefault("_digest", digest)
        if known != digest:
            raise PhotoChanged()
        return data


class PhotoChanged(OSError):
    """The photo's bytes are no longer those its content hash was taken of: it changed during the build."""

    def __init__(self) -> None:
        super().__init__(0, PHOTO_CHANGED)


PHOTO_CHANGED = "it changed while the build was running; build again to use it"


def _hash_file(path: Path | None) -> str:
    """The content hash of a file, once per process while its size and mtime stay (taken from the open file)."""
    assert path is not None
    with path.open("rb") as file:
        stat = os.fstat(file.fileno())
        key = (str(path), stat.st_size, stat.st_mtime_ns)
        if key not in _HASHES:
            _HASHES[key] = hashlib.file_digest(file, "sha256").hexdigest()
    return _HASHES[key]


_HASHES: dict[tuple[str, int, int], str] = {}  # (path, size, mtime) -> content hash, for this process


@dataclass(frozen=True)
class Collection:
    photos: list[Photo]
    skipped: list[Skipped]
    people: dict[str, dict[str, str]] = field(default_factory=dict)  # person -> name and profile (people.csv)
    excluded: int = 0  # photos left out by `exclude` / `exclude_people`: counted, never named


def collect(report: Report) -> Collection:
    """Every photo of the report, sorted, plus the files that are not photos (unnamed), minus the excluded."""
    found = _photos(report)
    people = read_people(report)
    return _unnamed(_exclude(Collection(found.photos, found.skipped, people), report))


NAME_WITHHELD = ""  # the path of a skipped file whose name is not a photo's: it is never published


def _unnamed(found: Collection) -> Collection:
    """The collection with the names of skipped files that are not photos withheld (report.json lists the
    skipped files): a photos folder may hold anything, and a file's name can say more than its owner meant."""
    skipped = []
    for item in found.skipped:
        if item.named:
            skipped.append(item)
        else:
            log.info("skipped %s: %s (its name is not published)", item.path, item.reason)
            skipped.append(Skipped(NAME_WITHHELD, item.reason))
    return Collection(found.photos, skipped, found.people, found.excluded)


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


def photo_folders(reports: list[Report]) -> list[Path]:
    """Every report's photos folder, resolved: the output check refuses a site inside one (or holding one)."""
    return [photos_root(r) for r in reports if not r.settings.photos.startswith(BUILTIN_PREFIX)]


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
        # a name is published only when it is a photo's or a folder's (a person's); a link to a folder is one
        named = path.suffix.lower() in IMAGE_EXTENSIONS or (path.is_symlink() and path.is_dir())
        if path.is_symlink():
            skipped.append(Skipped(name, "symbolic link (not followed)", named))
        elif not path.is_file():  # a FIFO would hang the read, a device never end it
            skipped.append(Skipped(name, "not a regular file (a pipe, socket or device): not read", named))
        elif not named:
            skipped.append(Skipped(name, "not a photo (unsupported file type); its name is not published", False))
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
        profile.setdefault("name", person_name(row["person"]))
    return people


def person_name(person: str) -> str:
    """A person's folder as a name a reader reads: "Michael_Caine" -> "Michael Caine"; on the trends page
    (persons are "<report>/<folder>") the folder's part only."""
    folder = person.rsplit("/", 1)[-1]
    return " ".join(folder.replace("_", " ").split()) or folder


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


PEOPLE_MAX_BYTES = 10_000_000  # people.csv: 10,000 people with long profiles; read no further


def _people_rows(report: Report) -> list[dict[str, str]]:
    """people.csv's rows (those naming a person), stripped; refused (UserError) when too large, not CSV, or
    holding a control character or an overlong field; ragged rows and an unclosed quote are warned about."""
    path = report.folder / PEOPLE_CSV
    if not path.is_file():  # missing; a FIFO or device is never opened (it would block or never end)
        return []
    text = _people_text(path)
    controls = TEXT_REFUSED.search(text) is not None  # fields are searched one by one only to say where
    try:
        reader = csv.DictReader(io.StringIO(text, newline=""))
        header = reader.fieldnames or []
        if "person" not in [h.strip() for h in header]:
            raise UserError(f"{path}: has no `person` column. Fix: make the first line a header such as "
                            "person,name,university,photo_url (person = the photo folder's name).")
        _check_fields(path, 1, [(h, h) for h in header], controls)
        rows, ragged = [], []
        for row in reader:
            if _check_row(path, reader.line_num, row, controls):
                ragged.append(reader.line_num)
            clean = {k.strip(): (v or "").strip() for k, v in row.items() if k}
            if clean.get("person"):
                rows.append(clean)
    except csv.Error as exc:
        raise UserError(f"{path}: cannot be read as CSV ({str(exc)[:200]}). Fix: save it as UTF-8 CSV.") from None
    if ragged:
        log.warning("%s: %d row(s) have more or fewer fields than the header (%d), first at line(s) %s: extra "
                    "fields are dropped, missing ones left empty", path, len(ragged), len(header),
                    ", ".join(map(str, ragged[:3])))
    _warn_unclosed_quote(path, text)
    return rows


def _people_text(path: Path) -> str:
    data = read_bounded(path, PEOPLE_MAX_BYTES, "keep one row per person, with short profile fields")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UserError(f"{path}: is not UTF-8 (byte {exc.start}). Fix: save it as UTF-8 CSV.") from None


def _check_row(path: Path, line: int, row: dict, controls: bool) -> bool:
    """Refuse what would break the pages and the feed (control characters) or bloat them (huge fields); True
    when the row has more fields than the header (csv puts them under None) or fewer (their values are None)."""
    values = [(k, v) for k, v in row.items() if k is not None and v]
    _check_fields(path, line, values, controls)
    return None in row or any(v is None for v in row.values())


def _check_fields(path: Path, line: int, fields: list[tuple[str, str]], controls: bool) -> None:
    for column, value in fields:
        bad = TEXT_REFUSED.search(value) if controls else None
        if bad:
            raise UserError(f"{path}: line {line}, column `{_short(column)}` holds a control character "
                            f"(U+{ord(bad.group()):04X}). Fix: remove it: control characters would break "
                            "feed.xml and the pages.")
        if len(value) > TEXT_MAX_CHARS and column.strip() != "photo_url":
            raise UserError(f"{path}: line {line}, column `{_short(column)}` is {len(value):,} characters "
                            f"long; at most {TEXT_MAX_CHARS:,} are published. Fix: shorten it.")


def _short(text: str) -> str:
    return text if len(text) <= 40 else text[:40] + "..."


def _warn_unclosed_quote(path: Path, text: str) -> None:
    """A quote never closed makes the rest of the file one field (the csv module reads on to the end)."""
    try:
        for _ in csv.reader(io.StringIO(text, newline=""), strict=True):
            pass
    except csv.Error as exc:
        if "unexpected end of data" in str(exc):
            log.warning("%s: a quote (\") is never closed: everything after it became one field. Fix: close "
                        "the quote or remove it.", path)


def _builtin(name: str) -> Collection:
    if name == "lfw-subset":
        import numpy as np
        from skimage import data

        faces = data.lfw_subset()[:LFW_FACES]
        pixels = (faces * 255).round().astype(np.uint8)
        photos = [Photo(f"builtin:lfw-subset/{i:03d}", None, pixels=p) for i, p in enumerate(pixels)]
        return Collection(photos, [])
    raise UserError(f"unknown built-in photo source {name!r}. Fix: use builtin:lfw-subset.")


def lfw_nonfaces() -> np.ndarray:
    """The 100 non-face patches bundled with scikit-image, grey uint8 (N, 25, 25)."""
    import numpy as np
    from skimage import data

    return (data.lfw_subset()[LFW_FACES:] * 255).round().astype(np.uint8)
