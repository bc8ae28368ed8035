"""The `repro` command line: flags and messages only; each command calls one function of its room.

Heavy imports (torch, mmcv, mmseg) happen inside the commands that need them, so `repro --help`, `list`,
`verify` and `report` stay fast. Errors the user can fix (ReproError) print as one line and exit 2.
"""
from __future__ import annotations

import importlib
import warnings

from harness.cli.group import cli

# mmcv 1.7's import-time notice about mmcv 2.0 (Jan 2023) says nothing about this run; keep output readable (here
# too: preflight may import mmcv.ops before anything imports harness.engine, which sets the same filter; `warnings`
# is loaded at interpreter start, so this costs nothing). torch's "No CUDA runtime is found" logger is quieted by
# harness/engine/__init__.py alone: only a CPU machine prints it, and there mmcv is reached through harness.engine.
warnings.filterwarnings("ignore", message="On January 1, 2023, MMCV will release v2.0.0")


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
