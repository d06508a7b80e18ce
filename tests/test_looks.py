"""Looks (stage 5): what many faces share, tested against chance, said plainly.

The unit tests run everywhere on made-up pixels. The planted tests take 600 real faces from ../shared/data/lfw
(one photo each of 600 people, the face region cropped), plant a look on 15% of them, train the report's model
through the build's own stages and check that one of the first 3 featured looks holds at least 80% planted faces
among its 30 most typical, and that its caption names the right region. They skip without ../shared."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from facetrend import config, faces, looks, train
from facetrend.build import BuildOptions, build

from .conftest import SHARED, write_report

LFW = SHARED / "lfw"
PEOPLE = 600
SHARE = 0.15
TOP = 30


# ---------------------------------------------------------------- everywhere: made-up pixels


def _noise_faces(n: int, size: int, seed: int) -> np.ndarray:
    """Smooth random 'faces': blurred noise, so neighbouring pixels go together as in photos."""
    rng = np.random.default_rng(seed)
    raw = rng.normal(128, 40, (n, size, size)).astype(np.float32)
    smooth = np.stack([cv2.GaussianBlur(f, (0, 0), 2.0) for f in raw])
    return np.clip((smooth - smooth.mean()) * 3 + 128, 0, 255).astype(np.uint8)


def _projection(directions: np.ndarray):
    def encode(px: np.ndarray) -> np.ndarray:
        return np.maximum(px.reshape(len(px), -1).astype(np.float32) / 255 @ directions.T, 0)
    return encode


def _planted_set(seed: int = 0, n: int = 400, size: int = 32, rows: tuple[float, float] = (0.32, 0.48)):
    """Faces with 15% given dark glasses (a dark band across the eyes: ``rows`` of the height), and units:
    random directions plus a few that lean towards the band, as a trained model's would."""
    pixels = _noise_faces(n, size, seed)
    rng = np.random.default_rng(seed + 1)
    planted = np.zeros(n, bool)
    planted[rng.choice(n, round(SHARE * n), replace=False)] = True
    rows, cols = slice(int(rows[0] * size), int(rows[1] * size)), slice(int(0.18 * size), int(0.82 * size))
    pixels[planted, rows, cols] = (pixels[planted, rows, cols] * 0.15).astype(np.uint8)
    band = np.zeros((size, size), np.float32)
    band[rows, cols] = -1
    directions = rng.normal(0, 1, (60, size * size)).astype(np.float32)
    directions[:4] = band.ravel() * 4 + rng.normal(0, 1, (4, size * size))
    return pixels, planted, directions


def test_a_planted_look_is_featured_with_its_region_and_share():
    pixels, planted, directions = _planted_set()
    encode = _projection(directions)
    found = looks.find_looks(pixels, encode(pixels), encode, TOP, seed=0)
    first = found.featured(3)
    assert first, [(v.caption, v.beyond_chance, v.confidence) for v in found.looks[:5]]
    best = max(first, key=lambda v: planted[v.faces[:TOP]].mean())
    assert planted[best.faces[:TOP]].mean() >= 0.8
    assert ("eyes", "darker") in best.said and "eyes are darker" in best.caption
    assert 0.08 <= best.prevalence <= 0.35  # about the planted 15%, not most faces
    assert best.beyond_chance and best.confidence >= looks.CONFIDENT


@pytest.mark.parametrize("seed", [3, 4, 5])
def test_faces_with_no_looks_give_no_featured_look(seed):
    """Smooth random faces with nothing planted (one Gaussian: correlated pixels, no groups): nothing is
    featured, and at most a stray look or two pass the chance check alone: the best look beats the best of
    NULL_DRAWS draws 1 time in NULL_DRAWS + 1, and the two best together in 2 of 20 such sets of faces (seeds 3-22)."""
    pixels = _noise_faces(400, 32, seed)
    _, _, directions = _planted_set(seed=seed)
    encode = _projection(directions)
    found = looks.find_looks(pixels, encode(pixels), encode, TOP, seed=seed)
    assert found.featured(3) == []
    assert sum(v.beyond_chance for v in found.looks) <= 2


