"""The photo downloader (`facetrend fetch`) against a local http.server on 127.0.0.1, with a fake clock."""

from __future__ import annotations

import io
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
from facetrend.fetch import Fetched, FetchSettings, fetch_photos, image_type, safe_person, url_name
from PIL import Image


def png_bytes(size: int = 8) -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (size, size), 128).save(buffer, "PNG")
    return buffer.getvalue()


PNG = png_bytes()


@dataclass
class Reply:
    status: int = 200
    body: bytes = PNG
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "image/png"})
    length: bool = True  # send a Content-Length header
    delay: float = 0.0  # real seconds to wait before answering
    trickle: float = 0.0  # real seconds between bytes: the whole answer, or only the body with trickle_body
    trickle_body: bool = False


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    at: float  # the fake clock when the request arrived


class FakeClock:
    """clock() and sleep() for fetch_photos: sleeping only moves the clock."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


Route = list[Reply] | Callable[[dict[str, str]], Reply]


class Server:
    """A ThreadingHTTPServer on 127.0.0.1 whose answers the test sets per path; unknown paths answer 404."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.seen: list[Seen] = []
        self.clock = FakeClock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def reply(self, path: str, headers: dict[str, str]) -> Reply:
        self.seen.append(Seen(path, headers, self.clock.now))
        route = self.routes.get(path, [Reply(404, b"not found", {"Content-Type": "text/plain"})])
        if callable(route):
            return route(headers)
        return route.pop(0) if len(route) > 1 else route[0]

    def paths(self) -> list[str]:
        return [s.path for s in self.seen]


def _handler(server: Server) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            reply = server.reply(self.path, dict(self.headers))
            time.sleep(reply.delay)
            if reply.trickle:
                return self._trickle(reply)
            try:
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                if reply.length and "Content-Length" not in reply.headers:
                    self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client stopped reading, as it should for an oversize body

        def _trickle(self, reply: Reply) -> None:
            head = (f"HTTP/1.1 {reply.status} OK\r\nContent-Length: {len(reply.body)}\r\n"
                    + "".join(f"{k}: {v}\r\n" for k, v in reply.headers.items()) + "\r\n").encode()
            slow = reply.body if reply.trickle_body else head + reply.body
            try:
                if reply.trickle_body:
                    self.wfile.write(head)
                for i in range(len(slow)):
                    self.wfile.write(slow[i:i + 1])
                    self.wfile.flush()
                    time.sleep(reply.trickle)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up, as it should

        def log_message(self, *args: object) -> None:
            pass

    return Handler


@pytest.fixture
def server() -> Iterator[Server]:
    srv = Server()
    srv.thread.start()
    yield srv
    srv.httpd.shutdown()
    srv.httpd.server_close()


def local_session() -> requests.Session:
    """A session that ignores proxy settings from the environment: requests go to 127.0.0.1 only."""
    session = requests.Session()
    session.trust_env = False
    return session


def fetch(server: Server, tmp_path: Path, entries: list[tuple[str, str]], **settings: object) -> list[Fetched]:
    options = {"backoff": 0.01, "timeout": 5.0, **settings}
    with local_session() as session:
        return fetch_photos(entries, tmp_path / "photos", tmp_path / "state.json", FetchSettings(**options),
                            session=session, clock=server.clock, sleep=server.clock.sleep)


def files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


# --- the cache ---------------------------------------------------------------------------------------------


def test_downloaded_then_unchanged_by_etag(server: Server, tmp_path: Path) -> None:
    def route(headers: dict[str, str]) -> Reply:
        if headers.get("If-None-Match") == '"v1"':
            return Reply(304, b"", {})
        return Reply(headers={"Content-Type": "image/png", "ETag": '"v1"'})

    server.routes["/a.png"] = route
    url = server.url("/a.png")
    [first] = fetch(server, tmp_path, [("alice", url)])
    assert first == Fetched(url, "alice", f"alice/{url_name(url)}.png", "downloaded")
    assert (tmp_path / "photos" / first.path).read_bytes() == PNG
    state = json.loads((tmp_path / "state.json").read_text(encoding="utf-8"))
    assert state[url]["etag"] == '"v1"' and state[url]["path"] == first.path and len(state[url]["sha256"]) == 64
    assert list(state[url]) == sorted(state[url])

    [second] = fetch(server, tmp_path, [("alice", url)])
    assert second.status == "unchanged" and second.path == first.path
    assert server.seen[-1].headers.get("If-None-Match") == '"v1"'
    assert (tmp_path / "photos" / first.path).read_bytes() == PNG
    assert files(tmp_path / "photos") == [first.path]  # no temp files left behind
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photos", "state.json"]  # the state's temp file is gone


