"""Stage 5, analysis (rank): score every first-layer hidden unit and pick the featured ones.

The rank. A unit worth featuring shows a look that differs from the average
face and that many different people share. For each unit take its group, the
TREND_TOP faces that excite it most (a quarter of the faces when that is
fewer: group_size), and measure

    distinctiveness D = sqrt(mean over pixels p of ((group mean_p - mean_p) / sd_p)^2)
    people diversity P = exp(H) / min(group size, people), H the entropy of the group's people
    trend score = D * P * max(agreement, 0)

(mean_p and sd_p over all faces; a face without a known person is a person
of its own, so without names P = 1; agreement below). The agreement factor
asks that the unit's own picture show that look: a unit whose matches share
something its weights do not depict scores nothing. Units are ranked by trend score, the
ones whose weight image is more structure than static (face_score of at least
INTERPRETABLE) first; the featured units are the first ones that are not
silent, skipping a unit whose group looks like an already featured unit's
(their offsets from the average face correlate SAME_LOOK or more).
Distinctiveness alone features one person's face; diversity keeps that out.

face_score: how much of a unit's weight image is structure rather than TV
static. A 4-neighbour Laplacian of independent noise has 20 times the noise's
variance; a smooth image has almost none. So for a weight image w,

    face_score = clip(1 - mean(laplacian(w)^2) / (20 * var(w)), 0, 1)

estimates the share of w's variance that is smooth structure: 0 for a unit
that never left its random start, near 1 for a unit that became a picture.

moved: how far the weight image travelled from its random start, relative to
the start's length, ||w - w0|| / ||w0||: near 0 for a unit training never
touched. (The start is rebuilt from the seed, so nothing extra is stored.)

agreement: the correlation between the weight image and what sets the unit's
best-matching faces apart, their mean minus the mean of all faces:

    agreement = corr(w, mean(top matches) - mean(all faces))

near 1 when the unit's weights look like the faces it picks out, near 0 when
its picture and its matches have nothing to do with each other.

selectivity: ROC AUC of the unit's activation on this report's faces against
non-faces (after Le et al. 2012): 0.5 means it cannot tell faces from
non-faces, 1 that every face excites it more than any non-face. The non-faces
are patches of the report's own photos away from their faces when there are
at least MIN_BACKGROUNDS of them, else the non-face patches scikit-image ships
with the LFW subset.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .collect import lfw_nonfaces
from .config import FaceSettings
from .faces import person_keys
from .pixels import equalise, resize_crop

NOISE_LAPLACIAN_RATIO = 20.0  # E[lap(n)^2] / var(n) for i.i.d. noise n, 4-neighbour Laplacian
INTERPRETABLE = 0.5  # face_score from which a unit's weight image is more structure than static
SAME_LOOK = 0.8  # featured units whose groups' offsets from the average face correlate this much show one look
TREND_TOP = 30  # faces in a unit's group (at most): the trend score, the caption and the composite look at these
MIN_BACKGROUNDS = 20  # background patches needed before they replace the LFW non-faces
BACKGROUNDS = "background patches of these photos, away from their faces"
LFW_NONFACES = "the 100 non-face patches scikit-image ships with the LFW subset"


@dataclass(frozen=True)
class Ranking:
    face_score: np.ndarray  # (units,) in [0, 1]
    selectivity: np.ndarray  # (units,) ROC AUC in [0, 1]
    distinctiveness: np.ndarray  # (units,) in standard deviations per pixel
    diversity: np.ndarray  # (units,) in (0, 1]
    trend_score: np.ndarray  # (units,) distinctiveness x diversity
    rank: np.ndarray  # (units,) 1 = first
    featured: list[int]  # unit ids, best first
    moved: np.ndarray  # (units,) ||w - w0|| / ||w0||
    agreement: np.ndarray  # (units,) correlation in [-1, 1]
    nonfaces: str  # what selectivity was measured against
    groups: list[list[int]]  # per unit: the faces the trend score looked at (its composite and caption too)


def face_scores(weights: np.ndarray, size: int) -> np.ndarray:
    """Structure against static for each weight image, (units,) in [0, 1]."""
    w = weights.reshape(len(weights), size, size).astype(np.float64)
    lap = 4 * w[:, 1:-1, 1:-1] - w[:, :-2, 1:-1] - w[:, 2:, 1:-1] - w[:, 1:-1, :-2] - w[:, 1:-1, 2:]
    var = w.var(axis=(1, 2))
    ratio = (lap ** 2).mean(axis=(1, 2)) / np.maximum(var * NOISE_LAPLACIAN_RATIO, 1e-30)
    return np.clip(1.0 - ratio, 0.0, 1.0)


def interpretable(scores: np.ndarray) -> int:
    """How many units (or components) are more structure than static: face score INTERPRETABLE or more."""
    return int((np.asarray(scores) >= INTERPRETABLE).sum())


def nonface_patches(settings: FaceSettings) -> np.ndarray:
    """The LFW subset's non-face images made like the crops: resized and equalised as ``settings`` say."""
    return np.stack([equalise(resize_crop(p, settings.size), settings) for p in lfw_nonfaces()])


