"""Face-stage throughput on one core against all cores, in the same run; prints one JSON object.

    python benchmarks/bench_faces.py [--photos 1000] [--side 250]

One core: one process with cv2.setNumThreads(1). All cores: the default build path (worker processes
when cropping is slow enough to gain, each with one OpenCV thread). Photos: side x side scenes, a
blurred noisy gradient with an ORL face pasted in each (../shared/data/att_faces, read in place).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from facetrend import collect, faces
from facetrend.config import FaceSettings

ATT = Path(os.environ.get("FACETREND_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def scene(face: np.ndarray, side: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    background = rng.random((side, side)) * 60 + np.linspace(60, 160, side)[None, :]
    image = cv2.GaussianBlur(background.astype(np.uint8), (0, 0), 3)
    scale = min(1.0, 0.6 * side / face.shape[0])
    f = cv2.resize(face, None, fx=scale, fy=scale)
    y, x = (side - f.shape[0]) // 2 + seed % 7, (side - f.shape[1]) // 2 + seed % 11
    image[y:y + f.shape[0], x:x + f.shape[1]] = f
    return image


def make_photos(root: Path, n: int, side: int) -> Path:
    att = ATT / "att_faces" if (ATT / "att_faces").is_dir() else ATT
    people = sorted(p for p in att.iterdir() if p.is_dir())
    for i in range(n):
        person = people[i % len(people)]
        face = cv2.imread(str(person / f"{1 + i % 10}.pgm"), cv2.IMREAD_GRAYSCALE)
        (root / person.name).mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / person.name / f"{i}.png"), scene(face, side, i))
    return root


def timed(photos: Path, cache: Path, jobs: int, threads: int) -> dict:
    cv2.setNumThreads(threads)
    shutil.rmtree(cache, ignore_errors=True)
    start = time.perf_counter()
    found = faces.find_faces(collect._folder(photos), FaceSettings(), cache, "bench", jobs=jobs)
    seconds = time.perf_counter() - start
    rate = round(found.total / seconds, 1)
    return {"seconds": round(seconds, 3), "faces": len(found.ids), "photos_per_s": rate}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=1000)
    parser.add_argument("--side", type=int, default=250)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        photos = make_photos(Path(tmp) / "photos", args.photos, args.side)
        one = timed(photos, Path(tmp) / "c1", jobs=1, threads=1)
        every = timed(photos, Path(tmp) / "c2", jobs=0, threads=cv2.getNumberOfCPUs())
    print(json.dumps({"photos": args.photos, "side": args.side, "cpu_count": os.cpu_count(), "one_core": one,
                      "all_cores": every, "speedup": round(one["seconds"] / every["seconds"], 2)}))


if __name__ == "__main__":
    main()
