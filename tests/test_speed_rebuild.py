"""The no-change rebuild as a user runs it: a fresh process that imports nothing heavy and reads no photo
whose path, size and times are what they were when the last build hashed it."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from facetrend import collect, incremental, render
from facetrend.build import BuildOptions, build

from .conftest import REPO, tree_bytes

HEAVY = ("torch", "sklearn", "scipy", "matplotlib", "cv2", "skimage", "dlib", "threadpoolctl")
FRONT = ("numpy", "jinja2", "markdown", "PIL")  # what renders pages: not imported when the front is as it was

CHILD = """
import json, sys
from facetrend.cli import main
code = main(sys.argv[1:])
print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""


def _options(content: Path, tmp: Path) -> BuildOptions:
    return BuildOptions(content=content, out=tmp / "site", cache=tmp / "cache")


def _photo(content: Path) -> Path:
    return sorted((content / "small" / "photos").rglob("*.pgm"))[0]


def _make_old(content: Path) -> None:
    """Photos last changed a minute ago: hashes of files changed just now are not remembered (RACY_NS)."""
    for path in (content / "small" / "photos").rglob("*.pgm"):
        stat = path.stat()
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns - 60 * 10**9))


@pytest.fixture
def reads(monkeypatch) -> list[str]:
    """The photos whose bytes are hashed from here on, as a fresh process would (no per-process memo)."""
    monkeypatch.setattr(collect, "_HASHES", {})
    read, real = [], collect.Photo.content_hash

    def counted(photo: collect.Photo) -> str:
        if photo.path is not None and (str(photo.path), photo.path.stat().st_size,
                                       photo.path.stat().st_mtime_ns) not in collect._HASHES:
            read.append(photo.source)
        return real(photo)

    monkeypatch.setattr(collect.Photo, "content_hash", counted)
    return read


def test_a_no_change_rebuild_process_imports_nothing_heavy(small_content: Path, tmp_path: Path):
    build(_options(small_content, tmp_path))
    done = subprocess.run([sys.executable, "-c", CHILD, "build", "--content", str(small_content),
                           "--out", str(tmp_path / "site"), "--cache", str(tmp_path / "cache")],
                          capture_output=True, text=True, cwd=REPO, timeout=120)
    child = json.loads(done.stdout.strip().splitlines()[-1])
    assert child["code"] == 0 and "nothing changed" in done.stderr
    heavy = sorted({m.split(".")[0] for m in child["modules"]} & set(HEAVY + FRONT))
    assert heavy == [], f"a no-change rebuild imported {heavy}"


def test_unchanged_photos_are_not_read_again(small_content: Path, tmp_path: Path, reads: list[str]):
    _make_old(small_content)
    build(_options(small_content, tmp_path))
    total = len(reads)
    assert total == 30
    collect._HASHES.clear()  # a fresh process
    assert not build(_options(small_content, tmp_path)).written
    assert len(reads) == total  # not one photo read


def test_a_touched_photo_is_read_and_content_still_decides(small_content: Path, tmp_path: Path, reads: list[str]):
    _make_old(small_content)
    build(_options(small_content, tmp_path))
    photo, total = _photo(small_content), len(reads)
    collect._HASHES.clear()
    os.utime(photo, ns=(photo.stat().st_atime_ns, photo.stat().st_mtime_ns + 10**9))  # as a fresh checkout does
    assert not build(_options(small_content, tmp_path)).written  # same bytes: nothing changed
    assert reads[total:] == [photo.relative_to(small_content / "small" / "photos").as_posix()]


def test_an_edit_that_keeps_size_and_mtime_is_still_seen(small_content: Path, tmp_path: Path, reads: list[str]):
    _make_old(small_content)
    first = build(_options(small_content, tmp_path))
    photo = _photo(small_content)
    before = photo.stat()
    data = bytearray(photo.read_bytes())
    data[-1] ^= 0xFF  # one pixel, same size
    photo.write_bytes(bytes(data))
    os.utime(photo, ns=(before.st_atime_ns, before.st_mtime_ns))  # mtime put back: only ctime tells
    collect._HASHES.clear()
    second = build(_options(small_content, tmp_path))
    assert second.written and second.reports and first.reports


def test_the_remembered_hashes_live_beside_the_stamps_and_leave_them_alone(small_content: Path, tmp_path: Path):
    _make_old(small_content)
    build(_options(small_content, tmp_path))
    data = json.loads((tmp_path / "cache" / "site-stamps.json").read_text())
    assert len(data[incremental.HASHES_KEY]) == 30
    assert set(incremental.load(tmp_path / "cache", tmp_path / "site")) == {"small", incremental.FRONT_KEY}


def _front_not_rendered(monkeypatch) -> None:
    def refused(*_args, **_kwargs):
        raise AssertionError("the front was rendered again")

    monkeypatch.setattr(render, "render_index", refused)


def test_a_no_change_build_leaves_the_front_unrendered(small_content: Path, tmp_path: Path, monkeypatch):
    build(_options(small_content, tmp_path))
    _front_not_rendered(monkeypatch)
    again = build(_options(small_content, tmp_path))
    assert not again.written and again.reports == []


def test_a_front_page_edited_by_hand_is_written_again(small_content: Path, tmp_path: Path):
    build(_options(small_content, tmp_path))
    index = tmp_path / "site" / "index.html"
    built = index.read_bytes()
    index.write_bytes(built.replace(b"Test site", b"Edited by hand"))
    again = build(_options(small_content, tmp_path))
    assert again.written and again.reports == []  # the front written again, the report's pages kept
    assert index.read_bytes() == built


def test_a_new_build_date_renders_the_front_again(small_content: Path, tmp_path: Path, monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1767225600")  # 2026-01-01
    build(_options(small_content, tmp_path))
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1798761600")  # 2027-01-01
    again = build(_options(small_content, tmp_path))
    assert again.written
    assert b"2027-01-01" in (tmp_path / "site" / "index.html").read_bytes()


def test_a_record_without_the_front_is_mended_by_a_no_change_build(small_content: Path, tmp_path: Path,
                                                                     monkeypatch):
    """A cache from before the front was recorded: the next build renders the front, finds it unchanged,
    writes nothing to the site, and records it; the build after need not render it."""
    build(_options(small_content, tmp_path))
    path = tmp_path / "cache" / "site-stamps.json"
    data = json.loads(path.read_text())
    del data[str((tmp_path / "site").resolve())][incremental.FRONT_KEY]
    path.write_text(json.dumps(data))
    site = tree_bytes(tmp_path / "site")
    assert not build(_options(small_content, tmp_path)).written
    assert tree_bytes(tmp_path / "site") == site
    _front_not_rendered(monkeypatch)
    assert not build(_options(small_content, tmp_path)).written
