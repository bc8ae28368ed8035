"""mmseg's training logs, read: the `.log.json` (one JSON object a line) and the text `.log` beside it.

What mmcv 1.x's TextLoggerHook writes, and what is read from it:

- the first JSON line is `runner.meta`: mmseg's tools/train.py puts `env_info` (the collect_env text, whose
  `GPU 0,1,2,3: <name>` lines give the GPU count and type), `seed`, `exp_name` and often `config` (the dumped config
  text) there; `repro train` writes `seed`, `exp_name` and `config`;
- `mode: train` lines every log interval: `iter` (runner.iter + 1), `lr` (the first param group's), the losses
  (`loss`, `decode.loss_ce`, ...) averaged over the interval, `time` (seconds per iteration);
- `mode: val` lines after each evaluation: `aAcc`, `mIoU`, `mAcc` as fractions and `IoU.<class>` / `Acc.<class>`
  per class. Their `iter` is the number of validation batches on one process (mmcv's `eval_iter_num`), not the
  training iteration: mmcv's EvalHook logs the train line of the iteration first, so a val line belongs to the
  iteration of the train line before it.

mmcv rounds every float of the `.log.json` to 5 decimals, so a warm-up lr of 2.368e-07 is logged as 0.0; the text
log prints lr as `%.3e` (4 significant digits) and the other values with 4 decimals. Each value read keeps its
resolution (`lr_resolution`: half a unit of the last digit written), and a `.log` beside a `.log.json` of the same
run gives its more precise lr. Values are returned as the harness writes metrics: percentages for aAcc / mIoU /
mAcc / IoU.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import ReproError
from harness.run.folder import JOB_FILE, read_json

JSON_LR_RESOLUTION = 0.5e-5          # mmcv's _round_float: round(x, 5)
EXACT_FILE = "curve.jsonl"           # what the harness's own hook writes: lr and loss unrounded
METRICS = ("aAcc", "mIoU", "mAcc")


@dataclass
class TrainPoint:
    iter: int
    lr: float | None
    lr_resolution: float             # half a unit of the last digit the log wrote (0: exact)
    loss: float | None
    losses: dict[str, float] = field(default_factory=dict)
    time: float | None = None        # seconds per iteration, averaged over the log interval


@dataclass
class ValPoint:
    iter: int                        # the training iteration the evaluation followed
    metrics: dict[str, float]        # aAcc, mIoU, mAcc in %
    per_class: dict[str, float]      # IoU.<class> in %


@dataclass
class TrainingLog:
    source: str
    env_info: str | None = None
    seed: int | None = None
    exp_name: str | None = None
    config_text: str | None = None
    train: list[TrainPoint] = field(default_factory=list)
    val: list[ValPoint] = field(default_factory=list)
    distributed: bool | None = None
    iters_per_step: int = 1          # runner iterations per optimizer step (a run with --accumulate K: K)
    world_size: int | None = None    # known for the harness's own runs (job.json)

    @property
    def gpus(self) -> tuple[int | None, str | None]:
        """(GPU count, GPU type) from env_info's `GPU 0,1,2,3: NVIDIA A100-SXM4-40GB` lines (one node's)."""
        return gpus_of(self.env_info)

    def lr_points(self) -> list[TrainPoint]:
        return [p for p in self.train if p.lr is not None]


GPU_LINE = re.compile(r"^GPU ([0-9, ]+): (.+)$", re.M)


def gpus_of(env_info: str | None) -> tuple[int | None, str | None]:
    if not env_info:
        return None, None
    count, names = 0, []
    for ids, name in GPU_LINE.findall(env_info):
        count += len([i for i in ids.split(",") if i.strip()])
        names.append(name.strip())
    return (count or None), (", ".join(dict.fromkeys(names)) or None)


def _percent(value) -> float | None:
    return None if value is None else float(value) * 100.0


def _train_point(item: dict, lr_resolution: float) -> TrainPoint:
    losses = {k: float(v) for k, v in item.items() if "loss" in k and isinstance(v, (int, float))}
    lr = item.get("lr")
    if isinstance(lr, dict):     # several optimizers: the first one's
        lr = next(iter(lr.values()), None)
    return TrainPoint(iter=int(item["iter"]), lr=None if lr is None else float(lr), lr_resolution=lr_resolution,
                      loss=losses.get("loss"), losses=losses,
                      time=float(item["time"]) if isinstance(item.get("time"), (int, float)) else None)


def _val_point(item: dict, train_iter: int) -> ValPoint:
    metrics = {k: _percent(item[k]) for k in METRICS if isinstance(item.get(k), (int, float))}
    per_class = {k[4:]: _percent(v) for k, v in item.items() if k.startswith("IoU.") and isinstance(v, (int, float))}
    return ValPoint(iter=train_iter, metrics=metrics, per_class=per_class)


def parse_log_json(path: Path | str, text: str | None = None) -> TrainingLog:
    """A `.log.json` file (or its TEXT): meta line, train lines, val lines. A line that is not JSON is an error
    naming the line, except a torn last line (a run still writing it)."""
    path = Path(path)
    text = path.read_text(errors="replace") if text is None else text
    log = TrainingLog(source=str(path))
    lines = text.splitlines()
    last_train = 0
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError:
            if number == len(lines):
                break
            raise ReproError(f"{path}: line {number} is not JSON, so this is not an mmseg .log.json",
                             fix="pass the run's *.log.json (or its text *.log)") from None
        if not isinstance(item, dict):
            continue
        mode = item.get("mode")
        if mode is None:
            _meta(log, item)
        elif mode == "train" and "iter" in item:
            point = _train_point(item, JSON_LR_RESOLUTION)
            log.train.append(point)
            last_train = point.iter
            if any(k in item for k in METRICS):      # an evaluation logged on the train line (no logger call first)
                log.val.append(_val_point(item, point.iter))
        elif mode == "val":
            log.val.append(_val_point(item, last_train))
    return log


def _meta(log: TrainingLog, item: dict) -> None:
    log.env_info = item.get("env_info", log.env_info)
    if item.get("seed") is not None:
        log.seed = int(item["seed"])
    log.exp_name = item.get("exp_name", log.exp_name)
    if isinstance(item.get("config"), str):
        log.config_text = item["config"]


TEXT_TRAIN = re.compile(r"Iter \[(\d+)/\d+\]\s+(.*)$")
TEXT_VAL = re.compile(r"Iter\(val\) \[\d+\]\s+(.*)$")
TEXT_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ - \S+ - [A-Z]+ - ")
TEXT_SEED = re.compile(r"Set random seed to (-?\d+)")
ITEM = re.compile(r"([\w.()+\-]+): (-?[0-9.]+(?:e[-+]?\d+)?)")


def _text_resolution(raw: str) -> float:
    """Half a unit of the last digit of a number as written ('2.368e-07' -> 5e-11; '0.5000' -> 5e-5)."""
    mantissa, _, exponent = raw.lower().partition("e")
    decimals = len(mantissa.partition(".")[2])
    return 0.5 * 10.0 ** (-decimals + (int(exponent) if exponent else 0))


def parse_text_log(path: Path | str, text: str | None = None) -> TrainingLog:
    """mmseg's text `.log` (what a Slurm job's output holds too): environment, config, seed, Iter lines."""
    path = Path(path)
    text = path.read_text(errors="replace") if text is None else text
    log = TrainingLog(source=str(path))
    env = re.search(r"Environment info:\n-+\n(.*?)\n-+\n", text, re.S)
    log.env_info = env.group(1) if env else None
    config = re.search(r" - INFO - Config:\n(.*?)\n(?=\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ - )", text, re.S)
    log.config_text = config.group(1) if config else None
    seed = TEXT_SEED.search(text)
    log.seed = int(seed.group(1)) if seed else None
    distributed = re.search(r"Distributed training: (True|False)", text)
    log.distributed = (distributed.group(1) == "True") if distributed else None
    last_train = 0
    for line in text.splitlines():
        if not TEXT_LINE.match(line):
            continue
        if m := TEXT_TRAIN.search(line):
            items = {k: v for k, v in ITEM.findall(m.group(2))}
            raw_lr = items.pop("lr", None)
            values = {k: float(v) for k, v in items.items()}
            point = _train_point({"iter": int(m.group(1)), **values, "lr": float(raw_lr) if raw_lr else None},
                                 _text_resolution(raw_lr) if raw_lr else math.inf)
            log.train.append(point)
            last_train = point.iter
        elif m := TEXT_VAL.search(line):
            values = {k: float(v) for k, v in ITEM.findall(m.group(1))}
            log.val.append(_val_point(values, last_train))
    return log


def _merge(primary: TrainingLog, other: TrainingLog) -> TrainingLog:
    """The `.log.json` with the text log's more precise lr (same iterations) and whatever meta it lacks."""
    by_iter = {p.iter: p for p in other.train}
    for point in primary.train:
        twin = by_iter.get(point.iter)
        if twin is not None and twin.lr is not None and twin.lr_resolution < point.lr_resolution:
            point.lr, point.lr_resolution = twin.lr, twin.lr_resolution
    for name in ("env_info", "seed", "config_text", "distributed"):
        if getattr(primary, name) is None:
            setattr(primary, name, getattr(other, name))
    if not primary.train and not primary.val:
        primary.train, primary.val = other.train, other.val
    return primary