def test_unchanged_by_last_modified(server: Server, tmp_path: Path) -> None:
    stamp = "Wed, 21 Oct 2015 07:28:00 GMT"

    def route(headers: dict[str, str]) -> Reply:
        if headers.get("If-Modified-Since") == stamp:
            return Reply(304, b"", {})
        return Reply(headers={"Content-Type": "image/png", "Last-Modified": stamp})

    server.routes["/b.png"] = route
    url = server.url("/b.png")
    assert fetch(server, tmp_path, [("bob", url)])[0].status == "downloaded"
    assert fetch(server, tmp_path, [("bob", url)])[0].status == "unchanged"
    assert server.seen[-1].headers.get("If-Modified-Since") == stamp
    assert "If-None-Match" not in server.seen[-1].headers


def test_missing_file_is_downloaded_again_unconditionally(server: Server, tmp_path: Path) -> None:
    server.routes["/c.png"] = [Reply(headers={"Content-Type": "image/png", "ETag": '"x"'})]
    url = server.url("/c.png")
    [first] = fetch(server, tmp_path, [("carol", url)])
    (tmp_path / "photos" / first.path).unlink()
    [second] = fetch(server, tmp_path, [("carol", url)])
    assert second.status == "downloaded" and (tmp_path / "photos" / second.path).is_file()
    assert "If-None-Match" not in server.seen[-1].headers


def test_no_validators_means_no_second_request(server: Server, tmp_path: Path) -> None:
    server.routes["/d.png"] = [Reply()]
    url = server.url("/d.png")
    fetch(server, tmp_path, [("dan", url)])
    before = len(server.seen)
    assert fetch(server, tmp_path, [("dan", url)])[0].status == "unchanged"
    assert len(server.seen) == before


# --- politeness ----------------------------------------------------------------------------------------------


def test_user_agent_names_facetrend(server: Server, tmp_path: Path) -> None:
    server.routes["/robots.txt"] = [Reply(200, b"User-agent: *\nAllow: /\n", {"Content-Type": "text/plain"})]
    server.routes["/e.png"] = [Reply()]
    fetch(server, tmp_path, [("eve", server.url("/e.png"))])
    assert server.paths() == ["/robots.txt", "/e.png"]
    assert all(s.headers["User-Agent"].startswith("facetrend/") for s in server.seen)


@pytest.mark.parametrize("robots", [
    b"User-agent: *\nDisallow: /private/\n\nUser-agent: otherbot\nDisallow: /\n",
    b"User-agent: otherbot\nDisallow: /\n\nUser-agent: facetrend\nDisallow: /private/\n",
])
def test_robots_disallow(server: Server, tmp_path: Path, robots: bytes) -> None:
    server.routes["/robots.txt"] = [Reply(200, robots, {"Content-Type": "text/plain"})]
    server.routes["/public/ok.png"] = [Reply()]
    results = fetch(server, tmp_path, [("p", server.url("/private/x.png")), ("p", server.url("/public/ok.png")),
                                       ("p", server.url("/private/y.png"))])
    assert [r.status for r in results] == ["skipped", "downloaded", "skipped"]
    assert results[0].reason == results[2].reason == "disallowed by robots.txt"
    assert server.paths() == ["/robots.txt", "/public/ok.png"]  # robots.txt read once per host


def test_robots_server_error_blocks_the_host(server: Server, tmp_path: Path) -> None:
    server.routes["/robots.txt"] = [Reply(503, b"busy", {"Content-Type": "text/plain"})]
    [result] = fetch(server, tmp_path, [("q", server.url("/f.png"))], retries=1)
    assert result.status == "skipped" and "robots.txt unreachable (HTTP 503)" in result.reason
    assert server.paths() == ["/robots.txt", "/robots.txt"]


