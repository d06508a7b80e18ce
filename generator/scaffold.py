"""`facetrend new SLUG`: a new report folder with documented front matter and a photos folder."""

from __future__ import annotations

from pathlib import Path

from .config import SLUG_RE
from .errors import UserError

TEMPLATE = """\
---
# Settings for this report; every key and its default: docs/settings.md
title: "{slug}"
description: ""
date: ""
photos: photos          # a folder with one subfolder per person
featured: 3
# captions:             # your own words for a unit, replacing the generated caption
#   17: "long hair, parted on the left"
faces:
  size: 64
model:
  hidden: [400]
  activation: relu
  dropout: 0.5
  epochs: 30
  batch_size: 100
  seed: 0
---
Write the story of this collection here, in Markdown: where the photos come
from, what you expected, and what surprised you. The generated sections (the
data, the method, every unit, featured units, conclusions, technical notes)
follow this text on the page.
"""


def new_report(content: Path, slug: str) -> Path:
    """Create content/<slug>/index.md and content/<slug>/photos/; return the index.md path."""
    if not SLUG_RE.match(slug):
        raise UserError(f"{slug!r} cannot be a report name in a URL. Fix: use letters, digits, '-', '_' or '.'.")
    folder = content / slug
    if (folder / "index.md").exists():
        raise UserError(f"{folder / 'index.md'} already exists. Fix: choose another name or edit that file.")
    (folder / "photos").mkdir(parents=True, exist_ok=True)
    (folder / "index.md").write_text(TEMPLATE.format(slug=slug), encoding="utf-8")
    return folder / "index.md"
