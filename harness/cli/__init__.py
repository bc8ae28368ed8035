"""The `repro` command line: flags and messages only; each command calls one function of its room.

Heavy imports (torch, mmcv, mmseg) happen inside the commands that need them, so `repro --help`, `list`,
`verify` and `report` stay fast. Errors the user can fix (ReproError) print as one line and exit 2.
"""
from __future__ import annotations

import importlib

from harness.cli.group import cli

# mmcv's import-time notices are silenced by harness/engine/__init__.py, which every path to mmcv goes through


def _register() -> None:
    # each module adds its commands to `cli`; they import nothing heavy at module level
    from harness.cli import listing  # noqa: F401  (no cycle: the commands import harness.cli.group, not this)
    for name in ("fetch", "run", "batch", "verify", "demo", "rescore", "watch"):
        try:
            importlib.import_module(f"harness.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"harness.cli.{name}":
                raise


_register()


def main() -> None:
    cli(prog_name="repro")
