"""The trends page year by year (issue 17): composites in colour when the photos are colour, the measured
attributes per year as a chart with intervals. Runs everywhere: synthetic faces, tinted per year."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from facetrend import analyse, trends
from facetrend.build import BuildOptions, build
from facetrend.decode import decode_colour
from facetrend.faces import Faces
from PIL import Image

from . import synthetic
from .conftest import write_report

FRONT = "faces:\n  size: 16\n  crops: yes\nmodel:\n  hidden: [12]\n  epochs: 2\n  batch_size: 16\n"
TINT = {"2024": (0.55, 0.75, 1.3), "2025": (1.3, 0.8, 0.55)}  # 2024's photos bluish, 2025's reddish


def _content(root: Path, colour: bool, grey_years: tuple[str, ...] = ()) -> Path:
    content = root / "content"
    rng = np.random.default_rng(0)
    for year in ("2024", "2025"):
        folder = write_report(content, year, f'title: "{year}"\ndate: "{year}-06-01"\n' + FRONT)
        for k in range(12):
            who = synthetic.person(rng)
            grey = synthetic.photo(who, rng).astype(float)
            image = np.clip(grey[..., None] * np.array(TINT[year]), 0, 255).astype(np.uint8) \
                if colour and year not in grey_years else grey.astype(np.uint8)
            (folder / "photos" / f"p{k}").mkdir(parents=True)
            Image.fromarray(image).save(folder / "photos" / f"p{k}" / "1.png")
    (content / "site.toml").write_text("[trends.faces]\nsize = 16\ncrops = \"yes\"\n[trends.model]\n"
                                       "hidden = [12]\nepochs = 2\n", encoding="utf-8")
    return content


def _build(root: Path, content: Path) -> Path:
    build(BuildOptions(content=content, out=root / "site", cache=root / "cache", jobs=1))
    return root / "site"


def _picture(site: Path, name: str) -> Image.Image:
    return Image.open(io.BytesIO((site / "trends" / "trend" / name).read_bytes()))


def test_colour_photos_give_colour_year_composites_whose_colours_are_the_photos(tmp_path):
    site = _build(tmp_path, _content(tmp_path, colour=True))
    first, last = (np.asarray(_picture(site, f"year-{k}.png"), float) for k in (0, 1))
    assert first.ndim == last.ndim == 3  # RGB, not grey
    assert first[..., 2].mean() > first[..., 0].mean() + 20  # 2024's faces were bluish
    assert last[..., 0].mean() > last[..., 2].mean() + 20  # 2025's reddish
    difference = np.asarray(_picture(site, "difference.png"), float)
    assert difference[..., 0].mean() > 140 > 116 > difference[..., 2].mean()  # more red, less blue than 2024
    page = (site / "trends" / "index.html").read_text(encoding="utf-8")
    assert "The composites are in colour" in page and "shown in grey" not in page
    assert Image.open(site / "2024" / "img" / "mean.png").mode == "L"  # a year's own page: the grey crops it learns
    assert len(json.loads((site / "2024" / "report.json").read_text(encoding="utf-8"))["faces"]) == 12


def test_grey_photos_keep_grey_composites_and_the_cache_keeps_the_colours(tmp_path):
    site = _build(tmp_path / "grey", _content(tmp_path / "grey", colour=False))
    assert _picture(site, "year-0.png").mode == "L"
    assert "shown in grey, as the network sees them" in (site / "trends" / "index.html").read_text(encoding="utf-8")
    content = _content(tmp_path / "colour", colour=True)
    first = _picture(_build(tmp_path / "colour", content), "year-1.png").tobytes()
    (tmp_path / "colour" / "site" / "trends" / "index.html").unlink()  # the page recomputed, crops from the cache
    again = _picture(_build(tmp_path / "colour", content), "year-1.png")
    assert again.mode == "RGB" and again.tobytes() == first


def test_a_grey_year_beside_a_colour_one_is_grey_in_the_colour_composites(tmp_path):
    site = _build(tmp_path, _content(tmp_path, colour=True, grey_years=("2024",)))
    grey, red = (np.asarray(_picture(site, f"year-{k}.png"), float) for k in (0, 1))
    assert grey.ndim == 3 and np.abs(grey[..., 0] - grey[..., 2]).max() == 0  # its grey crops, in each channel
    assert red[..., 0].mean() > red[..., 2].mean() + 20


def test_a_colour_photo_decodes_to_grey_and_rgb_a_grey_one_to_grey_only():
    buffer = io.BytesIO()
    Image.fromarray(np.dstack([np.full((4, 4), v, np.uint8) for v in (200, 100, 50)])).save(buffer, "PNG")
    grey, rgb = decode_colour(buffer.getvalue(), 10_000)
    assert grey.shape == (4, 4) and rgb.shape == (4, 4, 3) and rgb[0, 0].tolist() == [200, 100, 50]
    buffer = io.BytesIO()
    Image.fromarray(np.full((4, 4), 90, np.uint8)).save(buffer, "PNG")
    assert decode_colour(buffer.getvalue(), 10_000)[1] is None


def _faces(tilt, other, size, detected) -> Faces:
    n = len(tilt)
    return Faces([str(i) for i in range(n)], [f"{i}.jpg" for i in range(n)], [None] * n,
                 np.zeros((n, 4, 4), np.uint8), detected, n, [], False, tilt=tilt, face_size=size,
                 box=[None] * n, other_faces=other)


def test_the_attributes_per_year_are_shares_with_intervals_that_narrow_with_more_faces():
    years = trends.Years(["a", "b"], ["2024", "2025"], np.array([0] * 100 + [1] * 400))
    tilt = [20.0] * 30 + [0.0] * 70 + [-15.0] * 40 + [1.0] * 360  # 30% tilted in 2024, 10% in 2025
    other = [1] * 10 + [0] * 90 + [0] * 400
    size = [0.4] * 100 + [0.5, 0.3] * 200
    series = {s.name: s for s in analyse._attributes_by_year(_faces(tilt, other, size, [True] * 500), years)}
    tilted = series["tilted"].years
    assert [y.share for y in tilted] == [0.3, 0.1] and [y.measured for y in tilted] == [100, 400]
    assert tilted[0].low < 0.3 < tilted[0].high and tilted[1].high - tilted[1].low < tilted[0].high - tilted[0].low
    assert [y.share for y in series["other_faces"].years] == [0.1, 0.0]
    sizes = series["face_size"].years
    assert sizes[0].share == pytest.approx(0.4) and sizes[0].low == sizes[0].high == pytest.approx(0.4)
    assert sizes[1].low < 0.4 < sizes[1].high
    crops = analyse._attributes_by_year(_faces([None] * 500, [0] * 500, [None] * 500, [False] * 500), years)
    assert crops == []  # crops used whole: nothing measured, no chart


def test_the_change_chart_names_each_line_as_its_heading_and_never_merges_two():
    from types import SimpleNamespace

    from facetrend.render import _change_lines

    long = "The left side is darker (hair, a shadow or a dark background on that side?)."
    shown = [SimpleNamespace(index=1, change=0.2, caption=long,
                             prevalence=[0.1, 0.3]),
             SimpleNamespace(index=4, change=-0.1, caption="The mouth is brighter.", prevalence=[0.3, 0.2]),
             SimpleNamespace(index=7, change=-0.05, caption="The mouth is brighter.", prevalence=[0.2, 0.15])]
    lines = _change_lines(shown)
    assert list(lines) == ["rose: The left side is darker (hair, a shadow or a...", "fell: The mouth is brighter. (4)",
                           "fell: The mouth is brighter. (7)"]
