"""`repro rescore`: mmseg's other metrics from a run's per-image ledger, without loading the model."""
from __future__ import annotations

from pathlib import Path

import click

from harness.cli.group import cli


@cli.command("rescore", epilog="""\b
Examples:
  repro rescore runs/eva02_L_sz512/ss/20260101T120000Z
  repro rescore runs/eva02_L_sz512/ss/20260101T120000Z --metrics mIoU,mDice,mFscore
""")
@click.argument("run", type=click.Path(path_type=Path))
@click.option("--metrics", default="mIoU,mDice,mFscore", metavar="LIST",
              help="comma-separated mmseg metrics: mIoU, mDice, mFscore (precision and recall come with mFscore)")
def rescore_cmd(run, metrics):
    """Compute mmseg's metrics from RUN's ledger (no model loaded, no inference) and record them in the run
    folder as rescore.json.

    The numbers are mmseg 0.29.1's `total_area_to_metrics` on the ledger's summed area histograms (Fscore with
    beta 1), summarised as mmseg's evaluate does (mean over the classes, NaN classes left out), in percent,
    unrounded. An imported result has no ledger: exit 2."""
    from harness.ledger.runs import rescore_run

    names = [m.strip() for m in metrics.split(",") if m.strip()]
    path, document = rescore_run(run, names)
    ledger = document["ledger"]
    click.echo(f"{run}: {ledger['images']} images, ledger {ledger['file']} (sha256 {ledger['sha256'][:12]}…)")
    width = max(len(k) for k in document["metrics"])
    for key, value in document["metrics"].items():
        click.echo(f"  {key.ljust(width)}  {'—' if value is None else f'{value:8.4f}'}")
    click.echo(f"wrote {path} (with the per-class values)")
