"""The downloader behind `facetrend fetch`: photo URLs -> photos/<person>/<hash>.<ext>, politely and safely.

Each URL is downloaded once: a JSON state file remembers its ETag, Last-Modified and SHA-256, and later runs
ask the server with a conditional GET. robots.txt is obeyed, each host is paced (default 1 request/s, the
robots.txt request included), 429/5xx/connection errors are retried with exponential backoff (Retry-After
honoured), bodies are streamed under a size cap and must be images, and no person name or URL can place a
file outside the photos folder. Each download has an overall deadline (``FetchSettings.deadline``), so a
server that trickles a byte every few seconds (each read under the timeout) cannot hold the run forever;
a partial download's hidden ``.part`` file is removed, and one left by a killed run is removed by the next.
Redirects are followed here, hop by hop, so that every hop is paced and checked against robots.txt too.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import signal
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path, PurePosixPath
from typing import IO, Any
from urllib.parse import urljoin, urlsplit
from urllib.robotparser import RobotFileParser

import requests

from . import __version__, progress
from .cache import fetch_state, read_json, write_json
from .collect import photo_urls, photos_root, safe_person  # safe_person: the folder a person gets, as collect reads it
from .config import find_reports, load_site

log = logging.getLogger(__name__)

MAX_WAIT = 60.0  # seconds: the longest Retry-After, backoff or Crawl-delay this fetcher will wait
ROBOTS_MAX_BYTES = 512_000
CHUNK = 64 * 1024
HEAD = 32  # bytes kept from the start of a body to recognise the image type
ACCEPT = "image/jpeg, image/png, image/webp, image/*;q=0.8"
NAME_PATTERN = re.compile(r"[0-9a-f]{16}\.[a-z]{3,4}")  # the only file names this module writes
PART_PREFIX, PART_SUFFIX = ".fetch-", ".part"  # a download in progress: hidden, so collect never reads it
NOT_IMAGE_MAJOR = frozenset({"text", "audio", "video", "font", "multipart", "model", "message"})
NOT_IMAGE_APP = re.compile(r"application/(.*\+)?(json|xml|html|javascript|ecmascript|pdf|zip|gzip|x-tar|x-sh)")
MAGIC = (
    (b"\xff\xd8\xff", ".jpg"),
    (b"\x89PNG\r\n\x1a\n", ".png"),
    (b"GIF87a", ".gif"),
    (b"GIF89a", ".gif"),
    (b"II*\x00", ".tif"),
    (b"MM\x00*", ".tif"),
)
NETPBM = {b"1": ".pbm", b"4": ".pbm", b"2": ".pgm", b"5": ".pgm", b"3": ".ppm", b"6": ".ppm"}
BMP_DIB_SIZES = frozenset({12, 16, 40, 52, 56, 64, 108, 124})


@dataclass(frozen=True)
class FetchSettings:
    rate: float = 1.0  # requests per second per host
    timeout: float = 20.0  # seconds, connect and read
    max_bytes: int = 20_000_000  # size cap per photo
    retries: int = 3  # extra attempts on 429, 5xx and connection errors, with exponential backoff
    backoff: float = 1.0  # first backoff in seconds (doubles each retry; Retry-After wins; capped at 60 s)
    user_agent: str = f"facetrend/{__version__} (+https://github.com/facetrend/facetrend)"
    max_redirects: int = 5
    deadline: float = 300.0  # seconds for one URL, all of it: robots.txt, redirects, retries, the body

    def __post_init__(self) -> None:
        if not (self.rate > 0 and self.timeout > 0 and self.max_bytes > 0 and self.deadline > 0):
            raise ValueError("FetchSettings: rate, timeout, max_bytes and deadline must be positive")
        if min(self.retries, self.max_redirects) < 0 or self.backoff < 0:
            raise ValueError("FetchSettings: retries, max_redirects and backoff must not be negative")


@dataclass(frozen=True)
class Fetched:
    url: str
    person: str
    path: str | None  # relative to photos_dir, posix, when the photo is on disk (also a kept copy when skipped)
    status: str  # "downloaded" | "unchanged" | "skipped"
    reason: str = ""  # why skipped, in plain words


class _Skip(Exception):
    """This URL cannot be fetched now; the message says why, in plain words."""


@dataclass(frozen=True)
class _Robots:
    parser: RobotFileParser
    reason: str = "disallowed by robots.txt"


@dataclass
class _Run:
    settings: FetchSettings
    session: requests.Session
    clock: Callable[[], float]
    sleep: Callable[[float], None]
    photos_dir: Path  # resolved
    state: dict[str, dict[str, Any]]
    last: dict[str, float] = field(default_factory=dict)  # host -> clock() of its last request
    delay: dict[str, float] = field(default_factory=dict)  # host -> Crawl-delay from its robots.txt
    robots: dict[str, _Robots] = field(default_factory=dict)  # scheme://netloc -> its rules


def fetch_photos(entries: list[tuple[str, str]], photos_dir: Path, state_file: Path,
                 settings: FetchSettings = FetchSettings(), session: requests.Session | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> list[Fetched]:
    """Download each (person, url) into photos_dir/<safe person>/<name>; never twice."""
    photos_dir.mkdir(parents=True, exist_ok=True)
    _remove_stale_parts(photos_dir, settings)
    run = _Run(settings, session or requests.Session(), clock, sleep, photos_dir.resolve(), load_state(state_file))
    try:
        results = _fetch_all(entries, run)
    finally:
        save_state(state_file, run.state)
        if session is None:
            run.session.close()
    counts = Counter(r.status for r in results)
    log.info("fetch: %d downloaded, %d unchanged, %d skipped", counts["downloaded"], counts["unchanged"],
             counts["skipped"])
    return results


def fetch_reports(content: Path, cache: Path, only: str | None, rate: float) -> Iterator[tuple[str, list[Fetched]]]:
    """`facetrend fetch`: (slug, results) for every report (or only ``only``) whose people.csv lists photo URLs.

    What was downloaded is remembered in <cache>/fetch/<slug>.json.
    """
    for report in find_reports(content, load_site(content), only):
        entries = photo_urls(report)
        if entries:
            state = fetch_state(cache, report.slug)
            yield report.slug, fetch_photos(entries, photos_root(report), state, FetchSettings(rate=rate))


def _fetch_all(entries: Iterable[tuple[str, str]], run: _Run) -> list[Fetched]:
    done: dict[tuple[str, str], Fetched] = {}
    results = []
    for person, url in progress.bar(entries, desc="fetch", unit="photo"):
        key = (safe_person(person), url)
        if key not in done:
            done[key] = _fetch_one(person, url, run)
        results.append(done[key])
    return results


def _fetch_one(person: str, url: str, run: _Run) -> Fetched:
    folder = safe_person(person)
    cached = _cached(url, folder, run)
    try:
        with _deadline(run.settings.deadline):
            result = _download(person, url, folder, cached, run)
    except _Skip as skip:
        result = Fetched(url, person, cached, "skipped", str(skip))
    except requests.RequestException as error:
        result = Fetched(url, person, cached, "skipped", f"download failed ({type(error).__name__})")
    if result.status == "skipped":
        log.warning("%s (%s): skipped: %s", url, person, result.reason)
    else:
        log.info("%s (%s): %s -> %s", url, person, result.status, result.path)
    return result


def _download(person: str, url: str, folder: str, cached: str | None, run: _Run) -> Fetched:
    headers = _conditional(run.state[url]) if cached else {}
    if cached and not headers:  # on disk, and the server gave nothing to revalidate with: never fetch twice
        return Fetched(url, person, cached, "unchanged")
    response = _follow(url, headers, run)
    with response:
        if response.status_code == 304 and cached:
            return Fetched(url, person, cached, "unchanged")
        _check_response(response, run.settings)
        rel, sha256 = _save(response, folder, url, run)
    _remember(url, rel, sha256, response, run)
    return Fetched(url, person, rel, "downloaded")


@contextmanager
def _deadline(seconds: float) -> Iterator[None]:
    """Stop the block with _Skip after ``seconds`` of wall time, even inside a blocked read.

    A read timeout bounds each read, not a download: a server sending a byte every few seconds (headers or
    body) passes every read. On the main thread a SIGALRM timer interrupts the read wherever it is; elsewhere
    (no signals there) the body loop checks the time between reads (``_copy``).
    """
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        yield
        return

    def expire(signum: int, frame: object) -> None:
        raise _Skip(_late(seconds))

    previous = signal.signal(signal.SIGALRM, expire)
    start = time.monotonic()
    outer, _ = signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if outer:  # someone else's timer was running (a test runner's timeout): give it its remaining time
            signal.setitimer(signal.ITIMER_REAL, max(0.001, outer - (time.monotonic() - start)))


def _late(seconds: float) -> str:
    return f"took longer than {seconds:g} s, the deadline for one download (the server sends too slowly)"


def _remove_stale_parts(photos_dir: Path, settings: FetchSettings) -> None:
    """Remove the .part files of downloads a killed run left; ones younger than a download may take are kept
    (another fetch may be writing them)."""
    oldest = time.time() - settings.deadline - settings.timeout
    for path in photos_dir.glob(f"{PART_PREFIX}*{PART_SUFFIX}"):
        try:
            if path.is_file() and not path.is_symlink() and path.stat().st_mtime < oldest:
                path.unlink()
                log.info("removed %s, left by an interrupted fetch", path.name)
        except OSError as error:
            log.warning("could not remove %s (%s)", path.name, error)


# --- names and paths ---------------------------------------------------------------------------------------


def url_name(url: str) -> str:
    """The file name stem for a URL: nothing from the URL itself, only the first 16 hex of its SHA-256."""
    return hashlib.sha256(url.encode("utf-8")).hexdigest()[:16]


def _inside(root: Path, rel: str) -> Path:
    target = root / rel
    if not target.resolve().is_relative_to(root):
        raise _Skip(f"the path {rel!r} would lie outside the photos folder")
    return target


def _cached(url: str, folder: str, run: _Run) -> str | None:
    """The relative path of this URL's copy in this person's folder, when it is on disk and intact."""
    entry = run.state.get(url)
    name = PurePosixPath(str(entry.get("path", ""))).name if isinstance(entry, dict) else ""
    if not NAME_PATTERN.fullmatch(name):
        return None
    rel = f"{folder}/{name}"
    try:
        path = _inside(run.photos_dir, rel)
    except _Skip:
        return None
    return rel if path.is_file() and _sha256(path) == entry.get("sha256") else None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


# --- HTTP: pacing, retries, redirects, robots.txt ----------------------------------------------------------


def _follow(url: str, headers: dict[str, str], run: _Run, robots: bool = True) -> requests.Response:
    """GET url, following redirects ourselves so that each hop is checked, paced and retried."""
    for _ in range(run.settings.max_redirects + 1):
        _check_url(url)
        if robots:
            _check_robots(url, run)
        response = _get(url, headers, run)
        if not response.is_redirect:
            return response
        response.close()
        url = urljoin(url, response.headers["Location"])
    raise _Skip("too many redirects")


def _check_url(url: str) -> None:
    try:
        parts = urlsplit(url)
    except ValueError as error:
        raise _Skip(f"not a valid URL ({error})") from error
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise _Skip(f"not an http or https URL ({parts.scheme or 'no'} scheme)")


def _get(url: str, headers: dict[str, str], run: _Run) -> requests.Response:
    """One GET, no redirects followed, retried with backoff on 429, 5xx and connection errors."""
    for attempt in range(run.settings.retries):
        outcome = _send(url, headers, run)
        if isinstance(outcome, requests.Response) and not _retryable(outcome.status_code):
            return outcome
        _wait_to_retry(url, outcome, attempt, run)
    outcome = _send(url, headers, run)
    if isinstance(outcome, requests.Response):
        return outcome
    raise _Skip(f"connection failed after {run.settings.retries + 1} attempts ({type(outcome).__name__})")


def _send(url: str, headers: dict[str, str], run: _Run) -> requests.Response | requests.RequestException:
    _pace(url, run)
    try:
        return run.session.get(url, headers={"User-Agent": run.settings.user_agent, "Accept": ACCEPT, **headers},
                               timeout=run.settings.timeout, stream=True, allow_redirects=False)
    except (requests.ConnectionError, requests.Timeout) as error:
        return error


def _retryable(status: int) -> bool:
    return status == 429 or 500 <= status < 600


def _wait_to_retry(url: str, outcome: requests.Response | Exception, attempt: int, run: _Run) -> None:
    delay = run.settings.backoff * 2**attempt
    if isinstance(outcome, requests.Response):
        told = _retry_after(outcome)
        delay = delay if told is None else told
        what = f"HTTP {outcome.status_code}"
        outcome.close()
    else:
        what = type(outcome).__name__
    delay = min(delay, MAX_WAIT)
    log.info("%s: %s; retrying in %.1f s", url, what, delay)
    run.sleep(delay)


def _retry_after(response: requests.Response) -> float | None:
    """Seconds from a Retry-After header (a number or an HTTP date); None when absent or unreadable."""
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    when = when if when.tzinfo else when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _pace(url: str, run: _Run) -> None:
    """Wait until this host's last request is at least 1/rate (or its Crawl-delay) seconds ago."""
    host = (urlsplit(url).hostname or "").lower()
    interval = max(1.0 / run.settings.rate, run.delay.get(host, 0.0))
    if host in run.last:
        wait = run.last[host] + interval - run.clock()
        if wait > 0:
            run.sleep(wait)
    run.last[host] = run.clock()


