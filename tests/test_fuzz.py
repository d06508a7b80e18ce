"""Fuzz and property tests of what comes from users (issue 15): photo bytes, front matter, site.toml, Markdown,
people.csv.

The contract: whatever the bytes, the photo decoder returns grey pixels or raises Unreadable; loading
settings or people.csv returns them or raises UserError naming the file and the fix; an accepted narrative
renders; an accepted people.csv gives only safe folder names and publishable text.
Never any other exception, and each case within a time and memory bound (``within``), so a new crash
or hang is found here, not by a user.

Linux only (the memory bound is RLIMIT_AS over /proc/self/statm). Each property runs a few
seconds in CI. For a longer run by hand:
    FACETREND_FUZZ_EXAMPLES=2000 .venv/bin/python -m pytest tests/test_fuzz.py
"""

from __future__ import annotations

import io
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from facetrend import config
from facetrend.config import SiteSettings
from facetrend.decode import Unreadable, decode
from facetrend.errors import MESSAGE_MAX, UserError
from hypothesis import HealthCheck, given, settings
from hypothesis import event as _event
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context
from PIL import Image

EXAMPLES = int(os.environ.get("FACETREND_FUZZ_EXAMPLES", "60"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])
SECONDS = 10.0  # per case: catches hangs and blow-ups (minutes) on a busy CI machine; the worst accepted
# narrative measured 2.4 s and the worst photo 0.1 s (docs/reliability.md, "Bounds")
MEMORY_BYTES = 512 * 2**20  # address space a case may add: an enforced limit (RLIMIT_AS), so no tracing cost


def event(name: str) -> None:
    """hypothesis.event, also from the plain tests that share the helpers."""
    if currently_in_test_context():
        _event(name)


def _address_space() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")


