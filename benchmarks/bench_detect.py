"""Face detection on real photos (issue 12): recall, false faces, speed, large frames, backdrops, thumbnails.

    python benchmarks/bench_detect.py [--limit N] [--skip-recall]

Prints one JSON object. Reads ../shared/data/lfw in place (or $FACETREND_SHARED_DATA/lfw) and copies
nothing into the repository; the hard cases are made from it in a temporary folder:
- recall: every LFW photo (250x250), HOG against Haar + eye check in the same run, CPU seconds, misses' reasons;
- face-free scenes: random crops of scikit-image's scenes (astronaut and camera left out: they show a face) at 250 to
  1,000 px, and lfw_subset's 100 non-faces enlarged to 250 px;
- large frames: LFW photos pasted into 4000x3000 frames so the face is 100 to 400 px; one 24 MP photo timed;
- one backdrop: 30 different people pasted at the same place on one scene, through find_faces;
- thumbnails: 150 px scenes and logos (skipped with `crops: auto`) and 150 px LFW photos (kept).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from facetrend import collect, detect, faces
from facetrend.config import FaceSettings

DATA = Path(os.environ.get("FACETREND_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
SCENES = ("coffee", "chelsea", "rocket", "hubble_deep_field", "immunohistochemistry", "coins", "moon",
          "page", "text", "horse", "clock", "logo", "brick", "grass", "gravel", "retina", "cell", "colorwheel")


def lfw_files(limit: int) -> list[Path]:
    files = sorted((DATA / "lfw").glob("*/*.jpg"))
    return files[:: max(1, len(files) // limit)] if limit else files


def grey(path: Path) -> np.ndarray:
    return cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)


def recall(files: list[Path], settings: FaceSettings) -> dict:
    """Share of photos giving a face, CPU seconds, and each miss's reason."""
    detector = detect.Detector(settings)
    detector.search(grey(files[0]))  # models load outside the timing
    reasons: collections.Counter = collections.Counter()
    misses, start = [], time.process_time()
    for path in files:
        found = detector.search(grey(path))
        if not found.faces:
            reasons[found.reason] += 1
            misses.append(path.name)
    cpu = time.process_time() - start
    return {"photos": len(files), "recall": round(1 - len(misses) / len(files), 4), "cpu_s": round(cpu, 2),
            "ms_per_photo": round(1000 * cpu / len(files), 1), "reasons": dict(reasons), "misses": misses[:30]}


