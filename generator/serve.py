"""`facetrend serve`: the built site over HTTP on this machine, for a look before publishing.

While it serves, it watches the content folder and the templates (polling their files'
modification times and sizes once a second: no watcher library is needed for that) and runs
`facetrend build` again, in the background, when one changes. The build writes the new site
beside the old one and swaps it in whole, so the old site is served until the new one is
complete; a failed build prints its message and the last good site stays.

Only regular files inside the site folder are served: a symbolic link (to a file or a
folder, at any depth), a FIFO or a device planted in site/ is answered 404, and so is a
folder without an index.html: folders are never listed.
"""

from __future__ import annotations

import functools
import logging
import os
import signal
import stat
import subprocess
import sys
import threading
import urllib.parse
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import UserError

if TYPE_CHECKING:
    from .build import BuildOptions

log = logging.getLogger(__name__)

POLL_S = 1.0  # how often the watched files are looked at
SETTLE_S = 0.3  # after a change is seen, wait this long for the editor to finish writing before building
STOP_WAIT_S = 2.0  # on stopping, how long a build under way may take to stop by itself before it is interrupted


def serve(out: Path, bind: str = "127.0.0.1", port: int = 8000, rebuild: BuildOptions | None = None) -> None:
    """Serve ``out`` until Ctrl-C; with ``rebuild``, build again with those options whenever its content or the
    templates change."""
    server = make_server(out, bind, port)
    log.info("serving %s at http://%s:%d/ (Ctrl-C stops)", out, bind, server.server_address[1])
    watcher = Rebuilder(rebuild) if rebuild is not None else None
    with server:
        try:
            if watcher is not None:
                watcher.start()
            server.serve_forever()
        except KeyboardInterrupt:
            log.info("stopped")
        finally:
            if watcher is not None:
                watcher.stop()


class Rebuilder:
    """Watches a build's content folder and the templates; on a change, runs `facetrend build` again.

    The build runs as its own process, started from a background thread: the server answers meanwhile, the
    build's messages go to this terminal as a build's do, its memory (the model, the photos) is returned when
    it ends, and even a crash of it leaves the server and the last good site as they were.
    """

    def __init__(self, options: BuildOptions, poll_s: float = POLL_S, settle_s: float = SETTLE_S) -> None:
        from .render import TEMPLATES

        self.options, self.poll_s, self.settle_s = options, poll_s, settle_s
        self.folders = [options.content, TEMPLATES]
        self.skip = {_resolved(options.out), _resolved(options.cache)}  # what the build writes is not watched
        self.builds = 0  # builds finished, failed or not (tests wait on it)
        self.failed = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="facetrend-rebuild", daemon=True)
        self._seen: dict[str, tuple[int, int]] = {}
        self._child: subprocess.Popen | None = None

    def start(self) -> None:
        """Note the watched files as they are now, then watch them in the background."""
        self._seen = snapshot(self.folders, self.skip)
        log.info("watching %s for changes: an edit builds the site again", " and ".join(map(str, self.folders)))
        self._thread.start()

    def stop(self) -> None:
        """Stop watching; a build under way is interrupted as Ctrl-C interrupts one (the old site stays)."""
        self._stop.set()
        child = self._child
        if child is not None and child.poll() is None:
            try:
                child.wait(STOP_WAIT_S)  # after Ctrl-C in the terminal the build has its own SIGINT already
            except subprocess.TimeoutExpired:
                child.send_signal(signal.SIGINT)
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.poll_s):
            if snapshot(self.folders, self.skip) == self._seen:
                continue
            if self._stop.wait(self.settle_s):
                return
            self._seen = snapshot(self.folders, self.skip)  # edits made while building are seen at the next poll
            self.rebuild()

    def rebuild(self) -> bool:
        """Build once; on failure say so and leave the site as it was. Whether the build succeeded."""
        log.info("a watched file changed: building again (the last good site is served meanwhile)")
        before = _identity(self.options.out)
        try:
            self._child = subprocess.Popen(build_command(self.options, log.isEnabledFor(logging.INFO)))
            code = self._child.wait()
        except OSError as exc:
            log.error("could not start the build (%s); still serving the last good site", exc.strerror or exc)
            code = -1
        self.builds += 1
        if code == 0:
            if _identity(self.options.out) != before:  # else the build said that nothing changed
                log.info("%s was rebuilt: reload the page", self.options.out)
            return True
        self.failed += 1
        if not self._stop.is_set():
            log.error("the build failed (its message is above); still serving the last good site")
        return False


