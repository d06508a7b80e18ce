"""Stage 5, analysis (looks): what many faces share, found from the units, tested against chance, said plainly.

A *look* is a group of faces that share a pattern the rest lack. Each unit
proposes one: the ``top`` faces that excite it most. The pixels are measured
on a common ruler first: each face levelled to its own mean 0 and sd 1 (so a
darker photo is not a look), then each pixel standardised over the faces.

- **Region and consistency.** A group's composite ``c`` is the mean of its
  faces on that ruler. Its region is the ``REGION`` share of pixels where
  ``|c|`` is largest. Its consistency is the mean, over the region, of
  ``|c| / sd``, sd being the spread of the group's own faces at that pixel:
  high when the group's faces are alike where they differ from the rest
  (a shared look), low for a group that merely leans one way on average
  (a gradient of lighting, a mixed bag).
- **Refinement.** From the unit's group, the faces are scored by the region's
  pixels weighted by ``c / (sd + SD_FLOOR)^2`` and the ``top`` best taken;
  a step is kept only if it makes the group more consistent (at most
  ``REFINE_STEPS`` steps). The unit's own group and its refined group both
  stand as candidates.
- **One look, many units.** Candidates are taken most consistent first; one
  whose faces overlap a kept look's by ``SAME_FACES`` (Jaccard) or whose
  composite correlates ``SAME_LOOK`` or more with it joins that look.
- **Background.** A look whose region lies mostly (``BACKGROUND_SHARE``) in
  the outer bands beside the face (``SIDE_BAND`` of the width each side) and
  is brighter there is a bright backdrop, not a look of the face: it is said
  as such and never featured. Dark sides stay looks (hair is darker than
  the backdrop far more often than not).
- **Prevalence.** Each face's score is its mean signed departure over the
  region; the share of faces scoring at least half the group's mean.
- **Beyond chance.** The same search on faces with no looks at all
  (``NULL_DRAWS`` draws): faces drawn from one Gaussian with the faces' own mean
  and pixel covariance, which keeps every smooth way the faces vary (a
  lighting gradient, a darker background) and no group that shares what the
  rest lack. A look is beyond chance when it is more consistent than every
  candidate of every draw: a mode of the faces, not a gradient.
- **Confidence.** The faces are split in random halves ``SPLITS`` times; in
  each half the look's units (its first ``HALF_UNITS``) search again as in
  the whole search, on that half's faces alone. The look is found again in
  a half when one of the groups they propose there departs as the look does
  (cosine ``AGREE`` or more between the composites, over the pixels where
  either departs most). Confidence is the share of splits in which both
  halves find it again, more consistent there than the best group among
  half as many faces with no looks: how stable the look is. A look is featured when it is not
  background, is beyond chance and has confidence ``CONFIDENT`` or more.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

REGION = 0.05  # share of the pixels that make a look's region
SD_FLOOR = 0.2  # added to the group's spread before weighting pixels by it (no pixel weighs without bound)
REFINE_STEPS = 6
SAME_FACES = 0.5  # Jaccard overlap of two groups' faces at which they are one look
SAME_LOOK = 0.8  # composite correlation at which two groups are one look
SIDE_BAND = 0.2  # share of the width, each side, beside the face
BACKGROUND_SHARE = 0.5  # share of a look's region in the side bands that makes it background (when brighter)
NULL_DRAWS = 3  # draws of faces with no looks: the chance level is the best look among them
SPLITS = 6
AGREE = 0.8
CONFIDENT = 1 / 2  # confidence a featured look needs: found again in at least half of the halvings
HALF_UNITS = 5  # a look's units that search for it again in each half
MIN_FACES = 8  # fewer faces have no looks
CHECKED = 12  # looks, most consistent first, that get the split-half check
NAMED = 0.25  # share of a look's departure a region must hold to be named
MIXED = 1 / 3  # |balance| under which a region's brighter and darker parts are said together
SAID = 2  # effects a caption names at most

# name: (top, bottom, left, right) as fractions of the aligned crop; left and right as the reader sees them
REGIONS = {
    "forehead": (0.0, 0.25, 0.25, 0.75),
    "eyes": (0.3, 0.5, 0.15, 0.85),
    "nose": (0.45, 0.65, 0.38, 0.62),
    "mouth": (0.65, 0.85, 0.3, 0.7),
    "chin": (0.85, 1.0, 0.3, 0.7),
    "left side": (0.2, 0.6, 0.0, 0.2),
    "right side": (0.2, 0.6, 0.8, 1.0),
    "lower left": (0.6, 1.0, 0.0, 0.2),
    "lower right": (0.6, 1.0, 0.8, 1.0),
    "top of the head": (0.0, 0.12, 0.0, 1.0),
}
PAIRS = {"lower sides": ("lower left", "lower right"), "sides": ("left side", "right side")}
# REGIONS are drawn for crops used whole, where the eyes sit at about 0.4 of the height and the mouth at 0.75
# (ORL: darkest rows at 0.44 and 0.80-0.85). An aligned crop puts them where its template does (margin 0.2:
# eyes 0.30, mouth 0.72; measured darkest rows on 297 LFW faces: 0.27 and 0.72), so aligned_regions moves
# each region's rows there, piecewise linearly between these anchors.
WHOLE_EYES, WHOLE_MOUTH = 0.40, 0.75
TEMPLATE_MOUTH = 0.81  # the mouth line in the landmark template's frame (pixels.TEMPLATE has no mouth point):
# the mean aligned LFW face is darkest at 0.72 of the crop with margin 0.2, (0.72 * 1.4 - 0.2) = 0.81
HINTS = {  # what a region usually means in a portrait; said as a question
    ("lower sides", "darker"): "dark hair falling past the face",
    ("sides", "darker"): "dark hair down both sides",
    ("forehead", "darker"): "hair over the forehead",
    ("forehead", "brighter"): "hair pulled back, or a high forehead",
    ("top of the head", "brighter"): "fair, grey or little hair",
    ("top of the head", "darker"): "dark hair on top",
    ("eyes", "darker"): "glasses or shadowed eyes",
    ("mouth", "brighter"): "a smile that shows the teeth",
    ("mouth", "darker"): "an open mouth, or a moustache",
    ("mouth", "mixed"): "a smile or an open mouth",
    ("lower left", "darker"): "the head turned, or a shadow or dark background on that side",
    ("lower right", "darker"): "the head turned, or a shadow or dark background on that side",
    ("left side", "darker"): "hair, a shadow or a dark background on that side",
    ("right side", "darker"): "hair, a shadow or a dark background on that side",
    ("eyes", "mixed"): "glasses",
}


@dataclass(frozen=True)
class Look:
    """One look: the faces that share it, how common it is, how sure, and what it is in words."""

    units: list[int]  # the units that proposed it, the best first
    faces: list[int]  # its group, the most typical first
    prevalence: float  # share of all faces that clearly show it
    consistency: float
    beyond_chance: bool
    confidence: float  # share of split halves that found it again
    background: bool
    effects: dict[str, dict[str, float]]  # region -> departure (sd, signed) and share of the look's departure
    said: list[tuple[str, str]]  # (region, "darker" | "brighter") the caption names, strongest first
    caption: str
    offset: np.ndarray = field(repr=False)  # (pixels,) the composite on the common ruler
    members: np.ndarray = field(repr=False)  # (faces,) bool: the faces that clearly show it (its prevalence)

    @property
    def unit(self) -> int:
        return self.units[0]

    @property
    def featured(self) -> bool:
        return not self.background and self.beyond_chance and self.confidence >= CONFIDENT


@dataclass(frozen=True)
class Looks:
    looks: list[Look]  # every look found, most consistent first
    chance: float  # the best consistency on faces with no looks (the Gaussian null): what chance alone reaches

    def featured(self, at_most: int) -> list[Look]:
        """The looks to feature, most consistent first: each says something the ones before it do not (a
        second group of faces whose caption names the same regions the same way reads as the same look twice,
        so it stays among the other looks)."""
        out: list[Look] = []
        for v in self.looks:
            if v.featured and all(v.said != w.said for w in out):
                out.append(v)
        return out[:at_most]


Encode = Callable[[np.ndarray], np.ndarray]  # uint8 faces (n, size, size) -> unit activations (n, units)


def find_looks(pixels: np.ndarray, acts: np.ndarray, encode: Encode, top: int, seed: int = 0,
               regions: dict[str, tuple[float, float, float, float]] | None = None) -> Looks:
    """Every look the units propose, merged, checked against faces with no looks and split halves. Fewer than
    ``MIN_FACES`` faces have no looks: no group can stand apart from the rest. ``regions`` names the parts
    of these crops (``aligned_regions`` for faces aligned on their landmarks; REGIONS when None).
    A small search runs numpy's products on one BLAS thread (``blas_threads``; the same numbers as on more)."""
    from threadpoolctl import threadpool_limits  # scikit-learn's dependency: already installed with it

    with threadpool_limits(blas_threads(len(pixels), int(np.prod(pixels.shape[1:])), acts.shape[1]),
                           user_api="blas"):
        return _find_looks(pixels, acts, encode, top, seed, REGIONS if regions is None else regions)


