import subprocess
import sys

from click.testing import CliRunner

from harness.cli import cli


def test_help_lists_the_commands_without_importing_the_engine():
    # `repro --help` must stay fast: it may not import torch, mmcv or mmseg
    code = ("import sys; from harness.cli import cli; from click.testing import CliRunner; "
            "r = CliRunner().invoke(cli, ['--help']); assert r.exit_code == 0, r.output; "
            "heavy = sorted(m for m in ('torch', 'mmcv', 'mmseg', 'pandas', 'matplotlib') if m in sys.modules); "
            "print(r.output); print('HEAVY', heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "HEAVY []" in out
    for command in ("list", "download", "prepare", "eval", "train", "verify", "import", "report", "demo"):
        assert f"  {command} " in out, command


def test_repro_error_is_one_line_and_exit_2():
    result = CliRunner().invoke(cli, ["eval", "no_such_model", "--dry-run"])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines == [lines[0]] and lines[0].startswith("error: Unknown reproduction 'no_such_model'.")


def _flags(command) -> set[str]:
    return {flag for param in command.params for flag in getattr(param, "opts", ())}


def test_eval_train_and_batch_share_one_set_of_launch_options():
    """One decorator (harness/cli/options.py) gives the three commands the same launch flags, with choices from
    harness/choices.py; batch.py used to copy 15 of them (and lacked --node-rank and --master-addr)."""
    from harness import choices

    launch = {"--launcher", "--gpus", "--device", "--nnodes", "--node-rank", "--master-addr", "--master-port",
              "--partition", "--account", "--time", "--cpus-per-task", "--srun-arg", "--sbatch-arg", "--slurm-wait",
              "--data-root", "--cfg-options", "--dry-run", "--verbose", "-v"}
    commands = {name: cli.commands[name] for name in ("eval", "train", "batch")}
    for name, command in commands.items():
        assert launch <= _flags(command), (name, launch - _flags(command))
    shared = [_flags(c) & launch for c in commands.values()]
    assert shared[0] == shared[1] == shared[2]
    only = {name: _flags(c) - launch for name, c in commands.items()}
    assert {"--work-dir", "--overwrite"} <= only["eval"] & only["train"] and "--work-dir" not in only["batch"]
    for name in ("eval", "batch"):
        params = {p.name: p for p in commands[name].params}
        assert tuple(params["engine"].type.choices) == choices.ENGINES
        assert tuple(params["precision"].type.choices) == choices.PRECISIONS
        assert tuple(params["launcher"].type.choices) == choices.LAUNCHERS
        assert tuple(params["device"].type.choices) == choices.DEVICES
    for name in ("verify", "report", "compare"):
        tier = next(p for p in cli.commands[name].params if p.name == "tier")
        assert tuple(tier.type.choices) == choices.TIER_CHOICES


def test_batch_refuses_torchrun_over_several_nodes():
    result = CliRunner().invoke(cli, ["batch", "eva02_demo", "--launcher", "torchrun", "--nnodes", "2",
                                      "--master-addr", "10.0.0.1", "--dry-run"])
    assert result.exit_code == 2 and "a batch under torchrun runs its runs one after another" in result.output
