"""`repro demo`: the whole chain on the built-in demo (flags only; the work is harness.demo.run_demo)."""
from __future__ import annotations

import sys
from pathlib import Path

import click

from harness.cli.group import cli


@cli.command("demo", epilog="""\b
Examples:
  repro demo                                   # about 5 minutes on 2 CPU cores
  repro demo --work-dir /tmp/demo
  repro demo --train-images 32 --val-images 8 --max-iters 40   # a quick smoke run (its verdict will not match the baseline)
""")
@click.option("--work-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="where the demo's data, runs and reports go  [default: <REPRO_RUNS>/demo, i.e. ./runs/demo]")
@click.option("--train-images", type=int, default=400, help="synthetic training images")
@click.option("--val-images", type=int, default=50, help="synthetic validation images")
@click.option("--max-iters", type=int, default=None, help="training iterations  [default: reproduction.toml's]")
@click.option("--seed", type=int, default=0, help="seed of the data and of training")
@click.option("-v", "--verbose", is_flag=True,
              help="stream the engine's whole output (mmseg's logs); it is always in each run's console.log")
@click.option("--expected", "expected_root", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="expected tables  [default: the repository's expected/]")
def demo_cmd(work_dir, train_images, val_images, max_iters, seed, verbose, expected_root):
    """Run the whole job on the built-in demo: synthetic data → train → eval ss + ms → verify → HTML report.

    Needs no GPU, no weights and no ADE20K. Exit 0 when the verdict is PASS, 1 when it is FAIL.
    """
    from harness import console, paths
    from harness.demo import DemoSettings, run_demo

    console.set_verbose(verbose)

    settings = DemoSettings(work_dir=work_dir or paths.runs_root() / "demo", train_images=train_images,
                            val_images=val_images, max_iters=max_iters, seed=seed, expected_root=expected_root,
                            echo=click.echo)
    result = run_demo(settings)
    sys.exit(0 if result.passed else 1)
