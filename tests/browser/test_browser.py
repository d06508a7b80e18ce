"""The built sites in a real browser: Debian's chromium driven by Playwright, served on 127.0.0.1.

Screenshots of the index and a report are saved in test-artifacts/ (git-ignored).
"""

from __future__ import annotations

import functools
import os
import shutil
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urljoin, urlparse
from urllib.request import urlopen

import pytest
from facetrend.build import BuildOptions, build

from ..conftest import REPO, two_years

CHROMIUM = os.environ.get("FACETREND_CHROMIUM", "/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]
ARTIFACTS = REPO / "test-artifacts"

if not Path(CHROMIUM).exists():
    if os.environ.get("CI"):
        raise RuntimeError(f"{CHROMIUM} is missing: .ci/run installs Debian's chromium for these tests")
    pytest.skip(f"no chromium at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)

sync_api = pytest.importorskip("playwright.sync_api")


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def server(tmp_path_factory, att_faces: Path):
    """The demo (smoke mode) and a two-year site, served from one folder on a free port."""
    root = tmp_path_factory.mktemp("served")
    build(BuildOptions(content=REPO / "content", out=root / "demo", cache=root / "cache-demo", smoke=True))
    content = two_years(tmp_path_factory.mktemp("years"), att_faces)
    build(BuildOptions(content=content, out=root / "years", cache=root / "cache-years"))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(root)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    page = context.new_page()
    page.errors = []
    page.on("console", lambda m: page.errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    yield page
    context.close()


def _open(page, url: str) -> None:
    """Load a page with every lazy image loaded, and check: no console errors, every image decoded."""
    response = page.goto(url)
    assert response is not None and response.ok, url
    page.evaluate("document.querySelectorAll('img[loading=lazy]').forEach(i => i.loading = 'eager')")
    page.wait_for_function("Array.from(document.images).every(i => i.complete)")
    broken = page.evaluate("Array.from(document.images).filter(i => !(i.naturalWidth > 0)).map(i => i.src)")
    assert broken == [], f"{url}: images that did not load: {broken}"
    assert page.errors == [], f"{url}: console errors {page.errors}"
    assert page.evaluate("Array.from(document.images).every(i => i.alt.trim().length > 0)"), f"{url}: alt text"


def _links(page, base: str) -> set[str]:
    hrefs = page.eval_on_selector_all("a[href]", "els => els.map(e => e.href)")
    return {h.split("#")[0] for h in hrefs if urlparse(h).netloc == urlparse(base).netloc}


def _crawl(page, start: str, browse: int) -> int:
    """Follow every internal link from ``start``: HTML pages in the browser (unit pages beyond the
    first ``browse`` pages, and files such as report.json and feed.xml, by HTTP)."""
    seen, queue, opened = {start}, [start], 0
    while queue:
        url = queue.pop(0)
        unit_page = "/units/" in url
        if url.endswith(".html") and (opened < browse or not unit_page):
            _open(page, url)
            opened += 1
            new = _links(page, start) - seen
        else:
            with urlopen(url) as r:  # it must exist
                assert r.status == 200 and r.read(), url
            new = set()
        seen |= new
        queue += sorted(new)
    return len(seen)


def test_demo_every_link_every_image_no_errors(server: str, page):
    count = _crawl(page, urljoin(server, "/demo/index.html"), browse=40)
    assert count > 400  # index, report, 400 unit pages, report.json and feed links


def test_two_year_site_every_page_in_the_browser(server: str, page):
    count = _crawl(page, urljoin(server, "/years/index.html"), browse=10_000)
    assert count >= 1 + 3 * (1 + 12)  # index, and each report and trends page with its 12 unit pages


def test_unit_pages_open_from_the_grid(server: str, page):
    _open(page, urljoin(server, "/demo/demo/index.html"))
    page.click('.unit-grid a[aria-label="Unit 27"]')
    page.wait_for_load_state()
    assert page.url.endswith("/demo/demo/units/27.html")
    assert page.inner_text("h1") == "Unit 27"


def test_screenshots_of_the_index_and_a_report(server: str, page):
    ARTIFACTS.mkdir(exist_ok=True)
    for name, path in (("index", "/years/index.html"), ("report", "/demo/demo/index.html"),
                       ("trends", "/years/trends/index.html")):
        _open(page, urljoin(server, path))
        page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
        assert (ARTIFACTS / f"{name}.png").stat().st_size > 10_000


def test_phone_width_has_no_horizontal_scroll(server: str, browser):
    context = browser.new_context(viewport={"width": 375, "height": 800})
    page = context.new_page()
    page.goto(urljoin(server, "/demo/demo/index.html"))
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    context.close()


def test_report_page_weight_is_under_3_mb(server: str, page):
    sizes = []
    page.on("response", lambda r: sizes.append(len(r.body())) if r.ok else None)
    _open(page, urljoin(server, "/demo/demo/index.html"))
    assert sum(sizes) < 3_000_000


def test_artifacts_folder_is_ignored_by_git():
    assert "test-artifacts/" in (REPO / ".gitignore").read_text()
    shutil.rmtree(ARTIFACTS / "nothing", ignore_errors=True)


# ---------------------------------------------------------------- issue 16: the answer first, pictures open larger


@pytest.mark.parametrize("size", [(1280, 800), (390, 844)])
def test_the_answer_is_above_the_fold(server: str, browser, size):
    context = browser.new_context(viewport={"width": size[0], "height": size[1]})
    page = context.new_page()
    for path in ("/demo/demo/index.html", "/years/2025/index.html"):
        page.goto(urljoin(server, path))
        top = page.evaluate("document.querySelector('#answer h2').getBoundingClientRect().top")
        first = page.evaluate("(document.querySelector('#answer li, #answer p') || {getBoundingClientRect: () => "
                              "({top: 1e9})}).getBoundingClientRect().top")
        assert top < size[1] and first < size[1], (path, size, top, first)
    context.close()


def test_unit_grid_tap_targets_are_big_enough_on_a_phone(server: str, browser):
    """At a 390 px phone width every unit's link on the grid is at least 24 px square (the grid scrolls)."""
    context = browser.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    page.goto(urljoin(server, "/demo/demo/index.html"))
    sizes = page.eval_on_selector_all(".unit-grid a", "els => els.map(e => { const r = e.getBoundingClientRect(); "
                                                      "return [r.width, r.height]; })")
    assert len(sizes) == 400 and min(min(w, h) for w, h in sizes) >= 24, min(sizes)
    context.close()


def test_every_image_link_opens_an_image(server: str, page):
    for path in ("/demo/demo/index.html", "/demo/demo/units/0.html", "/years/2025/index.html",
                 "/years/trends/index.html", "/years/2025/units/1.html"):
        _open(page, urljoin(server, path))
        links = page.eval_on_selector_all("a:has(> img)", "els => els.map(e => e.href)")
        assert links, path
        for href in links:
            if "#look-" in href:  # the answer's pictures open their look's section
                continue
            with urlopen(href) as r:
                assert r.status == 200 and r.headers.get_content_type().startswith("image/"), href


def test_open_graph_tags_are_present(server: str, page):
    for path in ("/years/index.html", "/years/2025/index.html", "/years/trends/index.html", "/demo/demo/index.html"):
        _open(page, urljoin(server, path))
        tags = page.evaluate("Object.fromEntries(Array.from(document.querySelectorAll('meta[property^=og], "
                             "meta[name=description]')).map(m => [m.getAttribute('property') || m.name, m.content]))")
        for key in ("description", "og:title", "og:description"):
            assert tags.get(key), (path, key, tags)
        if path.startswith("/years/"):
            assert tags.get("og:image", "").startswith("https://example.github.io/faces/"), (path, tags)


# ---------------------------------------------------------------- a two-year site of real photos, as a reader sees it

LFW_PER_YEAR = 60


@pytest.fixture(scope="module")
def lfw_site(tmp_path_factory) -> Path:
    """Two years of whole LFW photos (different people each year, faces detected), default settings but a
    smaller network so the build takes seconds."""
    from ..conftest import SHARED, write_report

    lfw = SHARED / "lfw"
    if not lfw.is_dir():
        pytest.skip("needs ../shared/data/lfw")
    root = tmp_path_factory.mktemp("lfw")
    people = sorted(p for p in lfw.iterdir() if p.is_dir())
    for k, year in enumerate(("2024", "2025")):
        folder = write_report(root / "content", year, f'title: "Contest {year}"\ndate: "{year}-06-01"\n'
                              "model:\n  hidden: [100]\n  epochs: 15\n", f"The contestants of {year}.\n")
        for person in people[k::7][:LFW_PER_YEAR]:  # every 7th person from an offset: no one in both years
            photo = sorted(person.glob("*.jpg"))[0]
            (folder / "photos" / person.name).mkdir(parents=True)
            shutil.copy(photo, folder / "photos" / person.name / photo.name)
    (root / "content" / "site.toml").write_text('title = "Contest faces"\n[trends.model]\nhidden = [100]\n'
                                                "epochs = 15\n", encoding="utf-8")
    build(BuildOptions(content=root / "content", out=root / "site", cache=root / "cache"))
    return root / "site"


@pytest.mark.parametrize("size", [(1280, 800), (390, 844)])
def test_real_photos_screenshots_with_the_answer_on_the_first_screen(lfw_site: Path, browser, size):
    """The screenshots a reviewer reads (test-artifacts/lfw-*.png): the index, a year and the trends page of real
    photos at a laptop's and a phone's width; the year's answer and the trends page's finding are on the first
    screen, with no console errors."""
    ARTIFACTS.mkdir(exist_ok=True)
    context = browser.new_context(viewport={"width": size[0], "height": size[1]})
    page = context.new_page()
    page.errors = []
    page.on("console", lambda m: page.errors.append(m.text) if m.type == "error" else None)
    for name, path, first in (("index", "index.html", "main h2"), ("year", "2025/index.html", "#answer h2"),
                              ("trends", "trends/index.html", "#trend h2")):
        _open(page, (lfw_site / path).as_uri())
        top = page.evaluate(f"document.querySelector('{first}').getBoundingClientRect().top")
        assert top < size[1] * 0.6, (path, size, top)
        page.screenshot(path=str(ARTIFACTS / f"lfw-{name}-{size[0]}.png"), full_page=True)
    trends_first = page.inner_text("#trend h2")
    assert trends_first.startswith("What changed from Contest 2024 to Contest 2025"), trends_first
    charts = page.eval_on_selector_all('#trend .unit-figures img[src$="tilted.png"], #trend .unit-figures '
                                       'img[src$="face_size.png"]', "els => els.map(e => [e.width, e.naturalWidth])")
    assert len(charts) == 2 and all(shown == natural for shown, natural in charts), charts  # never shrunk to unread
    context.close()


def test_real_photos_trends_report_json_has_each_years_measured_attributes(lfw_site: Path):
    import json

    doc = json.loads((lfw_site / "trends" / "report.json").read_text(encoding="utf-8"))
    by_year = doc["attributes_by_year"]
    assert set(by_year) == {"tilted", "other_faces", "face_size"}
    assert all([y["year"] for y in rows] == ["Contest 2024", "Contest 2025"] for rows in by_year.values())
    assert all(r["low"] <= r["value"] <= r["high"] and r["measured"] >= 50 for rows in by_year.values() for r in rows)
    assert doc["tilt_by_year"] == [{"year": r["year"], "share": r["value"], "low": r["low"], "high": r["high"],
                                    "measured": r["measured"]} for r in by_year["tilted"]]
    assert 0.2 < by_year["face_size"][0]["value"] < 0.5  # LFW: the face fills about 40% of the frame