def test_rate_limit_per_host(server: Server, tmp_path: Path) -> None:
    for name in ("g1", "g2", "g3"):
        server.routes[f"/{name}.png"] = [Reply()]
    fetch(server, tmp_path, [("g", server.url(f"/{name}.png")) for name in ("g1", "g2", "g3")])
    times = [s.at for s in server.seen]
    assert len(times) == 4  # robots.txt (404: all allowed) and three photos
    assert all(b - a >= 1.0 - 1e-9 for a, b in zip(times, times[1:], strict=False))
    fast = tmp_path / "fast"
    fast.mkdir()
    server.seen.clear()
    server.routes["/g4.png"] = [Reply()]
    fetch(server, fast, [("g", server.url("/g4.png")), ("g", server.url("/g1.png"))], rate=4.0)
    times = [s.at for s in server.seen]
    assert all(b - a >= 0.25 - 1e-9 for a, b in zip(times, times[1:], strict=False))


def test_crawl_delay_slows_the_host_down(server: Server, tmp_path: Path) -> None:
    server.routes["/robots.txt"] = [Reply(200, b"User-agent: *\nCrawl-delay: 5\n", {"Content-Type": "text/plain"})]
    server.routes["/h1.png"] = [Reply()]
    server.routes["/h2.png"] = [Reply()]
    fetch(server, tmp_path, [("h", server.url("/h1.png")), ("h", server.url("/h2.png"))])
    assert server.seen[2].at - server.seen[1].at >= 5.0


# --- retries -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("retry_after", "waited"), [("7", 7.0), ("3600", 60.0)])
def test_429_then_200_honours_retry_after(server: Server, tmp_path: Path, retry_after: str, waited: float) -> None:
    server.routes["/i.png"] = [Reply(429, b"slow down", {"Retry-After": retry_after}), Reply()]
    [result] = fetch(server, tmp_path, [("ivy", server.url("/i.png"))])
    assert result.status == "downloaded"
    assert server.paths().count("/i.png") == 2
    assert waited in server.clock.sleeps


def test_500_three_times_then_give_up(server: Server, tmp_path: Path) -> None:
    server.routes["/j.png"] = [Reply(500, b"oops", {"Content-Type": "text/plain"})]
    [result] = fetch(server, tmp_path, [("jo", server.url("/j.png"))], retries=2, backoff=0.5, rate=100.0)
    assert result == Fetched(server.url("/j.png"), "jo", None, "skipped", "HTTP 500 after 3 attempts")
    assert server.paths().count("/j.png") == 3
    assert server.clock.sleeps == pytest.approx([0.01, 0.5, 1.0])  # pacing after robots.txt, then 0.5 s doubling
    assert files(tmp_path / "photos") == []


