"""Regression tests for issue 15 (round two of hostile input): config, decoding, serving and error messages.

Each test failed before its fix. The bounds they name are documented, with their reasons, in
docs/reliability.md ("Bounds").
"""

from __future__ import annotations

import contextlib
import http.client
import io
import logging
import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from facetrend import config
from facetrend.cli import main
from facetrend.config import SiteSettings
from facetrend.decode import Unreadable, decode
from facetrend.errors import UserError
from PIL import Image

# ---------------------------------------------------------------- 1. malformed EXIF


def _jpeg_with_exif() -> bytes:
    pixels = (np.arange(24 * 32) % 251).astype(np.uint8).reshape(24, 32)
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate
    exif[0x010F] = "Maker"
    buf = io.BytesIO()
    Image.fromarray(pixels, "L").save(buf, "JPEG", exif=exif.tobytes())
    return buf.getvalue()


def test_a_jpeg_with_a_broken_exif_block_is_read_without_its_orientation():
    data = bytearray(_jpeg_with_exif())
    data[data.find(b"Exif\0\0") + 17] = 0  # one wrong byte in the IFD: Pillow raised struct.error
    pixels = decode(bytes(data), 10**7)
    assert pixels.dtype == np.uint8 and pixels.shape == (24, 32)  # stored orientation, not rotated


def test_any_exception_from_reading_a_photo_is_unreadable(monkeypatch):
    from PIL import ImageOps

    def explode(image):
        raise AttributeError("a Pillow bug")

    monkeypatch.setattr(ImageOps, "exif_transpose", explode)
    assert decode(_jpeg_with_exif(), 10**7).shape == (24, 32)  # orientation dropped (not rotated), photo kept
    monkeypatch.setattr(Image.Image, "convert", lambda *a, **k: (_ for _ in ()).throw(TypeError("bad")))
    with pytest.raises(Unreadable, match="TypeError|bad"):
        decode(_jpeg_with_exif(), 10**7)


# ---------------------------------------------------------------- 3. YAML aliases and huge values


def _report(tmp_path: Path, front: str, body: str = "Words.\n", slug: str = "r") -> Path:
    folder = tmp_path / slug
    folder.mkdir(parents=True)
    (folder / "index.md").write_bytes(f"---\n{front}\n---\n{body}".encode())
    return folder


LAUGHS = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [" + ", ".join([f"*{chr(97 + i)}"] * 9) + "]\n" for i in range(8))


def test_billion_laughs_is_refused_quickly(tmp_path: Path):
    folder = _report(tmp_path, LAUGHS + "model: {epochs: *i}")
    start = time.perf_counter()
    with pytest.raises(UserError, match="alias") as info:
        config.load_report(folder, SiteSettings())
    assert time.perf_counter() - start < 2
    assert str(folder / "index.md") in str(info.value) and "Fix" in str(info.value)


def test_a_recursive_alias_is_refused(tmp_path: Path):
    with pytest.raises(UserError, match="alias"):
        config.load_report(_report(tmp_path, "model: &m {hidden: *m}"), SiteSettings())


def test_a_few_aliases_still_work(tmp_path: Path):
    front = "model: &m {epochs: 3}\nexperiments: {runs: [*m, *m]}"
    assert config.load_report(_report(tmp_path, front), SiteSettings()).settings.experiments.runs == [
        {"epochs": 3}, {"epochs": 3}]


def test_a_huge_wrong_value_gives_a_short_message(tmp_path: Path):
    folder = _report(tmp_path, "model:\n  epochs: '" + "x" * 300_000 + "'")
    with pytest.raises(UserError, match="model.epochs") as info:
        config.load_report(folder, SiteSettings())
    assert len(str(info.value)) < 1000


def test_a_huge_unknown_key_gives_a_short_message(tmp_path: Path):
    with pytest.raises(UserError, match="unknown setting") as info:
        config.load_report(_report(tmp_path, "? " + "k" * 300_000 + "\n: 1"), SiteSettings())
    assert len(str(info.value)) < 1000


