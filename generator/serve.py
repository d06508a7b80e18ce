"""`facetrend serve`: the built site over HTTP on this machine, for a look before publishing."""

from __future__ import annotations

import functools
import logging
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from .errors import UserError

log = logging.getLogger(__name__)


def serve(out: Path, bind: str = "127.0.0.1", port: int = 8000) -> None:
    """Serve ``out`` until Ctrl-C."""
    if not (out / "index.html").is_file():
        raise UserError(f"{out}: there is no built site here. Fix: run `facetrend build` first, or pass --out.")
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(out))
    try:
        server = ThreadingHTTPServer((bind, port), handler)
    except OSError as exc:
        message = f"cannot listen on {bind}:{port} ({exc.strerror}). Fix: pass --port with a free port."
        raise UserError(message) from None
    log.info("serving %s at http://%s:%d/ (Ctrl-C stops)", out, bind, port)
    with server:
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            log.info("stopped")
