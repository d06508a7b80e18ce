"""Trends across reports: every report's faces together, and each unit's prevalence per report.

The trends page is a report of its own (config.trends_report) whose faces are
those of every report, cropped with the trends settings. One model is trained
on them all (cached like any other), so a unit means the same thing in every
year. A unit's prevalence in a year is the share of that year's faces that
clearly activate it, with the threshold taken over all years' faces together
(match.clearly_active), so the years are measured with one ruler. The change
is the last year's prevalence minus the first's, in percentage points.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .config import Report
from .faces import Faces
from .match import clearly_active


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
                  other_faces=[n for _, found in parts for n in (found.other_faces or [0] * len(found.ids))])
    years = Years([r.slug for r, _ in parts], [r.settings.title for r, _ in parts], np.array(index))
    return faces, years


def _joined(parts: list[tuple[Report, Faces]], name: str) -> list:
    """A per-face list of every report's faces, None where a report's faces stage left it empty."""
    return [v for _, found in parts for v in (getattr(found, name) or [None] * len(found.ids))]


def by_year(acts: np.ndarray, years: Years) -> Trend:
    """Each unit's prevalence in each year, measured with one threshold over all years."""
    clear = clearly_active(acts)
    counts = [int((years.of_face == k).sum()) for k in range(len(years.slugs))]
    prevalence = np.stack([clear[years.of_face == k].mean(axis=0) for k in range(len(years.slugs))], axis=1)
    return Trend(years, counts, prevalence, prevalence[:, -1] - prevalence[:, 0])