def test_connection_refused_is_retried_then_skipped(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    clock = FakeClock()
    [result] = fetch_photos([("k", f"http://127.0.0.1:{port}/k.png")], tmp_path / "photos", tmp_path / "s.json",
                            FetchSettings(retries=1, backoff=0.25, timeout=2.0), local_session(), clock, clock.sleep)
    assert result.status == "skipped" and "robots.txt unreachable" in result.reason
    assert "connection failed after 2 attempts" in result.reason and 0.25 in clock.sleeps


@pytest.mark.parametrize("body_only", [False, True], ids=["headers-and-body", "body"])
def test_a_trickling_server_meets_the_deadline(server: Server, tmp_path: Path, body_only: bool) -> None:
    """A byte every 0.05 s passes every 2 s read timeout, and would take 5 s or more: the deadline ends it."""
    server.routes["/drip.png"] = [Reply(body=PNG + bytes(60), trickle=0.05, trickle_body=body_only)]
    start = time.monotonic()
    [result] = fetch(server, tmp_path, [("t", server.url("/drip.png"))], retries=0, timeout=2.0, deadline=1.0)
    assert time.monotonic() - start < 3.0
    assert result.status == "skipped" and result.reason.startswith("took longer than 1 s, the deadline")
    assert list((tmp_path / "photos").rglob("*")) == []  # no .part file left
    assert json.loads((tmp_path / "state.json").read_text(encoding="utf-8")) == {}


def test_a_part_file_left_by_a_killed_fetch_is_removed(server: Server, tmp_path: Path) -> None:
    import os

    photos = tmp_path / "photos"
    photos.mkdir()
    stale, live = photos / ".fetch-old123.part", photos / ".fetch-now456.part"
    stale.write_bytes(b"half a photo")
    live.write_bytes(b"another fetch is writing this")
    os.utime(stale, (time.time() - 3600, time.time() - 3600))
    server.routes["/f.png"] = [Reply()]
    fetch(server, tmp_path, [("f", server.url("/f.png"))])
    assert not stale.exists() and live.exists()


def test_read_timeout(server: Server, tmp_path: Path) -> None:
    server.routes["/slow.png"] = [Reply(delay=0.6)]
    [result] = fetch(server, tmp_path, [("s", server.url("/slow.png"))], retries=0, timeout=0.2)
    assert result.status == "skipped" and result.reason == "connection failed after 1 attempts (ReadTimeout)"


# --- what comes back ------------------------------------------------------------------------------------------


def test_oversize_by_content_length_is_rejected_before_reading(server: Server, tmp_path: Path) -> None:
    headers = {"Content-Type": "image/png", "Content-Length": str(10**9)}
    server.routes["/big.png"] = [Reply(body=PNG, headers=headers, length=False)]
    [result] = fetch(server, tmp_path, [("l", server.url("/big.png"))], max_bytes=1000)
    assert result.status == "skipped" and result.reason == "larger than 1,000 bytes"
    [default] = fetch(server, tmp_path / "again", [("l", server.url("/big.png"))])
    assert default.reason == "larger than 20 MB"


def test_oversize_streamed_without_content_length(server: Server, tmp_path: Path) -> None:
    body = PNG + bytes(300_000)
    server.routes["/stream.png"] = [Reply(body=body, length=False)]
    [result] = fetch(server, tmp_path, [("m", server.url("/stream.png"))], max_bytes=100_000)
    assert result.status == "skipped" and result.reason == "larger than 100,000 bytes"
    assert files(tmp_path / "photos") == []  # the partial download is gone
    assert json.loads((tmp_path / "state.json").read_text(encoding="utf-8")) == {}


def test_html_page_is_not_an_image(server: Server, tmp_path: Path) -> None:
    server.routes["/page"] = [Reply(body=b"<html><body>hi</body></html>",
                                    headers={"Content-Type": "text/html; charset=utf-8"})]
    [result] = fetch(server, tmp_path, [("n", server.url("/page"))])
    assert result.status == "skipped" and result.reason == "not an image (text/html)"


def test_bytes_that_are_not_an_image_under_image_jpeg(server: Server, tmp_path: Path) -> None:
    not_jpeg = b"hello, this is not a JPEG at all"
    server.routes["/fake.jpg"] = [Reply(body=not_jpeg, headers={"Content-Type": "image/jpeg"})]
    [result] = fetch(server, tmp_path, [("o", server.url("/fake.jpg"))])
    assert result.status == "skipped" and result.reason.startswith("not an image")
    assert files(tmp_path / "photos") == []


def test_http_404(server: Server, tmp_path: Path) -> None:
    [result] = fetch(server, tmp_path, [("r", server.url("/missing.png"))])
    assert result.status == "skipped" and result.reason == "HTTP 404"


def test_redirect_followed_and_redirect_loop(server: Server, tmp_path: Path) -> None:
    server.routes["/old.png"] = [Reply(301, b"", {"Location": "/new.png"})]
    server.routes["/new.png"] = [Reply()]
    server.routes["/loop1"] = [Reply(302, b"", {"Location": server.url("/loop2")})]
    server.routes["/loop2"] = [Reply(302, b"", {"Location": "/loop1"})]
    server.routes["/to-file"] = [Reply(302, b"", {"Location": "file:///etc/passwd"})]
    moved, loop, to_file = fetch(server, tmp_path, [("t", server.url("/old.png")), ("t", server.url("/loop1")),
                                                    ("t", server.url("/to-file"))])
    assert moved.status == "downloaded" and moved.path == f"t/{url_name(server.url('/old.png'))}.png"
    assert loop.status == "skipped" and loop.reason == "too many redirects"
    assert sum(p.startswith("/loop") for p in server.paths()) == 6  # the first request and 5 redirects
    assert to_file.status == "skipped" and "not an http or https URL" in to_file.reason


def test_non_http_urls_are_skipped(server: Server, tmp_path: Path) -> None:
    urls = ["file:///etc/passwd", "ftp://127.0.0.1/x.png", "javascript:alert(1)", "/relative.png", "http://[::1"]
    results = fetch(server, tmp_path, [("u", url) for url in urls])
    assert all(r.status == "skipped" and r.path is None for r in results)
    assert all("URL" in r.reason for r in results)
    assert server.seen == []


# --- names ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("person", ["../../etc", "a/b", "..", ".", "", "\x00evil\n", "..\\..\\win", ".hidden",
                                    "/abs/path", "  ..  "])
