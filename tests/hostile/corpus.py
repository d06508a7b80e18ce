"""Builds a hostile photo collection in a folder: what a scraped collection can hold."""

from __future__ import annotations

import io
import os
import shutil
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

TINY = 10_000  # tiny images in one folder


def _png(width: int, height: int, body: bytes) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(body)) + chunk(b"IEND", b"")


def _tiny_png(seed: int) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (8, 8), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels, "L").save(buffer, format="PNG")
    return buffer.getvalue()


def build_corpus(photos: Path, outside: Path, good: list[Path], buried: Path, tiny: int = TINY) -> dict[str, str]:
    """Write the corpus under ``photos``; ``good`` are real face photos to include, ``buried`` one more
    that goes 60 folders deep. Returns what each
    hostile file is, by its path relative to ``photos`` (the reason a build must give, in short)."""
    expect = {}
    person = photos / "mixed"
    person.mkdir(parents=True)
    for k, src in enumerate(good):
        shutil.copy(src, person / f"good{k}{src.suffix}")
    write = {
        "zero.jpg": (b"", "empty"),
        "truncated.png": (_tiny_png(1)[:30], "not a readable image"),
        "text-named.jpg": (b"<html>not a photo</html>", "not an image"),
        "bomb.png": (_png(60_000, 60_000, b"\0" * 64), "too many pixels"),
    }
    for name, (data, why) in write.items():
        (person / name).write_bytes(data)
        expect[f"mixed/{name}"] = why
    deep = photos / "deep"
    for level in range(60):
        deep = deep / f"d{level}"
    deep.mkdir(parents=True)
    shutil.copy(buried, deep / "buried.pgm")
    outside.mkdir(parents=True, exist_ok=True)
    (outside / "secret.png").write_bytes(_tiny_png(2))
    os.symlink(outside / "secret.png", person / "link-to-file.png")
    os.symlink(outside, photos / "link-to-folder")
    expect["mixed/link-to-file.png"] = "symbolic link"
    expect["link-to-folder"] = "symbolic link"
    odd = os.fsencode(str(person)) + b"/bad\xffname\nline.png"
    with open(odd, "wb") as f:
        f.write(_tiny_png(3))
    crowd = photos / "crowd"
    crowd.mkdir()
    for k in range(tiny):
        (crowd / f"{k:05d}.png").write_bytes(_tiny_png(1000 + k))
    return expect
