"""What changed between years (issue: the trends page searches every look for change and tests it).

Two years made from ../shared/data/lfw, 300 different people each (one photo each, the face region cropped);
30% of one year's faces carry a planted look, the other year none. The combined faces go through the trends
page's own stages (trends.combine, one model, looks, trends.changes). They skip without ../shared; the
`trends: false` test runs everywhere."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from facetrend import config, faces, looks, train, trends
from facetrend.build import BuildOptions, build

from .conftest import SHARED, write_report
from .test_looks import TOP, plant

LFW = SHARED / "lfw"
PER_YEAR = 300
PLANTED = 0.3


@pytest.fixture(scope="module")
def lfw_people() -> list[tuple[str, np.ndarray]]:
    if not LFW.is_dir():
        pytest.skip("needs ../shared/data/lfw")
    out = []
    for person in sorted(p for p in LFW.iterdir() if p.is_dir())[: 2 * PER_YEAR]:
        photo = sorted(person.glob("*.jpg"))[0]
        out.append((f"{person.name}/{photo.stem}.png", cv2.imread(str(photo), cv2.IMREAD_GRAYSCALE)[50:190, 55:195]))
    return out


def _two_years(root: Path, people, kind: str | None, planted_year: int, seed: int):
    """The combined faces of two years, their years, and which combined faces were planted."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(people))
    content = root / "content"
    parts, planted = [], []
    for y, year in enumerate(("2024", "2025")):
        folder = write_report(content, year, f'title: "{year}"\ndate: "{year}-06-01"\nfaces:\n  crops: "yes"')
        chosen = set(rng.choice(PER_YEAR, round(PLANTED * PER_YEAR), replace=False).tolist()) \
            if kind and y == planted_year else set()
        for j, i in enumerate(order[y * PER_YEAR:(y + 1) * PER_YEAR]):
            name, image = people[i]
            out = folder / "photos" / name
            out.parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(out), plant(kind, image) if j in chosen else image)
            if j in chosen:
                planted.append(f"{year}/{name}")
    site = config.load_site(content)
    every = config.find_reports(content, site)
    trends_page = config.trends_report(content, site, every)
    for report in config.trend_reports(every):
        parts.append((report, faces.report_faces(report, trends_page.settings.faces, root / "cache", 1)))
    found, years = trends.combine(parts)
    model = trends_page.settings.model
    trained = train.train_or_load(found, model, root / "cache")
    acts = train.first_layer(trained.model, found.pixels)
    result = looks.find_looks(found.pixels, acts, lambda px: train.first_layer(trained.model, px), TOP, model.seed)
    is_planted = np.array([p in set(planted) for p in found.photos])
    return result, trends.changes(result, years), is_planted


def _purity(result: looks.Looks, change: trends.Change, is_planted: np.ndarray) -> float:
    return float(is_planted[result.looks[change.look].faces[:TOP]].mean())


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("kind", ["glasses", "hair"])
def test_a_look_planted_in_the_second_year_is_the_biggest_rise(tmp_path, lfw_people, kind, seed):
    result, found, is_planted = _two_years(tmp_path, lfw_people, kind, 1, seed)
    first = found[0]
    print(f"{kind} seed {seed}: {first.prevalence} change {first.change:+.2f} p {first.p:.2g}, "
          f"purity {_purity(result, first, is_planted):.2f}")
    assert _purity(result, first, is_planted) >= 0.8
    assert first.change >= 0.15 and first.significant


@pytest.mark.parametrize("kind", ["glasses", "hair"])
def test_a_look_planted_in_the_first_year_is_the_biggest_fall(tmp_path, lfw_people, kind):
    result, found, is_planted = _two_years(tmp_path, lfw_people, kind, 0, 0)
    fall = min(found, key=lambda c: c.change)
    assert _purity(result, fall, is_planted) >= 0.8
    assert fall.change <= -0.15 and fall.significant
    assert found[0].change < 0.15  # nothing comparable rose


@pytest.mark.parametrize("seed", [0, 1])
def test_two_years_with_nothing_planted_mark_no_change(tmp_path, lfw_people, seed):
    """The correction keeps the chance of any look marked changed at 5%; two different samples of people."""
    _, found, _ = _two_years(tmp_path, lfw_people, None, 0, seed)
    assert not any(c.significant for c in found), [(c.prevalence, c.p) for c in found if c.significant]


def test_holm_correction_and_the_two_proportion_test():
    assert trends._two_proportions(30, 100, 30, 100) == pytest.approx(1.0)
    assert trends._two_proportions(10, 300, 90, 300) < 1e-10
    assert trends._holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])


def test_a_report_with_trends_false_is_not_a_year(tmp_path, att_faces):
    """The demo (trends: false) beside two years: the trends page counts two reports, not three."""
    from .conftest import SMALL_MODEL, copy_people

    content = tmp_path / "content"
    write_report(content, "demo", 'title: Demo\nphotos: "builtin:lfw-subset"\ntrends: false\n' + SMALL_MODEL)
    for k, year in enumerate(("2024", "2025")):
        folder = write_report(content, year, f'title: "{year}"\ndate: "{year}-03-01"\n' + SMALL_MODEL)
        copy_people(att_faces, folder / "photos", people=3, per_person=4)
        for person in (folder / "photos").iterdir():  # different people each year
            person.rename(folder / "photos" / f"{year}-{k}-{person.name}")
    build(BuildOptions(content=content, out=tmp_path / "site", cache=tmp_path / "cache", smoke=True))
    doc = json.loads((tmp_path / "site" / "trends" / "report.json").read_text())
    assert [y["slug"] for y in doc["years"]] == ["2024", "2025"]
    assert doc["title"] == "Trends across 2 reports"
    assert "demo/" not in " ".join(f["photo"] or "" for f in doc["faces"])
