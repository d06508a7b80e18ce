"""`facetrend serve` rebuilds on change: it watches content/ and the templates, builds in the background while
the last good site is served, and a failed build keeps the old site."""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from facetrend import serve
from facetrend.build import BuildOptions

BUILD_WAIT_S = 120  # a tiny report builds in a few seconds; a loaded CI machine may take much longer


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(port: int, path: str) -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read().decode("utf-8", "replace")
    finally:
        conn.close()


def _until(what, seconds: float = BUILD_WAIT_S, log: Path | None = None):
    """Poll ``what()`` until it returns something true; fail with the server's log after ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            found = what()
        except OSError:
            found = None
        if found:
            return found
        time.sleep(0.2)
    pytest.fail("timed out" + (f"; the server said:\n{log.read_text()}" if log else ""))


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "facetrend", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600)


def test_serve_rebuilds_on_an_edit_and_keeps_the_last_good_site_when_a_build_fails(small_content: Path):
    root = small_content.parent  # content/, and site/ and the cache are made beside it: the commands' defaults
    assert _cli("build", "--smoke", cwd=root).returncode == 0
    index = small_content / "small" / "index.md"
    port, log = _free_port(), root / "serve.log"
    with log.open("w") as err:
        server = subprocess.Popen([sys.executable, "-m", "facetrend", "serve", "--port", str(port)], cwd=root,
                                  stderr=err)
    try:
        page = _until(lambda: _get(port, "/small/index.html")[1], 30, log)
        assert "Some <em>words</em>" in page and "watching" in log.read_text()
        index.write_text(index.read_text().replace("Some *words*.", "A **new** story."))
        page = _until(lambda: "<strong>new</strong> story" in _get(port, "/small/index.html")[1], log=log)
        assert "rebuilt" in _until(lambda: "rebuilt" in log.read_text() and log.read_text(), 10, log)

        good = _get(port, "/small/index.html")
        index.write_text(index.read_text().replace("title: Small", "title: Small\ntrends: sometimes"))
        said = _until(lambda: "build failed" in log.read_text() and log.read_text(), log=log)
        assert "index.md: setting `trends`" in said and "still serving the last good site" in said
        assert "Traceback" not in said
        assert _get(port, "/small/index.html") == good and server.poll() is None  # still up, the old page
        index.write_text(index.read_text().replace("trends: sometimes", "trends: false"))
        _until(lambda: log.read_text().count("rebuilt") >= 2, log=log)  # fixed: the next edit builds again
    finally:
        server.terminate()
        server.wait(30)


def test_the_old_site_is_served_while_a_build_runs(small_content: Path, tmp_path: Path, monkeypatch):
    """The rebuild runs in the background: pages keep coming, unchanged, while it works, and the new site
    replaces the old one whole once it is written."""
    import threading

    from facetrend.build import build

    site, cache, release = tmp_path / "site", tmp_path / "cache", tmp_path / "release"
    options = BuildOptions(small_content, site, cache, smoke=True)
    build(options)
    real = serve.build_command(options)
    held = [sys.executable, "-c", "import pathlib, subprocess, sys, time\n"
            f"while not pathlib.Path({str(release)!r}).exists(): time.sleep(0.05)\n"
            f"sys.exit(subprocess.call({real!r}))"]  # the real build, once the test lets it start
    monkeypatch.setattr(serve, "build_command", lambda *a: held)
    server = serve.make_server(site, "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    watcher = serve.Rebuilder(options, poll_s=0.05, settle_s=0.05)
    watcher.start()
    try:
        port = server.server_address[1]
        index = small_content / "small" / "index.md"
        index.write_text(index.read_text().replace("Some *words*.", "Other words."))
        _until(lambda: watcher._child is not None, 30)
        for _ in range(5):  # while the build is held, the old page is served at once
            assert "Some <em>words</em>" in _get(port, "/small/index.html")[1]
        release.write_text("go")
        _until(lambda: watcher.builds >= 1)
        assert watcher.failed == 0 and "Other words." in _get(port, "/small/index.html")[1]
    finally:
        release.write_text("go")
        watcher.stop()
        server.shutdown()
        server.server_close()


def test_the_watch_sees_content_and_templates_but_not_what_the_build_writes(tmp_path: Path):
    content = tmp_path / "content"
    (content / "r").mkdir(parents=True)
    (content / "r" / "index.md").write_text("---\ntitle: R\n---\n")
    options = BuildOptions(content, content / "r" / "site", content / "cache")  # both inside content, on purpose
    watcher = serve.Rebuilder(options)
    assert watcher.folders[1].name == "templates" and (watcher.folders[1] / "base.html").is_file()
    before = serve.snapshot(watcher.folders, watcher.skip)
    assert str(content / "r" / "index.md") in before and str(watcher.folders[1] / "base.html") in before
    for quiet in ("r/site/index.html", "cache/model.pt", "r/.index.md.swp", "r/index.md~", ".git/HEAD"):
        (content / quiet).parent.mkdir(parents=True, exist_ok=True)
        (content / quiet).write_text("x")
    assert serve.snapshot(watcher.folders, watcher.skip) == before
    (content / "r" / "photos" / "p").mkdir(parents=True)
    (content / "r" / "photos" / "p" / "1.jpg").write_bytes(b"new photo")
    after = serve.snapshot(watcher.folders, watcher.skip)
    assert set(after) - set(before) == {str(content / "r" / "photos" / "p" / "1.jpg")}
    os.utime(content / "r" / "index.md", ns=(1, 1))  # an edit that keeps the size is seen by its time
    assert serve.snapshot(watcher.folders, watcher.skip) != after


def test_serve_without_a_content_folder_serves_without_watching(tmp_path: Path):
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "index.html").write_text("<p>home</p>")
    port, log = _free_port(), tmp_path / "serve.log"
    with log.open("w") as err:
        server = subprocess.Popen([sys.executable, "-m", "facetrend", "serve", "--port", str(port)], cwd=tmp_path,
                                  stderr=err)
    try:
        assert _until(lambda: _get(port, "/")[1], 30, log) == "<p>home</p>"
        assert "without rebuilding" in log.read_text()
        assert '"GET / HTTP' not in log.read_text()  # a line per request would bury the builds' messages
    finally:
        server.terminate()
        server.wait(30)
