"""The `repro` click group: every command module adds its commands to `cli` (harness/cli/__init__.py imports them).
A ReproError raised by a command is printed as one line and exits with its code (2: bad input)."""
from __future__ import annotations

import click

from harness import __version__
from harness.errors import ReproError


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
