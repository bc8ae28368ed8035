"""`repro verify`, `repro import`, `repro report`: flags and messages; each calls one function of its room."""
from __future__ import annotations

import sys
from pathlib import Path

import click

from harness.choices import TIER_CHOICES
from harness.cli.group import cli
from harness.console import printable

TIER = click.Choice(TIER_CHOICES)


@cli.command("verify", epilog="""\b
Examples:
  repro verify runs/eva02_L_sz512/ss/20260101T120000Z
  repro verify runs/eva02_B_sz512/train/*/result.json --tier retrain --junitxml verify.xml
  repro verify runs/eva02_demo/ss/20260101T120000Z --regen   # write the demo baseline (then re-run)
""")
@click.argument("runs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--tier", type=TIER, default="auto",
              help="released: the released weights with the published protocol, tight tolerances (refused for a run "
                   "that is not); retrain: a band per run and a one-sided t-test over several seeds; baseline: the "
                   "harness's own baselines (the demo); auto: from the run's provenance: baseline for baseline "
                   "reproductions, released only for the released weights (recorded sha256 equal to the released "
                   "one) evaluated in fp32 without --cfg-options that change the model or test pipeline, else "
                   "retrain (training runs, their checkpoints, other checkpoints, overrides; the verdict says why)")
@click.option("--junitxml", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="also write a JUnit XML report here")
@click.option("--expected", "expected_root", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="the expected tables and tolerances  [default: expected/ of the repository, or $REPRO_EXPECTED]")
@click.option("--regen", is_flag=True, help="write the obtained summary metrics as the new harness baseline "
                                              "(baseline reproductions only); the checks then fail once")
@click.option("-v", "--verbose", is_flag=True, help="one line per check instead of dots")
def verify_cmd(runs, tier, junitxml, expected_root, regen, verbose):
    """Check run records against the expected tables, one pytest test per run × metric and run × class.

    RUNS are run directories, result.json files or batch folders (`repro batch`: every run it lists, those that
    failed or never finished as FAIL lines and failing JUnit cases). Exit 0 when every check passes, 1 when one
    fails, 2 on bad input (unreadable record, no metrics, NaN metrics, unknown reproduction or class names,
    a malformed tolerance file).
    """
    from harness.batch import is_batch
    from harness.verify.plugin import run_verify

    if any(is_batch(run) for run in runs):
        from harness.batch.judge import verify_batch
        if regen:
            raise click.UsageError("--regen takes run directories, not a batch")
        sys.exit(verify_batch(list(runs), tier=None if tier == "auto" else tier, junitxml=junitxml,
                              expected_root=expected_root, verbose=verbose, say=click.echo))

    sys.exit(run_verify(list(runs), tier=None if tier == "auto" else tier, junitxml=junitxml,
                        expected_root=expected_root, regen=regen, verbose=verbose))


@cli.command("import", epilog="""\b
Examples:
  repro import work_dirs/upernet_eva02_large_24_512_slide_80k/eval_single_scale_20230318_171005.json
  repro import 20230318_173313.log.json -o runs/imported/B-train      # curves (+ metrics of the last val)
  repro import test_output.log --reproduction eva02_L_sz512 --protocol ms
  repro import eval.json --checkpoint-sha256 <sha256 of the weights it evaluated>
""")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--reproduction", default=None, help="reproduction id  [default: inferred from the config named in the file]")
@click.option("--protocol", default=None, metavar="NAME",
              help="one of the reproduction's protocols  [default: inferred from the config; ss for a training log]")
