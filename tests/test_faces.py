import logging
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from facetrend import cache, collect, detect, faces, pixels
from facetrend.config import FaceSettings
from facetrend.errors import UserError


def _collection(root: Path) -> collect.Collection:
    return collect._folder(root)


def _scene(face: np.ndarray, scale: float, at: tuple[int, int], seed: int) -> np.ndarray:
    """A 480x640 photo: a blurred noisy gradient with an ORL face pasted at ``at`` (x, y)."""
    rng = np.random.default_rng(seed)
    background = rng.random((480, 640)) * 60 + np.linspace(60, 160, 640)[None, :]
    scene = cv2.GaussianBlur(background.astype(np.uint8), (0, 0), 3)
    f = cv2.resize(face, None, fx=scale, fy=scale)
    x, y = at
    scene[y:y + f.shape[0], x:x + f.shape[1]] = f
    return scene


def test_small_images_are_used_whole_grey_and_resized(tmp_path: Path, att_faces: Path):
    shutil.copytree(att_faces / "s1", tmp_path / "photos" / "s1")
    as_is = FaceSettings(size=24, equalize="none", crops="yes")  # declared crops: used whole, unchecked
    found = faces.find_faces(_collection(tmp_path / "photos"), as_is, tmp_path / "cache", "x")
    assert found.pixels.shape == (10, 24, 24) and found.pixels.dtype == np.uint8
    original = cv2.imread(str(tmp_path / "photos" / found.photos[0]), cv2.IMREAD_GRAYSCALE)  # 112 x 92
    expected = cv2.resize(original[10:102], (24, 24), interpolation=cv2.INTER_AREA)  # centred square, not squashed
    assert np.abs(found.pixels[0].astype(int) - expected).max() <= 1
    declared = FaceSettings(size=24, crops="yes")
    equalised = faces.find_faces(_collection(tmp_path / "photos"), declared, tmp_path / "cache", "x")
    assert np.array_equal(equalised.pixels[0], cv2.equalizeHist(found.pixels[0]))  # the default: histogram
    assert found.persons == ["s1"] * 10 and not any(found.detected)
    assert len(set(found.ids)) == 10


def test_large_photos_go_through_detection_and_the_face_is_cropped(tmp_path: Path, orl_faces: Path):
    """Faces pasted at known boxes in synthetic scenes are found (measured: 28 of 28 at these scales)."""
    people = sorted(p for p in orl_faces.iterdir() if p.is_dir())[:8]  # real faces: detection is measured
    boxes = {}
    for i, person in enumerate(people):
        face = cv2.imread(str(person / "1.pgm"), cv2.IMREAD_GRAYSCALE)
        scale, at = (1.5, 2.5)[i % 2], (60 + 40 * i, 40 + 10 * i)
        path = tmp_path / "photos" / person.name / "scene.png"
        path.parent.mkdir(parents=True)
        cv2.imwrite(str(path), _scene(face, scale, at, i))
        boxes[f"{person.name}/scene.png"] = (*at, int(92 * scale), int(112 * scale))
    found = faces.find_faces(_collection(tmp_path / "photos"), FaceSettings(), tmp_path / "cache", "x")
    assert len(found.ids) == len(people) and all(found.detected)
    detector = detect.Detector(FaceSettings())
    for photo in found.photos:
        x, y, w, h = boxes[photo]
        scene = cv2.imread(str(tmp_path / "photos" / photo), cv2.IMREAD_GRAYSCALE)
        bx, by, bw, bh = detector.faces(scene)[0].box
        assert x <= bx + bw / 2 <= x + w and y <= by + bh / 2 <= y + h  # the box is on the pasted face
        assert 0.3 * w <= bw <= 1.2 * w  # and about its size
    # a non-face patch as large as the face's crop, from each photo that has room for one beside the face:
    # the four faces pasted at 1.5x do, the four at 2.5x fill too much of the 480x640 scene
    assert len(found.backgrounds) == 4
    assert all(np.abs(b.astype(int) - f).mean() > 20 for b in found.backgrounds for f in found.pixels)


def test_face_box_becomes_a_square_with_margin_inside_the_photo():
    assert pixels.square_with_margin((40, 50, 20, 20), (100, 200), 0.5) == (30, 40, 70, 80)
    assert pixels.square_with_margin((0, 0, 30, 30), (100, 200), 0.5) == (0, 0, 60, 60)  # shifted in
    assert pixels.square_with_margin((150, 60, 50, 40), (100, 200), 1.0) == (100, 0, 200, 100)  # clipped


