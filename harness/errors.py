"""The one exception type for errors a user can fix. The CLI prints it as one line and exits non-zero."""
from __future__ import annotations

from harness.console import printable


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
