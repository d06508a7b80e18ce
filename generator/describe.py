"""Stage 5, analysis (describe): plain-language captions for the featured units, from measurements.

For a unit, its best-matching faces are compared with all faces: overall
brightness, and region by region the brightness of named regions of the crop
relative to the face's own mean (so a darker photo does not make every region
"darker"), both lower sides and both sides taken together (named together when
both sides differ the same way), and the left-right balance. A difference is
reported when the matched faces' mean lies at least ``NOTABLE`` standard
deviations (of that measure across all faces) from the all-faces mean, and at
least ``STANDARD_ERRORS`` standard errors of a mean of that many faces, so
chance differences among a few matches are not reported. Left
and right are the image's, as the reader sees it. An author caption in front
matter replaces the generated one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

NOTABLE = 0.5  # effect size, in standard deviations of the measure across faces
STANDARD_ERRORS = 3.0  # and |effect| * sqrt(matched faces) must reach this

# name: (top, bottom, left, right) as fractions of the crop
REGIONS = {
    "forehead": (0.0, 0.25, 0.25, 0.75),
    "eyes": (0.25, 0.45, 0.15, 0.85),
    "left side": (0.2, 0.7, 0.0, 0.2),
    "right side": (0.2, 0.7, 0.8, 1.0),
    "lower left": (0.7, 1.0, 0.0, 0.3),
    "lower right": (0.7, 1.0, 0.7, 1.0),
    "mouth": (0.65, 0.85, 0.3, 0.7),
}
PAIRS = {"lower sides": ("lower left", "lower right"), "sides": ("left side", "right side")}
HINTS = {  # what a darker region usually means in a portrait, said with a question mark
    ("lower sides", "darker"): "longer hair falling past the face?",
    ("sides", "darker"): "hair down both sides?",
    ("forehead", "darker"): "a fringe, or hair over the forehead?",
    ("forehead", "brighter"): "hair pulled back from the forehead?",
}


@dataclass(frozen=True)
class Caption:
    text: str
    generated: bool  # False when the author wrote it
    effects: dict[str, float]  # region -> effect size (matched vs all), for the page and report.json


def region_means(pixels: np.ndarray) -> dict[str, np.ndarray]:
    """Per face: overall brightness, each region relative to it, and left-right balance.

    Means are taken straight from the uint8 crops (float64 accumulators), never
    from a float copy of them all.
    """
    n, h, w = pixels.shape

    def mean(rows: slice, cols: slice) -> np.ndarray:
        return pixels[:, rows, cols].mean(axis=(1, 2), dtype=np.float64)

    overall = mean(slice(None), slice(None))
    out = {"overall": overall}
    for name, (top, bottom, left, right) in REGIONS.items():
        rows = slice(int(top * h), max(int(bottom * h), int(top * h) + 1))
        cols = slice(int(left * w), max(int(right * w), int(left * w) + 1))
        out[name] = mean(rows, cols) - overall
    for pair, (a, b) in PAIRS.items():  # both sides together: half the noise of either alone
        out[pair] = (out[a] + out[b]) / 2
    out["left-right balance"] = mean(slice(None), slice(0, w // 2)) - mean(slice(None), slice(w - w // 2, w))
    return out


def effects(means: dict[str, np.ndarray], matched: list[int]) -> dict[str, float]:
    """Effect size per region: (matched mean - all mean) / std across all faces."""
    out = {}
    for name, values in means.items():
        sd = values.std()
        out[name] = float((values[matched].mean() - values.mean()) / sd) if sd > 0 else 0.0
    return out


def _phrase(effect: dict[str, float], k: int) -> list[str]:
    notable = max(NOTABLE, STANDARD_ERRORS / np.sqrt(max(k, 1)))
    parts = []
    if abs(effect["overall"]) >= notable:
        tone = "darker" if effect["overall"] < 0 else "brighter"
        parts.append(f"{tone} overall than most faces ({effect['overall']:+.1f} sd): lighting or skin tone?")
    used = set()
    for label, (a, b) in PAIRS.items():  # a pair is named when together they stand out, both the same way
        if abs(effect[label]) >= notable and np.sign(effect[a]) == np.sign(effect[b]) == np.sign(effect[label]):
            parts.append(_say(label, effect[label]))
            used |= {a, b}
    for name in ("forehead", "eyes", "mouth", "left side", "right side", "lower left", "lower right"):
        if name not in used and abs(effect[name]) >= notable:
            parts.append(_say(name, effect[name]))
    balance = effect["left-right balance"]
    if abs(balance) >= notable:
        side = "left" if balance < 0 else "right"  # the darker half holds the hair / the head's mass
        parts.append(f"darker on the image's {side} half than most faces ({balance:+.1f} sd): "
                     f"head tilted, or hair parted or falling to that side?")
    return parts


def _say(region: str, e: float) -> str:
    tone = "darker" if e < 0 else "brighter"
    hint = HINTS.get((region, tone))
    verb = "are" if region.endswith("s") else "is"
    return f"the {region} {verb} {tone} than in most faces ({e:+.1f} sd)" + (f": {hint}" if hint else "")


def describe(pixels: np.ndarray, best: list[list[int]], featured: list[int], top: int,
             authored: dict[int, str]) -> dict[int, Caption]:
    """A caption for every featured unit (and every unit the author captioned)."""
    means = region_means(pixels)
    captions = {}
    for unit in sorted(set(featured) | set(authored)):
        matched = best[unit][:top]
        effect = effects(means, matched) if matched else {}
        if unit in authored:
            captions[unit] = Caption(authored[unit], False, effect)
            continue
        parts = _phrase(effect, len(matched))
        text = "; ".join(parts) if parts else (
            f"its {len(matched)} best matches look like the average face: no region stands out "
            "clearly from all faces"
        )
        text = text[0].upper() + text[1:]
        captions[unit] = Caption(text if text.endswith(("?", ".")) else text + ".", True, effect)
    return captions