def test_an_oversized_index_md_is_refused_unread(tmp_path: Path):
    folder = _report(tmp_path, "title: x", body="word " * 500_000)
    with pytest.raises(UserError, match="index.md") as info:
        config.load_report(folder, SiteSettings())
    assert "bytes" in str(info.value)


def test_a_duplicate_key_is_a_warning(tmp_path: Path, caplog):
    with caplog.at_level(logging.WARNING):
        report = config.load_report(_report(tmp_path, "title: One\nmodel: {epochs: 2}\ntitle: Two"), SiteSettings())
    assert report.settings.title == "Two"
    assert any("`title`" in r.getMessage() and "twice" in r.getMessage() for r in caplog.records), caplog.text


# ---------------------------------------------------------------- 5. pathological Markdown


@pytest.mark.parametrize("body", [
    pytest.param("[" * 20_000, id="20KB-of-brackets"),
    pytest.param("".join("    " * i + "- x\n" for i in range(500)), id="list-500-deep"),
    pytest.param(">" * 500 + " x\n", id="quote-500-deep"),
    pytest.param("a\n: " * 3000, id="definition-list-run"),
    pytest.param("*[x]: y\n\n" * 1000, id="1000-abbreviations"),
])
def test_pathological_markdown_is_refused_naming_index_md(tmp_path: Path, body: str):
    folder = _report(tmp_path, "title: x", body=body)
    start = time.perf_counter()
    with pytest.raises(UserError) as info:
        config.load_report(folder, SiteSettings())
    assert time.perf_counter() - start < 1
    assert str(folder / "index.md") in str(info.value) and "Fix" in str(info.value)


def test_pathological_markdown_exits_2_from_the_command(tmp_path: Path):
    _report(tmp_path / "content", "photos: builtin:lfw-subset", body="[" * 20_000)
    code, err = _run(["build", "--content", str(tmp_path / "content"), "--out", str(tmp_path / "site"),
                      "--cache", str(tmp_path / "cache")])
    assert code == 2 and "index.md" in err and "Traceback" not in err, err


def test_an_ordinary_long_narrative_is_accepted(tmp_path: Path):
    paragraph = ("Some [words](https://example.org/) with *emphasis*, `code` and <b>html</b>.\n" * 12) + "\n"
    body = "# Title\n\n" + paragraph * 80 + "".join("    " * i + "- item\n" for i in range(8))
    report = config.load_report(_report(tmp_path, "title: x", body=body), SiteSettings())
    assert report.narrative == body


# ---------------------------------------------------------------- 14, 20. control characters and huge texts


@pytest.mark.parametrize("text", ['title = "a\\u001bb"', 'description = "a\\u0000b"', 'author = "x\\u0085"'])
def test_control_characters_in_site_texts_are_refused(tmp_path: Path, text: str):
    (tmp_path / "site.toml").write_text(text + "\n", encoding="utf-8")
    with pytest.raises(UserError, match="control character") as info:
        config.load_site(tmp_path)
    assert f"setting `{text.split()[0]}`" in str(info.value)


def test_control_characters_in_front_matter_texts_are_refused(tmp_path: Path):
    with pytest.raises(UserError, match=r"setting `captions.1`.*control character"):
        config.load_report(_report(tmp_path, 'captions: {1: "a\\x1b[31m"}'), SiteSettings())


def test_tabs_and_newlines_in_a_description_are_kept(tmp_path: Path):
    report = config.load_report(_report(tmp_path, 'description: "one\\ttwo\\nthree"'), SiteSettings())
    assert report.settings.description == "one\ttwo\nthree"


def test_a_huge_site_title_is_refused(tmp_path: Path):
    (tmp_path / "site.toml").write_text(f'title = "{"t" * 5000}"\n', encoding="utf-8")
    with pytest.raises(UserError, match=r"setting `title`.*characters") as info:
        config.load_site(tmp_path)
    assert len(str(info.value)) < 1000


