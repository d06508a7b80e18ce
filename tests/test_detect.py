"""Detection, landmark alignment, crops: auto, face-level duplicates (issue 12).

Every test but the last runs on any machine: the real faces come from scikit-image (astronaut, lfw_subset).
The last measures recall on ../shared/data/lfw and skips where that is absent.
"""

import math
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from facetrend import collect, detect, faces, pixels
from facetrend.config import FaceSettings

LFW = Path(os.environ.get("FACETREND_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")) / "lfw"


def _astronaut() -> np.ndarray:
    from skimage import data

    return cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2GRAY)  # 512x512, one frontal face of about 90 px


def _frame(face_photo: np.ndarray, k: float, at: tuple[int, int], shape=(3000, 4000)) -> np.ndarray:
    frame = cv2.GaussianBlur((np.random.default_rng(0).random(shape) * 60 + 90).astype(np.uint8), (0, 0), 4)
    pasted = cv2.resize(face_photo, None, fx=k, fy=k, interpolation=cv2.INTER_AREA if k < 1 else cv2.INTER_CUBIC)
    frame[at[1]:at[1] + pasted.shape[0], at[0]:at[0] + pasted.shape[1]] = pasted
    return frame


def _write(folder: Path, name: str, image: np.ndarray) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(folder / name), image)


def test_a_small_face_in_a_large_photo_is_found_on_a_pyramid():
    """A 120 px face in a 4000x3000 photo (1/25 of the shorter side): the old code dropped anything under 117 px."""
    detector = detect.Detector(FaceSettings())
    found = detector.search(_frame(_astronaut(), 1.3, (900, 500)))
    assert len(found.faces) == 1 and found.reason == ""
    x, y, w, h = found.faces[0].box
    assert 900 + 176 * 1.3 - 30 < x < 900 + 176 * 1.3 + 30 and 90 < w < 160
    assert len(found.faces[0].landmarks) == 5


def test_no_face_and_its_reason_name_the_step():
    blank = np.full((300, 400), 128, np.uint8)
    assert detect.Detector(FaceSettings()).search(blank).reason == "no face found by the detector"
    assert detect.Found([], "face found but rejected by the eye check: x").reason.startswith("face found but rejected")


def test_alignment_levels_scales_and_centres_and_reports_the_tilt():
    """The same face turned 12 degrees anticlockwise (as seen) and shrunk gives the same crop; tilt is +12."""
    detector = detect.Detector(FaceSettings())
    photo = _astronaut()
    turned = cv2.warpAffine(photo, cv2.getRotationMatrix2D((220, 130), 12, 0.8), (512, 512),
                            borderMode=cv2.BORDER_REPLICATE)
    crops, poses = [], []
    for image in (photo, turned):
        face = detector.search(image).faces[0]
        crop, pose = pixels.aligned(image, face.landmarks, 0.2, 64)
        crops.append(crop.astype(float).ravel())
        poses.append(pose)
    assert abs(poses[1].tilt - poses[0].tilt - 12) < 3
    assert 0.7 < poses[1].side / poses[0].side < 0.9
    assert np.corrcoef(*crops)[0, 1] > 0.9


def test_similarity_recovers_a_known_turn_and_scale():
    src = pixels.TEMPLATE * 100
    angle = math.radians(20)
    rot = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    dst = 0.5 * src @ rot.T + [10, 20]
    m = pixels.similarity(src, dst)
    assert np.allclose(m[:, :2], 0.5 * rot, atol=1e-9) and np.allclose(m[:, 2], [10, 20], atol=1e-9)


def test_crops_auto_keeps_small_faces_and_skips_logos_and_thumbnails(tmp_path: Path):
    from skimage import data

    lfw = (data.lfw_subset()[:3] * 255).round().astype(np.uint8)  # 25x25 tight face crops
    for i, face in enumerate(lfw):
        _write(tmp_path / "p" / "faces", f"{i}.png", cv2.resize(face, (100, 100), interpolation=cv2.INTER_CUBIC))
    _write(tmp_path / "p" / "logos", "brick.png", cv2.resize(data.brick(), (150, 150)))
    _write(tmp_path / "p" / "logos", "text.png", cv2.resize(data.text(), (150, 150)))
    found = faces.find_faces(collect._folder(tmp_path / "p"), FaceSettings(), tmp_path / "cache", "x")
    assert sorted(found.photos) == ["faces/0.png", "faces/1.png", "faces/2.png"]
    assert {s.reason for s in found.skipped} == {"small image with no face: logo or thumbnail?"}
    assert found.tilt == [None] * 3 and found.box == [None] * 3
    declared = faces.find_faces(collect._folder(tmp_path / "p"), FaceSettings(crops="yes"), tmp_path / "cache", "x")
    assert len(declared.photos) == 5
    detected = faces.find_faces(collect._folder(tmp_path / "p"), FaceSettings(crops="no"), tmp_path / "cache", "x")
    assert all(detected.detected)


