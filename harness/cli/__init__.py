"""The `repro` command line: flags and messages only; each command calls one function of its room.

Heavy imports (torch, mmcv, mmseg) happen inside the commands that need them, so `repro --help`, `list`,
`verify` and `report` stay fast. Errors the user can fix (ReproError) print as one line and exit 2.
"""
from __future__ import annotations

import logging
import warnings

import click

from harness import __version__
from harness.errors import ReproError

# mmcv 1.7's import-time notice about mmcv 2.0 (Jan 2023) says nothing about this run; keep output readable
warnings.filterwarnings("ignore", message="On January 1, 2023, MMCV will release v2.0.0")
# nor does torch's "No CUDA runtime is found, using CUDA_HOME=..." when mmcv imports cpp_extension on a CPU machine
logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)


class ReproGroup(click.Group):
    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except ReproError as exc:
            click.echo(exc.one_line(), err=True)
            ctx.exit(exc.exit_code)


@click.group(cls=ReproGroup, context_settings={"help_option_names": ["-h", "--help"], "show_default": True})
@click.version_option(__version__, prog_name="repro")
def cli() -> None:
    """Reproduce published semantic-segmentation results and verify them against the published tables.

    \b
    Typical session:
      repro download eva02_L_sz512      # released weights, verified
      repro prepare ade20k              # ADE20K, verified
      repro eval eva02_L_sz512          # a run directory with result.json
      repro verify runs/eva02_L_sz512/ss/<timestamp>
      repro report runs/eva02_L_sz512/ss/<timestamp>
    """


def _register() -> None:
    # each module adds its commands to `cli`; they import nothing heavy at module level
    from harness.cli import listing  # noqa: F401
    for name in ("fetch", "run", "batch", "verify", "demo", "watch"):
        try:
            __import__(f"harness.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"harness.cli.{name}":
                raise


_register()


def main() -> None:
    cli(prog_name="repro")