def test_an_oversized_site_toml_is_refused_unread(tmp_path: Path):
    (tmp_path / "site.toml").write_text("# " + "x" * 2_000_000 + "\n", encoding="utf-8")
    with pytest.raises(UserError, match="site.toml"):
        config.load_site(tmp_path)


# ---------------------------------------------------------------- 18. report folder names


@pytest.mark.parametrize("slug", ["r\n", "feed.xml", "index.html", "method.html", "static", "sitemap.xml",
                                  "Static", "CNAME"])
def test_report_folder_names_that_clash_or_are_not_urls_are_refused(tmp_path: Path, slug: str):
    _report(tmp_path, "title: x", slug=slug)
    with pytest.raises(UserError, match="Fix: rename") as info:
        config.find_reports(tmp_path, SiteSettings())
    assert "folder name" in str(info.value) or "address" in str(info.value)


# ---------------------------------------------------------------- 15. error messages


def _run(argv: list[str]) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(argv)
    return code, err.getvalue()


def test_a_user_error_message_is_bounded_and_keeps_its_fix():
    message = str(UserError("content/r/index.md: " + "x" * 1_000_000 + ". Fix: do this."))
    assert len(message) <= 2000 and message.startswith("content/r/index.md: ") and message.endswith("Fix: do this.")


def test_the_printed_error_has_no_terminal_escapes(tmp_path: Path):
    content = tmp_path / "content"
    _report(content, "title: x", slug="bad\x1b[2Jname")
    code, err = _run(["build", "--content", str(content), "--out", str(tmp_path / "site")])
    assert code == 2 and "\x1b" not in err and "\\x1b" in err, err


# ---------------------------------------------------------------- 21. serve