SMALL_SEARCH = 2**31  # multiply-adds of one scoring product (faces x pixels x units): below, one BLAS thread


def blas_threads(faces: int, pixels: int, units: int) -> int | None:
    """numpy's BLAS threads for a search of this size: one below ``SMALL_SEARCH``, else as they are (None).

    The search alternates numpy's products (OpenBLAS, its own threads) with ``encode``'s (torch, its own), and
    each pool's idle threads spin for a while after a call: on two cores a small search's many short products
    each waited for a core the other pool held (a 390 x 4,096 SVD took 0.27 s alone, 1.3-9.5 s just after a
    torch call; the ORL search 4.2-8.2 s on two threads, 3.3 s on one). A large search is long products, which
    two threads do in less time (20,000 LFW crops: 59 s on two, 72 s on one)."""
    return 1 if faces * pixels * units < SMALL_SEARCH else None


def aligned_regions(margin: float) -> dict[str, tuple[float, float, float, float]]:
    """REGIONS for crops aligned on the landmark template with ``margin``: each region's top and bottom moved
    so the eye line and the mouth line fall where the template puts them (columns unchanged: the template's
    eyes sit where a whole crop's do, about 0.3 and 0.7 of the width)."""
    from .pixels import TEMPLATE

    eyes = (float(TEMPLATE[:4, 1].mean()) + margin) / (1 + 2 * margin)
    mouth = (TEMPLATE_MOUTH + margin) / (1 + 2 * margin)
    anchors, moved = [0.0, WHOLE_EYES, WHOLE_MOUTH, 1.0], [0.0, eyes, mouth, 1.0]

    def row(y: float) -> float:
        return round(float(np.interp(y, anchors, moved)), 3)

    return {name: (row(top), row(bottom), left, right) for name, (top, bottom, left, right) in REGIONS.items()}


