"""`repro demo`: the harness's whole job, for real, on a CPU in minutes.

1. prepare a synthetic ADE20K-format dataset (the real layout, label encoding and checks);
2. train `eva02_demo` (the EVA2 backbone + UperNet at a tiny size, the authors' recipe shape);
3. evaluate its best checkpoint single-scale (one process) and multi-scale + flip (torchrun, 2 CPU processes);
4. verify the evaluations against the demo's baseline rows in expected/ (tier `baseline`);
5. write the HTML reports and print the index's path.

Every step writes into its own fresh folder under the work directory, so a stale or interrupted earlier demo
never breaks this one; the dataset is reused only when its manifest says it is intact.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


DEMO = "eva02_demo"


@dataclass
class DemoSettings:
    work_dir: Path
    train_images: int = 400
    val_images: int = 50
    max_iters: int | None = None          # None: the reproduction's own (reproduction.toml)
    seed: int = 0
    ms_launcher_gpus: int = 2             # multi-scale eval runs under torchrun with this many CPU processes
    expected_root: Path | None = None     # None: the repository's expected/
    echo: Callable[[str], None] = print


@dataclass
class DemoResult:
    passed: bool
    verify_exit: int
    report: Path
    runs: dict[str, Path] = field(default_factory=dict)
    metrics: dict[str, dict] = field(default_factory=dict)


def _step(settings: DemoSettings, number: int, text: str) -> None:
    settings.echo(f"\n[{number}/5] {text}")


def _logs(run_dir: Path, record: dict) -> str:
    """The run's log files on one line: the engine's whole output (console.log) and mmseg's logs."""
    from harness.console import log_line
    arts = record.get("artifacts") or {}
    return "  " + log_line(run_dir, [arts.get("console"), arts.get("log"), arts.get("log_json")])


def prepare_data(settings: DemoSettings) -> Path:
    from harness import registry
    from harness.fetch import dataroot, synthetic
    from harness.registry import datasets

    dataset = datasets.of(registry.get(DEMO).dataset)      # ade20k-synthetic: ADE20K's layout
    root = settings.work_dir / "data" / dataset.folder
    # status() already compares every file's size with the manifest: changed/incomplete leftovers are rebuilt
    force = dataroot.status(root) not in ("missing", "synthetic")
    synthetic.generate(root, settings.train_images, settings.val_images, seed=settings.seed, force=force,
                       progress=True, dataset=dataset)
    return root


def run_demo(settings: DemoSettings) -> DemoResult:
    from harness.run import api as runs
    from harness.run.claim import new_run_dir
    from harness.run.options import LaunchOptions
    from harness.report import write_reports
    from harness.verify.plugin import run_verify

    settings.work_dir = Path(settings.work_dir).expanduser().resolve()
    run_root = settings.work_dir / "runs"
    say = settings.echo

    _step(settings, 1, f"synthetic ADE20K-format data: {settings.train_images} training, "
                       f"{settings.val_images} validation images")
    data = prepare_data(settings)
    say(f"data root: {data}")

    _step(settings, 2, f"train {DEMO} on CPU")
    trained = runs.train(DEMO, seed=settings.seed, max_iters=settings.max_iters, data_root=data,
                         work_dir=new_run_dir(DEMO, "train", root=run_root))
    train_dir = Path(trained["_run_dir"])
    best = trained.get("artifacts", {}).get("best_checkpoint") or trained["artifacts"]["checkpoints"][-1]
    checkpoint = train_dir / best
    say(f"trained: mIoU {trained['metrics']['mIoU']:.2f} at the last evaluation; best checkpoint {checkpoint}")
    say(_logs(train_dir, trained))

    _step(settings, 3, "evaluate the best checkpoint: single scale (1 process), multi-scale + flip "
                       f"(torchrun, {settings.ms_launcher_gpus} CPU processes)")
    ss = runs.evaluate(DEMO, "ss", checkpoint=checkpoint, data_root=data,
                       work_dir=new_run_dir(DEMO, "ss", root=run_root))
    ms = runs.evaluate(DEMO, "ms", checkpoint=checkpoint, data_root=data,
                       work_dir=new_run_dir(DEMO, "ms", root=run_root),
                       launch=LaunchOptions("torchrun", gpus=settings.ms_launcher_gpus))
    evals = {"ss": Path(ss["_run_dir"]), "ms": Path(ms["_run_dir"])}
    for protocol, record in (("ss", ss), ("ms", ms)):
        m = record["metrics"]
        say(f"{protocol}: aAcc {m['aAcc']:.2f}  mIoU {m['mIoU']:.2f}  mAcc {m['mAcc']:.2f}")
        say(_logs(evals[protocol], record))

    _step(settings, 4, "verify against the demo's baseline (expected/summary.csv, tier baseline)")
    code = run_verify([evals["ss"], evals["ms"]], junitxml=settings.work_dir / "verify.xml",
                      expected_root=settings.expected_root)

    _step(settings, 5, "HTML reports")
    index = write_reports([train_dir, evals["ss"], evals["ms"]], settings.work_dir / "reports", compare=True,
                          expected_root=settings.expected_root)
    result = DemoResult(passed=code == 0, verify_exit=code, report=Path(index),
                        runs={"train": train_dir, **evals},
                        metrics={"train": trained["metrics"], "ss": ss["metrics"], "ms": ms["metrics"]})
    say(f"\ndemo verdict: {'PASS' if result.passed else 'FAIL'}")
    say(f"report: {result.report}")
    return result
