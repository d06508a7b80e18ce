"""The faces stage's fast paths give what the slow ones gave: cache entries read and written without np.load and
np.savez (and entries np.savez wrote still read), the crop check on threads, the HOG detector copied, not
loaded again."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from facetrend import cache, collect, detect, faces
from facetrend.config import FaceSettings

ARRAYS = {  # every kind of array a faces entry holds, empty ones and a 0-d one included
    "crops": np.arange(2 * 8 * 8, dtype=np.uint8).reshape(2, 8, 8),
    "detected": np.array([True, False]),
    "reason": np.array("no face found by the detector"),
    "empty": np.zeros((0, 8, 8), np.uint8),
    "tilt": np.array([np.nan, -3.25]),
    "box": np.array([[1, 2, 3, 4], [-1, -1, -1, -1]], np.int64),
    "found": np.array(2),
    "colour": np.arange(2 * 8 * 8 * 3, dtype=np.uint8).reshape(2, 8, 8, 3)[:, ::-1],  # not C-contiguous
}


def _same(got: dict, expected: dict) -> None:
    assert list(got) == list(expected)
    for name, array in expected.items():
        assert got[name].dtype == array.dtype and got[name].shape == array.shape, name
        assert got[name].tobytes() == np.asarray(array).tobytes(), name
        assert got[name].flags.writeable, name


def _np_load(path: Path) -> dict:
    with np.load(path, allow_pickle=False) as archive:
        return {name: archive[name] for name in archive.files}


def test_arrays_written_by_save_arrays_read_the_same_with_np_load_and_load_arrays(tmp_path: Path):
    path = tmp_path / "entry.npz"
    with open(path, "wb") as handle:
        cache.save_arrays(handle, ARRAYS)
    _same(_np_load(path), ARRAYS)
    _same(cache.load_arrays(path), ARRAYS)


@pytest.mark.parametrize("save", [np.savez, np.savez_compressed])
def test_arrays_written_by_numpy_read_the_same_with_load_arrays(tmp_path: Path, save):
    path = tmp_path / "entry.npz"
    save(path, **ARRAYS)
    _same(cache.load_arrays(path), ARRAYS)


@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_a_damaged_archive_is_refused_as_np_load_refuses_it(tmp_path: Path, damage: str):
    path = tmp_path / "entry.npz"
    np.savez(path, **ARRAYS)
    data = bytearray(path.read_bytes())
    if damage == "flip":
        data[len(data) // 3] ^= 0xFF  # inside the crops' bytes: the CRC-32 no longer matches
    path.write_bytes(bytes(data if damage == "flip" else data[:len(data) // 2]))
    with pytest.raises(Exception):  # noqa: B017, PT011 - whatever np.load raises too: the entry is a miss
        _np_load(path)
    with pytest.raises(Exception):  # noqa: B017, PT011
        cache.load_arrays(path)


def test_object_arrays_are_not_written():
    with pytest.raises(ValueError, match="pickle"):
        cache.save_arrays(io.BytesIO(), {"x": np.array([None, 1], object)})


def test_a_store_key_is_the_key_of_its_stamp():
    stamp = {"v": 6, "size": 64, "crops": "auto"}
    store = cache.Store(Path("unused"), cache.FACES, stamp, ".npz", "cached crop")
    assert store.key("abc") == store.key("abc") == cache.key(stamp, "abc")
    assert store.key("abd") == cache.key(stamp, "abd") != store.key("abc")


def _old_dump_entry(entry: faces.Entry, handle) -> None:
    """How entries were written before cache.save_arrays (FACES_VERSION 6): np.savez."""
    np.savez(handle, crops=entry.crops, detected=np.array(entry.detected, bool),
             phash=np.frombuffer(entry.phash.to_bytes(32, "big"), np.uint8), reason=np.array(entry.reason),
             background=entry.background if entry.background is not None else entry.crops[:0],
             tilt=np.array([np.nan if t is None else t for t in entry.tilt], float),
             face_size=np.array([np.nan if v is None else v for v in entry.face_size], float),
             box=np.array([b or (-1, -1, -1, -1) for b in entry.box], np.int64).reshape(-1, 4),
             found=np.array(entry.found),
             colour=entry.colour if entry.colour is not None else np.zeros((0, *entry.crops.shape[1:], 3), np.uint8))


def _photos(root: Path, n: int = 12) -> Path:
    """Small colour and grey images (crops used whole) in two person folders."""
    rng = np.random.default_rng(4)
    for i in range(n):
        path = root / f"p{i % 2}" / f"{i}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        image = rng.integers(0, 256, (40, 32, 3) if i % 3 else (40, 32), dtype=np.uint8)
        cv2.imwrite(str(path), image)
    return root


def test_entries_written_before_are_read_as_they_were_written(tmp_path: Path, monkeypatch):
    photos, settings = _photos(tmp_path / "photos"), FaceSettings(size=16, crops="yes")
    with monkeypatch.context() as patch:
        patch.setattr(faces, "_dump_entry", _old_dump_entry)
        old = faces.find_faces(collect._folder(photos), settings, tmp_path / "old", "x", jobs=1, colour=True)
    new = faces.find_faces(collect._folder(photos), settings, tmp_path / "new", "x", jobs=1, colour=True)
    for cache_dir in ("old", "new"):
        warm = faces.find_faces(collect._folder(photos), settings, tmp_path / cache_dir, "x", jobs=1, colour=True)
        assert warm.cached
        for cold in (old, new):
            assert warm.ids == cold.ids and warm.skipped == cold.skipped and warm.detected == cold.detected
            assert np.array_equal(warm.pixels, cold.pixels) and np.array_equal(warm.colour, cold.colour)
            assert (warm.tilt, warm.face_size, warm.box, warm.other_faces) == \
                   (cold.tilt, cold.face_size, cold.box, cold.other_faces)


def test_an_entry_reads_back_whole(tmp_path: Path):
    entry = faces.Entry(np.full((2, 16, 16), 7, np.uint8), [True, True], (1 << 255) | 12345, "",
                        np.full((1, 16, 16), 9, np.uint8), None, [1.5, -0.25], [0.5, 0.75],
                        [(1, 2, 30, 40), (5, 6, 7, 8)], 3, np.full((2, 16, 16, 3), 200, np.uint8))
    for dump in (faces._dump_entry, _old_dump_entry):
        path = tmp_path / f"{dump.__name__}.npz"
        with open(path, "wb") as handle:
            dump(entry, handle)
        back = faces._load_entry(16, True, path)
        assert np.array_equal(back.crops, entry.crops) and np.array_equal(back.colour, entry.colour)
        assert np.array_equal(back.background, entry.background)
        assert (back.detected, back.phash, back.reason, back.tilt, back.face_size, back.box, back.found) == \
               (entry.detected, entry.phash, entry.reason, entry.tilt, entry.face_size, entry.box, entry.found)
        assert faces._load_entry(16, False, path).colour is None


def test_the_crop_check_on_threads_gives_what_one_thread_gives(tmp_path: Path, att_faces: Path, monkeypatch):
    for person in sorted(p for p in att_faces.iterdir() if p.is_dir())[:2]:
        shutil.copytree(person, tmp_path / "photos" / person.name)
    _photos(tmp_path / "photos" / "noise", 6)  # images that fail the check
    photos, settings = collect._folder(tmp_path / "photos").photos, FaceSettings(size=16)
    monkeypatch.setattr(faces, "PARALLEL_MIN", 4)
    monkeypatch.setattr(faces, "PROBE", 3)
    monkeypatch.setattr(faces, "THREADS_WORTH_S", 0.0)
    threaded, real = [], faces._crop_in_threads

    def spy(*args):
        threaded.append(len(args[0]))
        return real(*args)

    monkeypatch.setattr(faces, "_crop_in_threads", spy)
    one = list(faces._crop_all(photos, settings, 1, "", False))
    two = list(faces._crop_all(photos, settings, 2, "", False))
    assert threaded == [len(photos) - 3] and len(one) == len(two) == len(photos)
    for a, b in zip(one, two, strict=True):
        assert a.reason == b.reason and a.detected == b.detected and a.phash == b.phash
        assert np.array_equal(a.crops, b.crops)


def test_a_copied_hog_detector_finds_what_a_loaded_one_finds(att_faces: Path):
    import dlib

    first, second = detect._hog(), detect._hog()
    assert first is not second
    loaded = dlib.get_frontal_face_detector()
    for path in sorted(att_faces.glob("s1/*.pgm"))[:3]:
        image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        big = cv2.resize(image, None, fx=2, fy=2)
        want = loaded.run(big, 1, -1.0)
        for copy in (first, second):
            got = copy.run(big, 1, -1.0)
            assert [tuple((r.left(), r.top(), r.width())) for r in got[0]] == \
                   [tuple((r.left(), r.top(), r.width())) for r in want[0]]
            assert list(got[1]) == list(want[1]) and list(got[2]) == list(want[2])