def build_command(options: BuildOptions, chatty: bool = True) -> list[str]:
    """`facetrend build` with ``options``, as a command line run by this Python."""
    argv = [sys.executable, "-m", "facetrend", "build", "--content", str(options.content), "--out",
            str(options.out), "--cache", str(options.cache)]
    return argv + (["--smoke"] if options.smoke else []) + ([] if chatty else ["-q"])


def snapshot(folders: list[Path], skip: set[Path]) -> dict[str, tuple[int, int]]:
    """Each file under ``folders`` (modification time in ns, size), leaving out hidden and editor backup files
    and the ``skip`` folders."""
    seen: dict[str, tuple[int, int]] = {}
    for folder in folders:
        for root, dirs, files in os.walk(folder):
            dirs[:] = [d for d in dirs if not d.startswith(".") and _resolved(Path(root, d)) not in skip]
            for name in files:
                if name.startswith(".") or name.endswith(("~", ".swp", ".tmp")):
                    continue
                try:
                    info = os.stat(os.path.join(root, name))
                except OSError:  # removed meanwhile, or a dangling link
                    continue
                seen[os.path.join(root, name)] = (info.st_mtime_ns, info.st_size)
    return seen


def _identity(folder: Path) -> tuple[int, int] | None:
    """The folder's device and inode: a build that wrote the site swapped in a new folder."""
    try:
        info = os.stat(folder)
    except OSError:
        return None
    return info.st_dev, info.st_ino


def _resolved(path: Path) -> Path:
    try:
        return path.resolve()
    except OSError:
        return path.absolute()


def make_server(out: Path, bind: str, port: int) -> ThreadingHTTPServer:
    """An HTTP server of the site in ``out`` (port 0: any free port), not yet serving."""
    if not (out / "index.html").is_file():
        raise UserError(f"{out}: there is no built site here. Fix: run `facetrend build` first, or pass --out.")
    handler = functools.partial(SiteHandler, directory=str(out))
    try:
        return ThreadingHTTPServer((bind, port), handler)
    except OSError as exc:
        message = f"cannot listen on {bind}:{port} ({exc.strerror}). Fix: pass --port with a free port."
        raise UserError(message) from None


class SiteHandler(SimpleHTTPRequestHandler):
    """SimpleHTTPRequestHandler that serves regular files only, follows no link and lists no folder."""

    def send_head(self):  # noqa: ANN201 - the base class's signature
        path = Path(self.translate_path(self.path))  # joins the URL's words under the root, dropping `..`
        wants_index = urllib.parse.urlsplit(self.path).path.endswith("/")
        if not _servable(Path(self.directory), path, wants_index):
            self.send_error(HTTPStatus.NOT_FOUND, "File not found")
            return None
        return super().send_head()

    def log_message(self, format, *args):  # noqa: A002, ANN001, ANN201 - the base class's signature
        """Each request at debug level, so the terminal shows the builds' messages, not a line per picture."""
        log.debug("%s %s", self.address_string(), format % args)

    def list_directory(self, path):  # noqa: ANN001, ANN201 - never reached after send_head's check; kept shut
        self.send_error(HTTPStatus.NOT_FOUND, "File not found")
        return None


def _servable(root: Path, path: Path, wants_index: bool) -> bool:
    """Whether ``path`` (under ``root``) is reached without a link and is a regular file or a folder."""
    try:
        parts = path.relative_to(root).parts
    except ValueError:
        return False
    current = root
    for part in parts:
        current = current / part
        mode = _lmode(current)
        if mode is None or stat.S_ISLNK(mode):
            return False
    mode = _lmode(current)
    if mode is not None and stat.S_ISDIR(mode):  # without its slash: redirected; with: its index.html only
        index = _lmode(current / "index.html")
        return not wants_index or (index is not None and stat.S_ISREG(index))
    return mode is not None and stat.S_ISREG(mode)


def _lmode(path: Path) -> int | None:
    try:
        return os.lstat(path).st_mode
    except (OSError, ValueError):  # missing, too long, or a NUL in the name
        return None
