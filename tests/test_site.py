"""A yearly publication: several reports, trends, feed, sitemap, incremental rebuilds."""

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import cv2
import pytest
from facetrend.build import BuildOptions, build

from .conftest import tree_bytes, two_years

ATOM = "{http://www.w3.org/2005/Atom}"
SITEMAP = "{http://www.sitemaps.org/schemas/sitemap/0.9}"


@pytest.fixture
def years(tmp_path: Path, att_faces: Path) -> Path:
    return two_years(tmp_path, att_faces)


def _build(content: Path, tmp: Path, **kw):
    return build(BuildOptions(content=content, out=tmp / "site", cache=tmp / "cache", **kw))


def test_index_lists_years_newest_first_and_pages_link_each_other(years: Path, tmp_path: Path):
    _build(years, tmp_path)
    site = tmp_path / "site"
    index = (site / "index.html").read_text()
    assert index.index("Contest 2026") < index.index("Contest 2025")
    assert 'href="trends/index.html"' in index and '<html lang="ja">' in index
    page_2025, page_2026 = (site / "2025" / "index.html").read_text(), (site / "2026" / "index.html").read_text()
    assert 'rel="next" href="../2026/index.html"' in page_2025 and 'rel="prev"' not in page_2025
    assert 'rel="prev" href="../2025/index.html"' in page_2026
    assert 'href="../trends/index.html"' in page_2025


def test_trends_page_tests_every_look_per_year_and_leads_with_the_change(years: Path, tmp_path: Path):
    _build(years, tmp_path)
    doc = json.loads((tmp_path / "site" / "trends" / "report.json").read_text())
    assert [y["slug"] for y in doc["years"]] == ["2025", "2026"]
    assert [y["faces"] for y in doc["years"]] == [20, 25]
    assert doc["photos"]["faces"] == 45 and len(doc["units"]) == 12
    assert all(len(v) == 2 and all(0 <= p <= 1 for p in v) for v in doc["trend"].values())
    changes = doc["changes"]
    assert len(changes) == len({c["unit"] for c in changes}) > 0  # every look, once
    assert all(len(c["prevalence"]) == 2 and c["change"] == pytest.approx(c["prevalence"][1] - c["prevalence"][0],
                                                                          abs=1e-3) for c in changes)
    rises = [c["change"] for c in changes if c["change"] > 0]
    falls = [c["change"] for c in changes if c["change"] < 0]
    assert rises == sorted(rises, reverse=True) and falls == sorted(falls)
    assert [c["change"] > 0 for c in changes[: len(rises)]] == [True] * len(rises)
    assert all(0 <= c["p"] <= 1 and c["significant"] == (c["p"] < 0.05) for c in changes)
    html = (tmp_path / "site" / "trends" / "index.html").read_text()
    lead = html.index('id="trend"')
    assert lead < html.index('id="answer"') < html.index('id="data"')  # what changed comes first
    assert "What changed from" in html and ("changed beyond chance" in html)
    assert (tmp_path / "site" / "trends" / "trend" / "year-0.png").is_file()
    assert (tmp_path / "site" / "trends" / "trend" / "difference.png").is_file()


def test_feed_and_sitemap_are_valid_xml_under_the_base_url(years: Path, tmp_path: Path):
    _build(years, tmp_path, base_url="https://user.github.io/repo/")
    feed = ET.parse(tmp_path / "site" / "feed.xml").getroot()
    entries = feed.findall(f"{ATOM}entry")
    assert [e.find(f"{ATOM}title").text for e in entries] == ["Contest 2026", "Contest 2025"]
    assert entries[0].find(f"{ATOM}updated").text == "2026-06-01T00:00:00Z"
    assert entries[0].find(f"{ATOM}link").get("href") == "https://user.github.io/repo/2026/index.html"
    locs = [u.find(f"{SITEMAP}loc").text for u in ET.parse(tmp_path / "site" / "sitemap.xml").getroot()]
    assert locs == ["https://user.github.io/repo/" + p for p in
                    ("2025/index.html", "2026/index.html", "index.html", "method.html", "trends/index.html")]


def test_every_href_and_src_is_relative_so_any_prefix_and_file_urls_work(years: Path, tmp_path: Path):
    _build(years, tmp_path, base_url="https://user.github.io/repo/")
    site = tmp_path / "site"
    for page in site.rglob("*.html"):
        for ref in re.findall(r'(?:src|href)="([^"]+)"', page.read_text()):
            if ref.startswith("data:"):  # inline, e.g. the empty favicon
                continue
            assert not ref.startswith(("/", "http:", "https:", "file:")), f"{page}: {ref}"
            target = ref.split("#")[0]
            assert not target or (page.parent / target).resolve().is_file(), f"{page}: {ref}"


def test_a_changed_photo_rebuilds_its_year_and_the_trends_only(years: Path, tmp_path: Path):
    _build(years, tmp_path)
    before = tree_bytes(tmp_path / "site" / "2026")
    photo = next((years / "2025" / "photos").rglob("*.pgm"))
    cv2.imwrite(str(photo), 255 - cv2.imread(str(photo), cv2.IMREAD_GRAYSCALE))
    result = _build(years, tmp_path)
    assert sorted(d["slug"] for d in result.reports) == ["2025", "trends"]
    assert tree_bytes(tmp_path / "site" / "2026") == before
    again = _build(years, tmp_path)
    assert not again.written and not again.reports


def test_a_new_year_rebuilds_the_neighbours_links(years: Path, tmp_path: Path, att_faces: Path):
    _build(years, tmp_path)
    new = years / "2027"
    new.mkdir()
    (years / "2026" / "index.md").rename(new / "index.md")  # quick way to a third report: move 2026's text
    (new / "index.md").write_text((new / "index.md").read_text().replace("2026", "2027"))
    (years / "2026" / "photos").rename(new / "photos")
    (years / "2026").rmdir()
    _build(years, tmp_path)
    assert 'href="../2027/index.html"' in (tmp_path / "site" / "2025" / "index.html").read_text()
    assert not (tmp_path / "site" / "2026").exists()


def test_two_builds_of_a_two_year_site_are_byte_identical(years: Path, tmp_path: Path, monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1767225600")
    build(BuildOptions(content=years, out=tmp_path / "a", cache=tmp_path / "ca"))
    build(BuildOptions(content=years, out=tmp_path / "b", cache=tmp_path / "cb"))
    assert tree_bytes(tmp_path / "a") == tree_bytes(tmp_path / "b")
