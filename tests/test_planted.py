"""Planted trends: change 15% of the faces (spread over many people) in a known way, build, and check that the
report finds and describes it. The plants are made on the 92x112 photos, as a user's photos would be.

The ``synthetic`` tests plant on synthetic faces (tests/synthetic.py) and run on every machine; the others plant
on the real ORL faces, a larger check that needs ../shared/data (they skip without it)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from facetrend.build import BuildOptions, build

from .conftest import write_report
from .synthetic import write_people

SHARE = 0.15  # of the faces, drawn at random over all photos (not whole people)
TOP = 30  # the matches the issue judges a unit by
SYNTHETIC_PEOPLE = 40  # x 10 photos each, as ORL


def _dark_hair(image: np.ndarray) -> np.ndarray:
    """Long dark hair: the lower outer corners of the centred square (rows below 55-65% of its side, columns
    within 16-24% of either edge, soft edges) darkened to a quarter."""
    h, w = image.shape
    s = min(h, w)
    y = (np.arange(h) + 0.5 - (h - s) // 2) / s
    x = (np.arange(w) + 0.5 - (w - s) // 2) / s
    mask = np.clip((y - 0.55) / 0.10, 0, 1)[:, None] * np.clip((0.24 - np.minimum(x, 1 - x)) / 0.08, 0, 1)[None, :]
    return np.clip(np.round(image * (1 - 0.75 * mask)), 0, 255).astype(np.uint8)


def _planted_content(root: Path, att: Path, plant, seeds: list[int], more: str = "") -> tuple[Path, set[str]]:
    """One report per seed over the same photos, 15% of them planted; the planted photos' paths. ``more``:
    further front matter, read inside the `model:` block first."""
    photos = sorted(att.glob("*/*.pgm"))
    chosen = set(np.random.default_rng(2024).choice(len(photos), round(SHARE * len(photos)), replace=False))
    content = root / "content"
    for seed in seeds:
        front = f"title: Seed {seed}\nmatches: {TOP}\nmodel:\n  seed: {seed}\n{more}"
        folder = write_report(content, f"seed{seed}", front)
        for i, photo in enumerate(photos):
            image = cv2.imread(str(photo), cv2.IMREAD_GRAYSCALE)
            out = folder / "photos" / photo.parent.name / photo.name
            out.parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(out), plant(image) if i in chosen else image)
    planted = {f"{photos[i].parent.name}/{photos[i].name}" for i in chosen}
    return content, planted


def _build_each(content: Path, root: Path, seeds: list[int]) -> dict[int, dict]:
    docs = {}
    for seed in seeds:  # one report at a time: no trends page, which would train on every report's faces
        build(BuildOptions(content=content, out=root / "site", cache=root / "cache", report=f"seed{seed}"))
        docs[seed] = json.loads((root / "site" / f"seed{seed}" / "report.json").read_text())
    return docs


def _purity(doc: dict, look: dict, planted: set[str]) -> float:
    photo = {f["id"]: f["photo"] for f in doc["faces"]}
    top = look["faces"][:TOP]
    return sum(photo[i] in planted for i in top) / len(top)


def _purest(doc: dict, planted: set[str]) -> tuple[int, float]:
    """The featured look with the most planted faces among its TOP most typical: its unit, and that share."""
    featured = [v for v in doc["looks"] if v["featured"]]
    return max(((v["unit"], _purity(doc, v, planted)) for v in featured), key=lambda t: (t[1], -t[0]),
               default=(-1, 0.0))


def _names_lower_sides_darker(caption: str) -> bool:
    return any(f"{side} {verb} darker" in caption for side, verb in
               (("lower sides", "are"), ("lower left", "is"), ("lower right", "is")))


def _look(doc: dict, unit: int, pixels: dict[str, np.ndarray]) -> np.ndarray:
    """The unit's featured look: its most typical faces' mean minus the mean of all faces (from the photos)."""
    photo = {f["id"]: f["photo"] for f in doc["faces"]}
    mean = np.mean(list(pixels.values()), axis=0)
    look = next(v for v in doc["looks"] if v["featured"] and v["unit"] == unit)
    return np.mean([pixels[photo[i]] for i in look["faces"][:TOP]], axis=0) - mean


@pytest.fixture(scope="module")
def hair(tmp_path_factory, orl_faces: Path):
    root = tmp_path_factory.mktemp("hair")
    content, planted = _planted_content(root, orl_faces, _dark_hair, [0, 1, 2])
    return _build_each(content, root, [0, 1, 2]), planted, content


@pytest.fixture(scope="module")
def synthetic_hair(tmp_path_factory):
    """Long dark hair planted in 15% of 400 synthetic faces (40 people x 10); 32-pixel crops, no baselines."""
    root = tmp_path_factory.mktemp("synthetic_hair")
    faces = write_people(root / "faces", SYNTHETIC_PEOPLE)
    content, planted = _planted_content(root, faces, _dark_hair, [0], "faces:\n  size: 32\nbaselines: false\n")
    return _build_each(content, root, [0])[0], planted


def test_planted_long_dark_hair_is_featured_and_described(hair):
    docs, planted, _ = hair
    doc = docs[0]
    unit, purity = _purest(doc, planted)
    assert purity >= 0.8, f"best featured unit {unit}: {purity:.2f} of its top {TOP} planted (chance: {SHARE})"
    assert _names_lower_sides_darker(doc["captions"][str(unit)]["text"])


def test_the_planted_trend_is_found_by_every_seed(hair):
    """Stability, measured as: with seeds 0, 1 and 2 a featured unit's top 30 are at least 80% planted, and
    the looks of those units (their top 30's mean face minus the mean face) correlate at least 0.8 pairwise."""
    docs, planted, content = hair
    found = {seed: _purest(doc, planted) for seed, doc in docs.items()}
    assert all(p >= 0.8 for _, p in found.values()), found
    pixels = {p.relative_to(content / "seed0" / "photos").as_posix():
              cv2.resize(cv2.imread(str(p), cv2.IMREAD_GRAYSCALE), (23, 28), interpolation=cv2.INTER_AREA)
              .astype(float) for p in sorted((content / "seed0" / "photos").glob("*/*.pgm"))}
    looks = [_look(docs[s], found[s][0], pixels).ravel() for s in (0, 1, 2)]
    corr = np.corrcoef(looks)
    print(f"planted hair: purest featured unit per seed {found}; looks correlate {corr[np.triu_indices(3, 1)]}")
    assert corr[np.triu_indices(3, 1)].min() >= 0.8, corr


def test_synthetic_planted_long_dark_hair_is_featured_and_described(synthetic_hair):
    """Runs everywhere. Measured at this commit: the purest featured unit's top 30 were 30 of 30 planted
    (chance 0.15), for seeds 0, 1 and 2 alike; with the ranking order reversed (rank.py) the best featured
    unit's were 0.20. Asserted: at least 0.8, and the caption names the darker lower sides."""
    doc, planted = synthetic_hair
    unit, purity = _purest(doc, planted)
    print(f"synthetic planted hair: unit {unit}, {purity:.2f} of its top {TOP} planted")
    assert purity >= 0.8, f"best featured unit {unit}: {purity:.2f} of its top {TOP} planted (chance: {SHARE})"
    assert _names_lower_sides_darker(doc["captions"][str(unit)]["text"])
