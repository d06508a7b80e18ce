"""The review page (local, never published) looks like the site: the site's style sheet, header and footer."""

from __future__ import annotations

from pathlib import Path

from facetrend import review
from facetrend.render import GENERATOR_MARK, TEMPLATES


def test_the_review_page_wears_the_sites_style_sheet_and_frame(small_content: Path, tmp_path: Path):
    (small_content / "site.toml").write_text('title = "Contest faces"\nlanguage = "ja"\nauthor = "Ann"\n')
    (small_content / "small" / "photos" / "s1" / "broken.jpg").write_bytes(b"nope")
    [page] = review.write_review(small_content, tmp_path / "cache", None, None)
    html = page.read_text(encoding="utf-8")
    style = page.parent / "../static/style.css"
    assert '<link rel="stylesheet" href="../static/style.css">' in html
    assert style.read_bytes() == (TEMPLATES / "static" / "style.css").read_bytes()  # the site's, as it is now
    assert '<html lang="ja">' in html and 'name="viewport"' in html and 'content="noindex"' in html
    for frame in ('<header class="site-header">', '<span class="site-title">Contest faces</span>', "<main",
                  '<footer class="site-footer">', "Ann · Made with facetrend"):
        assert frame in html
    assert html.count("<figure>") == 30 and html.count('class="skipped"') == 1
    assert "30 face crops and 1 skipped file" in html
    assert GENERATOR_MARK not in html  # else the review folder would pass for a built site (refuse_site_folder)


def test_the_review_pages_style_sheet_follows_the_sites(small_content: Path, tmp_path: Path, monkeypatch):
    templates = tmp_path / "templates"
    (templates / "static").mkdir(parents=True)
    for name in ("review.html",):
        (templates / name).write_bytes((TEMPLATES / name).read_bytes())
    (templates / "static" / "style.css").write_text("body { color: red; }\n")
    monkeypatch.setattr(review, "_templates", lambda: templates)
    review._env.cache_clear()
    try:
        [page] = review.write_review(small_content, tmp_path / "cache", None, tmp_path / "pages")
    finally:
        review._env.cache_clear()
    assert (tmp_path / "pages" / "static" / "style.css").read_text() == "body { color: red; }\n"
    assert page == tmp_path / "pages" / "small" / "index.html"
