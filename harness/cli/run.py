"""`repro eval` and `repro train`: flags only; each command calls one function of harness.run.api."""
from __future__ import annotations

import functools

import click

from harness.cli.group import cli


def launch_options(func):
    """The launch flags eval and train share; they become a harness.run.options.LaunchOptions."""
    options = [
        click.option("--launcher", type=click.Choice(["none", "torchrun", "slurm"]), default="none",
                     help="none: one process; torchrun: --gpus processes per node; slurm: sbatch + srun"),
        click.option("--gpus", type=int, default=1, help="processes per node (GPUs; on a CPU machine, CPU processes)"),
        click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto",
                     help="where the job runs: auto = the GPUs of the machines that run it (Slurm: cuda; "
                          "none/torchrun: this machine's, if any)"),
        click.option("--nnodes", type=int, default=1, help="number of nodes"),
        click.option("--node-rank", type=int, default=0, help="this node's rank (torchrun, several nodes)"),
        click.option("--master-addr", default=None, help="address of node 0 (torchrun, several nodes)"),
        click.option("--master-port", type=int, default=None,
                     help="rendezvous port [default: torchrun --standalone on one node, else 29500]"),
        click.option("--partition", default=None, help="Slurm partition"),
        click.option("--account", default=None, help="Slurm account"),
        click.option("--time", "time_limit", default=None, help="Slurm time limit, e.g. 24:00:00"),
        click.option("--cpus-per-task", type=int, default=5, help="Slurm CPUs per task"),
        click.option("--srun-arg", "srun_args", multiple=True, help="extra srun argument (repeatable)"),
        click.option("--sbatch-arg", "sbatch_args", multiple=True, help="extra #SBATCH line (repeatable)"),
        click.option("--slurm-wait", is_flag=True, help="block until the Slurm job ends (sbatch --wait)"),
        click.option("--data-root", type=click.Path(file_okay=False), default=None,
                     help="dataset root [default: the prepared dataset under REPRO_HOME]"),
        click.option("--work-dir", type=click.Path(file_okay=False), default=None,
                     help="run directory [default: runs/<id>/<protocol|train>/<timestamp>]; written once: "
                          "one that holds a run needs --overwrite"),
        click.option("--overwrite", is_flag=True,
                     help="move the run already in --work-dir aside (to <work-dir>.old-<timestamp>, kept) and start "
                          "afresh; a folder holding files a run does not make is never moved"),
        click.option("--cfg-options", "cfg_options", multiple=True, metavar="KEY=VALUE",
                     help="override a config value, e.g. data.workers_per_gpu=1 (repeatable)"),
        click.option("--dry-run", is_flag=True, help="print the commands and the resolved config; run nothing"),
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


def _summary(record: dict) -> None:
    if record.get("dry_run"):
        return
    if record.get("status") == "submitted":
        click.echo(f"submitted Slurm job {record['slurm_job']}; the record will be {record['_run_dir']}/result.json")
        return
    if record.get("status") == "worker-done":
        click.echo(f"node finished; node rank 0 writes the record ({record['_run_dir']})")
        return
    from harness.console import log_line
    m = record["metrics"]
    click.echo(f"{record['kind']} {record['reproduction']} ({record['protocol']}) {record['status']}: "
               f"aAcc {m['aAcc']:.2f}  mIoU {m['mIoU']:.2f}  mAcc {m['mAcc']:.2f}  ->  {record['_run_dir']}/result.json")
    arts = record.get("artifacts") or {}
    click.echo(log_line(record["_run_dir"], [arts.get("console"), arts.get("log"), arts.get("log_json")]))
    if arts.get("show_dir"):
        click.echo(f"predicted label maps: {arts['show_dir']} ({arts.get('show_count', '?')} PNGs)")


@cli.command("eval")
@click.argument("reproduction")
@click.option("--protocol", default="ss", metavar="NAME",
              help="one of the reproduction's protocols, e.g. ss: single scale; ms: six scales + flip")
@click.option("--checkpoint", type=click.Path(), default=None,
              help="checkpoint file, or a `repro train` run directory (its best checkpoint) "
                   "[default: the reproduction's released weights, verified]")
@click.option("--engine", type=click.Choice(["fast", "stock"]), default="fast", show_default=True,
              help="fast: windows of several images and scales batched, histograms on the device, same numbers; "
                   "stock: mmseg 0.29.1's one-window-at-a-time loop, for reference")