def _find_looks(pixels: np.ndarray, acts: np.ndarray, encode: Encode, top: int, seed: int,
                regions: dict[str, tuple[float, float, float, float]]) -> Looks:
    size = pixels.shape[-1]
    if len(pixels) < MIN_FACES:
        return Looks([], 0.0)
    z = standardise(pixels)
    candidates = _candidates(z, acts, top)
    rng = np.random.default_rng(seed)
    draw = _null_faces(pixels, z, rng)
    # a half's groups are drawn from half as many faces, so they reach less: their chance level is a half's,
    # measured on half of each draw (its faces are independent, so any half of them is a draw of half as many)
    ruler = np.empty_like(z)  # every draw's faces on the common ruler, in one array (see _chances)
    chance, half_chance = map(float, np.max([_chances(draw(), encode, top, ruler) for _ in range(NULL_DRAWS)],
                                            axis=0))
    merged = _merge(candidates, len(z))
    checked = merged[:CHECKED]
    confidence = _confidence(z, acts, [(_group(z, -1, g).offset, units) for g, units in checked],
                             [rng.permutation(len(z)) for _ in range(SPLITS)], top, half_chance)
    band = _side_band(size)
    found = [_region(z, group) for group, _ in merged]
    scores = _region_scores(z, [(np.sign(c[region]) / len(region), region) for c, _, region in found])
    out = [_look(group, units, found[k], scores[k], size, band, chance,
                 confidence[k] if k < len(checked) else 0.0, regions)
           for k, (group, units) in enumerate(merged)]
    return Looks(out, round(float(chance), 4))
def _chances(null: np.ndarray, encode: Encode, top: int, ruler: np.ndarray) -> tuple[float, float]:
    """The chance level these faces with no looks give, and the one their first half gives (for groups of a half).
    Both are put on the ruler in ``ruler``, (faces, pixels) float32, reused: a fresh array as large is new memory
    that the system hands out page by page (at 20,000 faces, 330 MB, about a second each time)."""
    half = len(null) // 2
    return (_chance(null, encode, top, ruler), _chance(null[:half], encode, _half_top(top), ruler[:half]))


def _chance(null: np.ndarray, encode: Encode, top: int, ruler: np.ndarray) -> float:
    """The most consistent candidate the units propose among faces with no looks."""
    return max((c.consistency for c in _candidates(standardise(null, out=ruler), encode(null), top)), default=0.0)


