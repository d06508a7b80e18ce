"""Stage 5, analysis (describe): the measured effects behind a caption the author wrote for a unit.

Generated captions are the looks' (looks.py). For a unit the author captions
in front matter, its best-matching faces are compared with all faces: overall
brightness, and region by region the brightness of named regions of the crop
relative to the face's own mean (so a darker photo does not make every region
"darker"), both lower sides and both sides taken together, and the left-right
balance, each as an effect size (standard deviations of that measure across
all faces). report.json keeps them beside the author's words.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

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


def describe(pixels: np.ndarray, best: list[list[int]], top: int, authored: dict[int, str]) -> dict[int, Caption]:
    """Each unit the author captioned: the author's words, and the effects of its ``top`` best matches."""
    means = region_means(pixels)
    return {unit: Caption(text, False, effects(means, best[unit][:top]) if best[unit][:top] else {})
            for unit, text in sorted(authored.items())}
