"""Trends across reports: every report's faces together, and each unit's prevalence per report.

The trends page is a report of its own (config.trends_report) whose faces are
those of every report, cropped with the trends settings. One model is trained
on them all (cached like any other), so a unit means the same thing in every
year. A unit's prevalence in a year is the share of that year's faces that
clearly activate it, with the threshold taken over all years' faces together
(match.clearly_active), so the years are measured with one ruler. The change
is the last year's prevalence minus the first's, in percentage points.

The search for change (``changes``) runs over every look of the combined faces
(looks.py), not only the featured ones. A look's prevalence in a year is the
share of that year's faces that clearly show it (one ruler: the look is found
once, over every year's faces). The change from the first year to the last is
tested with a two-proportion z-test (two-sided), and the p-values of all looks
are corrected together by Holm's method, so that the chance of marking any
look changed when none changed is at most ``SIGNIFICANT``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .config import Report
from .faces import Faces, as_rgb
from .looks import Looks
from .match import clearly_active

SIGNIFICANT = 0.05  # family-wise: the chance that any look is marked changed when none changed


@dataclass(frozen=True)
class Years:
    slugs: list[str]  # in date order
    titles: list[str]
    of_face: np.ndarray  # index into slugs, per face of the combined set


@dataclass(frozen=True)
class Trend:
    years: Years
    faces: list[int]  # faces per year
    prevalence: np.ndarray  # (units, years) share of that year's faces clearly activating the unit
    change: np.ndarray  # (units,) last year minus first year


def combine(parts: list[tuple[Report, Faces]]) -> tuple[Faces, Years]:
    """One set of faces from several reports; ids and photos are prefixed with the report's slug."""
    ids, photos, persons, detected, skipped, index = [], [], [], [], [], []
    for k, (report, found) in enumerate(parts):
        ids += [f"{report.slug}-{i}" for i in found.ids]
        photos += [f"{report.slug}/{p}" for p in found.photos]
        persons += [f"{report.slug}/{p}" if p is not None else None for p in found.persons]
        detected += found.detected
        skipped += [type(s)(f"{report.slug}/{s.path}", s.reason) for s in found.skipped]
        index += [k] * len(found.ids)
    pixels = np.concatenate([found.pixels for _, found in parts])
    total = sum(found.total for _, found in parts)
    profiles = {f"{r.slug}/{k}": v for r, found in parts for k, v in found.profiles.items()}
    excluded = sum(found.excluded for _, found in parts)
    backgrounds = [f.backgrounds for _, f in parts if f.backgrounds is not None]
    faces = Faces(ids, photos, persons, pixels, detected, total, skipped, all(f.cached for _, f in parts),
                  profiles, excluded, np.concatenate(backgrounds) if backgrounds else None,
                  thumbnails={f"{r.slug}-{k}": v for r, found in parts for k, v in found.thumbnails.items()},
                  tilt=_joined(parts, "tilt"), face_size=_joined(parts, "face_size"), box=_joined(parts, "box"),
                  other_faces=[n for _, found in parts for n in (found.other_faces or [0] * len(found.ids))],
                  colour=_colour(parts))
    years = Years([r.slug for r, _ in parts], [r.settings.title for r, _ in parts], np.array(index))
    return faces, years


def _colour(parts: list[tuple[Report, Faces]]) -> np.ndarray | None:
    """Every report's faces in colour (a grey report's as grey in each channel); None when none is in colour."""
    if all(found.colour is None for _, found in parts):
        return None
    return np.concatenate([as_rgb(found.pixels) if found.colour is None else found.colour
                           for _, found in parts])


def _joined(parts: list[tuple[Report, Faces]], name: str) -> list:
    """A per-face list of every report's faces, None where a report's faces stage left it empty."""
    return [v for _, found in parts for v in (getattr(found, name) or [None] * len(found.ids))]


def by_year(acts: np.ndarray, years: Years) -> Trend:
    """Each unit's prevalence in each year, measured with one threshold over all years."""
    clear = clearly_active(acts)
    counts = [int((years.of_face == k).sum()) for k in range(len(years.slugs))]
    prevalence = np.stack([clear[years.of_face == k].mean(axis=0) for k in range(len(years.slugs))], axis=1)
    return Trend(years, counts, prevalence, prevalence[:, -1] - prevalence[:, 0])


@dataclass(frozen=True)
class Change:
    look: int  # index into Looks.looks
    prevalence: list[float]  # per year
    change: float  # last year minus first, as a share
    p: float  # two-sided, Holm-corrected over every look tested
    significant: bool


def changes(found: Looks, years: Years) -> list[Change]:
    """Every look's prevalence per year and its change, tested; biggest rise first, then the falls, biggest
    first (looks that did not move at all last)."""
    n = len(years.slugs)
    counts = np.array([(years.of_face == k).sum() for k in range(n)])
    out = []
    for i, look in enumerate(found.looks):
        shown = np.array([look.members[years.of_face == k].sum() for k in range(n)])
        prevalence = shown / np.maximum(counts, 1)
        out.append((i, prevalence, _two_proportions(shown[0], counts[0], shown[-1], counts[-1])))
    adjusted = _holm([p for _, _, p in out])
    result = [Change(i, [round(float(v), 4) for v in prev], round(float(prev[-1] - prev[0]), 4), round(q, 6),
                     q < SIGNIFICANT) for (i, prev, _), q in zip(out, adjusted, strict=True)]
    rises = sorted((c for c in result if c.change > 0), key=lambda c: (-c.change, c.look))
    falls = sorted((c for c in result if c.change < 0), key=lambda c: (c.change, c.look))
    return rises + falls + [c for c in result if c.change == 0]


def _two_proportions(a: int, n: int, b: int, m: int) -> float:
    """Two-sided p-value of the difference between a/n and b/m (pooled z-test)."""
    if not n or not m:
        return 1.0
    pooled = (a + b) / (n + m)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n + 1 / m))
    if se == 0:
        return 1.0
    z = abs(b / m - a / n) / se
    return math.erfc(z / math.sqrt(2))


def _holm(p: list[float]) -> list[float]:
    """Holm's step-down correction: adjusted p-values, in the input order."""
    order = sorted(range(len(p)), key=lambda i: p[i])
    adjusted = [1.0] * len(p)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(p) - rank) * p[i]))
        adjusted[i] = running
    return adjusted