def scene_images(rng: np.random.Generator) -> list[np.ndarray]:
    from skimage import data

    images = []
    for name in SCENES:
        image = getattr(data, name)()
        image = cv2.cvtColor(image[..., :3].astype(np.uint8), cv2.COLOR_RGB2GRAY) if image.ndim == 3 else image
        image = image if image.dtype == np.uint8 else (255 * (image / image.max())).astype(np.uint8)
        for _ in range(12):
            s = int(rng.integers(min(image.shape) // 3, min(image.shape) + 1))
            y, x = (int(rng.integers(0, d - s + 1)) for d in image.shape)
            out = int(rng.choice([250, 500, 1000]))
            images.append(cv2.resize(image[y:y + s, x:x + s], (out, out), interpolation=cv2.INTER_CUBIC))
    nonfaces = (data.lfw_subset()[100:] * 255).round().astype(np.uint8)
    return images + [cv2.resize(n, (250, 250), interpolation=cv2.INTER_CUBIC) for n in nonfaces]


def false_faces(settings: FaceSettings, images: list[np.ndarray]) -> dict:
    detector = detect.Detector(settings)
    hits = sum(bool(detector.search(image).faces) for image in images)
    return {"scenes": len(images), "with_a_face": hits, "share": round(hits / len(images), 4)}


def large_frames(files: list[Path], settings: FaceSettings, rng: np.random.Generator) -> dict:
    """LFW photos (face about 110 px in 250) pasted into 4000x3000 frames so the face is 100..400 px."""
    detector = detect.Detector(settings)
    result = {}
    for face_px in (100, 150, 250, 400):
        found, cpu = 0, 0.0
        for path in files:
            photo = grey(path)
            k = face_px / 110
            pasted = cv2.resize(photo, None, fx=k, fy=k, interpolation=cv2.INTER_AREA if k < 1 else cv2.INTER_CUBIC)
            frame = cv2.GaussianBlur((rng.random((3000, 4000)) * 80 + 90).astype(np.uint8), (0, 0), 4)
            y, x = int(rng.integers(0, 3000 - pasted.shape[0])), int(rng.integers(0, 4000 - pasted.shape[1]))
            frame[y:y + pasted.shape[0], x:x + pasted.shape[1]] = pasted
            start = time.process_time()
            faces_found = detector.search(frame).faces
            cpu += time.process_time() - start
            found += any(x <= f.box[0] + f.box[2] / 2 <= x + pasted.shape[1] for f in faces_found)
        result[f"{face_px}px"] = {"found": found, "of": len(files), "cpu_s_per_photo": round(cpu / len(files), 2)}
    big = cv2.resize(grey(files[0]), (6000, 4000), interpolation=cv2.INTER_CUBIC)
    start = time.process_time()
    detector.search(big)
    result["24MP_cpu_s"] = round(time.process_time() - start, 2)
    return result


def _find(root: Path, settings: FaceSettings) -> faces.Faces:
    with tempfile.TemporaryDirectory() as cache:
        return faces.find_faces(collect._folder(root), settings, Path(cache), "bench")


def one_backdrop(files: list[Path], settings: FaceSettings) -> dict:
    """30 different people, each pasted at the same place on the same scene: none may be merged."""
    from skimage import data

    backdrop = cv2.resize(cv2.cvtColor(data.coffee(), cv2.COLOR_RGB2GRAY), (800, 600))
    people = {p.parent.name: p for p in files}
    with tempfile.TemporaryDirectory() as tmp:
        for name, path in sorted(people.items())[:30]:
            photo = backdrop.copy()
            photo[200:400, 300:500] = cv2.resize(grey(path)[25:225, 25:225], (200, 200))
            (Path(tmp) / name).mkdir()
            cv2.imwrite(str(Path(tmp) / name / "event.jpg"), photo)
        found = _find(Path(tmp), settings)
    merged = [s.reason for s in found.skipped if s.reason.startswith("near-duplicate")]
    return {"people": min(30, len(people)), "faces": len(found.ids), "merged": len(merged)}


def copies(files: list[Path], settings: FaceSettings) -> dict:
    """Each photo with a re-encoded, resized, lightly cropped and mirrored copy: each copy must count once."""
    kinds = {"jpeg60": lambda p: p, "resized": lambda p: cv2.resize(p, (180, 180), interpolation=cv2.INTER_AREA),
             "cropped": lambda p: p[8:-8, 8:-8], "mirrored": lambda p: p[:, ::-1]}
    out = {}
    for kind, change in kinds.items():
        with tempfile.TemporaryDirectory() as tmp:
            for i, path in enumerate(files[:20]):
                folder = Path(tmp) / f"p{i:02d}"
                folder.mkdir()
                photo = cv2.resize(grey(path), (500, 500), interpolation=cv2.INTER_CUBIC)  # > crop_max_side
                cv2.imwrite(str(folder / "a.png"), photo)
                cv2.imwrite(str(folder / "b.jpg"), np.ascontiguousarray(change(photo)), [cv2.IMWRITE_JPEG_QUALITY, 60])
            found = _find(Path(tmp), settings)
        out[kind] = {"pairs": 20, "caught": sum(s.reason.startswith("near-duplicate") for s in found.skipped)}
    return out


def distinct_same_person(files: list[Path], settings: FaceSettings) -> dict:
    """Different photos of one person are not near-duplicates (people with several photos, 2 each)."""
    by_person: dict[str, list[Path]] = collections.defaultdict(list)
    for path in sorted((DATA / "lfw").glob("*/*.jpg")):
        by_person[path.parent.name].append(path)
    with tempfile.TemporaryDirectory() as tmp:
        pairs = 0
        for name, paths in sorted(by_person.items()):
            if len(paths) >= 2 and pairs < 100:
                (Path(tmp) / name).mkdir()
                for path in paths[:2]:
                    cv2.imwrite(str(Path(tmp) / name / f"{path.stem}.png"), cv2.resize(grey(path), (500, 500)))
                pairs += 1
        found = _find(Path(tmp), settings)
    return {"pairs": pairs, "merged": sum(s.reason.startswith("near-duplicate") for s in found.skipped)}


def thumbnails(files: list[Path], settings: FaceSettings, scenes: list[np.ndarray]) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        for i, image in enumerate(scenes[:: max(1, len(scenes) // 100)]):
            (Path(tmp) / "scenes").mkdir(exist_ok=True)
            cv2.imwrite(str(Path(tmp) / "scenes" / f"{i:03d}.png"), cv2.resize(image, (150, 150)))
        for i, path in enumerate(files[:100]):
            (Path(tmp) / "people").mkdir(exist_ok=True)
            cv2.imwrite(str(Path(tmp) / "people" / f"{i:03d}.png"), cv2.resize(grey(path), (150, 150)))
        found = _find(Path(tmp), settings)
    kept = collections.Counter(p.split("/")[0] for p in found.photos)
    reasons = collections.Counter(s.reason for s in found.skipped)
    return {"scene_thumbnails_kept": kept["scenes"], "portrait_thumbnails_kept": kept["people"],
            "skipped": dict(reasons)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=0, help="LFW photos for recall (0: all)")
    parser.add_argument("--skip-recall", action="store_true")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    files = lfw_files(args.limit)
    sample = lfw_files(60)[:9]
    hog, haar = FaceSettings(detector="hog"), FaceSettings(detector="haar")
    scenes = scene_images(rng)
    report = {"detectors": {} if args.skip_recall else {"hog": recall(files, hog), "haar_eyes": recall(files, haar)},
              "false_faces": {"hog": false_faces(hog, scenes), "haar_eyes": false_faces(haar, scenes)},
              "large_frames": {"hog": large_frames(sample, hog, rng)},
              "one_backdrop": one_backdrop(lfw_files(400), hog),
              "copies": copies(lfw_files(200), hog),
              "distinct_photos_of_one_person": distinct_same_person(files, hog),
              "thumbnails": thumbnails(lfw_files(300), hog, scenes)}
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
