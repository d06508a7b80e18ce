"""Stage 5, analysis (match): for every unit, the faces that excite it most, and how common it is.

A face clearly activates a unit when its activation reaches at least half of
the unit's range over this report's faces:

    (a - min) / (max - min) >= 0.5

prevalence is the share of faces that clearly activate the unit;
prevalence_people counts the distinct people among them (photos without a
known person count as one person each).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .faces import Faces, person_keys

CLEAR_ACTIVATION = 0.5  # share of the unit's activation range


@dataclass(frozen=True)
class Matches:
    best: list[list[int]]  # per unit: face indices, best first; empty for a unit silent on every face
    prevalence: np.ndarray  # (units,) share of faces clearly activating it
    photos: np.ndarray  # (units,) how many faces clearly activate it
    people: np.ndarray  # (units,) distinct people among them


def clearly_active(acts: np.ndarray) -> np.ndarray:
    """(faces, units) bool: the face reaches half of the unit's range; a flat unit: nobody."""
    lo, hi = acts.min(axis=0), acts.max(axis=0)
    spread = np.where(hi > lo, hi - lo, np.inf)
    return (acts - lo) / spread >= CLEAR_ACTIVATION


def best_faces(acts: np.ndarray, top: int) -> list[list[int]]:
    """Per unit, the ``top`` faces that excite it most, best first; none for a unit silent on every face."""
    order = np.argsort(-acts, axis=0, kind="stable")[:top].T
    flat = acts.max(axis=0) <= acts.min(axis=0)
    return [[] if flat[u] else row.tolist() for u, row in enumerate(order)]


def match_units(acts: np.ndarray, faces: Faces, top: int, best: list[list[int]] | None = None) -> Matches:
    """Best faces and prevalence of each unit from activations (faces, units); ``best``: each unit's faces
    best first, at least ``top`` of them where there are, when the caller has sorted them already."""
    clear = clearly_active(acts)
    groups = np.array(person_keys(faces.persons), object)
    people = np.array([len(set(groups[clear[:, u]])) for u in range(acts.shape[1])])
    count = clear.sum(axis=0)
    best = best_faces(acts, top) if best is None else [b[:top] for b in best]
    return Matches(best, count / len(acts), count, people)