@click.option("-o", "--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="run directory to create  [default: runs/<reproduction>/<protocol>/<UTC time>]")
@click.option("--checkpoint", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="the checkpoint file the numbers came from: hashed here, its sha256 recorded as measured")
@click.option("--checkpoint-sha256", "checkpoint_sha256", metavar="HEX", default=None,
              help="or the checkpoint's sha256, recorded as declared (not measured); the released weights' sha256 "
                   "makes tier auto judge the import as released, and the verdict says the hash was declared")
def import_cmd(path, reproduction, protocol, out_dir, checkpoint, checkpoint_sha256):
    """Turn mmseg output made elsewhere (eval JSON, text log, *.log.json) into a run record.

    The record (kind "import") can then be verified and reported like the harness's own runs. An eval file names
    no checkpoint: without --checkpoint or --checkpoint-sha256 only the authors' own eval files of the released
    weights (expected/evidence.csv) are judged at tier released.
    """
    from harness.verify.importer import import_result

    run_dir = import_result(path, reproduction=reproduction, protocol=protocol, out_dir=out_dir,
                            checkpoint=checkpoint, checkpoint_sha256=checkpoint_sha256)
    click.echo(printable(f"imported {path} -> {run_dir}/result.json"))
    click.echo(printable(f"next: repro verify {run_dir}"))


def _report_items(runs) -> list:
    """What the reports read: the runs given, a batch folder standing for every run it lists."""
    from harness.batch import is_batch

    if any(is_batch(run) for run in runs):
        from harness.batch.judge import report_items
        return report_items(list(runs))
    return list(runs)


@cli.command("report", epilog="""\b
Examples:
  repro report runs/eva02_L_sz512/ss/20260101T120000Z
  repro report runs/eva02_B_sz512/train/* -o reports/seeds --compare
  repro report runs/eva02_L_sz512/ss/A runs/eva02_L_sz512/ms/B --compare    # ss vs ms side by side
  repro report --compare runs/batches/20260101T120000Z                      # every run of a `repro batch`
""")
@click.argument("runs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-o", "--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("reports"),
              help="folder for the HTML files")
@click.option("--compare", is_flag=True, help="also write compare.html with the runs side by side")
@click.option("--tier", type=TIER, default="auto", help="tier of the verdict shown (as for repro verify)")
@click.option("--expected", "expected_root", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="the expected tables and tolerances  [default: expected/ of the repository]")
def report_cmd(runs, out_dir, compare, tier, expected_root):
    """Write one self-contained HTML report per run and an index.html (no network needed to view).

    RUNS are run directories, result.json files or batch folders (`repro batch`: every run it lists; one that
    failed or never finished gets a page saying so)."""
    from harness.report import write_reports

    index = write_reports(_report_items(runs), out_dir, compare=compare, tier=None if tier == "auto" else tier,
                          expected_root=expected_root)
    click.echo(printable(f"wrote {index}"))


@cli.command("compare", epilog="""\b
Examples:
  repro compare runs/eva02_L_sz512/ss/A runs/mmseg/upernet_beit-large_fp16_8x1_640x640_160k_ade20k/ss/B
  repro compare runs/eva02_L_sz512/ss/A runs/eva02_L_sz512/ms/B -o reports/ss-vs-ms
  repro compare runs/batches/20260101T120000Z                  # every run of a `repro batch`
""")
@click.argument("runs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-o", "--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("reports"),
              help="folder for compare.html (with one page per run and index.html)")
@click.option("--tier", type=TIER, default="auto", help="tier of the verdicts shown (as for repro verify)")
@click.option("--expected", "expected_root", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="the expected tables and tolerances  [default: expected/ of the repository]")
def compare_cmd(runs, out_dir, tier, expected_root):
    """Two or more runs side by side (models, protocols, seeds): a table here and compare.html.

    Each run is judged against its own expected values (published, or the harness baseline); the table shows
    aAcc/mIoU/mAcc, the expected mIoU, the difference and the verdict. Runs with per-image ledgers over the same
    val images are then compared pairwise against the first: Δ aAcc/mIoU/mAcc with a paired bootstrap 95 %
    interval, the classes and images that moved most (docs/ledger.md); other runs say why they are not paired.
    Exit 0 even when a run fails its check: `repro verify` is the command that judges."""
    from harness.errors import ReproError
    from harness.report import build_pages, write_reports
    from harness.report.table import comparison_lines

    items = _report_items(runs)
    if len(items) < 2:
        raise ReproError(f"repro compare needs two runs or more, got {len(items)}",
                         fix="name another run directory (or a batch folder), or use `repro report` for one run")
    tier = None if tier == "auto" else tier
    pages = build_pages(items, tier=tier, expected_root=expected_root)
    for line in comparison_lines(pages):
        click.echo(line)
    from harness.report.paired import compare_pairs
    from harness.report.table import paired_lines
    for line in paired_lines(compare_pairs(pages)):     # the ledgers' paired part (or why there is none)
        click.echo(line)
    write_reports(items, out_dir, compare=True, tier=tier, expected_root=expected_root, pages=pages)
    click.echo(printable(f"wrote {Path(out_dir) / 'compare.html'}"))
