"""Errors that a user can fix: the CLI prints them as one paragraph and exits 2."""

from __future__ import annotations

import re

MESSAGE_MAX = 2000  # characters: a paragraph a person reads; the head names the file, the tail says the fix
_TAIL = 600
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


class UserError(Exception):
    """A problem with the user's content or settings, never a bug in facetrend.

    The message names the file, the key (where there is one) and the fix. Its text
    is bounded (``MESSAGE_MAX``): a longer one keeps its start and its end.
    """

    exit_code = 2

    def __str__(self) -> str:
        return bounded(super().__str__())


def bounded(text: str, limit: int = MESSAGE_MAX) -> str:
    """``text`` cut to ``limit`` characters in the middle, keeping the start (the file) and the end (the fix)."""
    if len(text) <= limit:
        return text
    marker = " [...] "
    return text[: limit - _TAIL - len(marker)] + marker + text[-_TAIL:]


def printable(text: str) -> str:
    """``text`` safe to print on a terminal: control characters (escape sequences) written as ``\\x1b``."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)