def test_pixels_shuffled_across_faces_give_no_featured_look():
    pixels, _, directions = _planted_set(seed=7)
    shuffled = looks._shuffled(pixels, np.random.default_rng(17))
    encode = _projection(directions)
    assert looks.find_looks(shuffled, encode(shuffled), encode, TOP, seed=7).featured(3) == []


def test_the_chance_level_is_what_faces_with_no_looks_reach(monkeypatch):
    """The null keeps the faces' correlations: its chance level is far above what shuffled pixels reach, and a
    look must beat it to be featured."""
    pixels, planted, directions = _planted_set()
    encode = _projection(directions)
    found = looks.find_looks(pixels, encode(pixels), encode, TOP, seed=0)
    shuffled = looks._shuffled(pixels, np.random.default_rng(1))
    z = looks.standardise(shuffled)
    shuffled_best = max(g.consistency for g in looks._candidates(z, encode(shuffled), TOP))
    assert found.chance > 2 * shuffled_best
    assert all(v.consistency > found.chance for v in found.featured(3))
    monkeypatch.setattr(looks, "_null_faces", lambda p, z, rng: lambda count=None: p[:count])  # their own null
    assert looks.find_looks(pixels, encode(pixels), encode, TOP, seed=0).featured(3) == []


def test_a_bright_backdrop_beside_the_face_is_background_not_a_look():
    pixels = _noise_faces(400, 32, 5)
    rng = np.random.default_rng(6)
    lit = rng.choice(400, 80, replace=False)
    pixels[lit, :, :6] = 250
    pixels[lit, :, -6:] = 250
    directions = rng.normal(0, 1, (40, 32 * 32)).astype(np.float32)
    side = np.zeros((32, 32), np.float32)
    side[:, :6] = side[:, -6:] = 1
    directions[:3] = side.ravel() * 4 + rng.normal(0, 1, (3, 32 * 32))
    encode = _projection(directions)
    found = looks.find_looks(pixels, encode(pixels), encode, TOP, seed=0)
    backdrop = max(found.looks, key=lambda v: np.isin(v.faces[:TOP], lit).mean())
    assert np.isin(backdrop.faces[:TOP], lit).mean() >= 0.8
    assert backdrop.background and not backdrop.featured
    assert "background" in backdrop.caption


@pytest.mark.parametrize("effects, words", [
    ({"eyes": {"departure": -1.2, "share": 0.7, "balance": -0.9}}, "The eyes are darker (glasses or shadowed eyes?)."),
    ({"mouth": {"departure": 0.1, "share": 0.6, "balance": 0.1}},
     "The mouth is different, with brighter and darker parts (a smile or an open mouth?)."),
    ({"lower left": {"departure": -1, "share": 0.3, "balance": -1}, "lower right": {"departure": -1, "share": 0.3,
      "balance": -1}, "lower sides": {"departure": -1, "share": 0.6, "balance": -1}},
     "The lower sides are darker (dark hair falling past the face?)."),
    ({"forehead": {"departure": 0.9, "share": 0.5, "balance": 0.8}, "nose": {"departure": 0.2, "share": 0.1,
      "balance": 0.9}}, "The forehead is brighter (hair pulled back, or a high forehead?)."),
])
def test_captions_name_at_most_two_regions_with_words_that_match_the_signs(effects, words):
    said = looks.strongest(effects)
    assert len(said) <= looks.SAID
    assert looks.caption(said, background=False) == words


def test_captions_never_chain_question_marks_and_always_end_a_sentence():
    for said in ([("eyes", "darker"), ("forehead", "brighter")], [("left side", "darker")], []):
        text = looks.caption(said, background=False)
        assert "?;" not in text and "?." not in text.replace("?).", "") and text.endswith(".")
        assert text[0].isupper()


