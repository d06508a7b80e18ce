"""Stage 5, rank: score every first-layer hidden unit and pick the featured ones.

face_score: how much of a unit's weight image is structure rather than TV
static. A 4-neighbour Laplacian of independent noise has 20 times the noise's
variance; a smooth image has almost none. So for a weight image w,

    face_score = clip(1 - mean(laplacian(w)^2) / (20 * var(w)), 0, 1)

estimates the share of w's variance that is smooth structure: 0 for a unit
that never left its random start, near 1 for a unit that became a picture.

selectivity: ROC AUC of the unit's activation on this report's faces against
the non-face patches scikit-image ships with the LFW subset (after Le et al.
2012): 0.5 means it cannot tell faces from non-faces, 1 that every face
excites it more than any non-face.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .collect import lfw_nonfaces
from .faces import resize_crop

NOISE_LAPLACIAN_RATIO = 20.0  # E[lap(n)^2] / var(n) for i.i.d. noise n, 4-neighbour Laplacian


@dataclass(frozen=True)
class Ranking:
    face_score: np.ndarray  # (units,) in [0, 1]
    selectivity: np.ndarray  # (units,) ROC AUC in [0, 1]
    rank: np.ndarray  # (units,) 1 = most face-like
    featured: list[int]  # unit ids, best first


def face_scores(weights: np.ndarray, size: int) -> np.ndarray:
    """Structure against static for each weight image, (units,) in [0, 1]."""
    w = weights.reshape(len(weights), size, size).astype(np.float64)
    lap = 4 * w[:, 1:-1, 1:-1] - w[:, :-2, 1:-1] - w[:, 2:, 1:-1] - w[:, 1:-1, :-2] - w[:, 1:-1, 2:]
    var = w.var(axis=(1, 2))
    ratio = (lap ** 2).mean(axis=(1, 2)) / np.maximum(var * NOISE_LAPLACIAN_RATIO, 1e-30)
    return np.clip(1.0 - ratio, 0.0, 1.0)


def nonface_patches(size: int) -> np.ndarray:
    """Non-face images at the crop size, for selectivity."""
    return np.stack([resize_crop(p, size) for p in lfw_nonfaces()])


def selectivity(face_acts: np.ndarray, nonface_acts: np.ndarray) -> np.ndarray:
    """ROC AUC per unit of faces (positives) against non-faces, ties counted half."""
    from scipy.stats import rankdata

    n_pos, n_neg = len(face_acts), len(nonface_acts)
    ranks = rankdata(np.concatenate([face_acts, nonface_acts]), axis=0)
    u = ranks[:n_pos].sum(axis=0) - n_pos * (n_pos + 1) / 2
    return u / (n_pos * n_neg)


def rank_units(weights: np.ndarray, size: int, face_acts: np.ndarray, nonface_acts: np.ndarray,
               featured: int, pinned: list[int] = ()) -> Ranking:
    """Score, order and feature the units.

    The ``featured`` most face-like units are featured, except units silent on
    every face; ``pinned`` units (those the author wrote a caption for) are
    featured too, after them.
    """
    score = face_scores(weights, size)
    order = np.lexsort((np.arange(len(score)), -score))
    rank = np.empty(len(score), int)
    rank[order] = np.arange(1, len(score) + 1)
    alive = face_acts.std(axis=0) > 0
    chosen = [int(u) for u in order if alive[u]][:featured]
    chosen += [int(u) for u in pinned if u not in chosen]  # ids checked by config
    return Ranking(score, selectivity(face_acts, nonface_acts), rank, chosen)
