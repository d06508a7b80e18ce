"""`facetrend new SLUG`: a new report folder with a short front matter and a photos folder.

The front matter holds the settings people change (title, date, photos, featured, trends),
each with its documentation from the schema as a comment; every other setting keeps its
default and is listed by `facetrend settings`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
import textwrap
from pathlib import Path

from .config import PLACEHOLDER_END, PLACEHOLDER_STORY, SLUG_RE, TRENDS_SLUG, ReportSettings
from .errors import UserError

SHOWN = ("title", "date", "photos", "featured", "trends")  # the settings the scaffold writes out

NARRATIVE = f"""\
{PLACEHOLDER_STORY}, in Markdown: where the photos come
from, what you expected, and what surprised you. The generated sections (the
data, the method, every unit, featured looks, conclusions, technical notes)
follow this text on the page. {PLACEHOLDER_END}, every build
warns that the report still has the placeholder story.
"""

HEAD = """\
# The settings most reports change. Every other setting, with its default and its meaning:
# run `facetrend settings` (the same list as docs/settings.md); add any of them below.
"""


def new_report(content: Path, slug: str, today: dt.date | None = None) -> Path:
    """Create content/<slug>/index.md and content/<slug>/photos/; return the index.md path."""
    if not SLUG_RE.match(slug) or slug == TRENDS_SLUG:
        raise UserError(f"{slug!r} cannot be a report name in a URL. Fix: use letters, digits, '-', '_' or '.' "
                        f"(and not `{TRENDS_SLUG}`, the trends page's address).")
    folder = content / slug
    if (folder / "index.md").exists():
        raise UserError(f"{folder / 'index.md'} already exists. Fix: choose another name or edit that file.")
    (folder / "photos").mkdir(parents=True, exist_ok=True)
    settings = ReportSettings(title=slug, date=report_date(slug, today or dt.date.today()).isoformat())
    (folder / "index.md").write_text(front_matter(settings) + NARRATIVE, encoding="utf-8")
    return folder / "index.md"


def report_date(slug: str, today: dt.date) -> dt.date:
    """The date a new report gets: today, or for a report named after another year, 1 January of that year."""
    if not re.fullmatch(r"[0-9]{4}", slug) or int(slug) in (0, today.year):
        return today
    return dt.date(int(slug), 1, 1)


def front_matter(settings: ReportSettings) -> str:
    """The SHOWN settings with their values, each after its documentation as a comment, as YAML front matter."""
    fields = {f.name: f for f in dataclasses.fields(settings)}
    lines = [HEAD]
    for name in SHOWN:
        lines.append("\n")
        for line in textwrap.wrap(fields[name].metadata["doc"], 86):
            lines.append(f"# {line}\n")
        lines.append(f"{name}: {json.dumps(getattr(settings, name), ensure_ascii=False)}\n")
    return "---\n" + "".join(lines) + "---\n"
