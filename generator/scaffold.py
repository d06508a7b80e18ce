"""`facetrend new SLUG`: a new report folder with the documented defaults and a photos folder."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import textwrap
import typing
from pathlib import Path

from .config import SLUG_RE, TRENDS_SLUG, ReportSettings
from .errors import UserError

NARRATIVE = """\
Write the story of this collection here, in Markdown: where the photos come
from, what you expected, and what surprised you. The generated sections (the
data, the method, every unit, featured units, conclusions, technical notes)
follow this text on the page.
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
    settings = ReportSettings(title=slug, date=(today or dt.date.today()).isoformat())
    (folder / "index.md").write_text(front_matter(settings) + NARRATIVE, encoding="utf-8")
    return folder / "index.md"


def front_matter(settings: ReportSettings) -> str:
    """Every setting with its value and its documentation as a comment, as YAML front matter."""
    return "---\n# Every setting and its default: docs/settings.md\n" + _yaml(settings, "") + "---\n"


def _yaml(obj, indent: str) -> str:
    lines = []
    hints = typing.get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        for line in textwrap.wrap(f.metadata.get("doc", ""), 88 - len(indent)):
            lines.append(f"{indent}# {line}\n")
        if dataclasses.is_dataclass(hints[f.name]):
            lines.append(f"{indent}{f.name}:\n" + _yaml(value, indent + "  "))
        else:
            lines.append(f"{indent}{f.name}: {json.dumps(value, ensure_ascii=False)}\n")
    return "".join(lines)
