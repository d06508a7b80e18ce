"""Encoded pictures kept between builds: a report's images are encoded (or its charts drawn) only when the
previous build did not make the same picture from the same pixels or numbers."""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import zipfile
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from PIL import Image

from . import cache, plots, progress

log = logging.getLogger(__name__)

ENCODE_THREADS = max(1, min(8, os.cpu_count() or 1))  # threads that encode a report's images together
PARALLEL_MIN = 16  # fewer images than this are encoded one by one: starting threads would cost more


@dataclass(frozen=True)
class Plot:
    """A chart not drawn yet: matplotlib is slow, so EncodedImages draws it only when the last build did not
    draw the same chart from the same numbers."""

    draw: Callable[..., bytes]
    args: tuple


@functools.cache
def _drawing_code() -> str:
    """What a cached picture depends on besides its pixels or numbers: plots.py and the encoders' versions."""
    from importlib.metadata import version

    import PIL
    from PIL import features

    parts = [hashlib.sha256(Path(plots.__file__).read_bytes()).hexdigest(), PIL.__version__,
             str(features.version("webp")), zlib.ZLIB_RUNTIME_VERSION, version("matplotlib")]
    return "|".join(parts)


class EncodedImages:
    """Encoded pictures from the previous build of a report, by a hash of their pixels and format.

    An edited narrative changes no picture, yet encoding them (about 1,200 for
    400 units) was most of a rebuild. One zip file per report holds exactly the
    pictures of its last build, so it never grows; a file that cannot be read is
    logged and the pictures are encoded again.
    """

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.used: dict[str, bytes] = {}
        self.previous: dict[str, bytes] = (cache.read(path, _read_archive, "image cache") if path else None) or {}

    def encode(self, picture: Image.Image | Plot | bytes, path: str) -> bytes:
        """The picture's file bytes: the previous build's when it had the same picture, else encoded (or drawn)."""
        if isinstance(picture, bytes):
            return picture
        key, data = self._known(picture, path)
        if data is None:
            data = picture.draw(*picture.args) if isinstance(picture, Plot) else plots.encode(picture, path)
        self.used[key] = data
        return data

    def encode_all(self, figures: dict[str, Image.Image | Plot | bytes]) -> dict[str, bytes]:
        """``encode`` for every picture of ``figures`` (path -> picture), in the same order and with the same
        bytes, the images hashed and encoded on ENCODE_THREADS threads (Pillow's encoders and hashlib let go
        of the GIL: a report has about 1,200 small images); charts are drawn here, one by one (matplotlib is
        not thread-safe)."""
        images = [(path, p) for path, p in figures.items() if isinstance(p, Image.Image)]
        if len(images) < PARALLEL_MIN:
            return {path: self.encode(picture, path) for path, picture in figures.items()}
        _drawing_code()  # computed once, before the threads ask for it
        with ThreadPoolExecutor(ENCODE_THREADS) as pool:
            work = progress.bar(pool.map(self._encoded, images), total=len(images), desc="pictures", unit="picture")
            done = dict(zip([path for path, _ in images], work, strict=True))
        out = {}
        for path, picture in figures.items():
            if path in done:
                key, out[path] = done[path]
                self.used[key] = out[path]
            else:
                out[path] = self.encode(picture, path)
        return out

    def _known(self, picture: Image.Image | Plot, path: str) -> tuple[str, bytes | None]:
        """The picture's cache key, and its bytes when the previous build made the same picture."""
        if isinstance(picture, Plot):
            key = cache.key(["plot", _drawing_code(), picture.draw.__name__, picture.args])
        else:
            key = cache.key([_drawing_code(), Path(path).suffix, picture.mode, picture.size], picture.tobytes())
        return key, self.previous.get(key)

    def _encoded(self, item: tuple[str, Image.Image]) -> tuple[str, bytes]:
        """An image's key and bytes, reused or encoded (run on the pool's threads: reads ``previous`` only)."""
        path, picture = item
        key, data = self._known(picture, path)
        return key, plots.encode(picture, path) if data is None else data

    def save(self) -> None:
        """Keep this build's pictures for the next one (written aside, then renamed)."""
        if self.path is not None:
            cache.write(self.path, self._write_archive, "image cache")

    def _write_archive(self, handle: IO[bytes]) -> None:
        with zipfile.ZipFile(handle, "w", zipfile.ZIP_STORED) as archive:
            for key in sorted(self.used):
                archive.writestr(zipfile.ZipInfo(key, date_time=(1980, 1, 1, 0, 0, 0)), self.used[key])


def _read_archive(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}