@click.option("--precision", type=click.Choice(["fp32", "tf32", "bf16"]), default="fp32", show_default=True,
              help="fp32: the authors' protocol; tf32 / bf16: faster on GPUs, recorded in result.json")
@click.option("--show-dir", type=click.Path(file_okay=False), default=None,
              help="also save the predicted label maps here, as PNGs in ADE20K's palette (named like the images)")
@click.option("--show-limit", type=click.IntRange(min=1), default=None, metavar="N",
              help="with --show-dir: only the first N val images  [default: all]")
@launch_options
def eval_cmd(reproduction, protocol, checkpoint, engine, precision, show_dir, show_limit, launch, device, data_root,
             work_dir, overwrite, cfg_options, dry_run):
    """Evaluate a checkpoint on ADE20K val with the reproduction's protocol; writes a run directory + result.json.

    \b
    Examples:
      repro eval eva02_L_sz512
      repro eval eva02_L_sz512 --protocol ms --launcher torchrun --gpus 8
      repro eval eva02_L_sz512 --show-dir pred_png --show-limit 100     # the first 100 predicted maps as PNGs
      repro eval eva02_L_sz512 --launcher torchrun --gpus 8 --nnodes 2 --node-rank 1 --master-addr 10.0.0.1 --dry-run
      repro eval eva02_demo --checkpoint runs/eva02_demo/train/<timestamp> --launcher slurm --partition gpu
    """
    from harness.run.api import evaluate
    _summary(evaluate(reproduction, protocol=protocol, checkpoint=checkpoint, data_root=data_root,
                      work_dir=work_dir, launch=launch, dry_run=dry_run, cfg_options=cfg_options, echo=click.echo,
                      device=device, engine=engine, precision=precision, overwrite=overwrite, show_dir=show_dir,
                      show_limit=show_limit))


@cli.command("train")
@click.argument("reproduction")
@click.option("--seed", type=int, default=None, help="random seed [default: the published one]")
@click.option("--deterministic", is_flag=True, help="cudnn deterministic mode (the authors' --deterministic)")
@click.option("--pretrained", type=click.Path(dir_okay=False), default=None,
              help="MIM weights to start from [default: the reproduction's, verified]")
@click.option("--resume", is_flag=True,
              help="continue the newest unfinished train run (or --work-dir) from its last complete checkpoint, "
                   "with its own recorded settings (flags given again must agree)")
@click.option("--max-iters", type=int, default=None, help="optimizer steps [default: the published schedule]")
@click.option("--accumulate", type=int, default=1, help="gradient accumulation steps (reach the published batch)")
@click.option("--allow-batch-mismatch", is_flag=True, help="train with a total batch unlike the published one")
@click.option("--samples-per-gpu", type=int, default=None, help="images per process [default: the published one]")
@click.option("--workers-per-gpu", type=int, default=None, help="data-loading workers per process [default: config]")
@click.option("--checkpoint-interval", type=int, default=None, help="save every N steps [default: config, 1000]")
@click.option("--eval-interval", type=int, default=None, help="evaluate every N steps [default: config, 1000]")
@launch_options
def train_cmd(reproduction, seed, deterministic, pretrained, resume, max_iters, accumulate, allow_batch_mismatch,
              samples_per_gpu, workers_per_gpu, checkpoint_interval, eval_interval, launch, device, data_root,
              work_dir, overwrite, cfg_options, dry_run):
    """Train with the reproduction's published recipe, then evaluate (ss); writes a run directory + result.json.

    Before launching, world size × samples per GPU × --accumulate must equal the published total batch.

    \b
    Examples:
      repro train eva02_B_sz512 --launcher torchrun --gpus 4
      repro train eva02_L_sz512 --launcher torchrun --gpus 4 --accumulate 2
      repro train eva02_demo --max-iters 300 && repro train eva02_demo --resume
    """
    from harness.run.api import train
    _summary(train(reproduction, seed=seed, pretrained=pretrained, resume=resume, max_iters=max_iters,
                   accumulate=accumulate, allow_batch_mismatch=allow_batch_mismatch, samples_per_gpu=samples_per_gpu,
                   workers_per_gpu=workers_per_gpu, checkpoint_interval=checkpoint_interval,
                   eval_interval=eval_interval, deterministic=deterministic, data_root=data_root, work_dir=work_dir,
                   launch=launch, dry_run=dry_run, cfg_options=cfg_options, echo=click.echo, device=device,
                   overwrite=overwrite))