def _check_robots(url: str, run: _Run) -> None:
    parts = urlsplit(url)
    origin = f"{parts.scheme.lower()}://{parts.netloc.lower()}"
    if origin not in run.robots:
        run.robots[origin] = _load_robots(origin, run)
    robots = run.robots[origin]
    if not robots.parser.can_fetch(run.settings.user_agent, url):
        raise _Skip(robots.reason)


def _load_robots(origin: str, run: _Run) -> _Robots:
    parser = RobotFileParser(origin + "/robots.txt")
    try:
        response = _follow(origin + "/robots.txt", {}, run, robots=False)
        with response:
            return _parse_robots(parser, response, run)
    except (_Skip, requests.RequestException) as error:
        why = str(error) if isinstance(error, _Skip) else type(error).__name__
        return _blocked(parser, f"robots.txt unreachable ({why}); host treated as disallowed")


def _parse_robots(parser: RobotFileParser, response: requests.Response, run: _Run) -> _Robots:
    code = response.status_code
    if code in (401, 403):  # as urllib.robotparser does: a forbidden robots.txt forbids everything
        return _blocked(parser, f"robots.txt answered HTTP {code}; host treated as disallowed")
    if 400 <= code < 500:  # no robots.txt: everything allowed
        parser.allow_all = True
        return _Robots(parser)
    if code != 200:
        return _blocked(parser, f"robots.txt unreachable (HTTP {code}); host treated as disallowed")
    parser.parse(_read_capped(response, ROBOTS_MAX_BYTES).decode("utf-8", "replace").splitlines())
    delay = parser.crawl_delay(run.settings.user_agent)
    if delay:
        run.delay[(urlsplit(parser.url).hostname or "").lower()] = min(float(delay), MAX_WAIT)
    return _Robots(parser)


