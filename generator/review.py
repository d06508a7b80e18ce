"""`facetrend fetch` and `facetrend review`: the collection's upkeep, outside the published site.

fetch downloads people.csv's photo URLs into each report's photos folder.
review writes a local page (under the cache, never published) with every face
crop, its id and its photo, and every photo that gave no face, so the author
can decide what to list under `exclude:` or `exclude_people:`.
"""

from __future__ import annotations

import html
from pathlib import Path

from PIL import Image

from . import collect, config, faces


def fetch_reports(content: Path, cache: Path, only: str | None, rate: float):
    """(slug, results) for every report whose people.csv lists photo URLs."""
    from .fetch import FetchSettings, fetch_photos

    site = config.load_site(content)
    for report in config.find_reports(content, site, only):
        entries = collect.photo_urls(report)
        if entries:
            state = cache / "fetch" / f"{report.slug}.json"
            yield report.slug, fetch_photos(entries, collect.photos_root(report), state, FetchSettings(rate=rate))


def write_review(content: Path, cache: Path, only: str | None, out: Path | None) -> list[Path]:
    """One review page per report; returns their paths."""
    site = config.load_site(content)
    pages = []
    for report in config.find_reports(content, site, only):
        found = faces.find_faces(collect.collect(report), report.settings.faces, cache, str(report.source),
                                 exclude=frozenset(report.settings.exclude), model_dir=report.folder)
        folder = (out or cache / "review") / report.slug
        pages.append(_write_page(folder, report, found))
    return pages


def _write_page(folder: Path, report: config.Report, found: faces.Faces) -> Path:
    (folder / "crops").mkdir(parents=True, exist_ok=True)
    rows = []
    for face_id, photo, person, pixels in zip(found.ids, found.photos, found.persons, found.pixels, strict=True):
        Image.fromarray(pixels, "L").save(folder / "crops" / f"{face_id}.png")
        rows.append(f'<figure><img src="crops/{face_id}.png" width="96" height="96" alt="face {face_id}">'
                    f"<figcaption><code>{face_id}</code><br>{html.escape(photo)}"
                    f"{'<br>' + html.escape(person) if person else ''}</figcaption></figure>")
    skipped = "".join(f"<li><code>{html.escape(s.path)}</code>: {html.escape(s.reason)}</li>" for s in found.skipped)
    page = folder / "index.html"
    page.write_text(_PAGE.format(title=html.escape(report.settings.title), n=len(found.ids),
                                 crops="\n".join(rows), skipped=skipped or "<li>none</li>"), encoding="utf-8")
    return page


_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Review: {title}</title>
<style>body{{font:15px sans-serif;margin:1rem}} .grid{{display:flex;flex-wrap:wrap;gap:8px}}
figure{{margin:0;width:110px;font-size:11px;overflow-wrap:anywhere}} img{{image-rendering:pixelated}}</style>
</head><body>
<h1>Review: {title}</h1>
<p>{n} face crops. This page is not part of the site. To leave a face or a photo out, list its id or path
under <code>exclude:</code> in the report's front matter; to leave a person out everywhere, list their folder
under <code>exclude_people:</code>. Then build again.</p>
<div class="grid">
{crops}
</div>
<h2>Photos that gave no face, and other skipped files</h2>
<ul>{skipped}</ul>
</body></html>
"""
