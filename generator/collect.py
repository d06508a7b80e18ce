"""Stage 2, collect: a report's `photos` setting -> the photos, each with its person."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .config import BUILTIN_PREFIX, Report
from .errors import UserError

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".pgm", ".ppm", ".pbm", ".tif", ".tiff"}
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
        """SHA-256 of the photo's bytes: the identity used by caches and face ids."""
        if self.pixels is not None:
            data = self.pixels.tobytes() + repr(self.pixels.shape).encode()
        else:
            assert self.path is not None
            data = self.path.read_bytes()
        return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Collection:
    photos: list[Photo]
    skipped: list[Skipped]


def collect(report: Report) -> Collection:
    """Every photo of the report, sorted, plus the files that are not photos."""
    spec = report.settings.photos
    if spec.startswith(BUILTIN_PREFIX):
        return _builtin(spec[len(BUILTIN_PREFIX):])
    root = (report.folder / spec).resolve()
    if not root.is_dir():
        raise UserError(
            f"{report.source}: setting `photos` points to {spec!r}, which is not a folder "
            f"(looked for {report.folder.name}/{spec}). Fix: create it with one subfolder "
            "per person holding their photos, or set `photos:` to an existing folder or "
            "to builtin:lfw-subset."
        )
    return _folder(root)


def _folder(root: Path) -> Collection:
    photos, skipped = [], []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if any(part.startswith(".") for part in rel.parts) or not path.is_file():
            continue
        if path.suffix.lower() not in IMAGE_EXTENSIONS:
            skipped.append(Skipped(rel.as_posix(), "not a photo (unsupported file type)"))
            continue
        person = rel.parts[0] if len(rel.parts) > 1 else None
        photos.append(Photo(rel.as_posix(), person, path=path))
    log.info("collected %d photos from %s (%d other files skipped)", len(photos), root.name, len(skipped))
    return Collection(photos, skipped)


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
