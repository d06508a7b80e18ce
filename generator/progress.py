"""Progress of the long steps (detection, training, NMF, the experiments, encoding pictures).

On a terminal it is tqdm's bar, redrawn in place. Where no terminal is attached
(CI logs, a redirected build) a bar would print nothing useful, so the step logs
a plain line instead, ``faces: 120/600 photos (20%), 6 s``: when another tenth
is done, but at most one a second, and every PERIOD_S seconds while it runs
longer than that within a tenth. A step done within MIN_GAP_S prints no line
(the stage's own summary line follows). The lines go through logging, so
``-q`` silences them as it silences the rest.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any

log = logging.getLogger("facetrend")

PERIOD_S = 5.0  # at least one line this often while a step makes progress
MIN_GAP_S = 1.0  # never two lines closer than this


def bar(iterable: Iterable | None = None, *, total: int | None = None, desc: str, unit: str) -> Any:
    """A progress bar over ``iterable`` (or updated by hand up to ``total``): tqdm on a terminal, log lines
    elsewhere. Both iterate, take ``update(n)`` and work as context managers."""
    if total is None and iterable is not None and hasattr(iterable, "__len__"):
        total = len(iterable)  # type: ignore[arg-type]
    if _terminal():
        from tqdm import tqdm  # here: a build with nothing to do never imports it

        return tqdm(iterable, total=total, desc=desc, unit=unit)
    return Lines(iterable, total, desc, unit)


def _terminal() -> bool:
    stream = sys.stderr
    return bool(getattr(stream, "isatty", None)) and stream.isatty()


class Lines:
    """Progress as log lines: a tenth more done (and MIN_GAP_S since the last line), or PERIOD_S since it."""

    def __init__(self, iterable: Iterable | None, total: int | None, desc: str, unit: str,
                 clock=time.monotonic) -> None:
        self.iterable, self.total, self.desc, self.unit, self.clock = iterable, total, desc, unit, clock
        self.done = 0
        self.start = self.last = clock()
        self.tenths = 0

    def __iter__(self) -> Iterator:
        for item in self.iterable or ():
            yield item
            self.update()

    def __enter__(self) -> Lines:
        return self

    def __exit__(self, *exc) -> None:
        return None

    def update(self, n: int = 1) -> None:
        self.done += n
        now = self.clock()
        tenths = self.done * 10 // self.total if self.total else 0
        if now - self.last < MIN_GAP_S:
            return
        if tenths > self.tenths or now - self.last >= PERIOD_S:
            self.tenths, self.last = tenths, now
            log.info("%s", self.line(now))

    def line(self, now: float) -> str:
        """``faces: 120/600 photos (20%), 6 s`` (without a total: ``NMF: 120 updates, 6 s``)."""
        units = self.unit if (self.total or self.done) == 1 else f"{self.unit}s"
        elapsed = f"{now - self.start:.0f} s"
        if not self.total:
            return f"{self.desc}: {self.done} {units}, {elapsed}"
        return f"{self.desc}: {self.done}/{self.total} {units} ({self.done * 100 // self.total}%), {elapsed}"
