"""Untrusted text everywhere it can enter: nothing survives as markup, as a script URL or as a path."""

import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest
from facetrend import config
from facetrend.build import BuildOptions, build
from facetrend.errors import UserError

from .conftest import SMALL_MODEL, write_report

SCRIPT = "<script>alert(1)</script>"
ATTR = '" onerror="alert(1)'
JS = "javascript:alert(1)"


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, attrs))


def _hostile_content(root: Path, att: Path) -> Path:
    content = root / "content"
    front = (f"title: '{SCRIPT}'\ndescription: '{ATTR}'\ndate: '{JS}'\nfeatured: 2\n"
             f"captions:\n  0: '{SCRIPT}{ATTR}'\n" + SMALL_MODEL)
    narrative = f"Hello {SCRIPT}\n\n[click]({JS}) <a href=\"{JS}\">raw</a> <img src=x onerror=\"alert(1)\">\n"
    folder = write_report(content, "r", front, narrative)
    people = ["<script>alert(1)", 'x" onerror="alert(1)', "javascript:alert(1)", "..evil"]
    for k, name in enumerate(people):
        target = folder / "photos" / name
        target.mkdir(parents=True)
        for photo in sorted((att / f"s{k + 1}").glob("*.pgm"))[:4]:
            shutil.copy(photo, target / f'<svg onload=alert(1)> {photo.stem}" onerror="x.pgm')
    (folder / "people.csv").write_text(
        f'person,name,university\n"<script>alert(1)",{SCRIPT},{JS}\n"x"" onerror=""alert(1)","{ATTR}",../../x\n',
        encoding="utf-8")
    (content / "site.toml").write_text(
        f"title = '{SCRIPT}'\nauthor = '{ATTR}'\ndescription = '{JS}'\nbase_url = 'https://example.org/x/'\n",
        encoding="utf-8")
    return content


def test_nothing_planted_survives_as_markup_script_url_or_path(tmp_path: Path, att_faces: Path):
    content = _hostile_content(tmp_path, att_faces)
    build(BuildOptions(content=content, out=tmp_path / "site", cache=tmp_path / "cache"))
    site = tmp_path / "site"
    for path in site.rglob("*"):
        assert ".." not in path.relative_to(site).parts and "<" not in path.name and '"' not in path.name
        if path.suffix not in {".html", ".xml"}:
            continue
        text = path.read_text(encoding="utf-8")
        assert "<script" not in text.lower(), path
        parser = _Tags()
        parser.feed(text)
        for tag, attrs in parser.tags:
            for name, value in attrs:
                assert not name.startswith("on"), f"{path}: <{tag} {name}=...>"
                if name in {"href", "src"} and value:
                    assert not value.strip().lower().startswith(("javascript:", "data:text")), f"{path}: {value}"
    left = sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock"))  # the build's lock file
    assert left == ["cache", "content", "site"]  # nothing written elsewhere
    page = (site / "r" / "index.html").read_text(encoding="utf-8")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page  # shown as text, not run


def test_authors_may_allow_raw_html_in_site_toml(tmp_path: Path, att_faces: Path):
    content = tmp_path / "content"
    folder = write_report(content, "r", "featured: 1\n" + SMALL_MODEL, '<div class="note">kept</div>\n')
    shutil.copytree(att_faces / "s1", folder / "photos" / "s1")
    (content / "site.toml").write_text("allow_html = true\n", encoding="utf-8")
    build(BuildOptions(content=content, out=tmp_path / "site", cache=tmp_path / "cache"))
    assert '<div class="note">kept</div>' in (tmp_path / "site" / "r" / "index.html").read_text()


@pytest.mark.parametrize("url", [JS, "ftp://x", "example.org", "/path with space", 'https://x"y'])
def test_a_base_url_that_is_not_a_web_address_is_refused(tmp_path: Path, url: str):
    (tmp_path / "site.toml").write_text(f"base_url = '{url}'\n")
    with pytest.raises(UserError, match="base_url.*Fix"):
        config.load_site(tmp_path)
