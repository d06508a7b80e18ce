"""`facetrend review`: a local page of every face crop and every skipped photo, outside the published site.

The page (under the cache by default, never published) looks like the site (it links a
copy of the site's style sheet, written beside it as static/style.css) and shows every face crop
the build would use, with its id and its photo, and every photo that gave no
face, so the author can decide what to list under `exclude:` or
`exclude_people:`. Its faces come from faces.report_faces, the call the build
makes, so the page shows exactly what a build would train on.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from . import cache as cache_layout
from . import config, faces
from .errors import UserError

if TYPE_CHECKING:
    from jinja2 import Environment

REVIEW_TEMPLATE = "review.html"


@dataclass(frozen=True)
class Crop:
    """One face on the review page."""

    id: str
    photo: str
    person: str | None


@dataclass(frozen=True)
class Skip:
    """One skipped file on the review page: its thumbnail when it can be read, and for a copy the photo kept."""

    path: str
    reason: str
    thumb: str | None = None  # file name under skipped/
    kept: str | None = None  # the photo a (near-)duplicate copies
    kept_thumb: str | None = None


COPY_OF = ("near-duplicate of ", "duplicate of ")  # the faces stage's reasons for copies, followed by the photo kept
THUMB_PX = 128  # skipped photos are shown this size at most


def write_review(content: Path, cache: Path, only: str | None, out: Path | None, jobs: int = 0) -> list[Path]:
    """One review page per report, in ``out`` (default <cache>/review)/<slug>/; returns their paths."""
    root = out or cache_layout.review_root(cache)
    refuse_site_folder(root, cache)
    site = config.load_site(content)
    pages = []
    for report in config.find_reports(content, site, only):
        found = faces.report_faces(report, report.settings.faces, cache, jobs)
        pages.append(_write_page(root / report.slug, site, report, found))
    _write_style(root)
    return pages


def _write_style(root: Path) -> None:
    """The site's style sheet, where the pages link it (../static/style.css), as in the site."""
    (root / "static").mkdir(parents=True, exist_ok=True)
    (root / "static" / "style.css").write_bytes(_templates().joinpath("static", "style.css").read_bytes())


def refuse_site_folder(folder: Path, cache: Path) -> None:
    """A UserError when ``folder`` is, or is inside, a site facetrend built (the next build would replace it)."""
    from .incremental import load
    from .render import GENERATOR_MARK

    folder = folder.resolve()
    for site in (folder, *folder.parents):
        index = site / "index.html"
        built = index.is_file() and GENERATOR_MARK in index.read_text(encoding="utf-8", errors="replace")
        if built or load(cache, site):
            raise UserError(f"--out {folder}: this is inside {site}, a site facetrend built, so the review page "
                            "(every face crop, never meant for publishing) would be published with it and the next "
                            "build would delete it. Fix: leave out --out (the page goes under the cache) or choose "
                            "a folder outside the site.")


def _write_page(folder: Path, site: config.SiteSettings, report: config.Report, found: faces.Faces) -> Path:
    from PIL import Image

    from . import __version__

    (folder / "crops").mkdir(parents=True, exist_ok=True)
    crops = [Crop(*row) for row in zip(found.ids, found.photos, found.persons, strict=True)]
    for crop, pixels in zip(crops, found.pixels, strict=True):
        Image.fromarray(pixels, "L").save(folder / "crops" / f"{crop.id}.png")
    skipped = _skipped(folder / "skipped", report, found)
    page = folder / "index.html"
    html = _env().get_template(REVIEW_TEMPLATE).render(site=site, title=report.settings.title, crops=crops,
                                                       skipped=skipped, version=__version__)
    page.write_text(html, encoding="utf-8")
    return page


def _skipped(folder: Path, report: config.Report, found: faces.Faces) -> list[Skip]:
    """Each skipped file with a small picture of it, and of the photo it copies, where they can be read."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for n, item in enumerate(found.skipped):
        kept = next((item.reason[len(p):] for p in COPY_OF if item.reason.startswith(p)), None)
        out.append(Skip(item.path, item.reason, _thumb(folder, f"{n}.png", report, item.path), kept,
                        _thumb(folder, f"{n}-kept.png", report, kept) if kept else None))
    return out


def _thumb(folder: Path, name: str, report: config.Report, source: str) -> str | None:
    """A small grey copy of a collected photo, saved as ``name``; None when the file is not a readable photo."""
    from PIL import Image

    from .collect import load_photo

    pixels = load_photo(report, source, report.settings.faces.max_pixels)
    if pixels is None:
        return None
    picture = Image.fromarray(pixels, "L")
    picture.thumbnail((THUMB_PX, THUMB_PX))
    picture.save(folder / name)
    return name


@functools.cache
def _env() -> Environment:
    """A Jinja2 environment on the package's templates, set up as render's (autoescape, strict undefined)."""
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    return Environment(loader=FileSystemLoader(_templates()), autoescape=True, undefined=StrictUndefined,
                       trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)


def _templates() -> Path:
    return Path(str(resources.files("facetrend.templates")))
