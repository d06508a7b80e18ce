"""`facetrend serve`: the built site over HTTP on this machine, for a look before publishing.

Only regular files inside the site folder are served: a symbolic link (to a file or a
folder, at any depth), a FIFO or a device planted in site/ is answered 404, and so is a
folder without an index.html: folders are never listed.
"""

from __future__ import annotations

import functools
import logging
import os
import stat
import urllib.parse
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from .errors import UserError

log = logging.getLogger(__name__)


def serve(out: Path, bind: str = "127.0.0.1", port: int = 8000) -> None:
    """Serve ``out`` until Ctrl-C."""
    server = make_server(out, bind, port)
    log.info("serving %s at http://%s:%d/ (Ctrl-C stops)", out, bind, server.server_address[1])
    with server:
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            log.info("stopped")


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