def within(fn: Callable[[], Any], seconds: float = SECONDS, memory: int = MEMORY_BYTES) -> Any:
    """``fn()`` with at most ``memory`` more bytes of address space (else MemoryError), asserting its time."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = _address_space() + memory
    resource.setrlimit(resource.RLIMIT_AS, (cap if hard == resource.RLIM_INFINITY else min(cap, hard), hard))
    start = time.perf_counter()
    try:
        return fn()
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
        took = time.perf_counter() - start
        assert took <= seconds, f"took {took:.1f} s"


# ---------------------------------------------------------------- photo bytes


def _seed_images() -> dict[str, bytes]:
    """One small valid file of every format decode reads."""
    rng = np.random.default_rng(0)
    grey = Image.fromarray(rng.integers(0, 256, (20, 16), dtype=np.uint8), "L")
    rgb = grey.convert("RGB")
    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0x010F] = "Maker"
    exif[0x8769] = {0x9003: "2020:01:01 00:00:00"}
    files = {}
    for name, image, fmt, options in [
        ("jpeg-exif", rgb, "JPEG", {"exif": exif.tobytes()}), ("png", rgb.convert("RGBA"), "PNG", {}),
        ("webp", rgb, "WEBP", {}), ("bmp", rgb, "BMP", {}), ("gif", rgb.convert("P"), "GIF", {}),
        ("tiff", rgb, "TIFF", {"exif": exif.tobytes()}), ("pgm", grey, "PPM", {}), ("ppm", rgb, "PPM", {}),
    ]:
        buf = io.BytesIO()
        image.save(buf, fmt, **options)
        files[name] = buf.getvalue()
    return files


SEEDS = _seed_images()


@st.composite
def mutated(draw, seed: bytes) -> bytes:
    """``seed`` with a few bytes changed, inserted or deleted, and maybe truncated."""
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, 8))):
        at = draw(st.integers(0, len(data) - 1))
        how = draw(st.sampled_from(["set", "set", "insert", "delete", "extreme"]))
        if how == "set":
            data[at] = draw(st.integers(0, 255))
        elif how == "extreme":  # a size or count field at its limit
            data[at:at + 2] = draw(st.sampled_from([b"\xff\xff", b"\x00\x00", b"\x7f\xff"]))
        elif how == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif len(data) > 1:
            del data[at]
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]
    return bytes(data)


def test_every_seed_decodes():
    for name, data in SEEDS.items():
        assert decode(data, 10**6).shape in ((20, 16), (16, 20)), name


def _decode_or_unreadable(data: bytes) -> None:
    try:
        pixels = decode(data, 10**6)
    except Unreadable as exc:
        assert str(exc) and "MemoryError" not in str(exc)  # over the memory bound is a failure, not a reason
        event("unreadable")
        return
    assert pixels.dtype == np.uint8 and pixels.ndim == 2 and pixels.size > 0
    event("decoded")


@pytest.mark.parametrize("fmt", sorted(SEEDS))
def test_mutated_photos_decode_or_are_unreadable(fmt: str):
    @FUZZ
    @given(data=mutated(SEEDS[fmt]))
    def check(data: bytes) -> None:
        within(lambda: _decode_or_unreadable(data), seconds=5.0)

    check()


# ---------------------------------------------------------------- front matter YAML


_SCRATCH = Path(tempfile.mkdtemp(prefix="facetrend-fuzz-"))


def _front(text: str, body: str = "Words.\n") -> Path:
    folder = Path(tempfile.mkdtemp(dir=_SCRATCH)) / "r"
    folder.mkdir()
    (folder / "index.md").write_bytes(f"---\n{text}\n---\n{body}".encode("utf-8", "surrogatepass"))
    return folder


def _load_or_user_error(folder: Path) -> config.Report | None:
    try:
        return config.load_report(folder, SiteSettings())
    except UserError as exc:
        message = str(exc)
        assert str(folder / "index.md") in message and "Fix" in message, message
        assert len(message) <= MESSAGE_MAX
        event("UserError")
        return None


@st.composite
def alias_documents(draw) -> str:
    """Anchors built from earlier anchors, some wide, some self-referring: expansions from 1 to 10^9."""
    lines = ["a0: &a0 [x, 1, {k: v}]"]
    for i in range(1, draw(st.integers(1, 10))):
        newest = i if draw(st.integers(0, 9)) == 0 else i - 1  # now and then an anchor that holds itself
        refs = [f"*a{draw(st.integers(0, newest))}" for _ in range(draw(st.integers(1, 10)))]
        body = f"[{', '.join(refs)}]" if draw(st.booleans()) else "{" + ", ".join(
            f"k{j}: {r}" for j, r in enumerate(refs)) + "}"
        lines.append(f"a{i}: &a{i} {body}")
    key = draw(st.sampled_from(["title", "model", "experiments", "captions", "exclude", "model.hidden"]))
    last = f"*a{len(lines) - 1}"
    lines.append(f"model: {{hidden: {last}}}" if key == "model.hidden" else f"{key}: {last}")
    return "\n".join(lines)


@FUZZ
@given(text=alias_documents())
def test_aliases_load_or_are_refused_within_bounds(text: str):
    within(lambda: _load_or_user_error(_front(text)), seconds=5.0, memory=128 * 2**20)


HUGE_SIZES = st.sampled_from([0, 1, 999, 1000, 1001, 4096, 4097, 100_000, 900_000])
TEXT_KEYS = ["title", "description", "date", "photos", "preset", "publish_photos", "model.activation"]


@st.composite
def huge_or_odd_values(draw) -> str:
    key = draw(st.sampled_from(TEXT_KEYS + ["model.epochs", "captions.1", "exclude", "unknown"]))
    char = draw(st.sampled_from(["x", "\\x1b", "\\0", "\\t", "\\n", "\\x85", "é", "\\ud800", "\\uffff", "'"]))
    value = '"' + char * draw(HUGE_SIZES) + '"'
    if key == "exclude":
        value = f"[{value}]"
    head, _, leaf = key.rpartition(".")
    return f"{head}:\n  {leaf}: {value}" if head else f"{key}: {value}"


@FUZZ
@given(text=huge_or_odd_values())
def test_huge_and_odd_front_matter_values_load_or_are_refused(text: str):
    report = within(lambda: _load_or_user_error(_front(text)))
    if report is not None:
        for name in ("title", "description", "date"):
            value = getattr(report.settings, name)
            assert len(value) <= config.TEXT_MAX_CHARS and not config.TEXT_REFUSED.search(value)


# ---------------------------------------------------------------- site.toml


@st.composite
def site_tomls(draw) -> str:
    key = draw(st.sampled_from(["title", "description", "author", "language", "base_url", "defaults.title",
                                "trends.description", "defaults.captions.0"]))
    char = draw(st.sampled_from(["x", "\\u001b", "\\u0000", "\\t", "\\n", "\\u0085", "é", "\\uffff", "\\\\"]))
    value = '"' + char * draw(HUGE_SIZES) + '"'
    head, _, leaf = key.rpartition(".")
    return (f"[{head}]\n" if head else "") + f'"{leaf}" = {value}\n'


@FUZZ
@given(text=site_tomls())
def test_site_toml_texts_load_or_are_refused(text: str):
    content = Path(tempfile.mkdtemp(dir=_SCRATCH))
    (content / "site.toml").write_text(text, encoding="utf-8")

    def load() -> SiteSettings | None:
        try:
            return config.load_site(content)
        except UserError as exc:
            assert str(content / "site.toml") in str(exc) and "Fix" in str(exc), str(exc)
            assert len(str(exc)) <= MESSAGE_MAX
            return None

    site = within(load)
    if site is not None:
        for value in (site.title, site.description, site.author, site.language):
            assert len(value) <= config.TEXT_MAX_CHARS and not config.TEXT_REFUSED.search(value)


# ---------------------------------------------------------------- Markdown narratives

MARKDOWN_TOKENS = ["[", "]", "(", ")", "![", "[^1]", "[^1]: n\n", "*[A]: b\n", "<", ">", "<a ", "</div>",
                   '<div markdown="1">', "<!--", "-->", "*", "_", "**", "`", "```\n", "~~~\n", "#", "# h\n",
                   "> ", "- ", "1. ", "    ", "\t", "\n", "\n\n", ": ", "|", "-|-\n", "{: #x}", "\\", "&amp;",
                   "&#", "http://x.y", "[x]: http://y\n", "[x][]", "word ", "    - ", "\n    "]
CI_MAX_CHARS = 30_000  # what CI renders per example (a longer run by hand raises it to the real bound)


@st.composite
def narratives(draw) -> str:
    """Markdown tokens at random; sometimes one chunk repeated up to the size bound (the slow cases)."""
    chunk = "".join(draw(st.lists(st.sampled_from(MARKDOWN_TOKENS) | st.text(max_size=3), max_size=30)))
    times = draw(st.sampled_from([1, 1, 10, 100, 1000, 10_000]))
    limit = config.NARRATIVE_MAX_CHARS if EXAMPLES > 100 else CI_MAX_CHARS
    return (chunk * times)[: draw(st.integers(0, limit + 10))]


def _load_and_render(body: str) -> None:
    from facetrend.render import narrative_html

    report = _load_or_user_error(_front("title: x", body))
    if report is not None:
        event("rendered")
        assert isinstance(narrative_html(report.narrative, allow_html=False), str)


@FUZZ
@given(body=narratives())
def test_any_narrative_is_refused_or_renders_within_bounds(body: str):
    within(lambda: _load_and_render(body))


@pytest.mark.parametrize("body", [
    pytest.param("[" * 1413, id="brackets-at-the-budget"),
    pytest.param("[" * 49 + "b" * 20_000, id="brackets-then-text"),
    pytest.param("x[^1] " * 300 + "\n\n[^1]: y", id="footnote-marks-at-the-bound"),
    pytest.param("*[x]: y\n\n" * 100 + "x y " * 20_000, id="abbreviations-at-the-bound"),
    pytest.param("".join("    " * i + "- x\n" for i in range(16)), id="lists-16-deep"),
    pytest.param("*_" * (config.NARRATIVE_MAX_CHARS // 2), id="emphasis-at-the-size-bound"),
])
def test_the_worst_accepted_narratives_render_in_time(body: str):
    within(lambda: _load_and_render(body))


# ---------------------------------------------------------------- people.csv


PEOPLE_SEED = ('person,name,university,photo_url\n'
               'ann,Ann Lee,"Uni, North",https://example.org/a.jpg https://example.org/b.jpg\n'
               '"b\'o/b",Bo,"two\nlines",\n'
               '山田,山田花子,東大,\n')
CSV_PIECES = [",", '"', '""', "\n", "\r\n", "\r", " ", "\t", "person", "name", "photo_url", "a", "é", "/", "..",
              ".", "\x00", "\x1b", "\x7f", "\x85", "\ufeff", "\u2028", "\ud800", "\uffff", "x" * 1001]


@st.composite
def people_csvs(draw) -> bytes:
    """people.csv files: a valid one mutated byte by byte, or one pieced together from CSV's hard parts."""
    if draw(st.booleans()):
        return draw(mutated(PEOPLE_SEED.encode()))
    pieces = draw(st.lists(st.sampled_from(CSV_PIECES), max_size=60))
    text = draw(st.sampled_from(["person,name\n", "person,name,photo_url\n", "name\n", ""])) + "".join(pieces)
    return text.encode("utf-8", "surrogatepass")