def test_traversal_in_person_name_stays_inside(server: Server, tmp_path: Path, person: str) -> None:
    server.routes["/v.png"] = [Reply()]
    [result] = fetch(server, tmp_path, [(person, server.url("/v.png"))])
    photos = (tmp_path / "photos").resolve()
    assert result.status == "downloaded" and result.person == person
    target = (photos / result.path).resolve()
    assert target.is_relative_to(photos) and target.parent.parent == photos and target.is_file()
    assert ".." not in result.path.split("/") and not result.path.startswith(".")
    assert files(tmp_path / "photos") == [result.path]


def test_safe_person() -> None:
    assert safe_person("山田 花子") == "山田 花子"
    assert safe_person("../../etc") == "_._etc"
    assert safe_person("a/b") == "a_b"
    assert safe_person("..") == safe_person("") == safe_person("\x00\x01") == "unknown"
    assert safe_person(".hidden") == "hidden"
    assert "\x00" not in safe_person("a\x00b") and "\n" not in safe_person("a\nb")
    assert len(safe_person("長" * 500).encode()) <= 200


def test_person_folder_linked_outside_is_refused(server: Server, tmp_path: Path) -> None:
    server.routes["/y.png"] = [Reply()]
    (tmp_path / "outside").mkdir()
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "mallory").symlink_to(tmp_path / "outside", target_is_directory=True)
    [result] = fetch(server, tmp_path, [("mallory", server.url("/y.png"))])
    assert result.status == "skipped" and "outside the photos folder" in result.reason
    assert list((tmp_path / "outside").iterdir()) == []


def test_japanese_person_folder_is_kept(server: Server, tmp_path: Path) -> None:
    server.routes["/w.png"] = [Reply()]
    [result] = fetch(server, tmp_path, [("佐藤", server.url("/w.png"))])
    assert result.path == f"佐藤/{url_name(server.url('/w.png'))}.png"


def test_file_name_comes_from_the_url_hash_only(server: Server, tmp_path: Path) -> None:
    server.routes["/..%2F..%2Fevil.sh"] = [Reply()]
    url = server.url("/..%2F..%2Fevil.sh")
    [result] = fetch(server, tmp_path, [("x", url)])
    assert result.path == f"x/{url_name(url)}.png"


def test_image_type_by_magic_bytes() -> None:
    bmp_header = b"BM" + bytes(12) + (40).to_bytes(4, "little")
    assert image_type(b"\xff\xd8\xff\xe0") == ".jpg"
    assert image_type(PNG[:32]) == ".png"
    assert image_type(b"GIF89a....") == ".gif"
    assert image_type(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == ".webp"
    assert image_type(bmp_header) == ".bmp"
    assert image_type(b"II*\x00") == image_type(b"MM\x00*") == ".tif"
    assert image_type(b"P5\n92 112\n255\n") == ".pgm" and image_type(b"P6 1 1 255 ") == ".ppm"
    assert image_type(b"<html>") is None and image_type(b"BMW is a car") is None and image_type(b"") is None


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError):
        FetchSettings(rate=0)
    with pytest.raises(ValueError):
        FetchSettings(retries=-1)
