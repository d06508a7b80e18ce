"""Errors that a user can fix: the CLI prints them as one paragraph and exits 2."""

from __future__ import annotations


class UserError(Exception):
    """A problem with the user's content or settings, never a bug in facetrend.

    The message names the file, the key (where there is one) and the fix.
    """

    exit_code = 2