def _people_or_user_error(data: bytes) -> None:
    from facetrend import collect

    folder = Path(tempfile.mkdtemp(dir=_SCRATCH))
    (folder / "people.csv").write_bytes(data)
    report = config.Report("r", folder, folder / "index.md", config.ReportSettings(), "")
    try:
        people, urls = collect.read_people(report), collect.photo_urls(report)
    except UserError as exc:
        message = str(exc)
        assert str(folder / "people.csv") in message and "Fix" in message, message
        assert len(message) <= MESSAGE_MAX
        event("UserError")
        return
    event("read" if people else "empty")
    for person, profile in people.items():
        assert person == collect.safe_person(person) and "/" not in person and not person.startswith(".")
        for text in [person, *profile, *profile.values()]:
            assert not config.TEXT_REFUSED.search(text) and len(text) <= config.TEXT_MAX_CHARS, repr(text)
    assert all(isinstance(url, str) and url for _, url in urls)


@FUZZ
@given(data=people_csvs())
def test_any_people_csv_is_read_or_refused_within_bounds(data: bytes):
    within(lambda: _people_or_user_error(data), seconds=5.0, memory=128 * 2**20)


@pytest.mark.parametrize("data", [
    pytest.param(b"person,name\n" + b"p,\"" + b"x" * 200_000 + b"\"\n", id="one-huge-field"),
    pytest.param(b"person,name\n" + b"p,n\n" * 100_000, id="100000-rows"),
    pytest.param(b"person,name\n" + b'p,"never closed' + b"\nq,x" * 10_000, id="unclosed-quote"),
    pytest.param(b"person," + b"c," * 50_000 + b"\n", id="50000-columns"),
])
def test_the_worst_people_csvs_are_read_or_refused_in_time(data: bytes):
    within(lambda: _people_or_user_error(data), seconds=5.0, memory=256 * 2**20)
