"""The run's life, one module per step, imports going one way (down this list, never up):

    folder.py     the run folder's vocabulary (file names) and reading its files; a leaf
    shape.py      typed JSON files: dataclass <-> dict, type checks, JSON Schema; a leaf
    options.py    the choices (launchers, engines, precisions, devices) and LaunchOptions; the device resolver
    job.py        job.json: its one definition (Job), writer and reader
    record.py     result.json: its one definition (Record), writer and reader; the environment capture
    launch.py     argv, sbatch script, supervising the processes, submitting to Slurm
    finalize.py   exit code + job.json + engine.json -> result.json (`python -m harness.run.finalize`)
    settle.py     the record of a Slurm job that ended without its last line
    claim.py      claiming a run folder: the written-once rule for every kind of run folder
    resume.py     what `train --resume` continues, and with which settings
    preflight.py  checks before the run: checkpoint, dataset, batch size, what the config needs
    api.py        the public `evaluate` / `train`
    schema.py     docs/job.schema.json and docs/result.schema.json, generated from job.py and record.py

This file imports nothing, so the engine can read job.json (harness.run.job) without the launcher.
"""