def test_on_aligned_crops_a_dark_band_at_the_template_eye_line_is_called_the_eyes():
    """Aligned crops put the eyes at the template's line (0.30 of the height with margin 0.2), higher than a
    crop used whole does (0.40): dark glasses there are the eyes, where the whole-crop layout says "the forehead
    is darker (hair over the forehead?)" (as a two-year LFW site said before find_looks took the layout)."""
    size = 32
    pixels, planted, directions = _planted_set(size=size, rows=(0.18, 0.30))
    encode = _projection(directions)

    def planted_look(regions):
        found = looks.find_looks(pixels, encode(pixels), encode, TOP, seed=0, regions=regions)
        return max(found.featured(3), key=lambda v: planted[v.faces[:TOP]].mean())

    aligned = planted_look(looks.aligned_regions(0.2))
    assert planted[aligned.faces[:TOP]].mean() >= 0.8
    assert aligned.said[0] == ("eyes", "darker") and "glasses" in aligned.caption, aligned.caption
    whole = planted_look(None)  # the same faces, named as crops used whole
    assert whole.said[0] == ("forehead", "darker"), whole.said
    regions = looks.aligned_regions(0.2)
    assert regions["eyes"][0] < 0.30 < regions["eyes"][1] and regions["mouth"][0] < 0.72 < regions["mouth"][1]
    assert looks.aligned_regions(0.0)["eyes"][0] < regions["eyes"][0]  # no margin: the eyes sit higher still


@pytest.mark.parametrize("share, words", [(0.2, "about 1 in 5 faces"), (0.34, "about 1 in 3 faces"),
                                          (0.07, "about 1 in 14 faces"), (0.42, "about 42% of faces"),
                                          (0.6, "about 60% of faces")])
def test_share_words(share, words):
    assert looks.share_words(share) == words


# ---------------------------------------------------------------- real faces, planted (../shared/data/lfw)


def _soft_box(h: int, w: int, r0: float, r1: float, c0: float, c1: float, edge: float = 0.03) -> np.ndarray:
    y, x = (np.arange(h) + 0.5) / h, (np.arange(w) + 0.5) / w
    fy = np.clip(np.minimum(y - r0, r1 - y) / edge + 0.5, 0, 1)
    fx = np.clip(np.minimum(x - c0, c1 - x) / edge + 0.5, 0, 1)
    return fy[:, None] * fx[None, :]


def plant(kind: str, image: np.ndarray) -> np.ndarray:
    """The four looks of the issue, on a face-region crop: long dark hair (the lower outer sixth of each side
    darkened to 15%), dark glasses (a band across the eyes at 15%), a bright forehead (hair pulled back) and a
    changed mouth (a bright smile with a dark edge)."""
    h, w = image.shape
    f = image.astype(float)
    if kind == "hair":
        f *= 1 - 0.85 * np.maximum(_soft_box(h, w, 0.5, 1.2, -0.2, 1 / 6), _soft_box(h, w, 0.5, 1.2, 5 / 6, 1.2))
    elif kind == "glasses":
        f *= 1 - 0.85 * _soft_box(h, w, 0.36, 0.50, 0.16, 0.84)
    elif kind == "forehead":
        f += (235 - f) * 0.8 * _soft_box(h, w, 0.04, 0.27, 0.25, 0.75)
    elif kind == "smile":
        f += (230 - f) * 0.85 * _soft_box(h, w, 0.71, 0.80, 0.36, 0.64, 0.02)
        ring = _soft_box(h, w, 0.69, 0.82, 0.33, 0.67, 0.02) - _soft_box(h, w, 0.715, 0.795, 0.365, 0.635, 0.02)
        f *= 1 - 0.6 * np.clip(ring, 0, 1)
    return np.clip(np.round(f), 0, 255).astype(np.uint8)


REGION_OF = {"hair": ("lower", "side"), "glasses": ("eyes",), "forehead": ("forehead", "top of the head"),
             "smile": ("mouth",)}


@pytest.fixture(scope="module")
def lfw_crops() -> list[tuple[str, np.ndarray]]:
    if not LFW.is_dir():
        pytest.skip("needs ../shared/data/lfw")
    people = sorted(p for p in LFW.iterdir() if p.is_dir())[:PEOPLE]
    out = []
    for person in people:
        photo = sorted(person.glob("*.jpg"))[0]
        out.append((f"{person.name}/{photo.stem}.png", cv2.imread(str(photo), cv2.IMREAD_GRAYSCALE)[50:190, 55:195]))
    return out