@pytest.fixture
def served(tmp_path: Path):
    from facetrend.serve import make_server

    site = tmp_path / "site"
    (site / "r").mkdir(parents=True)
    (site / "index.html").write_text("<p>home</p>")
    (site / "r" / "index.html").write_text("<p>report</p>")
    (site / "r" / "a.txt").write_text("a")
    (site / "bare").mkdir()
    (site / "bare" / "b.txt").write_text("b")
    secret = tmp_path / "secret.txt"
    secret.write_text("secret")
    (site / "link.txt").symlink_to(secret)
    (site / "linkdir").symlink_to(tmp_path, target_is_directory=True)
    os.mkfifo(site / "fifo.txt")
    server = make_server(site, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def _get(port: int, path: str) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request("GET", path)
    response = conn.getresponse()
    return response.status, response.read()


def test_serve_shows_files_and_folder_index_pages(served: int):
    assert _get(served, "/") == (200, b"<p>home</p>")
    assert _get(served, "/r/") == (200, b"<p>report</p>")
    assert _get(served, "/r/a.txt") == (200, b"a")
    assert _get(served, "/r")[0] == 301  # to /r/, as before


@pytest.mark.parametrize("path", ["/link.txt", "/linkdir/secret.txt", "/linkdir/", "/bare/", "/fifo.txt",
                                  "/../secret.txt", "/%2e%2e/secret.txt"])
def test_serve_refuses_links_listings_and_special_files(served: int, path: str):
    status, body = _get(served, path)
    assert status == 404 and b"secret" not in body and b"b.txt" not in body


def test_a_fifo_or_device_among_the_photos_is_skipped_unread(tmp_path: Path):
    """A named pipe would hang the read and /dev/zero-like files never end: only regular files are read."""
    import os

    from facetrend import collect

    folder = tmp_path / "photos" / "p"
    folder.mkdir(parents=True)
    os.mkfifo(folder / "pipe.jpg")
    found = collect._folder(tmp_path / "photos")
    assert [(s.path, s.reason) for s in found.skipped] == [
        ("p/pipe.jpg", "not a regular file (a pipe, socket or device): not read")]
    assert not found.photos


def test_build_report_keeps_a_planted_link_in_another_report_as_a_link(tmp_path: Path):
    """`build --report` copies the other reports' pages; a link planted among them is not turned into a copy."""
    import shutil

    from facetrend import render

    out = tmp_path / "site"
    (out / "other").mkdir(parents=True)
    (out / "other" / "index.html").write_text("page")
    secret = tmp_path / "secret.txt"
    secret.write_text("private")
    (out / "other" / "leak.txt").symlink_to(secret)
    render.write_site({"index.html": b"<html></html>"}, out, ["other"])
    assert (out / "other" / "leak.txt").is_symlink()  # not a real copy of what it pointed at
    shutil.rmtree(out)


def test_a_refused_out_writes_nothing_outside(tmp_path: Path, capsys):
    """`--out` on a folder the build may not replace is refused before the lock file or any parent is made."""
    content = tmp_path / "content"
    (content / "r").mkdir(parents=True)
    (content / "r" / "index.md").write_text("---\ntitle: R\n---\nText.\n")
    keep = tmp_path / "thesis"
    keep.mkdir()
    (keep / "chapter1.txt").write_text("words")
    assert main(["build", "--content", str(content), "--out", str(keep), "--cache", str(tmp_path / "c")]) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["content", "thesis"]  # no .thesis.lock, no cache
    assert "Traceback" not in capsys.readouterr().err


def test_an_unwritable_parent_of_out_is_a_clear_error(tmp_path: Path, capsys):
    """Where the lock cannot be made (here the parent is a file; read-only folders behave alike for non-root
    users) the build stops with exit 2 and the fix, not an OSError traceback."""
    (tmp_path / "afile").write_text("not a folder")
    assert main(["build", "--content", str(tmp_path), "--out", str(tmp_path / "afile" / "site")]) == 2
    err = capsys.readouterr().err
    assert "writable" in err and "Traceback" not in err


def test_a_photos_folder_that_links_to_itself_is_exit_2(tmp_path: Path, capsys):
    content = tmp_path / "content"
    (content / "r").mkdir(parents=True)
    (content / "r" / "index.md").write_text("---\ntitle: R\n---\nText.\n")
    (content / "r" / "photos").symlink_to("photos")  # a loop
    assert main(["build", "--content", str(content), "--out", str(tmp_path / "site"),
                 "--cache", str(tmp_path / "cache")]) == 2
    err = capsys.readouterr().err
    assert "`photos`" in err and "Fix:" in err and "Traceback" not in err


# ---------------------------------------------------------------- 7. a photo replaced while the build runs


def _png(value: int, size: int = 24) -> bytes:
    rng = np.random.default_rng(value)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (size, size), dtype=np.uint8), "L").save(buf, "PNG")
    return buf.getvalue()


