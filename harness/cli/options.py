"""The flags `repro eval`, `repro train` and `repro batch` share, declared once: choices come from
harness/choices.py, and `launch_options` turns the launch flags into one harness.run.options.LaunchOptions (`launch`)."""
from __future__ import annotations

import functools

import click

from harness.choices import DEVICES, ENGINES, LAUNCHERS, PRECISIONS

engine_option = click.option(
    "--engine", type=click.Choice(ENGINES), default=ENGINES[0], show_default=True,
    help="fast: windows of several images and scales batched, histograms on the device, same numbers; "
         "stock: mmseg 0.29.1's one-window-at-a-time loop, for reference")
precision_option = click.option(
    "--precision", type=click.Choice(PRECISIONS), default=PRECISIONS[0], show_default=True,
    help="fp32: the authors' protocol; tf32 / bf16: faster on GPUs, recorded in result.json")

LAUNCH_HELP = {
    "launcher": "none: one process; torchrun: --gpus processes per node; slurm: sbatch + srun",
    "data_root": "dataset root [default: the prepared dataset under REPRO_HOME]",
    "time": "Slurm time limit, e.g. 24:00:00",
    "slurm_wait": "block until the Slurm job ends (sbatch --wait)",
    "cfg_options": "override a config value, e.g. data.workers_per_gpu=1 (repeatable; parsed like mmcv's "
                   "DictAction: a,b and [a,b] are lists, (a,b) a tuple)",
    "dry_run": "print the commands and the resolved config; run nothing",
}


def launch_options(func=None, **help_text):
    """The launch flags (launcher, processes, nodes, Slurm, device, data root, --cfg-options, --dry-run, -v) on a
    command, which receives `launch` (a LaunchOptions), `device`, `data_root`, `cfg_options` (a list) and `dry_run`.
    `help_text` replaces the help of a flag by its parameter name (a batch says "of each run")."""
    if func is None:
        return functools.partial(launch_options, **help_text)
    text = {**LAUNCH_HELP, **help_text}
    options = [
        click.option("--launcher", type=click.Choice(LAUNCHERS), default=LAUNCHERS[0], help=text["launcher"]),
        click.option("--gpus", type=int, default=1, help="processes per node (GPUs; on a CPU machine, CPU processes)"),
        click.option("--device", type=click.Choice(DEVICES), default=DEVICES[0],
                     help="where the job runs: auto = the GPUs of the machines that run it (Slurm: cuda; "
                          "none/torchrun: this machine's, if any)"),
        click.option("--nnodes", type=int, default=1, help="number of nodes"),
        click.option("--node-rank", type=int, default=0, help="this node's rank (torchrun, several nodes)"),
        click.option("--master-addr", default=None, help="address of node 0 (torchrun, several nodes)"),
        click.option("--master-port", type=int, default=None,
                     help="rendezvous port [default: torchrun --standalone on one node, else 29500]"),
        click.option("--partition", default=None, help="Slurm partition"),
        click.option("--account", default=None, help="Slurm account"),
        click.option("--time", "time_limit", default=None, help=text["time"]),
        click.option("--cpus-per-task", type=int, default=5, help="Slurm CPUs per task"),
        click.option("--srun-arg", "srun_args", multiple=True, help="extra srun argument (repeatable)"),
        click.option("--sbatch-arg", "sbatch_args", multiple=True, help="extra #SBATCH line (repeatable)"),
        click.option("--slurm-wait", is_flag=True, help=text["slurm_wait"]),
        click.option("--data-root", type=click.Path(file_okay=False), default=None, help=text["data_root"]),
        click.option("--cfg-options", "cfg_options", multiple=True, metavar="KEY=VALUE", help=text["cfg_options"]),
        click.option("--dry-run", is_flag=True, help=text["dry_run"]),
        click.option("-v", "--verbose", is_flag=True,
                     help="stream the engine's whole output (mmseg's logs) instead of progress bars; it is always in "
                          "the run's console.log"),
    ]
    for option in reversed(options):
        func = option(func)

    @functools.wraps(func)
    def wrapper(**kw):
        from harness import console
        from harness.run.options import LaunchOptions
        console.set_verbose(kw.pop("verbose"))
        kw["launch"] = LaunchOptions(
            launcher=kw.pop("launcher"), gpus=kw.pop("gpus"), nnodes=kw.pop("nnodes"), node_rank=kw.pop("node_rank"),
            master_addr=kw.pop("master_addr"), master_port=kw.pop("master_port"), partition=kw.pop("partition"),
            account=kw.pop("account"), time=kw.pop("time_limit"), cpus_per_task=kw.pop("cpus_per_task"),
            srun_args=list(kw.pop("srun_args")), sbatch_args=list(kw.pop("sbatch_args")),
            slurm_wait=kw.pop("slurm_wait"))
        kw["cfg_options"] = list(kw["cfg_options"])
        return func(**kw)
    return wrapper


def run_dir_options(func):
    """--work-dir and --overwrite: where one run goes (eval, train; a batch has --batch-dir)."""
    func = click.option("--overwrite", is_flag=True,
                        help="move the run already in --work-dir aside (to <work-dir>.old-<timestamp>, kept) and "
                             "start afresh; a folder holding files a run does not make is never moved")(func)
    return click.option("--work-dir", type=click.Path(file_okay=False), default=None,
                        help="run directory [default: runs/<id>/<protocol|train>/<timestamp>]; written once: "
                             "one that holds a run needs --overwrite")(func)
