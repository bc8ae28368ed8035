"""`repro list`: every reproduction, its protocols, published numbers and local state."""
from __future__ import annotations

import json

import click

from harness.cli import cli


@cli.command("list")
@click.option("--json", "as_json", is_flag=True, help="print JSON instead of a table")
def list_cmd(as_json: bool) -> None:
    """List the reproductions: model, dataset, protocols, published aAcc/mIoU/mAcc, weights and data state.

    \b
    Examples:
      repro list
      repro list --json | jq '.[].id'
    """
    from harness.inventory import inventory

    rows = inventory()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        click.echo(f"{row['id']:<16} {row['model']}  [{row['dataset']}]")
        for protocol, metrics in row["published"].items():
            label = "baseline" if row["baseline"] else "published"
            numbers = "  ".join(f"{k} {'—' if v is None else f'{v:.2f}'}" for k, v in metrics.items())
            click.echo(f"  {protocol:<3} {label}: {numbers}")
        click.echo(f"  weights: {row['weights']}   dataset: {row['dataset_state']}")
