"""Synthetic face-like photos that every machine can make: the everywhere stand-in for the ORL faces.

Each "person" has their own head shape, skin and hair tone, hair style, eye spacing, brows, nose and mouth;
each of their photos moves, scales and turns the head a little, changes the expression and the light, and
adds sensor noise, so two photos of one person are alike but never near-duplicates. The layout is ORL's:
``<root>/s<k>/<n>.pgm``, 92x112 grey, so a test written for ORL runs on these unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

WIDTH, HEIGHT = 92, 112  # ORL's size


@dataclass(frozen=True)
class Person:
    head: tuple[float, float]  # half-width, half-height of the head ellipse, in pixels
    skin: float
    hair: float  # grey level of the hair
    hair_style: int  # 0 short, 1 long down both sides, 2 parted (longer on one side)
    background: float
    eye_gap: float  # half the distance between the eyes
    eye_y: float  # rows below the head's centre (negative: above)
    brow: float  # how dark the eyebrows are (0: none)
    mouth: float  # half-width of the mouth
    glasses: bool


def person(rng: np.random.Generator) -> Person:
    """A random person: what stays the same across their photos."""
    return Person(head=(rng.uniform(24, 31), rng.uniform(32, 40)), skin=rng.uniform(120, 210),
                  hair=rng.uniform(15, 110), hair_style=int(rng.integers(0, 3)), background=rng.uniform(40, 230),
                  eye_gap=rng.uniform(10, 15), eye_y=rng.uniform(-10, -4), brow=rng.uniform(0, 1),
                  mouth=rng.uniform(6, 12), glasses=bool(rng.random() < 0.2))


def photo(who: Person, rng: np.random.Generator, width: int = WIDTH, height: int = HEIGHT) -> np.ndarray:
    """One photo of ``who``: the head shifted, scaled and turned a little, a random expression, light and noise."""
    import cv2

    img = np.full((height, width), who.background, np.float32)
    img += np.linspace(-1, 1, width, dtype=np.float32)[None, :] * rng.uniform(-25, 25)  # light from one side
    cx, cy = width / 2 + rng.uniform(-4, 4), height / 2 + rng.uniform(-3, 5)
    s = rng.uniform(0.92, 1.08) * min(width / WIDTH, height / HEIGHT)
    hw, hh = who.head[0] * s, who.head[1] * s
    _hair(img, who, cx, cy, hw, hh, rng)
    cv2.ellipse(img, _pt(cx, cy), _pt(hw, hh), 0, 0, 360, who.skin + rng.uniform(-10, 10), -1, cv2.LINE_AA)
    cv2.ellipse(img, _pt(cx, cy - hh * 0.75), _pt(hw * 1.02, hh * 0.38), 0, 180, 360, who.hair, -1, cv2.LINE_AA)
    _features(img, who, cx, cy, s, rng)
    img = cv2.GaussianBlur(img, (0, 0), 1.2)
    m = cv2.getRotationMatrix2D((cx, cy), rng.uniform(-6, 6), 1.0)
    img = cv2.warpAffine(img, m, (width, height), borderMode=cv2.BORDER_REPLICATE)
    img += rng.normal(0, 6, img.shape).astype(np.float32)
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def _pt(x: float, y: float) -> tuple[int, int]:
    return int(round(x)), int(round(y))


def _hair(img: np.ndarray, who: Person, cx: float, cy: float, hw: float, hh: float, rng) -> None:
    import cv2

    grow = rng.uniform(0.95, 1.05)
    cv2.ellipse(img, _pt(cx, cy - hh * 0.1), _pt(hw * 1.15, hh * 1.05 * grow), 0, 0, 360, who.hair, -1, cv2.LINE_AA)
    if who.hair_style == 0:
        return
    sides = (-1, 1) if who.hair_style == 1 else (-1,)
    for side in sides:
        x0 = cx + side * hw * 0.8
        cv2.rectangle(img, _pt(x0 - hw * 0.35, cy - hh * 0.3), _pt(x0 + hw * 0.35, cy + hh * 1.3 * grow),
                      who.hair, -1, cv2.LINE_AA)


def _features(img: np.ndarray, who: Person, cx: float, cy: float, s: float, rng) -> None:
    import cv2

    ey, gap = cy + who.eye_y * s, who.eye_gap * s
    dark = who.skin * rng.uniform(0.15, 0.3)
    for side in (-1, 1):
        ex = cx + side * gap
        cv2.ellipse(img, _pt(ex, ey), _pt(4.5 * s, 2.4 * s), 0, 0, 360, 240, -1, cv2.LINE_AA)  # white of the eye
        cv2.circle(img, _pt(ex + rng.uniform(-1, 1), ey), max(1, round(2 * s)), dark, -1, cv2.LINE_AA)
        if who.brow > 0.2:
            brow = who.skin * (1 - 0.7 * who.brow)
            cv2.line(img, _pt(ex - 5 * s, ey - 6 * s), _pt(ex + 5 * s, ey - 6.5 * s), brow, 2, cv2.LINE_AA)
        if who.glasses:
            cv2.circle(img, _pt(ex, ey), round(7 * s), 30, 1, cv2.LINE_AA)
    cv2.line(img, _pt(cx, ey + 3 * s), _pt(cx - 2 * s, ey + 14 * s), who.skin * 0.75, 2, cv2.LINE_AA)  # nose
    smile = rng.uniform(-2, 5) * s
    my = ey + 24 * s
    cv2.ellipse(img, _pt(cx, my), _pt(who.mouth * s, abs(smile) + 1.5), 0, 0 if smile >= 0 else 180,
                180 if smile >= 0 else 360, who.skin * 0.35, 2, cv2.LINE_AA)


def write_people(root: Path, people: int = 40, per_person: int = 10, seed: int = 0) -> Path:
    """ORL's layout under root: s1..s<people>, each with 1.pgm..<per_person>.pgm; returns root.

    Each photo is drawn again (at most DRAWS times, deterministically) until the face check of `crops: auto`
    accepts it, so the stand-ins are faces to the pipeline as ORL's crops are.
    """
    import cv2
    from facetrend.config import FaceSettings
    from facetrend.detect import Detector

    check = Detector(FaceSettings())
    rng = np.random.default_rng(seed)
    for k in range(1, people + 1):
        folder = root / f"s{k}"
        folder.mkdir(parents=True, exist_ok=True)
        for n, image in enumerate(_accepted_photos(rng, per_person, check), start=1):
            cv2.imwrite(str(folder / f"{n}.pgm"), image)
    return root


def _accepted_photos(rng: np.random.Generator, count: int, check) -> list[np.ndarray]:
    """``count`` photos of one person, each accepted by the face check; a person it keeps refusing is replaced."""
    while True:
        who, photos = person(rng), []
        while len(photos) < count:
            image = next((p for p in (photo(who, rng) for _ in range(DRAWS)) if check.is_face_crop(p)), None)
            if image is None:
                break
            photos.append(image)
        if len(photos) == count:
            return photos


DRAWS = 8  # tries per photo at drawing one the face check accepts
