"""The pages as a reader reads them (issue 16): the wording rules on every generated page, what is said of
skipped files, people's names, the technical notes as findings, every picture opening larger, and the tags
a page shared elsewhere shows. Built once: the demo (smoke mode) and a small two-year site."""

from __future__ import annotations

import json
import re
import shutil
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import pytest
from facetrend.build import BuildOptions, build

from .conftest import REPO, two_years

BLOCKS = {"p", "li", "h1", "h2", "h3", "h4", "figcaption", "td", "th", "dt", "dd", "div", "section", "tr",
          "summary", "caption", "nav", "ul", "ol", "table", "figure", "article", "header", "footer", "main"}


class _Text(HTMLParser):
    """The text a reader sees (no script, style or title), a line per block; and every <a href> around an
    <img>, with the image's src."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self.hidden = 0
        self.link: str | None = None
        self.images: list[tuple[str | None, str]] = []  # (the link around it, src)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag in ("script", "style", "title"):
            self.hidden += 1
        if tag in BLOCKS:
            self.parts.append("\n")
        if tag == "a":
            self.link = attrs.get("href")
        if tag == "img":
            self.images.append((self.link, attrs.get("src", "")))

    def handle_endtag(self, tag):
        if tag in ("script", "style", "title"):
            self.hidden -= 1
        if tag in BLOCKS:
            self.parts.append("\n")
        if tag == "a":
            self.link = None

    def handle_data(self, data):
        if not self.hidden:
            self.parts.append(data)

    @property
    def text(self) -> str:
        return re.sub(r"\s*\n\s*", "\n", re.sub(r"[ \t\r]+", " ", "".join(self.parts)))


def read(path: Path) -> _Text:
    parsed = _Text()
    parsed.feed(path.read_text(encoding="utf-8"))
    return parsed


@pytest.fixture(scope="module")
def sites(tmp_path_factory, att_faces: Path) -> dict[str, Path]:
    """The demo, and two years (2025 with a person folder `Michael_Caine` and a photo that cannot be read)."""
    root = tmp_path_factory.mktemp("reader")
    build(BuildOptions(content=REPO / "content", out=root / "demo", cache=root / "cache-demo", smoke=True))
    content = two_years(root / "years-content", att_faces)
    spare = sorted(p for p in att_faces.iterdir() if p.is_dir())[9]
    caine = content / "2025" / "photos" / "Michael_Caine"
    caine.mkdir()
    for photo in sorted(spare.glob("*.pgm"))[:5]:
        shutil.copy(photo, caine / photo.name)
    (content / "2025" / "photos" / "s1" / "Jane_Doe_private.jpg").write_bytes(b"not a jpeg")
    build(BuildOptions(content=content, out=root / "years", cache=root / "cache-years"))
    return {"demo": root / "demo", "years": root / "years", "content": content, "root": root}


def _pages(site: Path, units: int = 5) -> list[Path]:
    """Every page but most unit pages (the first ``units`` of each report)."""
    pages = [p for p in sorted(site.rglob("*.html")) if "/units/" not in p.as_posix()]
    for folder in sorted(site.rglob("units")):
        pages += sorted(folder.glob("*.html"), key=lambda p: int(p.stem))[:units]
    return pages


MISSING_SPACE = re.compile(r"[a-z%)\]][.!?;:][A-Z(]")  # "points).Fell", "reason.Every"
PLURAL_ONE = re.compile(r"(?<![\d.])[+-]?1 (points|faces|files|units|photos|people)\b")
SIGNED_POINTS = re.compile(r"\+\d+ points?")
NOT_THERE = re.compile(r"\bthe rest used as the crops|\bthe other 0 used|\b0 files? (was|were) skipped|"
                       r"\(0 found by face detection")


@pytest.mark.parametrize("name", ["demo", "years"])
def test_generated_text_keeps_the_wording_rules(sites, name: str):
    problems = []
    for page in _pages(sites[name]):
        text = read(page).text
        for rule, pattern in (("missing space", MISSING_SPACE), ("'?;' chain", re.compile(r"\?;")),
                              ("1 with a plural", PLURAL_ONE), ("signed points", SIGNED_POINTS),
                              ("says what is not there", NOT_THERE)):
            for hit in pattern.finditer(text):
                problems.append(f"{page.relative_to(sites[name])}: {rule}: "
                                f"{text[max(0, hit.start() - 30):hit.end() + 30]!r}")
    assert problems == [], "\n".join(problems[:20])


def test_the_wording_scan_catches_what_it_is_for():
    assert MISSING_SPACE.search("within 2 points).Fell") and MISSING_SPACE.search("one reason.Every")
    assert PLURAL_ONE.search("+1 points") and SIGNED_POINTS.search("+12 points")
    assert not MISSING_SPACE.search("report.json and 0.5 sd") and not PLURAL_ONE.search("11 points, 0.1 points")


def test_public_pages_count_skipped_files_by_reason_and_name_none(sites):
    page = (sites["years"] / "2025" / "index.html").read_text(encoding="utf-8")
    assert "Jane_Doe" not in page
    assert "1 file: could not be read" in page or "1 file: " in page
    doc = json.loads((sites["years"] / "2025" / "report.json").read_text(encoding="utf-8"))
    assert any("Jane_Doe_private.jpg" in (s["path"] or "") for s in doc["photos"]["skipped"])  # report.json has it
    assert "Jane_Doe" not in (sites["years"] / "trends" / "index.html").read_text(encoding="utf-8")


def test_publish_skipped_lists_each_file_by_name(sites, tmp_path: Path):
    content = tmp_path / "content"
    shutil.copytree(sites["content"], content)
    index = content / "2025" / "index.md"
    index.write_text(index.read_text(encoding="utf-8").replace("featured: 2\n", "featured: 2\npublish_skipped: true\n",
                                                                1), encoding="utf-8")
    build(BuildOptions(content=content, out=tmp_path / "site", cache=sites["root"] / "cache-years",
                       report="2025"))
    assert "Jane_Doe_private.jpg" in (tmp_path / "site" / "2025" / "index.html").read_text(encoding="utf-8")


def test_people_are_named_as_names_and_never_by_their_folder(sites):
    shown = [read(p).text for p in sorted((sites["years"] / "2025" / "units").glob("*.html"))]
    trends = [read(p).text for p in sorted((sites["years"] / "trends" / "units").glob("*.html"))]
    assert any("Michael Caine" in t for t in shown) and any("Michael Caine" in t for t in trends)
    assert not any("Michael_Caine" in t for t in shown + trends)
    css = (sites["demo"] / "static" / "style.css").read_text(encoding="utf-8")
    assert "anywhere" not in css  # overflow-wrap: anywhere breaks "Michael Caine" mid-name


def test_technical_notes_are_findings_above_the_settings(sites):
    page = (sites["demo"] / "demo" / "index.html").read_text(encoding="utf-8")
    notes = page[page.index('id="notes"'):]
    findings = notes[notes.index('class="findings"'):notes.index("</ul>")]
    assert notes.index('class="findings"') < notes.index('class="settings"')
    assert "test loss was still falling at epoch 2" in findings  # smoke mode: 2 epochs, still falling
    assert "PCA" in findings and "units worked best" in findings and "sigmoid" in findings


def test_every_matched_face_and_unit_picture_opens_larger(sites):
    for site in (sites["demo"], sites["years"]):
        for page in _pages(site):
            for link, src in read(page).images:
                if src.startswith("img/") and src != "img/mean.png":
                    continue  # plots, the unit grid (its tiles are links to unit pages) and the contact sheet
                assert link is not None, f"{page}: {src} opens nothing"
                if "#look-" in link:  # the answer's pictures open their look's section, which opens them larger
                    assert src.endswith(f"looks/{link.rsplit('-', 1)[1]}.png"), (page, link, src)
                    continue
                assert link.endswith((".png", ".webp")) and (page.parent / link).resolve().is_file(), (page, link)


def test_pages_have_a_description_and_open_graph_tags(sites):
    for page in _pages(sites["years"], units=1) + _pages(sites["demo"], units=1):
        html = page.read_text(encoding="utf-8")
        if "review" in page.name:
            continue
        for tag in ('name="description"', 'property="og:title"', 'property="og:description"'):
            assert tag in html, (page, tag)
    report = (sites["years"] / "2025" / "index.html").read_text(encoding="utf-8")
    image = re.search(r'property="og:image" content="([^"]+)"', report).group(1)
    assert image.startswith("https://example.github.io/faces/2025/")  # absolute under an absolute base_url
    assert (sites["years"] / image.removeprefix("https://example.github.io/faces/")).is_file()
    demo = (sites["demo"] / "demo" / "index.html").read_text(encoding="utf-8")
    shared = [v for v in json.loads((sites["demo"] / "demo" / "report.json").read_text())["looks"] if v["featured"]]
    picture = f"/demo/looks/{shared[0]['rank']}.png" if shared else "/demo/img/mean.png"  # else the mean face
    assert f'property="og:image" content="{picture}"' in demo


def test_a_relative_base_url_writes_a_valid_feed_and_no_sitemap(sites):
    assert not (sites["demo"] / "sitemap.xml").exists()  # base_url "/": a sitemap needs absolute URLs
    assert (sites["years"] / "sitemap.xml").is_file()
    atom = "{http://www.w3.org/2005/Atom}"
    feed = ET.parse(sites["demo"] / "feed.xml").getroot()
    ids = [e.text for e in feed.iter(f"{atom}id")]
    assert ids and all(i.startswith("urn:uuid:") for i in ids)  # ids must be absolute IRIs
    assert all(not link.get("href").startswith("/") for link in feed.iter(f"{atom}link"))  # relative to feed.xml
