"""The one cache module: keys, atomic writes, and entries that are damaged, blocked or cannot be written."""

from __future__ import annotations

import ast
import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from facetrend import cache, train
from facetrend.config import ModelSettings
from facetrend.faces import Faces

GENERATOR = Path(cache.__file__).resolve().parent


def _load_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _dump_json(data: dict):
    return lambda handle: handle.write(json.dumps(data).encode())


def test_key_covers_stamp_and_contents_and_never_two_splits_of_the_same_bytes():
    pixels = np.arange(12, dtype=np.uint8).reshape(3, 4)
    assert cache.key({"v": 1}, pixels) == cache.key({"v": 1}, pixels.copy())
    assert cache.key({"v": 1}, pixels) != cache.key({"v": 2}, pixels)
    assert cache.key({"v": 1}, b"ab", b"c") != cache.key({"v": 1}, b"a", b"bc")
    assert len(cache.key("x")) == 64
    with pytest.raises(TypeError):  # a stamp JSON cannot say exactly is refused, not guessed at
        cache.key({"v": object()})


def test_a_write_is_atomic_and_leaves_no_temp_file(tmp_path: Path):
    path = tmp_path / "kind" / "entry.json"
    seen = []

    def dump(handle):
        seen.append(Path(handle.name))
        handle.write(b'{"a": 1}')

    assert cache.write(path, dump, "test entry")
    assert seen[0].parent == path.parent and seen[0] != path  # written beside, then renamed
    assert _load_json(path) == {"a": 1} and sorted(p.name for p in path.parent.iterdir()) == ["entry.json"]

    def half(handle):
        handle.write(b'{"a": ')
        raise RuntimeError("disk full")

    assert not cache.write(path, half, "test entry")
    assert _load_json(path) == {"a": 1}  # the old entry, whole
    assert sorted(p.name for p in path.parent.iterdir()) == ["entry.json"]


def test_an_interrupt_goes_on_up_and_leaves_the_old_entry(tmp_path: Path):
    path = tmp_path / "entry.json"
    cache.write(path, _dump_json({"a": 1}), "test entry")

    def interrupted(handle):
        handle.write(b"{")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        cache.write(path, interrupted, "test entry")
    assert _load_json(path) == {"a": 1} and [p.name for p in tmp_path.iterdir()] == ["entry.json"]


@pytest.mark.parametrize("damage", [b"", b"garbage", b'{"a": '])
def test_a_damaged_entry_is_logged_as_a_miss_and_made_again(tmp_path: Path, caplog, damage: bytes):
    path = tmp_path / "entry.json"
    cache.write(path, _dump_json({"a": 1}), "test entry")
    path.write_bytes(damage)
    with caplog.at_level(logging.WARNING):
        assert cache.read(path, _load_json, "test entry") is None
    assert "test entry" in caplog.text and "unusable" in caplog.text
    assert cache.write(path, _dump_json({"a": 2}), "test entry")
    assert cache.read(path, _load_json, "test entry") == {"a": 2}


def test_a_missing_entry_is_a_quiet_miss(tmp_path: Path, caplog):
    with caplog.at_level(logging.WARNING):
        assert cache.read(tmp_path / "none.json", _load_json, "test entry") is None
    assert not caplog.text


def test_a_folder_blocked_by_a_file_is_a_miss_and_an_unwritten_entry(tmp_path: Path, caplog):
    (tmp_path / cache.MODELS).write_text("a file where a folder should be")
    store = cache.Store(tmp_path, cache.MODELS, {"v": 1}, ".json", "test entry")
    key = store.key(b"inputs")
    with caplog.at_level(logging.WARNING):
        assert store.get(key, _load_json) is None
        assert not store.put(key, _dump_json({"a": 1}))
    assert "could not write test entry" in caplog.text
    assert (tmp_path / cache.MODELS).read_text() == "a file where a folder should be"