def _replaced_after_hashing(monkeypatch, path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` right after the faces stage first hashes it (as another program might)."""
    from facetrend import collect

    original = collect.Photo.content_hash

    def hash_then_replace(photo):
        digest = original(photo)
        if photo.path == path and path.read_bytes() != data:
            path.write_bytes(data)
        return digest

    monkeypatch.setattr(collect.Photo, "content_hash", hash_then_replace)


def test_a_photo_replaced_while_the_faces_are_cropped_is_never_cropped_under_its_old_hash(tmp_path: Path,
                                                                                           monkeypatch):
    """Hashing and decoding read the file apart: the new photo's face was cached, and published, under the
    old photo's hash (and --retrain kept it). Now the bytes decoded must be the bytes hashed."""
    from facetrend import collect, faces
    from facetrend.config import FaceSettings

    photos = tmp_path / "photos" / "p"
    photos.mkdir(parents=True)
    (photos / "a.png").write_bytes(_png(1))
    (photos / "b.png").write_bytes(_png(2))
    settings = FaceSettings(size=16, crops="yes", equalize="none", near_duplicate_bits=0)
    old = collect._folder(tmp_path / "photos").photos[0].content_hash()
    _replaced_after_hashing(monkeypatch, photos / "a.png", _png(3))
    found = faces.find_faces(collect._folder(tmp_path / "photos"), settings, tmp_path / "cache", "x", jobs=1)
    assert [p for p in found.photos] == ["p/b.png"] and not any(i.startswith(old[:10]) for i in found.ids)
    assert [(s.path, s.reason) for s in found.skipped] == [("p/a.png", f"could not be read ({collect.PHOTO_CHANGED})")]
    monkeypatch.undo()
    again = faces.find_faces(collect._folder(tmp_path / "photos"), settings, tmp_path / "cache", "x", jobs=1)
    assert sorted(again.photos) == ["p/a.png", "p/b.png"]  # the new photo, under its own hash; nothing cached
    assert collect._folder(tmp_path / "photos").photos[0].content_hash()[:10] in again.ids
    (photos / "a.png").write_bytes(_png(1))  # the old photo back: cropped, not "changed" from the cache
    assert sorted(faces.find_faces(collect._folder(tmp_path / "photos"), settings, tmp_path / "cache", "x",
                                   jobs=1).photos) == ["p/a.png", "p/b.png"]


def test_a_photo_replaced_before_its_thumbnail_is_made_gives_no_thumbnail(tmp_path: Path, monkeypatch):
    """With publish_photos: full, a cached crop's photo is decoded again for its thumbnail: it must be the same
    photo, or the other person's photo is published beside the face."""
    from facetrend import collect, faces
    from facetrend.config import FaceSettings

    photos = tmp_path / "photos" / "p"
    photos.mkdir(parents=True)
    (photos / "a.png").write_bytes(_png(1))
    (photos / "b.png").write_bytes(_png(2))
    settings = FaceSettings(size=16, crops="yes", equalize="none", near_duplicate_bits=0)
    faces.find_faces(collect._folder(tmp_path / "photos"), settings, tmp_path / "cache", "x", jobs=1)  # crops
    _replaced_after_hashing(monkeypatch, photos / "a.png", _png(3))
    found = faces.find_faces(collect._folder(tmp_path / "photos"), settings, tmp_path / "cache", "x", jobs=1,
                             thumbnails=True)
    a_id = found.ids[found.photos.index("p/a.png")]
    assert a_id not in found.thumbnails and len(found.thumbnails) == 1


# ---------------------------------------------------------------- 10. a photos folder elsewhere; names


def test_a_photos_folder_that_is_a_link_or_outside_the_report_is_used(tmp_path: Path):
    """Decided: a photos folder that is a link, or a path outside the report's folder, is followed (keeping the
    photos out of a public repository is a reason to do it); the links inside it are not."""
    from facetrend import collect

    from .conftest import write_report

    elsewhere = tmp_path / "private" / "p"
    elsewhere.mkdir(parents=True)
    (elsewhere / "a.png").write_bytes(_png(1))
    write_report(tmp_path / "content", "linked", "")
    (tmp_path / "content" / "linked" / "photos").symlink_to(tmp_path / "private")
    write_report(tmp_path / "content", "outside", "photos: ../../private")
    for slug in ("linked", "outside"):
        report = config.load_report(tmp_path / "content" / slug, SiteSettings())
        assert [p.source for p in collect.collect(report).photos] == ["p/a.png"]


def test_names_of_files_that_are_not_photos_are_never_published(tmp_path: Path):
    """report.json lists the skipped files: a photos folder's other files (a tax return, notes) showed there
    by name. Their names are withheld; a photo that cannot be read, or a link to a folder, keeps its name."""
    import os

    from facetrend import collect

    from .conftest import write_report

    folder = write_report(tmp_path / "content", "r", "")
    photos = folder / "photos" / "p"
    photos.mkdir(parents=True)
    (photos / "a.png").write_bytes(_png(1))
    (photos / "tax-return-2025.pdf").write_bytes(b"%PDF")
    (photos / "broken.jpg").write_bytes(b"not a jpeg")
    os.symlink(photos / "tax-return-2025.pdf", photos / "diary.txt")
    os.symlink(tmp_path, photos / "elsewhere")
    os.mkfifo(photos / "pipe")
    found = collect.collect(config.load_report(folder, SiteSettings()))
    shown = sorted(s.path for s in found.skipped)
    assert shown == ["", "", "", "p/elsewhere"], shown  # diary.txt, pipe, the PDF: unnamed
    assert sorted(p.source for p in found.photos) == ["p/a.png", "p/broken.jpg"]  # broken.jpg: skipped by name
    assert "tax-return" not in repr(found) and "diary" not in repr(found)


# ---------------------------------------------------------------- 14. control characters in people.csv


@pytest.mark.parametrize("row", ["p,Ann\x1b[31m,Uni", "p\x00,Ann,Uni", "p,Ann,Uni\x7f", "p,\"A\x0cnn\",Uni"])
def test_control_characters_in_people_csv_are_refused(tmp_path: Path, row: str):
    """A name with ESC or NUL reached feed.xml (no longer XML), sitemap.xml and the pages."""
    from facetrend import collect

    from .conftest import write_report

    folder = write_report(tmp_path / "content", "r", "")
    (folder / "people.csv").write_text(f"person,name,university\n{row}\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"people.csv: line 2, column `\w+` holds a control character.*Fix"):
        collect.read_people(config.load_report(folder, SiteSettings()))


def test_a_control_character_in_the_people_csv_header_is_refused(tmp_path: Path):
    from facetrend import collect

    from .conftest import write_report

    folder = write_report(tmp_path / "content", "r", "")
    (folder / "people.csv").write_text("person,na\x1bme\np,Ann\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"line 1, column .* control character"):
        collect.read_people(config.load_report(folder, SiteSettings()))


def test_people_csv_keeps_tabs_and_quoted_newlines_and_warns_about_ragged_rows(tmp_path: Path, caplog):
    from facetrend import collect

    from .conftest import write_report

    folder = write_report(tmp_path / "content", "r", "")
    (folder / "people.csv").write_text('person,name,bio\np,Ann,"two\nlines\tand a tab"\nq,Bo\nr,Cy,x,extra\n'
                                       's,"Di,never closed\n', encoding="utf-8")
    with caplog.at_level(logging.WARNING):
        people = collect.read_people(config.load_report(folder, SiteSettings()))
    assert people["p"]["bio"] == "two\nlines\tand a tab" and people["q"] == {"name": "Bo"}
    assert people["r"] == {"name": "Cy", "bio": "x"}
    assert "3 row(s) have more or fewer fields than the header (3), first at line(s) 4, 5, 6" in caplog.text
    assert "never closed" in caplog.text


def test_an_overlong_or_oversized_people_csv_is_refused(tmp_path: Path):
    from facetrend import collect

    from .conftest import write_report

    folder = write_report(tmp_path / "content", "r", "")
    (folder / "people.csv").write_text("person,name\np," + "A" * 1001 + "\n", encoding="utf-8")
    report = config.load_report(folder, SiteSettings())
    with pytest.raises(UserError, match=r"line 2, column `name` is 1,001 characters long; at most 1,000"):
        collect.read_people(report)
    with (folder / "people.csv").open("w") as f:
        f.write("person,name\n")
        f.truncate(collect.PEOPLE_MAX_BYTES + 10)
    with pytest.raises(UserError, match="larger than 10,000,000 bytes"):
        collect.read_people(report)


# ---------------------------------------------------------------- 2. --out holding files no build wrote


def _site(out: Path, files: dict[str, bytes] | None = None) -> dict[str, bytes]:
    from facetrend import render

    files = files or {"index.html": b"<html>one</html>", "r/report.json": b"{}"}
    render.write_site(files, out, [])
    return files


def test_a_saved_facetrend_page_beside_other_files_is_refused(tmp_path: Path):
    """The old check looked only for facetrend's mark in index.html: a folder holding a saved page and a thesis
    was wiped. Only files a build recorded writing may be replaced."""
    from facetrend import render

    folder = tmp_path / "papers"
    folder.mkdir()
    (folder / "index.html").write_text(f'<html>{render.GENERATOR_MARK} 1.0"></html>')
    (folder / "thesis.pdf").write_bytes(b"%PDF years of work")
    with pytest.raises(UserError, match=r"holds 2 file\(s\) no facetrend build wrote there \(index.html, "
                                        r"thesis.pdf\).*Fix: move them out"):
        render.check_output(folder, [])
    assert (folder / "thesis.pdf").read_bytes() == b"%PDF years of work"


def test_a_file_added_to_a_built_site_is_refused_and_dotfiles_and_cname_are_kept(tmp_path: Path):
    """A gh-pages worktree in site/ lost .git and CNAME. Files at the site's top whose names start with a dot,
    and CNAME, are kept by every build; any other file no build wrote stops the build."""
    from facetrend import render

    out = tmp_path / "site"
    files = _site(out)
    (out / ".git").mkdir()
    (out / ".git" / "HEAD").write_text("ref: refs/heads/gh-pages\n")
    (out / ".nojekyll").write_text("")
    (out / "CNAME").write_text("faces.example.org\n")
    render.check_output(out, [])  # a built site with its kept files may be replaced
    assert render.unchanged(files, out, [])  # and the kept files do not make it look changed
    render.write_site({"index.html": b"<html>two</html>"}, out, [])
    assert (out / ".git" / "HEAD").read_text() == "ref: refs/heads/gh-pages\n"
    assert (out / "CNAME").read_text() == "faces.example.org\n" and (out / ".nojekyll").exists()
    assert not (out / "r").exists() and (out / "index.html").read_bytes() == b"<html>two</html>"
    (out / "notes.txt").write_text("mine")
    os.symlink(tmp_path, out / "link")
    with pytest.raises(UserError, match=r"holds 2 file\(s\) no facetrend build wrote there \(link, notes.txt\)"):
        render.check_output(out, [])


def test_a_gh_pages_worktree_without_a_record_is_accepted(tmp_path: Path):
    """A fresh worktree holds only .git (a file there) and CNAME: nothing a build would lose."""
    from facetrend import render

    out = tmp_path / "site"
    out.mkdir()
    (out / ".git").write_text("gitdir: ../.git/worktrees/site\n")
    (out / "CNAME").write_text("faces.example.org\n")
    render.check_output(out, [])
    _site(out)
    assert (out / ".git").read_text() == "gitdir: ../.git/worktrees/site\n" and (out / "CNAME").exists()


def test_a_failed_swap_puts_the_kept_files_back(tmp_path: Path, monkeypatch):
    from facetrend import render

    out = tmp_path / "site"
    _site(out)
    (out / "CNAME").write_text("faces.example.org\n")
    before = sorted(p.relative_to(out).as_posix() for p in out.rglob("*"))
    real, failed = Path.rename, []

    def no_room(self, target):
        if Path(target) == out and not failed:  # the new tree cannot take the site's place (once)
            failed.append(self)
            raise OSError(28, "No space left on device")
        return real(self, target)

    monkeypatch.setattr(Path, "rename", no_room)
    with pytest.raises(UserError, match="No space left"):
        render.write_site({"index.html": b"<html>two</html>"}, out, [])
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) == before
    assert [p.name for p in tmp_path.iterdir()] == ["site"]


# ---------------------------------------------------------------- 16. leftovers of a killed build

KILL_AT = {  # what the build was doing when it was killed (SIGKILL: no cleanup ran)
    "writing": "Path.write_bytes",  # the new tree, half written
    "moving the kept files": "Path.rename:CNAME",
    "between the renames": "Path.rename:site",  # the old site moved aside, the new one not yet in place
    "removing the old site": "shutil.rmtree",
}


@pytest.mark.parametrize("where", list(KILL_AT))
def test_what_a_killed_build_left_is_restored_or_removed(tmp_path: Path, where: str):
    """.site-new-* and .site-old-* folders were never cleaned, and a kill between the swap's two renames left no
    site/ at all. The next write restores the old site first (then replaces it) and removes the leftovers."""
    import subprocess
    import sys

    from facetrend import render

    out = tmp_path / "site"
    _site(out)
    (out / "CNAME").write_text("faces.example.org\n")
    (out / ".nojekyll").write_text("")
    code = f"""
import os, shutil, sys
from pathlib import Path
from facetrend import render
what, _, name = {KILL_AT[where]!r}.partition(":")
if what == "Path.write_bytes":
    real = Path.write_bytes
    Path.write_bytes = lambda self, data: os._exit(9) if self.name == "report.json" else real(self, data)
elif what == "Path.rename":
    real = Path.rename
    Path.rename = lambda self, target: os._exit(9) if Path(target).name == name else real(self, target)
else:
    shutil.rmtree = lambda *args, **kwargs: os._exit(9)
render.write_site({{"index.html": b"<html>two</html>", "r/report.json": b"[]"}}, Path(sys.argv[1]), [])
"""
    assert subprocess.run([sys.executable, "-c", code, str(out)], timeout=60).returncode == 9
    assert [p for p in tmp_path.iterdir() if p.name != "site"], "the kill left nothing to mend"
    if where == "between the renames":
        assert not out.exists()
        render._recover(out)  # the old site comes back as it was
        assert (out / "index.html").read_bytes() == b"<html>one</html>" and (out / "CNAME").exists()
    render.check_output(out, [])
    render.write_site({"index.html": b"<html>three</html>"}, out, [])
    assert [p.name for p in tmp_path.iterdir()] == ["site"]  # no leftovers
    assert sorted(p.name for p in out.iterdir()) == [".facetrend-files.json", ".nojekyll", "CNAME", "index.html"]
    assert (out / "CNAME").read_text() == "faces.example.org\n"


# ---------------------------------------------------------------- 17. --out inside the photos folder


def test_out_inside_the_photos_folder_is_refused_and_nothing_is_written(tmp_path: Path, capsys):
    """Later builds trained on the site's own images."""
    from .conftest import write_report

    content = tmp_path / "content"
    folder = write_report(content, "r", "")
    (folder / "photos" / "p").mkdir(parents=True)
    (folder / "photos" / "p" / "a.png").write_bytes(_png(1))
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    out = folder / "photos" / "site"
    assert main(["build", "--content", str(content), "--out", str(out), "--cache", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err
    assert "inside the photos folder" in err and "Fix:" in err and "Traceback" not in err
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before  # no site, lock or cache


def test_builds_keep_a_worktree_and_stop_at_a_planted_file(small_content: Path, tmp_path: Path):
    """The whole build: a rebuild with nothing changed leaves the site with its CNAME and .git as it was; a
    file planted in the site stops the next build before any work; a real rebuild keeps the kept files."""
    from facetrend.build import BuildOptions, build

    options = BuildOptions(content=small_content, out=tmp_path / "site", cache=tmp_path / "cache", smoke=True)
    build(options)
    site = tmp_path / "site"
    (site / "CNAME").write_text("faces.example.org\n")
    (site / ".git").write_text("gitdir: ../.git/worktrees/site\n")
    assert build(options).written is False
    (site / "small" / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match=r"small/notes.txt.*Fix: move them out"):
        build(options)
    (site / "small" / "notes.txt").unlink()
    assert build(BuildOptions(content=small_content, out=site, cache=tmp_path / "cache", smoke=True,
                              retrain=True)).written
    assert (site / "CNAME").read_text() == "faces.example.org\n" and (site / ".git").exists()