def _blocked(parser: RobotFileParser, reason: str) -> _Robots:
    log.warning("%s: %s", parser.url, reason)
    parser.disallow_all = True
    return _Robots(parser, reason)


def _read_capped(response: requests.Response, cap: int) -> bytes:
    data = bytearray()
    for chunk in response.iter_content(CHUNK):
        data += chunk[: cap - len(data)]
        if len(data) >= cap:
            break
    return bytes(data)


# --- the body: checks, writing, the cache ------------------------------------------------------------------


def _check_response(response: requests.Response, settings: FetchSettings) -> None:
    code = response.status_code
    if code != 200:
        tries = f" after {settings.retries + 1} attempts" if _retryable(code) and settings.retries else ""
        raise _Skip(f"HTTP {code}{tries}")
    kind = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if kind.split("/")[0] in NOT_IMAGE_MAJOR or NOT_IMAGE_APP.fullmatch(kind):
        raise _Skip(f"not an image ({kind})")
    length = response.headers.get("Content-Length", "").strip()
    if length.isdigit() and int(length) > settings.max_bytes:
        raise _Skip(f"larger than {_size(settings.max_bytes)}")


def _size(n: int) -> str:
    return f"{n / 1_000_000:g} MB" if n >= 1_000_000 else f"{n:,} bytes"


