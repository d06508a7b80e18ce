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
