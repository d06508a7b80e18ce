"""Faults mid-build: interrupted training or rendering, a broken checkpoint, two builds at once."""

import fcntl
from pathlib import Path

import pytest
from facetrend import pictures, train
from facetrend.build import BuildOptions, build, exclusive
from facetrend.cli import main
from facetrend.errors import UserError

from .conftest import tree_bytes


def _opts(content: Path, tmp: Path, **kw) -> BuildOptions:
    return BuildOptions(content=content, out=tmp / "site", cache=tmp / "cache", **kw)


def _interrupt(*args, **kwargs):
    raise KeyboardInterrupt


@pytest.mark.parametrize("where", ["training", "rendering"])
def test_ctrl_c_leaves_the_site_and_the_cache_as_they_were(small_content: Path, tmp_path: Path, monkeypatch,
                                                            where: str):
    build(_opts(small_content, tmp_path))
    site, cache = tree_bytes(tmp_path / "site"), tree_bytes(tmp_path / "cache" / "model")
    monkeypatch.setattr(*((train, "_epoch") if where == "training" else (pictures.EncodedImages, "encode")), _interrupt)
    with pytest.raises(KeyboardInterrupt):
        build(_opts(small_content, tmp_path, retrain=True))
    assert tree_bytes(tmp_path / "site") == site
    assert tree_bytes(tmp_path / "cache" / "model") == cache  # no half-written checkpoint
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp") or "-new-" in p.name]


def test_ctrl_c_is_a_message_not_a_traceback(small_content: Path, tmp_path: Path, monkeypatch, capsys):
    monkeypatch.setattr(train, "_epoch", _interrupt)
    assert main(["build", "--content", str(small_content), "--out", str(tmp_path / "site"),
                 "--cache", str(tmp_path / "cache")]) == 130
    assert "interrupted" in capsys.readouterr().err


def test_a_second_build_on_the_same_output_stops_with_a_message(small_content: Path, tmp_path: Path):
    with exclusive(tmp_path / "site"):  # a first build holds the output folder
        with pytest.raises(UserError, match="another facetrend build is writing.*Fix: wait"):
            build(_opts(small_content, tmp_path))
    build(_opts(small_content, tmp_path))  # free again once it is done
    assert (tmp_path / "site" / "index.html").exists()


def test_the_lock_is_an_operating_system_lock(tmp_path: Path):
    with exclusive(tmp_path / "site"):
        with open(tmp_path / ".site.lock") as other, pytest.raises(BlockingIOError):
            fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
