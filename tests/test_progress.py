"""Progress a CI log shows (issue 16): where no terminal is attached, long steps print a line now and then."""

from __future__ import annotations

import logging
import re

from facetrend import progress
from facetrend.cli import main


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "facetrend"]


def test_a_long_step_logs_a_line_each_tenth_and_every_few_seconds_within_one(caplog):
    clock = Clock()
    steps = progress.Lines(None, 100, "training", "epoch", clock)
    with caplog.at_level(logging.INFO, logger="facetrend"):
        for _ in range(100):
            clock.now += 0.5  # 50 s in all: a tenth every 5 s
            steps.update()
    said = _lines(caplog)
    assert said[0] == "training: 10/100 epochs (10%), 5 s"
    assert said[-1] == "training: 100/100 epochs (100%), 50 s"
    assert len(said) == 10
    caplog.clear()
    slow = progress.Lines(None, 10, "faces", "photo", clock)
    with caplog.at_level(logging.INFO, logger="facetrend"):
        clock.now += 30.0  # no photo done for 30 s, then one: said at once, the tenth it reaches
        slow.update()
        clock.now += 6.0  # a photo every 6 s: each is a tenth, and each is more than PERIOD_S later
        slow.update()
    assert _lines(caplog) == ["faces: 1/10 photos (10%), 30 s", "faces: 2/10 photos (20%), 36 s"]


def test_a_quick_step_logs_nothing_and_lines_are_never_closer_than_a_second(caplog):
    clock = Clock()
    with caplog.at_level(logging.INFO, logger="facetrend"):
        for _ in progress.Lines(range(50), 50, "NMF", "update", clock):
            clock.now += 0.01  # done in half a second: the stage's summary line says it
    assert _lines(caplog) == []
    many = progress.Lines(None, 1000, "pictures", "picture", clock)
    with caplog.at_level(logging.INFO, logger="facetrend"):
        for _ in range(1000):
            clock.now += 0.005  # 5 s: every tenth is 0.5 s, so only every other one is said
            many.update()
    said = _lines(caplog)
    assert 4 <= len(said) <= 5 and all("0%)" in line for line in said), said


def test_without_a_terminal_a_bar_is_log_lines_and_quiet_silences_them(caplog, capsys):
    bar = progress.bar(range(3), desc="training", unit="epoch")  # pytest captures stderr: no terminal
    assert isinstance(bar, progress.Lines) and bar.total == 3 and list(bar) == [0, 1, 2]
    assert "tqdm" not in type(progress.bar(total=5, desc="faces", unit="photo")).__module__


def test_a_build_warns_once_about_a_placeholder_story(tmp_path, caplog):
    content = tmp_path / "content"
    assert main(["new", "2024", "--content", str(content)]) == 0
    index = content / "2024" / "index.md"
    front = re.sub(r"(?m)^photos: .*$", "photos: builtin:lfw-subset\nfaces: {size: 16}\nmodel: {hidden: [8]}",
                   index.read_text(encoding="utf-8"))
    index.write_text(front, encoding="utf-8")
    caplog.clear()
    with caplog.at_level(logging.INFO):
        assert main(["build", "--smoke", "--content", str(content), "--out", str(tmp_path / "site"),
                     "--cache", str(tmp_path / "cache")]) == 0
    warned = [r.getMessage() for r in caplog.records if "placeholder" in r.getMessage()]
    assert len(warned) == 1 and str(index) in warned[0], warned
