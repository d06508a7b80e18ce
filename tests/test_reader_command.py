"""The build command as a user reads it (issue 16): one line per stage and report, one "nothing changed",
the summary names the featured looks, and `--report X --retrain` retrains X only."""

from __future__ import annotations

import logging
from pathlib import Path

from facetrend.build import BuildOptions, build
from facetrend.cli import main

from .conftest import two_years


def _messages(caplog, text: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if text in r.getMessage()]


def test_each_report_is_collected_once_per_build_and_nothing_changed_is_said_once(tmp_path: Path, att_faces,
                                                                                   caplog):
    content = two_years(tmp_path, att_faces)
    args = ["build", "--content", str(content), "--out", str(tmp_path / "site"), "--cache", str(tmp_path / "cache")]
    with caplog.at_level(logging.INFO):
        assert main(args) == 0
    collected = _messages(caplog, "collected ")
    assert len(collected) == 2, collected  # 2025 and 2026: once each, not again for its faces or the trends page
    summaries = _messages(caplog, " faces from ")
    assert summaries and all("featured look" in s or "no look stands out" in s for s in summaries), summaries
    assert not any("featured units" in s for s in summaries)
    caplog.clear()
    with caplog.at_level(logging.INFO):
        assert main(args) == 0
    assert len(_messages(caplog, "nothing changed")) == 1, _messages(caplog, "nothing changed")


def test_retrain_with_report_retrains_that_report_only(tmp_path: Path, att_faces):
    content = two_years(tmp_path, att_faces)
    cache = tmp_path / "cache"
    build(BuildOptions(content=content, out=tmp_path / "site", cache=cache))
    # a new output folder: the other year's pages are missing, so they are computed, from the cache
    again = build(BuildOptions(content=content, out=tmp_path / "other", cache=cache, report="2026", retrain=True))
    cached = {slug: r["cached"]["model"] for slug, r in again.record["reports"].items()}
    assert cached == {"2025": True, "2026": False, "trends": True}, cached