def test_people_on_one_backdrop_are_not_merged_but_a_mirrored_copy_is(tmp_path: Path):
    from skimage import data

    backdrop = cv2.resize(cv2.cvtColor(data.coffee(), cv2.COLOR_RGB2GRAY), (800, 600))
    people = [_astronaut()[40:300, 110:370]] + [cv2.resize(f, (260, 260), interpolation=cv2.INTER_CUBIC) for f in
                                               (data.lfw_subset()[:2] * 255).round().astype(np.uint8)]
    for i, person in enumerate(people):
        photo = backdrop.copy()
        photo[150:410, 270:530] = person
        _write(tmp_path / "p" / f"person{i}", "event.png", photo)
    _write(tmp_path / "p" / "person0", "mirrored.jpg", np.ascontiguousarray(photo_of(tmp_path, 0)[:, ::-1]))
    found = faces.find_faces(collect._folder(tmp_path / "p"), FaceSettings(), tmp_path / "cache", "x")
    near = [s for s in found.skipped if s.reason.startswith("near-duplicate")]
    assert len(found.photos) == len(people) and len(near) == 1 and near[0].path.startswith("person0/")


def photo_of(tmp_path: Path, i: int) -> np.ndarray:
    return cv2.imread(str(tmp_path / "p" / f"person{i}" / "event.png"), cv2.IMREAD_GRAYSCALE)


def test_the_largest_face_is_kept_and_the_others_counted_with_pose(tmp_path: Path):
    head = _astronaut()[:300, 60:400]  # her name badge, lower down, reads as a face at 55 px
    frame = _frame(head, 1.0, (100, 100), shape=(900, 1400))
    small = cv2.resize(head, None, fx=0.7, fy=0.7)
    frame[200:200 + small.shape[0], 800:800 + small.shape[1]] = small
    _write(tmp_path / "p" / "a", "group.png", frame)
    found = faces.find_faces(collect._folder(tmp_path / "p"), FaceSettings(), tmp_path / "cache", "x")
    assert len(found.ids) == 1 and found.other_faces == [1]
    x, y, w, h = found.box[0]
    assert 100 + 90 < x < 100 + 140 and abs(found.face_size[0] - w / 900) < 0.5 * w / 900
    assert found.tilt[0] is not None and abs(found.tilt[0]) < 10
    again = faces.find_faces(collect._folder(tmp_path / "p"), FaceSettings(), tmp_path / "cache", "x")
    assert again.cached and again.box == found.box and again.tilt == found.tilt and again.other_faces == [1]


@pytest.mark.skipif(not LFW.is_dir(), reason=f"LFW photos not found at {LFW} (set FACETREND_SHARED_DATA)")
def test_real_news_photos_give_a_face():
    """Measured on all 6,679: 99.3% (docs/benchmarks.md); here every 33rd photo, at least 98%."""
    files = sorted(LFW.glob("*/*.jpg"))[::33]
    detector = detect.Detector(FaceSettings())
    found = sum(bool(detector.search(cv2.imread(str(f), cv2.IMREAD_GRAYSCALE)).faces) for f in files)
    assert found / len(files) >= 0.98


def _two_faces() -> np.ndarray:
    """A 600x1100 photo with the astronaut twice: full size on the left, at 0.8 on the right."""
    photo = _astronaut()
    frame = np.full((600, 1100), 120, np.uint8)
    frame[40:552, 0:512] = photo
    small = cv2.resize(photo, None, fx=0.8, fy=0.8, interpolation=cv2.INTER_AREA)
    frame[60:60 + small.shape[0], 600:600 + small.shape[1]] = small
    return frame


def test_landmarks_are_located_only_for_the_faces_kept(monkeypatch):
    """keep: largest (the default) keeps one face of a group photo: the others get no landmarks, which were
    located for every face before; the kept face's landmarks and every box are the same either way."""
    detector = detect.Detector(FaceSettings())
    image = _two_faces()
    every = detector.search(image)
    assert len(every.faces) == 2 and all(len(f.landmarks) == 5 for f in every.faces)
    calls = []
    located = detect.Detector._landmarks
    monkeypatch.setattr(detect.Detector, "_landmarks", lambda self, im, box: calls.append(box) or located(
        self, im, box))
    first = detector.search(image, 1)
    assert calls == [every.faces[0].box]
    assert [f.box for f in first.faces] == [f.box for f in every.faces]
    assert first.faces[0].landmarks == every.faces[0].landmarks and first.faces[1].landmarks is None
    calls.clear()
    group = collect.Photo("group", None, pixels=image)  # larger than crop_max_side: searched like a photo
    entry = faces.crop_photo(group, FaceSettings(), detector)
    assert len(calls) == 1 and entry.found == 2 and len(entry.crops) == 1
    calls.clear()
    entry = faces.crop_photo(group, FaceSettings(keep="all"), detector)
    assert len(calls) == 2 and len(entry.crops) == 2
