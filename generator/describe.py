"""Stage 7, describe: plain-language captions for the featured units, from measurements.

For a unit, its best-matching faces are compared with all faces region by
region (mean brightness of named regions of the crop). A difference is
reported when the matched faces' mean lies at least ``NOTABLE`` standard
deviations (of that region across all faces) from the all-faces mean. Left
and right are the image's, as the reader sees it. An author caption in front
matter replaces the generated one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

NOTABLE = 0.5  # effect size, in standard deviations of the region across faces

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
    """Mean brightness of every named region for every face, plus left-right balance."""
    n, h, w = pixels.shape
    x = pixels.astype(np.float64)
    out = {}
    for name, (top, bottom, left, right) in REGIONS.items():
        rows = slice(int(top * h), max(int(bottom * h), int(top * h) + 1))
        cols = slice(int(left * w), max(int(right * w), int(left * w) + 1))
        out[name] = x[:, rows, cols].mean(axis=(1, 2))
    out["left-right balance"] = x[:, :, : w // 2].mean(axis=(1, 2)) - x[:, :, w - w // 2:].mean(axis=(1, 2))
    return out


def effects(means: dict[str, np.ndarray], matched: list[int]) -> dict[str, float]:
    """Effect size per region: (matched mean - all mean) / std across all faces."""
    out = {}
    for name, values in means.items():
        sd = values.std()
        out[name] = float((values[matched].mean() - values.mean()) / sd) if sd > 0 else 0.0
    return out


def _phrase(effect: dict[str, float]) -> list[str]:
    parts = []
    sides = [("lower sides", "lower left", "lower right"), ("sides", "left side", "right side")]
    used = set()
    for label, a, b in sides:
        ea, eb = effect[a], effect[b]
        if abs(ea) >= NOTABLE and abs(eb) >= NOTABLE and np.sign(ea) == np.sign(eb):
            parts.append(_say(label, (ea + eb) / 2))
            used |= {a, b}
    for name in ("forehead", "eyes", "mouth", "left side", "right side", "lower left", "lower right"):
        if name not in used and abs(effect[name]) >= NOTABLE:
            parts.append(_say(name, effect[name]))
    balance = effect["left-right balance"]
    if abs(balance) >= NOTABLE:
        side = "left" if balance < 0 else "right"  # the darker half holds the hair / the head's mass
        parts.append(f"darker on the image's {side} half than most faces ({balance:+.1f} sd): "
                     f"head tilted, or hair parted or falling to that side?")
    return parts


def _say(region: str, e: float) -> str:
    tone = "darker" if e < 0 else "brighter"
    hint = HINTS.get((region, tone))
    return f"{tone} at the {region} than most faces ({e:+.1f} sd)" + (f": {hint}" if hint else "")


def describe(pixels: np.ndarray, best: list[list[int]], featured: list[int], top: int,
             authored: dict[int, str]) -> dict[int, Caption]:
    """A caption for every featured unit (and every unit the author captioned)."""
    means = region_means(pixels)
    captions = {}
    for unit in sorted(set(featured) | set(authored)):
        if unit >= len(best):
            continue
        effect = effects(means, best[unit][:top])
        if unit in authored:
            captions[unit] = Caption(authored[unit], False, effect)
            continue
        parts = _phrase(effect)
        text = "; ".join(parts) if parts else (
            "its best matches look like the average face: no region stands out by "
            f"{NOTABLE} sd or more"
        )
        captions[unit] = Caption(text[0].upper() + text[1:] + ".", True, effect)
    return captions