def test_photo_without_a_face_and_broken_files_are_skipped_with_reasons(tmp_path: Path, att_faces: Path):
    photos = tmp_path / "photos" / "p"
    photos.mkdir(parents=True)
    shutil.copy(att_faces / "s1" / "1.pgm", photos / "good.pgm")
    shutil.copy(att_faces / "s1" / "1.pgm", photos / "copy.pgm")
    cv2.imwrite(str(photos / "landscape.png"), np.full((400, 600), 128, np.uint8))
    (photos / "empty.jpg").write_bytes(b"")
    (photos / "text.jpg").write_text("not an image")
    data = (photos / "landscape.png").read_bytes()
    (photos / "truncated.png").write_bytes(data[: len(data) // 3])
    (photos / "bomb.pgm").write_bytes(b"P5\n100000 100000\n255\n" + bytes(100))  # declares 10^10 pixels
    found = faces.find_faces(_collection(tmp_path / "photos"), FaceSettings(crops="yes"), tmp_path / "cache", "x")
    assert found.photos == ["p/copy.pgm"]
    reasons = {s.path: s.reason for s in found.skipped}
    assert reasons["p/good.pgm"] == "duplicate of p/copy.pgm"
    assert reasons["p/landscape.png"] == "no face found by the detector"
    for bad in ("p/empty.jpg", "p/text.jpg", "p/truncated.png", "p/bomb.pgm"):
        assert "not a readable image" in reasons[bad]
    assert found.total == 7


def test_second_run_reads_crops_from_the_cache(tmp_path: Path, att_faces: Path):
    shutil.copytree(att_faces / "s2", tmp_path / "photos" / "s2")
    first = faces.find_faces(_collection(tmp_path / "photos"), FaceSettings(size=16), tmp_path / "cache", "x")
    second = faces.find_faces(_collection(tmp_path / "photos"), FaceSettings(size=16), tmp_path / "cache", "x")
    assert not first.cached and second.cached
    assert np.array_equal(first.pixels, second.pixels) and first.ids == second.ids
    other = faces.find_faces(_collection(tmp_path / "photos"), FaceSettings(size=20), tmp_path / "cache", "x")
    assert not other.cached and other.pixels.shape[1:] == (20, 20)


def test_a_corrupt_cached_crop_is_logged_and_redone(tmp_path: Path, att_faces: Path, caplog):
    shutil.copytree(att_faces / "s3", tmp_path / "photos" / "s3")
    first = faces.find_faces(_collection(tmp_path / "photos"), FaceSettings(size=16), tmp_path / "cache", "x")
    entries = sorted((tmp_path / "cache" / cache.FACES).rglob("*.npz"))
    assert len(entries) == 10
    entries[0].write_bytes(b"garbage")
    entries[1].write_bytes(entries[1].read_bytes()[:100])  # truncated
    np.savez(entries[2], crops=np.zeros((1, 8, 8), np.uint8))  # foreign: another size, fields missing
    with caplog.at_level(logging.WARNING):
        again = faces.find_faces(_collection(tmp_path / "photos"), FaceSettings(size=16), tmp_path / "cache", "x")
    assert not again.cached and "cached crop" in caplog.text and "unusable" in caplog.text
    assert np.array_equal(first.pixels, again.pixels) and first.ids == again.ids
    assert faces.find_faces(_collection(tmp_path / "photos"), FaceSettings(size=16), tmp_path / "cache", "x").cached


def test_thumbnails_are_kept_with_the_crops_only_when_asked(tmp_path: Path, orl_faces: Path, monkeypatch):
    face = cv2.imread(str(orl_faces / "s1" / "1.pgm"), cv2.IMREAD_GRAYSCALE)  # real: detected in a scene
    (tmp_path / "photos" / "p").mkdir(parents=True)
    cv2.imwrite(str(tmp_path / "photos" / "p" / "scene.png"), _scene(face, 1.5, (60, 40), 0))  # 640x480: detected
    shutil.copy(orl_faces / "s2" / "1.pgm", tmp_path / "photos" / "p" / "small.pgm")  # 92x112: used whole
    photos, root = _collection(tmp_path / "photos"), tmp_path / "cache"
    plain = faces.find_faces(photos, FaceSettings(size=16), root, "x")
    assert plain.thumbnails == {} and not list(root.rglob("*.thumb.npz"))
    shown = faces.find_faces(photos, FaceSettings(size=16), root, "x", thumbnails=True)  # crops cached already
    assert shown.cached and set(shown.thumbnails) == set(shown.ids)
    by_photo = dict(zip(shown.photos, shown.ids, strict=True))
    assert shown.thumbnails[by_photo["p/scene.png"]].shape == (180, 240)  # fits 240x240, aspect kept
    small = shown.thumbnails[by_photo["p/small.pgm"]]
    assert small.dtype == np.uint8 and np.array_equal(small, cv2.imread(str(orl_faces / "s2" / "1.pgm"), 0))
    monkeypatch.setattr(faces, "photo_thumbnail", lambda image: pytest.fail("a thumbnail was made again"))
    again = faces.find_faces(photos, FaceSettings(size=16), root, "x", thumbnails=True)
    assert all(np.array_equal(again.thumbnails[i], shown.thumbnails[i]) for i in shown.ids)
    monkeypatch.undo()
    cold = faces.find_faces(photos, FaceSettings(size=16), tmp_path / "cold", "x", thumbnails=True)  # in cropping
    assert all(np.array_equal(cold.thumbnails[i], shown.thumbnails[i]) for i in shown.ids)
    crops = [p for p in (tmp_path / "cold").rglob("*.npz") if not p.name.endswith(".thumb.npz")]
    assert len(crops) == 2 and all("thumbnail" not in np.load(p).files for p in crops)  # crop entries stay small


def test_no_face_at_all_is_a_user_error(tmp_path: Path):
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "x.jpg").write_bytes(b"")
    with pytest.raises(UserError, match="content/r/index.md: none of the 1 files"):
        faces.find_faces(_collection(tmp_path / "photos"), FaceSettings(), tmp_path / "cache", "content/r/index.md")


def test_many_photos_are_cropped_on_several_processes_with_the_same_result(tmp_path: Path, att_faces: Path,
                                                                         monkeypatch):
    monkeypatch.setattr(faces, "POOL_WORTH_S", 0.0)  # use the workers even for cheap crops
    for person in sorted(p for p in att_faces.iterdir() if p.is_dir())[:8]:
        shutil.copytree(person, tmp_path / "photos" / person.name)
    settings = FaceSettings(size=16)
    assert len(_collection(tmp_path / "photos").photos) >= faces.PARALLEL_MIN
    one = faces.find_faces(_collection(tmp_path / "photos"), settings, tmp_path / "c1", "x", jobs=1)
    two = faces.find_faces(_collection(tmp_path / "photos"), settings, tmp_path / "c2", "x", jobs=2)
    assert one.ids == two.ids and np.array_equal(one.pixels, two.pixels)