def text_twin(path: Path) -> Path | None:
    """`20230318_173313.log` beside `20230318_173313.log.json` (mmcv writes the pair)."""
    if path.name.endswith(".log.json"):
        twin = path.with_name(path.name[: -len(".json")])
        return twin if twin.is_file() else None
    return None


def read_log(path: Path | str) -> TrainingLog:
    """A `.log.json` (with its text `.log` twin, if beside it) or a text log; the format is told by the content."""
    path = Path(path)
    if not path.is_file():
        raise ReproError(f"training log {path} does not exist", fix="pass an mmseg *.log.json or *.log file")
    text = path.read_text(errors="replace")
    if text.lstrip().startswith("{"):
        log = parse_log_json(path, text)
        twin = text_twin(path)
        return _merge(log, parse_text_log(twin)) if twin else log
    log = parse_text_log(path, text)
    if not log.train and not log.val and log.env_info is None:
        raise ReproError(f"{path} is neither an mmseg .log.json nor an mmseg text log (no Iter lines, no "
                         f"environment)", fix="pass the run's *.log.json or *.log")
    return log


def read_run(run_dir: Path | str) -> TrainingLog:
    """A `repro train` run folder's curves: its train.log.json (+ train.log), the exact lr and loss the harness's
    hook wrote (curve.jsonl), iterations counted in optimizer steps (job.json's accumulate), its world size."""
    run_dir = Path(run_dir)
    job = read_json(run_dir / JOB_FILE) or {}
    candidates = [run_dir / "train.log.json", *sorted(run_dir.glob("*.log.json")), run_dir / "train.log",
                  *sorted(run_dir.glob("slurm-*.out"))]
    path = next((p for p in candidates if p.is_file()), None)
    if path is None:
        raise ReproError(f"{run_dir} holds no training log yet (train.log.json, train.log or slurm-*.out)",
                         fix="wait for the first log interval, or pass the run folder of a `repro train`")
    log = read_log(path)
    exact = run_dir / EXACT_FILE
    if exact.is_file():
        by_iter = {p.iter: p for p in log.train}
        evals = []
        for line in exact.read_text().splitlines():
            try:
                item = json.loads(line)
            except ValueError:
                continue                      # a torn last line
            if item.get("eval"):
                evals.append(int(item["iter"]))
            if "lr" not in item:
                continue
            point = by_iter.get(int(item["iter"]))
            if point is None:
                point = TrainPoint(iter=int(item["iter"]), lr=None, lr_resolution=math.inf, loss=None)
                log.train.append(point)
            if item.get("lr") is not None:
                point.lr, point.lr_resolution = float(item["lr"]), 0.0
            if item.get("loss") is not None:
                point.loss = float(item["loss"])
        log.train.sort(key=lambda p: p.iter)
        # the hook wrote each evaluation's own iteration: a val line need not follow a train line of it
        for value, it in zip(log.val, evals):
            value.iter = it
    log.iters_per_step = int(job.get("accumulate") or 1)
    launch = job.get("launch") or {}
    log.world_size = launch.get("world_size")
    log.distributed = (log.world_size or 1) > 1 and job.get("device") == "cuda"   # SyncBN kept only then
    if log.seed is None:
        log.seed = job.get("seed")
    return in_steps(log)


def in_steps(log: TrainingLog) -> TrainingLog:
    """Iterations counted in optimizer steps: a run with --accumulate K logs K runner iterations per step."""
    k = log.iters_per_step
    if k > 1:
        for point in [*log.train, *log.val]:
            point.iter = point.iter // k
    return log