def nonfaces(backgrounds: np.ndarray | None, settings: FaceSettings) -> tuple[np.ndarray, str]:
    """The non-faces selectivity is measured against, and what they are."""
    if backgrounds is not None and len(backgrounds) >= MIN_BACKGROUNDS:
        return backgrounds, BACKGROUNDS
    return nonface_patches(settings), LFW_NONFACES


def moved(weights: np.ndarray, initial: np.ndarray) -> np.ndarray:
    """Distance of each weight image from its random start, relative to the start's length."""
    w0 = initial.astype(np.float64)
    return np.linalg.norm(weights - w0, axis=1) / np.maximum(np.linalg.norm(w0, axis=1), 1e-30)


def group_size(faces: int) -> int:
    """Faces in each unit's group: TREND_TOP, or a quarter of a smaller report's faces (a group of all the
    faces would look exactly like the average face)."""
    return max(1, min(TREND_TOP, faces // 4))


def group_offsets(pixels: np.ndarray, groups: list[list[int]]) -> np.ndarray:
    """Each unit's group mean minus the mean of all faces, (units, pixels) in grey levels; 0 for an empty group."""
    flat = pixels.reshape(len(pixels), -1)
    mean = flat.mean(axis=0, dtype=np.float64)
    out = np.zeros((len(groups), flat.shape[1]))
    for u, group in enumerate(groups):
        if group:
            out[u] = flat[group].mean(axis=0, dtype=np.float64) - mean
    return out


def agreement(weights: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Correlation of each weight image with its group's offset from the average face; 0 without a group."""
    return np.array([_corr(w, d) for w, d in zip(weights, offsets, strict=True)])


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    norm = np.linalg.norm(a) * np.linalg.norm(b)
    return float(a @ b / norm) if norm > 0 else 0.0


def selectivity(face_acts: np.ndarray, nonface_acts: np.ndarray) -> np.ndarray:
    """ROC AUC per unit of faces (positives) against non-faces, ties counted half."""
    n_pos, n_neg = len(face_acts), len(nonface_acts)
    ranks = average_ranks(np.concatenate([face_acts, nonface_acts]))
    u = ranks[:n_pos].sum(axis=0) - n_pos * (n_pos + 1) / 2
    return u / (n_pos * n_neg)


RANK_BLOCK = 64  # columns ranked at once: a few (rows, RANK_BLOCK) int64 arrays in memory, not (rows, units)


def average_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks (1 = smallest) down each column of a 2-D array, ties given their average rank, as float64; a
    column holding a NaN is all NaN. The same numbers as scipy.stats.rankdata(values, axis=0), without
    importing scipy.stats (about half a second of a fresh process), faster, and RANK_BLOCK columns at a time."""
    values = np.asarray(values)
    out = np.empty(values.shape, np.float64)
    for start in range(0, values.shape[1], RANK_BLOCK):
        out[:, start:start + RANK_BLOCK] = _block_ranks(values[:, start:start + RANK_BLOCK]).T
    if np.issubdtype(values.dtype, np.floating):
        out[:, np.isnan(values).any(axis=0)] = np.nan
    return out


def _block_ranks(values: np.ndarray) -> np.ndarray:
    """average_ranks of a few columns, transposed: (columns, rows)."""
    n = len(values)
    rows = np.ascontiguousarray(values.T)  # one row per column, so every sort runs along contiguous memory
    order = np.argsort(rows, axis=1)  # no stable sort needed: tied values share one rank
    ordered = np.take_along_axis(rows, order, axis=1)
    starts = np.ones(rows.shape, bool)  # where a run of equal values begins, in sorted order
    np.not_equal(ordered[:, 1:], ordered[:, :-1], out=starts[:, 1:])
    starts = starts.ravel()
    bounds = np.flatnonzero(np.append(starts, True))  # run g spans [bounds[g], bounds[g + 1]) of the flat rows
    run = np.cumsum(starts) - 1
    offset = np.repeat(np.arange(len(rows)) * n, n)  # where each row begins in the flat rows
    average = (bounds[run] + bounds[run + 1] - 1 - 2 * offset) / 2 + 1
    out = np.empty(rows.shape, np.float64)
    np.put_along_axis(out, order, average.reshape(rows.shape), axis=1)
    return out


def distinctiveness(pixels: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """How far each group's mean face lies from the mean of all faces, in standard deviations per pixel (RMS)."""
    sd = np.maximum(_pixel_sd(pixels.reshape(len(pixels), -1)), 1.0)  # at least one grey level
    return np.sqrt(((offsets / sd) ** 2).mean(axis=1))


def _pixel_sd(flat: np.ndarray, chunk: int = 2048) -> np.ndarray:
    """Each pixel's standard deviation over the faces, summed in chunks: never a float copy of every crop."""
    total, squares = np.zeros(flat.shape[1]), np.zeros(flat.shape[1])
    for start in range(0, len(flat), chunk):
        part = flat[start:start + chunk].astype(np.float64)
        total += part.sum(axis=0)
        squares += (part * part).sum(axis=0)
    mean = total / len(flat)
    return np.sqrt(np.maximum(squares / len(flat) - mean * mean, 0.0))


def diversity(persons: list[str | None], groups: list[list[int]]) -> np.ndarray:
    """exp(entropy) of each group's people over the most it could be: 1 when no two faces share a person."""
    who = person_keys(persons)
    people = len(set(who))
    out = np.zeros(len(groups))
    for u, group in enumerate(groups):
        if group:
            _, counts = np.unique([who[i] for i in group], return_counts=True)
            q = counts / counts.sum()
            out[u] = np.exp(-(q * np.log(q)).sum()) / min(len(group), people)
    return out


@dataclass(frozen=True)
class Signals:
    """What ranking needs besides the weights: the faces, their people, each unit's group and activations."""

    pixels: np.ndarray  # (faces, size, size) uint8
    persons: list[str | None]
    groups: list[list[int]]  # per unit: its TREND_TOP best faces, best first; empty for a silent unit
    face_acts: np.ndarray  # (faces, units)
    nonface_acts: np.ndarray  # (non-faces, units)
    nonfaces: str = LFW_NONFACES  # what the non-faces are
    initial: np.ndarray | None = None  # (units, pixels): the weights before training, when known


def rank_units(weights: np.ndarray, size: int, signals: Signals, featured: int, pinned: list[int] = ()) -> Ranking:
    """Score, order and feature the units (see the module's docstring for the rule).

    ``pinned`` units (those the author wrote a caption for) are featured too, after the chosen ones.
    """
    g = signals
    score = face_scores(weights, size)
    offsets = group_offsets(g.pixels, g.groups)
    distinct, diverse = distinctiveness(g.pixels, offsets), diversity(g.persons, g.groups)
    agree = agreement(weights, offsets)
    trend = distinct * diverse * np.maximum(agree, 0)
    order = np.lexsort((np.arange(len(score)), -trend, score < INTERPRETABLE))
    rank = np.empty(len(score), int)
    rank[order] = np.arange(1, len(score) + 1)
    chosen = _feature([int(u) for u in order if g.groups[u]], offsets, featured)
    chosen += [int(u) for u in pinned if u not in chosen]  # ids checked by config
    travelled = moved(weights, g.initial) if g.initial is not None else np.full(len(score), np.nan)
    return Ranking(score, selectivity(g.face_acts, g.nonface_acts), distinct, diverse, trend, rank, chosen,
                   travelled, agree, g.nonfaces, g.groups)


def _feature(candidates: list[int], offsets: np.ndarray, featured: int) -> list[int]:
    """The first ``featured`` candidates, skipping one whose group looks like an already chosen unit's
    (offsets correlated SAME_LOOK or more); skipped ones fill up only when too few distinct looks remain."""
    chosen: list[int] = []
    for u in candidates:
        if len(chosen) == featured:
            return chosen
        if all(_corr(offsets[u], offsets[v]) < SAME_LOOK for v in chosen):
            chosen.append(u)
    return chosen + [u for u in candidates if u not in chosen][:featured - len(chosen)]