def test_permission_denied_is_a_miss_and_an_unwritten_entry(tmp_path: Path, monkeypatch, caplog):
    path = tmp_path / "entry.json"
    cache.write(path, _dump_json({"a": 1}), "test entry")

    def denied(*args):
        raise PermissionError(13, "Permission denied")

    with caplog.at_level(logging.WARNING):
        assert cache.read(path, denied, "test entry") is None
        monkeypatch.setattr(cache.os, "replace", denied)
        assert not cache.write(path, _dump_json({"a": 2}), "test entry")
    assert caplog.text.count("Permission denied") == 2
    monkeypatch.undo()
    assert _load_json(path) == {"a": 1} and [p.name for p in tmp_path.iterdir()] == ["entry.json"]


def test_a_store_says_a_broken_cache_once_not_once_per_entry(tmp_path: Path, caplog):
    (tmp_path / cache.FACES).write_text("blocked")
    store = cache.Store(tmp_path, cache.FACES, {"v": 1}, ".json", "test entry")
    with caplog.at_level(logging.WARNING):
        for i in range(20):
            store.put(store.key(str(i)), _dump_json({}))
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 2  # the first, and "further ..."


def _faces() -> Faces:
    pixels = np.random.default_rng(0).integers(0, 256, (12, 6, 6), dtype=np.uint8)
    return Faces([str(i) for i in range(12)], ["p"] * 12, [f"s{i % 4}" for i in range(12)], pixels,
                 [False] * 12, 12, [], False)


def test_a_checkpoint_write_failing_with_a_runtime_error_is_a_warning(tmp_path: Path, monkeypatch, caplog):
    """torch.save raises RuntimeError, not OSError, on a full disk: the build must go on."""
    def full(*args, **kwargs):
        raise RuntimeError("PytorchStreamWriter failed writing file data/0: file write failed")

    monkeypatch.setattr(torch, "save", full)
    settings = ModelSettings(hidden=[4], epochs=1, batch_size=4)
    with caplog.at_level(logging.WARNING):
        trained = train.train_or_load(_faces(), settings, tmp_path)
    assert not trained.cached and "could not write model cache" in caplog.text
    assert not [p for p in (tmp_path / cache.MODELS).iterdir()]  # no checkpoint, no temp file


def test_every_path_helper_stays_inside_the_layout(tmp_path: Path):
    paths = [cache.entry_path(tmp_path, cache.FACES, "ab" * 32, ".npz"),
             cache.entry_path(tmp_path, cache.MODELS, "cd" * 32, ".pt"),
             cache.images_archive(tmp_path, "2024"), cache.fetch_state(tmp_path, "2024"),
             cache.review_root(tmp_path), cache.stamps_file(tmp_path), cache.record_file(tmp_path)]
    assert all(p.relative_to(tmp_path).parts[0] in cache.LAYOUT for p in paths)
    assert len(set(cache.LAYOUT)) == len(cache.LAYOUT)


def test_write_record_writes_last_build_json(tmp_path: Path):
    assert cache.write_record(tmp_path / "c", {"reports": {"r": {"cached": {"faces": True}}}})
    assert _load_json(tmp_path / "c" / cache.RECORD)["reports"]["r"]["cached"] == {"faces": True}


def _spelled_paths(source: str) -> list[str]:
    """Cache layout names spelled in code: `x / "images"`, and the cache's own file names anywhere."""
    names, files = set(cache.LAYOUT), {cache.STAMPS, cache.RECORD}
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div) and isinstance(node.right, ast.Constant) \
                and node.right.value in names:
            found.append(node.right.value)
        elif isinstance(node, ast.Constant) and node.value in files:
            found.append(node.value)
    return found


def test_the_cache_layout_is_spelled_only_in_cache_py():
    sample = 'p = cache_dir / "model" / f"{key}.pt"\nq = "last-build.json"'
    assert sorted(_spelled_paths(sample)) == ["last-build.json", "model"]  # the check can fail
    spelled = {(path.name, name) for path in sorted(GENERATOR.glob("*.py")) if path.name != "cache.py"
               for name in _spelled_paths(path.read_text(encoding="utf-8"))}
    assert not spelled, f"cache paths spelled outside cache.py: {sorted(spelled)}"