def image_type(head: bytes) -> str | None:
    """The file extension of the image format these first bytes begin, or None when they begin none."""
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return ".webp"
    if head[:2] == b"BM" and len(head) >= 18 and int.from_bytes(head[14:18], "little") in BMP_DIB_SIZES:
        return ".bmp"
    if len(head) >= 3 and head[:1] == b"P" and head[2:3].isspace():
        return NETPBM.get(head[1:2])
    return next((ext for magic, ext in MAGIC if head.startswith(magic)), None)


def _save(response: requests.Response, folder: str, url: str, run: _Run) -> tuple[str, str]:
    """Stream the body to a hidden temp file, check it, rename it to <folder>/<hash><ext>: (rel path, sha256)."""
    digest = hashlib.sha256()
    fd, tmp = tempfile.mkstemp(prefix=PART_PREFIX, suffix=PART_SUFFIX, dir=run.photos_dir)
    try:
        with os.fdopen(fd, "wb") as out:
            ext = image_type(_copy(response, out, digest, run.settings))
        if ext is None:
            raise _Skip("not an image (the bytes are not JPEG, PNG, GIF, WebP, BMP, TIFF or PGM/PPM)")
        rel = f"{folder}/{url_name(url)}{ext}"
        target = _inside(run.photos_dir, rel)
        target.parent.mkdir(exist_ok=True)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return rel, digest.hexdigest()


