"""pictures.EncodedImages.encode_all: a report's images encoded on several threads, with the same bytes."""

import threading
from pathlib import Path

import numpy as np
from facetrend import pictures, plots
from PIL import Image


def _figures(n: int) -> dict:
    rng = np.random.default_rng(0)
    out = {f"img/unit-{i}.png": Image.fromarray(rng.integers(0, 256, (16, 16), dtype=np.uint8), "L")
           for i in range(n)}
    out["img/sheet.webp"] = Image.fromarray(rng.integers(0, 256, (40, 60), dtype=np.uint8), "L")
    out["img/given.png"] = b"\x89PNG as it is"
    return out


def test_encode_all_gives_the_bytes_of_encode_in_order_on_threads(tmp_path: Path, monkeypatch):
    figures = _figures(3 * pictures.PARALLEL_MIN)
    one_by_one = pictures.EncodedImages(None)
    expected = {path: one_by_one.encode(picture, path) for path, picture in figures.items()}
    threads, encode = set(), plots.encode
    monkeypatch.setattr(plots, "encode", lambda *a: threads.add(threading.get_ident()) or encode(*a))
    together = pictures.EncodedImages(None)
    got = together.encode_all(figures)
    assert list(got) == list(figures) and got == expected
    assert together.used == one_by_one.used
    assert threading.get_ident() not in threads or pictures.ENCODE_THREADS == 1


def test_encode_all_reuses_the_previous_builds_pictures(tmp_path: Path, monkeypatch):
    figures, archive = _figures(2 * pictures.PARALLEL_MIN), tmp_path / "images.zip"
    first = pictures.EncodedImages(archive)
    expected = first.encode_all(figures)
    first.save()
    monkeypatch.setattr(plots, "encode", lambda *a: (_ for _ in ()).throw(AssertionError("encoded again")))
    again = pictures.EncodedImages(archive)
    assert again.encode_all(figures) == expected and again.used == first.used
