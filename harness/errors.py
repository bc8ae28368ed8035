"""The one exception type for errors a user can fix. The CLI prints it as one line and exits non-zero.

`printable` lives here too (re-exported by harness.console): the error line shows paths and fields read from files,
and this module is a leaf that imports nothing of the harness.
"""
from __future__ import annotations

import re

# C0 and C1 controls (ESC starts a terminal's escape sequences), DEL, the bidi overrides and isolates, zero-width
# marks, the line/paragraph separators and lone surrogates: what a terminal acts on or a reader cannot see
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff\ud800-\udfff]")


def printable(text) -> str:
    """TEXT (a field read from a record, a registry or a log) safe to print on one line: every control character is
    shown as its Python escape (ESC as `\\x1b`, a newline as `\\n`), so nothing read from a file can move the
    cursor, clear the screen, retitle the window or start a new line.

        >>> printable("eva02\\x1b[2J\\nPASS")
        'eva02\\\\x1b[2J\\\\nPASS'
    """
    text = str(text)
    return _UNPRINTABLE.sub(lambda m: m.group().encode("unicode_escape", "backslashreplace").decode("ascii"), text)


class ReproError(Exception):
    """A problem the user can fix: `message` names it, `fix` says how (a command to run, a flag to pass)."""

    exit_code = 2

    def __init__(self, message: str, fix: str | None = None):
        super().__init__(message)
        self.message = message
        self.fix = fix

    def one_line(self) -> str:
        text = f"error: {self.message}"
        if self.fix:
            text += f" — fix: {self.fix}"
        return printable(" ".join(text.split()))       # a path or field from a file must not drive the terminal