def _copy(response: requests.Response, out: IO[bytes], digest: Any, settings: FetchSettings) -> bytes:
    """Copy the body to out, hashing it; stop as soon as it passes the size cap or the deadline (checked
    between reads, for when no timer can interrupt one). Returns its first HEAD bytes."""
    head, total, cap, ends = b"", 0, settings.max_bytes, time.monotonic() + settings.deadline
    for chunk in response.iter_content(CHUNK):
        total += len(chunk)
        if total > cap:
            raise _Skip(f"larger than {_size(cap)}")
        if time.monotonic() > ends:
            raise _Skip(_late(settings.deadline))
        head += chunk[: HEAD - len(head)]
        digest.update(chunk)
        out.write(chunk)
    return head


def _conditional(entry: dict[str, Any]) -> dict[str, str]:
    headers = {}
    if entry.get("etag"):
        headers["If-None-Match"] = str(entry["etag"])
    if entry.get("last_modified"):
        headers["If-Modified-Since"] = str(entry["last_modified"])
    return headers


def _remember(url: str, rel: str, sha256: str, response: requests.Response, run: _Run) -> None:
    old = PurePosixPath(str(run.state.get(url, {}).get("path", "")))
    if NAME_PATTERN.fullmatch(old.name) and old.name != PurePosixPath(rel).name:  # the image type changed
        (run.photos_dir / PurePosixPath(rel).parent / old.name).unlink(missing_ok=True)
    run.state[url] = {"path": rel, "etag": response.headers.get("ETag"),
                      "last_modified": response.headers.get("Last-Modified"), "sha256": sha256}


def load_state(path: Path) -> dict[str, dict[str, Any]]:
    """The fetch cache: url -> {path, etag, last_modified, sha256}; empty when missing or unreadable (logged)."""
    data = read_json(path, "fetch cache")
    return {k: v for k, v in data.items() if isinstance(v, dict)} if isinstance(data, dict) else {}


def save_state(path: Path, state: dict[str, dict[str, Any]]) -> None:
    """Write the fetch cache atomically (temp file + rename), keys sorted; a failure is logged, and the next
    run asks the servers again (the photos themselves are kept)."""
    write_json(path, state, "fetch cache", indent=2)
