"""`repro batch`: several reproductions × protocols in one command; flags only (harness/batch does the work)."""
from __future__ import annotations

import shlex
import sys

import click

from harness.cli.group import cli


@cli.command("batch", epilog="""\b
Examples:
  repro batch eva02_demo --checkpoint runs/eva02_demo/train/<stamp>     # ss and ms, one after another
  repro batch eva02_L_sz512 eva02_B_sz512:ss --launcher slurm --partition gpu --dry-run
  repro batch --select 'mmseg/segformer_mit-b*' --protocol ss --launcher slurm --partition gpu
  repro verify runs/batches/<stamp> && repro report --compare runs/batches/<stamp>
""")
@click.argument("ids", nargs=-1, metavar="[ID | ID:PROTOCOL]...")
@click.option("--select", "patterns", multiple=True, metavar="PATTERN",
              help="also every reproduction whose id matches this glob, e.g. 'eva02_*' or 'mmseg/segformer*' "
                   "(ID:PROTOCOL patterns too; repeatable)")
@click.option("--protocol", "protocols", multiple=True, metavar="NAME",
              help="only these protocols (repeatable)  [default: every protocol of each reproduction]")
@click.option("--checkpoint", "checkpoints", multiple=True, metavar="[ID=]PATH",
              help="checkpoint file or `repro train` run directory of reproduction ID (repeatable); a plain PATH "
                   "when the batch holds one reproduction  [default: the released weights, verified]")
@click.option("--batch-dir", type=click.Path(file_okay=False), default=None,
              help="the batch folder: batch.json + one run folder per run; new or empty  [default: "
                   "runs/batches/<UTC time>]")
@click.option("--engine", type=click.Choice(["fast", "stock"]), default="fast", help="as for repro eval")
@click.option("--precision", type=click.Choice(["fp32", "tf32", "bf16"]), default="fp32", help="as for repro eval")
@click.option("--launcher", type=click.Choice(["none", "torchrun", "slurm"]), default="none",
              help="none / torchrun: the runs one after another here; slurm: ONE job array, one task per run")
@click.option("--gpus", type=int, default=1, help="processes per node of each run")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", help="as for repro eval")
@click.option("--nnodes", type=int, default=1, help="nodes per run (Slurm)")
@click.option("--master-port", type=int, default=None, help="rendezvous port of each run")
@click.option("--partition", default=None, help="Slurm partition")
@click.option("--account", default=None, help="Slurm account")
@click.option("--time", "time_limit", default=None, help="Slurm time limit of each array task, e.g. 4:00:00")
@click.option("--cpus-per-task", type=int, default=5, help="Slurm CPUs per task")
@click.option("--srun-arg", "srun_args", multiple=True, help="extra srun argument (repeatable)")
@click.option("--sbatch-arg", "sbatch_args", multiple=True, help="extra #SBATCH line (repeatable)")
@click.option("--slurm-wait", is_flag=True, help="block until every array task has ended (sbatch --wait)")
@click.option("--data-root", type=click.Path(file_okay=False), default=None,
              help="dataset root of every run  [default: each reproduction's prepared dataset]")
@click.option("--cfg-options", "cfg_options", multiple=True, metavar="KEY=VALUE",
              help="override a config value in every run (repeatable)")
@click.option("--dry-run", is_flag=True, help="print each run's command (Slurm: the array script); run nothing")
@click.option("-v", "--verbose", is_flag=True, help="stream the engine's whole output, as for repro eval")
def batch_cmd(ids, patterns, protocols, checkpoints, batch_dir, engine, precision, launcher, gpus, device, nnodes,
              master_port, partition, account, time_limit, cpus_per_task, srun_args, sbatch_args, slurm_wait,
              data_root, cfg_options, dry_run, verbose):
    """Evaluate several reproductions / protocols: one after another here, or as one Slurm job array.

    Every run gets its own folder in the batch folder, and batch.json lists them all; `repro verify BATCH` and
    `repro report --compare BATCH` read it (runs that failed or never finished are shown as such).
    Exit 0 when every run succeeded (Slurm: was submitted), 1 when one failed or did not start, 2 on bad input.
    """
    from harness import console
    from harness.batch import select_entries, start
    from harness.run.options import LaunchOptions

    console.set_verbose(verbose)
    entries = select_entries(list(ids), list(patterns), list(protocols), list(checkpoints))
    launch = LaunchOptions(launcher=launcher, gpus=gpus, nnodes=nnodes, master_port=master_port, partition=partition,
                           account=account, time=time_limit, cpus_per_task=cpus_per_task, srun_args=list(srun_args),
                           sbatch_args=list(sbatch_args), slurm_wait=slurm_wait)
    launch.validate()
    settings = dict(data_root=data_root, cfg_options=list(cfg_options), device=device, engine=engine,
                    precision=precision)
    if dry_run:
        start.dry_run(entries, launch, settings, batch_dir, click.echo)
        return
    command = shlex.join(["repro", "batch", *ids, *(f"--select={p}" for p in patterns),
                          *(f"--protocol={p}" for p in protocols), *(f"--checkpoint={c}" for c in checkpoints),
                          *launch.cli_flags(), *(["--data-root", data_root] if data_root else []),
                          *(f"--cfg-options={o}" for o in cfg_options), "--device", device, "--engine", engine,
                          "--precision", precision])
    begin = start.submit_array if launcher == "slurm" else start.run_here
    folder, batch = begin(entries, launch, settings, batch_dir, command, click.echo)
    counts: dict[str, int] = {}
    for item in batch["runs"]:
        counts[item["state"]] = counts.get(item["state"], 0) + 1
    click.echo(f"\nbatch: {', '.join(f'{n} {state}' for state, n in counts.items())} -> {folder / 'batch.json'}")
    click.echo(f"next: repro verify {folder}  ·  repro report --compare {folder} -o {folder / 'reports'}")
    if any(item["state"] in ("failed", "not-started") for item in batch["runs"]):
        sys.exit(1)
