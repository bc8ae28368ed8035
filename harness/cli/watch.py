"""`repro watch RUN [--follow]`: a retrain's early verdict from its log files (a local, torchrun or Slurm run)."""
from __future__ import annotations

import click

from harness.cli.group import cli

WATCH_EPILOG = """\b
Examples:
  repro watch runs/eva02_B_sz512/train/<stamp>                  # the references the run recorded
  repro watch runs/eva02_demo/train/<stamp> --reference runs/eva02_demo/train/<a> --reference runs/eva02_demo/train/<b>
  repro watch runs/eva02_L_sz512/train/<stamp> --follow --interval 300     # until the run writes result.json
"""


@cli.command("watch", epilog=WATCH_EPILOG)
@click.argument("run", type=click.Path(exists=True, file_okay=False))
@click.option("--reference", "references", multiple=True, metavar="FILE|URL|RUN",
              help="reference curves (repeatable)  [default: those the run recorded, else the built-in ones]")
@click.option("--follow", is_flag=True, help="judge again every --interval seconds until the run has a result.json")
@click.option("--interval", type=click.FloatRange(min=0.1), default=60.0, show_default=True,
              help="seconds between two looks with --follow")
@click.option("--all-points", is_flag=True, help="print every point, not only evaluation points and the last one")
def watch_cmd(run, references, follow, interval, all_points) -> None:
    """Judge a training run against reference curves at every logged point: lr exact, smoothed loss and mIoU within
    the references' band; on track, off track (first at iter N: ...) or inconclusive, with the reason. Also GPU-hours
    used and to go. Writes the verdict to RUN/watch.json."""
    from harness.curves.watch import watch
    for line in watch(run, list(references), follow=follow, interval=interval, all_points=all_points):
        click.echo(line)