def standardise(pixels: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """(faces, pixels) float32: each face levelled to mean 0, sd 1, then each pixel standardised over faces; in
    ``out`` when given (float32, that shape), else in a new array.

    The same floats as ``x -= x.mean(axis=1); x /= x.std(axis=1) + 1e-6; x -= x.mean(axis=0); ...`` give, with
    no (faces, pixels) temporary beside ``x`` (numpy's std makes one): at 20,000 faces that is 330 MB less."""
    flat = pixels.reshape(len(pixels), -1)
    if out is None:
        x = flat.astype(np.float32)
    else:
        x = out.reshape(flat.shape)
        np.copyto(x, flat, casting="unsafe")
    for s in range(0, len(x), ROWS_CHUNK):
        rows = x[s:s + ROWS_CHUNK]
        rows -= rows.mean(axis=1, keepdims=True)
        rows /= rows.std(axis=1, keepdims=True) + 1e-6
    x -= column_mean_std(lambda s, e: x[s:e], len(x), sd=False)[0]
    x /= column_mean_std(lambda s, e: x[s:e], len(x))[1] + 1e-6
    return x


ROWS_CHUNK = 1024  # faces at a time in the chunked statistics


def column_mean_std(rows: Callable[[int, int], np.ndarray], n: int,
                    sd: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
    """Each column's mean and sd over ``n`` rows given a chunk at a time by ``rows(start, stop)`` (float32),
    bit for bit as ``x.mean(axis=0)`` and ``x.std(axis=0)`` give them for all the rows at once: numpy adds the
    rows of an axis-0 reduction one after another, so each chunk is added to the running sum as one more row,
    and the divisions are numpy's own. ``sd=False``: the mean alone."""
    total = None
    for s in range(0, n, ROWS_CHUNK):
        r = rows(s, min(n, s + ROWS_CHUNK))
        total = np.add.reduce(r if total is None else np.concatenate([total[None], r]), axis=0)
    mean = np.true_divide(total, np.intp(n), out=total, casting="unsafe")
    if not sd:
        return mean, None
    squares = None
    for s in range(0, n, ROWS_CHUNK):
        d = rows(s, min(n, s + ROWS_CHUNK)) - mean
        np.multiply(d, d, out=d)
        squares = np.add.reduce(d if squares is None else np.concatenate([squares[None], d]), axis=0)
    variance = np.true_divide(squares, np.intp(n), out=squares, casting="unsafe")
    return mean, np.sqrt(variance, out=variance)


@dataclass(frozen=True)
class _Group:
    unit: int
    faces: np.ndarray  # sorted indices
    consistency: float
    offset: np.ndarray


def _candidates(z: np.ndarray, acts: np.ndarray, top: int) -> list[_Group]:
    """Each unit's group (its ``top`` faces), and the group refined from it when refining moved it: all units
    at once, a chunk of groups at a time."""
    if len(z) < 2 or not acts.shape[1]:
        return []
    top = min(top, len(z))
    units = np.flatnonzero(acts.max(axis=0) > acts.min(axis=0))
    if not len(units):
        return []
    start = top_rows(acts[:, units], top)
    offsets, consistency, regions, spreads = _stats(z, start)
    out = [_Group(int(u), start[i], float(consistency[i]), offsets[i]) for i, u in enumerate(units)]
    groups, best = start.copy(), consistency.copy()
    moved = np.zeros(len(units), bool)
    active = np.arange(len(units))
    for _ in range(REFINE_STEPS):
        if not len(active):
            break
        weights = np.zeros((len(active), z.shape[1]), np.float32)
        rows = np.arange(len(active))[:, None]
        weights[rows, regions[active]] = (np.take_along_axis(offsets[active], regions[active], axis=1)
                                          / (spreads[active] + SD_FLOOR) ** 2)
        scores = product(weights, z.T)  # (active, faces): each group's scores in a row, partitioned along it
        new = np.sort(np.argpartition(np.negative(scores, out=scores), top - 1, axis=1)[:, :top], axis=1)
        o, c, r, sd = _stats(z, new)
        better = ~np.all(new == groups[active], axis=1) & (c > best[active])
        keep = active[better]
        groups[keep], best[keep], offsets[keep], regions[keep], spreads[keep] = (
            new[better], c[better], o[better], r[better], sd[better])
        moved[keep] = True
        active = keep
    out += [_Group(int(units[i]), groups[i], float(best[i]), offsets[i]) for i in np.flatnonzero(moved)]
    return out


def top_rows(values: np.ndarray, top: int) -> np.ndarray:
    """(columns, top): each column's ``top`` largest values' row indices, ascending; ties go to the lower index, as
    a stable sort of the negated values takes them (the same rows), in linear time rather than a sort's."""
    n, columns = values.shape
    if top >= n:
        return np.broadcast_to(np.arange(n), (columns, n)).copy()
    neg = np.negative(values.T, order="C")  # a column's values in a row: partitioned and counted along it
    cut = np.partition(neg, top - 1, axis=1)[:, top - 1:top]  # each column's top-th value
    take, tied = neg < cut, neg == cut
    room = top - take.sum(axis=1)  # the tied values a column still takes, the lowest rows first
    some = np.flatnonzero(tied.sum(axis=1) > room)  # columns with more ties than room: counted along the row
    take |= tied
    if len(some):
        take[some] &= ~tied[some] | (np.cumsum(tied[some], axis=1) <= room[some, None])
    return np.nonzero(take)[1].reshape(columns, top)


STATS_BLOCK = 64  # groups summed at once: (block, pixels) floats, small enough to stay in the CPU's cache
PRODUCT_FACES = 16  # faces per group's face under which a group's composites come from one matrix product


def _stats(z: np.ndarray, groups: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per group (rows of distinct face indices): its composite, consistency, region, and its faces' spread there.

    Among few faces (under PRODUCT_FACES times the group size) the composites are one product of the groups'
    membership weights with ``z``: the product's work grows with the faces, but it runs at the CPU's full rate
    (on the ORL faces 8 ms for 400 groups, against 21 ms summing). Among more, each group's faces are summed into
    one (groups, pixels) array, without the (groups, faces, pixels) copy of every group's faces. The spread is
    taken about the composite already known, from the gathered (groups, faces, region) values alone."""
    n_groups, top = groups.shape
    k = max(1, int(REGION * z.shape[1]))
    if len(z) < PRODUCT_FACES * top:
        member = np.zeros((n_groups, len(z)), np.float32)
        np.put_along_axis(member, groups, np.float32(1 / top), axis=1)
        offsets = product(member, z)
    else:
        offsets = np.zeros((n_groups, z.shape[1]), np.float32)
        for s in range(0, n_groups, STATS_BLOCK):
            block, rows = offsets[s:s + STATS_BLOCK], groups[s:s + STATS_BLOCK]
            for j in range(top):
                block += z[rows[:, j]]
        np.true_divide(offsets, top, out=offsets, casting="unsafe")
    regions = np.argpartition(np.abs(offsets), -k, axis=1)[:, -k:]
    composite = np.take_along_axis(offsets, regions, axis=1)
    departure = z[groups[:, :, None], regions[:, None, :]]  # (groups, faces, k) gathered from z at once
    departure -= composite[:, None, :]
    spreads = np.sqrt(np.square(departure, out=departure).mean(axis=1))
    consistency = (np.abs(composite) / (spreads + 1e-6)).mean(axis=1)
    return offsets, consistency.astype(np.float64), regions, spreads


def _region(z: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    g = z[faces]
    c = g.mean(axis=0)
    k = max(1, int(REGION * z.shape[1]))
    region = np.argpartition(-np.abs(c), k - 1)[:k]
    return c, g[:, region].std(axis=0), region


def _group(z: np.ndarray, unit: int, faces: np.ndarray) -> _Group:
    c, sd, region = _region(z, faces)
    return _Group(unit, faces, float(np.mean(np.abs(c[region]) / (sd + 1e-6))), c)


def _refine(z: np.ndarray, faces: np.ndarray, top: int) -> np.ndarray | None:
    """The group moved towards faces more alike where it departs, while that makes it more consistent."""
    best = _group(z, -1, faces).consistency
    moved = None
    for _ in range(REFINE_STEPS):
        c, sd, region = _region(z, faces)
        score = _region_scores(z, [(c[region] / (sd + SD_FLOOR) ** 2, region)])[0]
        new = np.sort(np.argsort(-score, kind="stable")[:top])
        if np.array_equal(new, faces):
            break
        consistency = _group(z, -1, new).consistency
        if consistency <= best:
            break
        faces, best, moved = new, consistency, new
    return moved


def _merge(candidates: list[_Group], faces: int) -> list[tuple[np.ndarray, list[int]]]:
    """Candidates most consistent first; one that overlaps or resembles a kept look joins it."""
    ordered = sorted(candidates, key=lambda g: (-g.consistency, g.unit))
    if not ordered:
        return []
    shape = (len(ordered), ordered[0].offset.size)
    kept_offsets = np.empty(shape, np.float32)  # centred, unit length: a dot product is a correlation
    kept_faces = np.zeros((len(ordered), faces), np.float32)
    kept: list[tuple[_Group, list[int]]] = []
    for c in ordered:
        centred = c.offset - c.offset.mean()
        centred /= np.linalg.norm(centred) or 1.0
        member = np.zeros(faces, np.float32)
        member[c.faces] = 1
        n = len(kept)
        if n:
            both = kept_faces[:n] @ member
            sizes = np.array([len(g.faces) for g, _ in kept])
            close = (both / (sizes + len(c.faces) - both) >= SAME_FACES) | (kept_offsets[:n] @ centred >= SAME_LOOK)
            if close.any():
                units = kept[int(np.argmax(close))][1]
                if c.unit not in units:
                    units.append(c.unit)
                continue
        kept_offsets[n], kept_faces[n] = centred, member
        kept.append((c, [c.unit]))
    return [(g.faces, units) for g, units in kept]


SMALL_PRODUCT = 2**25  # multiply-adds under which a product is numpy's: torch's call costs more than the work


def product(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` (float32); a large one by torch, on its threads. The search's large products run there, beside
    ``encode``'s and the null draws', not on numpy's own BLAS threads: two pools of threads on the cores, each
    spinning while the other worked, made numpy's products slower inside the search than alone. A small one
    (the ORL faces' one-group scores) stays in numpy, where calling torch took longer than the product."""
    if a.shape[0] * a.shape[1] * b.shape[1] < SMALL_PRODUCT:
        return a @ b
    import torch

    return (torch.from_numpy(a) @ torch.from_numpy(b)).numpy()


def _region_scores(z: np.ndarray, weights: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """(len(weights), faces): each face's weighted sum over each (weights, pixels) pair's pixels, as one product
    over all the pixels with zeros elsewhere: a pass over ``z`` in order, not a gather of its columns (2x faster
    for one pair; for a list of pairs, one pass)."""
    dense = np.zeros((len(weights), z.shape[1]), np.float32)
    for row, (w, where) in zip(dense, weights, strict=True):
        row[where] = w
    return product(dense, z.T)


def _look(faces: np.ndarray, units: list[int], found: tuple[np.ndarray, np.ndarray, np.ndarray], score: np.ndarray,
          size: int, band: np.ndarray, chance: float, confidence: float,
          regions: dict[str, tuple[float, float, float, float]]) -> Look:
    """The look of these faces, from their composite, spread and region (``found``, as _region gives them) and
    every face's mean signed departure over that region (``score``)."""
    c, sd, region = found
    consistency = float(np.mean(np.abs(c[region]) / (sd + 1e-6)))
    typical = faces[np.argsort(-score[faces], kind="stable")]
    members = score >= score[faces].mean() / 2
    prevalence = float(members.mean())
    outside = region[band[region]]
    background = len(outside) >= BACKGROUND_SHARE * len(region) and float(c[outside].mean()) > 0
    effects = region_effects(c, region, size, regions)
    said = strongest(effects)
    return Look(units, [int(i) for i in typical], round(prevalence, 4), round(consistency, 4),
                consistency > chance, round(confidence, 4), bool(background),
                effects, said, caption(said, background), c, members)


def _confidence(z: np.ndarray, acts: np.ndarray, looks: list[tuple[np.ndarray, list[int]]],
                splits: list[np.ndarray], top: int, chance: float) -> list[float]:
    """Per look (its composite and units): the share of random halvings in which both halves find it again."""
    kw = max(1, int(REGION * z.shape[1]))
    departs = [np.argpartition(-np.abs(offset), kw - 1)[:kw] for offset, _ in looks]
    asked = sorted({u for _, units in looks for u in units[:HALF_UNITS]})
    found = np.zeros(len(looks))
    for order in splits:
        both = np.ones(len(looks), bool)
        for half in (order[: len(order) // 2], order[len(order) // 2:]):
            zh = z[half]
            k = _half_top(top)
            proposed = {}
            for g in _candidates(zh, acts[half][:, asked], k):  # every look's units at once, on this half
                proposed.setdefault(asked[g.unit], []).append(g)
            for j, (offset, units) in enumerate(looks):
                if both[j]:
                    groups = [g for u in units[:HALF_UNITS] for g in proposed.get(u, [])]
                    both[j] = _found_again(zh, groups, offset, departs[j], k, chance)
        found += both
    return [float(f) / len(splits) for f in found]


def _half_top(top: int) -> int:
    """The group size in a half: half the whole's, so a look half the faces of a half show can still fill it."""
    return max(2, top // 2)


def _found_again(z: np.ndarray, groups: list[_Group], offset: np.ndarray, departs: np.ndarray, top: int,
                 chance: float) -> bool:
    """Some group proposed in these faces alone departs as the look does (cosine AGREE or more between the
    composites, over the pixels where either departs most) and is more consistent than chance: the units'
    groups, and the faces that fit the look's composite best, refined on these faces."""
    fits = np.sort(np.argsort(-_region_scores(z, [(offset[departs], departs)])[0], kind="stable")[:top])
    refined = _refine(z, fits, top)
    for g in groups + [_group(z, -1, fits if refined is None else refined)]:
        _, _, region = _region(z, g.faces)
        where = np.union1d(region, departs)
        if g.consistency > chance and _cosine(g.offset[where], offset[where]) >= AGREE:
            return True
    return False


NULL_SAMPLE = 2000  # faces the null's covariance is estimated from, at most
NULL_CHUNK = 2048  # null faces drawn at once


def _null_faces(pixels: np.ndarray, z: np.ndarray, rng: np.random.Generator) -> Callable[[], np.ndarray]:
    """Faces with no looks at all: drawn from one Gaussian with the faces' own mean and pixel covariance (on the
    common ruler), so every smooth way faces vary (lighting from one side, a darker background, a bigger head)
    is there, but no group of faces that share something the rest lack. Each call draws as many faces as there
    are, as uint8 pixels at the faces' typical brightness and contrast.

    A draw is ``g @ sample / sqrt(n)`` for standard normal ``g`` (count, n): its covariance is the sample's,
    ``sample.T @ sample / n``, as a draw through the sample's SVD has, without the SVD (at 20,000 faces, 5 s).
    The rest of the way to pixels (the ruler's spread and centre, the typical brightness) is folded into that
    matrix and one offset, so a chunk of faces is one product, a rounding and a clip, in torch (its own threads)."""
    import torch

    sample = z if len(z) <= NULL_SAMPLE else z[np.sort(rng.choice(len(z), NULL_SAMPLE, replace=False))]
    flat = pixels.reshape(len(pixels), -1)
    mean, sd = np.empty(len(flat), np.float32), np.empty(len(flat), np.float32)
    for s in range(0, len(flat), ROWS_CHUNK):  # a chunk of float faces at a time, never all of them
        rows = flat[s:s + ROWS_CHUNK].astype(np.float32)
        mean[s:s + ROWS_CHUNK], sd[s:s + ROWS_CHUNK] = rows.mean(axis=1), rows.std(axis=1)

    def levelled(start: int, stop: int) -> np.ndarray:
        return (flat[start:stop].astype(np.float32) - mean[start:stop, None]) / (sd[start:stop, None] + 1e-6)

    centre, spread = column_mean_std(levelled, len(flat))
    contrast = float(sd.mean())
    # faces = (g @ sample / sqrt(n) * spread + centre) * contrast + brightness, as one product and one offset
    scale = torch.from_numpy(sample * (spread * np.float32(contrast / np.sqrt(len(sample))))[None, :])
    offset = torch.from_numpy((centre * contrast + float(mean.mean())).astype(np.float32))
    gen = torch.Generator().manual_seed(int(rng.integers(2**63)))

    def draw() -> np.ndarray:
        count = len(pixels)
        out = np.empty((count, flat.shape[1]), np.uint8)
        for s in range(0, count, NULL_CHUNK):  # a chunk at a time: the floats of every face at once are large
            g = torch.randn((min(NULL_CHUNK, count - s), len(sample)), generator=gen)
            faces = torch.addmm(offset, g, scale).round_().clamp_(0, 255)
            out[s:s + len(g)] = faces.to(torch.uint8).numpy()
        return out.reshape((count, *pixels.shape[1:]))

    return draw


def _shuffled(pixels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Every pixel shuffled across faces on its own: each pixel's values kept, every shared pattern broken."""
    flat = pixels.reshape(len(pixels), -1)
    rows = np.argsort(rng.random(flat.shape), axis=0)
    return np.take_along_axis(flat, rows, axis=0).reshape(pixels.shape)


def _side_band(size: int) -> np.ndarray:
    x = (np.arange(size) + 0.5) / size
    return np.broadcast_to(np.abs(x - 0.5) >= 0.5 - SIDE_BAND, (size, size)).ravel()


def region_effects(offset: np.ndarray, region: np.ndarray, size: int,
                   regions: dict[str, tuple[float, float, float, float]] = REGIONS) -> dict[str, dict[str, float]]:
    """Where a look departs: for each named region holding part of the look's region, the mean departure
    there (sd of the levelled pixels, signed: negative is darker), the share of the look's departure it
    holds, and its balance (+1: all of it brighter, -1: all darker)."""
    mask = np.zeros(size * size, bool)
    mask[region] = True
    mask = mask.reshape(size, size)
    c = offset.reshape(size, size)
    total = float(np.abs(c[mask]).sum()) or 1.0
    out = {}
    spans = {**regions, **{p: None for p in PAIRS}}
    for name, span in spans.items():
        if span is None:
            a, b = (_box(regions[n], size) for n in PAIRS[name])
            inside = np.zeros((size, size), bool)
            inside[a] = inside[b] = True
        else:
            inside = np.zeros((size, size), bool)
            inside[_box(span, size)] = True
        here = inside & mask
        if here.any():
            out[name] = {"departure": round(float(c[here].mean()), 3),
                         "share": round(float(np.abs(c[here]).sum()) / total, 3),
                         "balance": round(float(c[here].sum() / np.abs(c[here]).sum()), 3)}
    return out


def _box(span: tuple[float, float, float, float], size: int) -> tuple[slice, slice]:
    top, bottom, left, right = span
    return (slice(int(top * size), max(int(bottom * size), int(top * size) + 1)),
            slice(int(left * size), max(int(right * size), int(left * size) + 1)))


def strongest(effects: dict[str, dict[str, float]]) -> list[tuple[str, str]]:
    """The regions holding most of the look's departure (each at least ``NAMED`` of it), at most ``SAID``,
    each as (region, "darker" | "brighter" | "mixed"); a pair of sides in place of either side when both hold
    a part the same way. A region is "mixed" when its brighter and darker parts nearly cancel (|balance| under
    ``MIXED``)."""
    share = {k: v["share"] for k, v in effects.items()}
    tone = {k: "mixed" if abs(v["balance"]) < MIXED else "darker" if v["balance"] < 0 else "brighter"
            for k, v in effects.items()}
    for pair, (a, b) in PAIRS.items():
        both = a in share and b in share and tone[a] == tone[b] != "mixed"
        if both and min(share[a], share[b]) >= NAMED / 2:
            share.pop(a), share.pop(b)
        else:
            share.pop(pair, None)
    ranked = sorted(((v, k) for k, v in share.items() if v >= NAMED), reverse=True)
    return [(k, tone[k]) for _, k in ranked[:SAID]]


def caption(said: list[tuple[str, str]], background: bool) -> str:
    """Plain words for a look: its strongest effects, and what they usually mean, as a question."""
    if background:
        return "A bright background beside the face (the photos' setting, not a look of the face)."
    if not said:
        return "No region stands out clearly: these faces differ from the rest only slightly, all over."
    parts = []
    for region, tone in said:
        verb = "are" if region in PAIRS or region.endswith("s") else "is"
        hint = HINTS.get((region, tone))
        words = "different, with brighter and darker parts" if tone == "mixed" else tone
        parts.append(f"the {region} {verb} {words}" + (f" ({hint}?)" if hint else ""))
    text = " and ".join(parts) if len(parts) == 2 and not any("(" in p for p in parts) else "; ".join(parts)
    return text[0].upper() + text[1:] + "."


def share_words(share: float) -> str:
    """A share as a reader says it: "about 1 in 5 faces"."""
    if share <= 0:
        return "no faces"
    if share >= 0.4:
        return f"about {round(share * 100)}% of faces"
    n = max(2, round(1 / share))
    return f"about 1 in {n} faces"


def _jaccard(a: np.ndarray, b: np.ndarray) -> float:
    return len(np.intersect1d(a, b, assume_unique=True)) / len(np.union1d(a, b))


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    denom = float(np.sqrt((a @ a) * (b @ b)))
    return float(a @ b) / denom if denom > 0 else 0.0


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    denom = float(np.sqrt((a @ a) * (b @ b)))
    return float(a @ b) / denom if denom > 0 else 0.0
