"""`repro list`: every reproduction, its protocols, published numbers and local state."""
from __future__ import annotations

import json

import click

from harness.cli.group import cli


@cli.command("list")
@click.option("--json", "as_json", is_flag=True, help="print JSON instead of a table")
@click.option("--zoo", is_flag=True, help="the ADE20K entries of the installed mmseg's model zoo instead")
@click.option("--filter", "text", default=None, metavar="TEXT",
              help="with --zoo: entries whose name, family or backbone contains TEXT (any case)")
def list_cmd(as_json: bool, zoo: bool, text: str | None) -> None:
    """List the reproductions: model, dataset, protocols, published aAcc/mIoU/mAcc, weights and data state.

    \b
    Examples:
      repro list
      repro list --json | jq '.[].id'
      repro list --zoo --filter segformer          # mmseg/<entry> ids, usable by download/eval/verify
    """
    from harness.inventory import inventory, zoo_inventory

    if text is not None and not zoo:
        raise click.UsageError("--filter applies to --zoo")
    if zoo:
        _print_zoo(zoo_inventory(text), as_json)
        return
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


def _print_zoo(rows: list[dict], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        numbers = "  ".join(f"{p} mIoU {v['mIoU']:.2f}" for p, v in row["published"].items() if "mIoU" in v)
        needs = f"  needs: {', '.join(row['needs'])}" if row["needs"] else ""
        click.echo(f"{row['id']:<62} {row['family']:<12} {row['backbone']:<14} {numbers}  weights: {row['weights']}"
                   f"{needs}")
    click.echo(f"{len(rows)} entries (source: the metafiles of mmsegmentation's model zoo, read at run time)")