def _planted_report(root: Path, crops, kind: str, seed: int) -> tuple[config.Report, set[str]]:
    chosen = set(np.random.default_rng(seed).choice(len(crops), round(SHARE * len(crops)), replace=False).tolist())
    folder = write_report(root / "content", "r", f'title: {kind} {seed}\nmatches: {TOP}\nfaces:\n  crops: "yes"\n'
                                                f"model:\n  seed: {seed}")
    for i, (name, image) in enumerate(crops):
        out = folder / "photos" / name
        out.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(out), plant(kind, image) if i in chosen else image)
    site = config.load_site(root / "content")
    return config.find_reports(root / "content", site)[0], {crops[i][0] for i in chosen}


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("kind", ["hair", "glasses", "forehead", "smile"])
def test_a_look_planted_on_real_faces_is_among_the_first_three_featured(tmp_path, lfw_crops, kind, seed):
    report, planted = _planted_report(tmp_path, lfw_crops, kind, seed)
    found = faces.report_faces(report, report.settings.faces, tmp_path / "cache", 1)
    trained = train.train_or_load(found, report.settings.model, tmp_path / "cache")
    acts = train.first_layer(trained.model, found.pixels)
    result = looks.find_looks(found.pixels, acts, lambda px: train.first_layer(trained.model, px), TOP, seed)
    is_planted = np.array([p in planted for p in found.photos])
    first = result.featured(3)
    purity = [float(is_planted[v.faces[:TOP]].mean()) for v in first]
    assert max(purity, default=0) >= 0.8, (purity, [v.caption for v in first])
    best = first[int(np.argmax(purity))]
    assert any(word in region for region, _ in best.said for word in REGION_OF[kind]), best.caption


def test_a_build_on_planted_real_faces_opens_with_the_look(tmp_path, lfw_crops):
    """End to end: report.json's looks, and the page's answer at the top, for planted glasses."""
    _, planted = _planted_report(tmp_path, lfw_crops, "glasses", 0)
    build(BuildOptions(content=tmp_path / "content", out=tmp_path / "site", cache=tmp_path / "cache"))
    doc = json.loads((tmp_path / "site" / "r" / "report.json").read_text())
    photo = {f["id"]: f["photo"] for f in doc["faces"]}
    featured = [v for v in doc["looks"] if v["featured"]]
    assert featured and doc["featured"][: len(featured)] == [v["unit"] for v in featured]
    glasses = max(featured, key=lambda v: sum(photo[i] in planted for i in v["faces"][:TOP]))
    assert sum(photo[i] in planted for i in glasses["faces"][:TOP]) >= 0.8 * TOP
    assert "eyes are darker" in glasses["caption"] and glasses["confidence"] >= looks.CONFIDENT
    assert set(glasses) >= {"units", "faces", "prevalence", "confidence", "caption", "effects"}
    html = (tmp_path / "site" / "r" / "index.html").read_text()
    answer = html.index('id="answer"')
    assert answer < html.index('id="data"') and glasses["caption"] in html[answer:html.index('id="data"')]


def test_the_report_names_regions_by_the_template_when_most_faces_were_aligned():
    from facetrend import analyse
    from facetrend.faces import Faces

    def found(tilts):
        n = len(tilts)
        return Faces([str(i) for i in range(n)], ["x"] * n, [None] * n, np.zeros((n, 4, 4), np.uint8),
                     [True] * n, n, [], False, tilt=tilts)

    assert analyse._layout(found([1.0, -2.0, None]), 0.2) == looks.aligned_regions(0.2)
    assert analyse._layout(found([None, None, 3.0]), 0.2) is None  # mostly crops used whole: looks.REGIONS
    assert analyse._layout(found([]), 0.2) is None


def test_two_looks_whose_captions_say_the_same_are_featured_once():
    """The demo featured "The lower right is darker" twice (two groups of faces, the same words): a reader
    takes that for a mistake. The second stays among the other looks."""
    def look(said, consistency):
        return looks.Look([0], [0], 0.3, consistency, True, 1.0, False, {}, said, looks.caption(said, False),
                          np.zeros(4), np.zeros(4, bool))

    right, top = [("lower right", "darker")], [("top of the head", "darker")]
    found = looks.Looks([look(right, 5.0), look(right, 4.0), look(top, 3.0)], 1.0)
    assert [v.said for v in found.featured(3)] == [right, top]
    assert found.featured(1)[0].consistency == 5.0
