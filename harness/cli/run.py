"""`repro eval` and `repro train`: flags only; each command calls one function of harness.run.api."""
from __future__ import annotations

import click

from harness.cli.group import cli
from harness.cli.options import engine_option, launch_options, precision_option, run_dir_options


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
    verdict = record.get("early_verdict")
    if verdict:
        click.echo(f"early verdict: {verdict.get('verdict')} ({verdict.get('file')})"
                   + (f"; {verdict['stopped']['note']}" if verdict.get("stopped") else ""))
    if arts.get("show_dir"):
        click.echo(f"predicted label maps: {arts['show_dir']} ({arts.get('show_count', '?')} PNGs)")


@cli.command("eval")
@click.argument("reproduction")
@click.option("--protocol", default="ss", metavar="NAME",
              help="one of the reproduction's protocols, e.g. ss: single scale; ms: six scales + flip")
@click.option("--checkpoint", type=click.Path(), default=None,
              help="checkpoint file, or a `repro train` run directory (its best checkpoint) "
                   "[default: the reproduction's released weights, verified]")
@engine_option
@precision_option
@click.option("--show-dir", type=click.Path(file_okay=False), default=None,
              help="also save the predicted label maps here, as PNGs in ADE20K's palette (named like the images)")
@click.option("--show-limit", type=click.IntRange(min=1), default=None, metavar="N",
              help="with --show-dir: only the first N val images  [default: all]")
@click.option("--resume", is_flag=True,
              help="continue the newest unfinished evaluation of ID and protocol (or --work-dir) from the images its "
                   "ledger holds, with its recorded settings (checkpoint, protocol, engine, precision, data must agree)")
@launch_options
@run_dir_options
def eval_cmd(reproduction, protocol, checkpoint, engine, precision, show_dir, show_limit, resume, launch, device,
             data_root, work_dir, overwrite, cfg_options, dry_run):
    """Evaluate a checkpoint on ADE20K val with the reproduction's protocol; writes a run directory + result.json.

    \b
    Examples:
      repro eval eva02_L_sz512
      repro eval eva02_L_sz512 --protocol ms --launcher torchrun --gpus 8
      repro eval eva02_L_sz512 --show-dir pred_png --show-limit 100     # the first 100 predicted maps as PNGs
      repro eval eva02_L_sz512 --launcher torchrun --gpus 8 --nnodes 2 --node-rank 1 --master-addr 10.0.0.1 --dry-run
      repro eval eva02_demo --checkpoint runs/eva02_demo/train/<timestamp> --launcher slurm --partition gpu
      repro eval eva02_L_sz512 --protocol ms --resume            # continue an interrupted evaluation
    """
    from harness.run.api import evaluate
    if resume:   # a flag left at its default takes the interrupted run's recorded value
        from click.core import ParameterSource
        ctx = click.get_current_context()
        protocol, engine, precision = (value if ctx.get_parameter_source(name) != ParameterSource.DEFAULT else None
                                       for name, value in (("protocol", protocol), ("engine", engine),
                                                           ("precision", precision)))
    _summary(evaluate(reproduction, protocol=protocol, resume=resume, checkpoint=checkpoint, data_root=data_root,
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
@click.option("--reference", multiple=True, metavar="FILE|URL|RUN",
              help="reference curves for the setup check and the early verdict (repeatable; `authors`, `zoo`, "
                   "`none`)  [default: the reproduction's built-in ones]")
@click.option("--allow-setup-difference", multiple=True, metavar="NAME",
              help="train although this setup fact differs from the reference's (repeatable; recorded)")
@click.option("--stop-when-off-track", is_flag=True,
              help="end the run at the first off-track evaluation point (its checkpoint and record are kept)")
@launch_options
@run_dir_options
def train_cmd(reproduction, seed, deterministic, pretrained, resume, max_iters, accumulate, allow_batch_mismatch,
              samples_per_gpu, workers_per_gpu, checkpoint_interval, eval_interval, reference, allow_setup_difference,
              stop_when_off_track, launch, device, data_root, work_dir, overwrite, cfg_options, dry_run):
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
                   overwrite=overwrite, reference=reference, allow_setup_difference=allow_setup_difference,
                   stop_when_off_track=stop_when_off_track))
