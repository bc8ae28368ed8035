"""The GPU self-check: the `gpu`-marked tests (plus the shims and the mmcv build plan) and, where it exists, the
evaluation speed benchmark; writes one JSON file of what it measured and prints one summary line.

    python tools/gpu_selfcheck.py --out gpu_check.json [--steps STEPS.tsv] [--started EPOCH]

Run by `./noxw -s gpu` (in .nox/engine) and by tools/gpu_check.sh (on a bare GPU machine, after installing the
engine; it passes the install steps it timed as `name<TAB>rc<TAB>seconds` lines). Exit status 0 only when every
step and every test passed and at least one GPU test ran.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TESTS = ["tests/engine/test_gpu_engine.py", "tests/engine/test_gpu_runs.py", "tests/engine/test_shims.py",
         "tests/test_mmcv_build.py"]
BENCHMARK = ROOT / "benchmarks" / "eval_speed.py"
BENCHMARK_TIMEOUT_S = 180
BENCHMARK_ARGS = ["--reproduction", "eva02_L_sz512", "--images", "16", "--device", "cuda", "--precision", "bf16"]


def environment() -> dict:
    code = ("import json, torch, numpy; c = torch.cuda.is_available(); print(json.dumps({"
            "'torch': torch.__version__, 'torch_cuda': torch.version.cuda, 'numpy': numpy.__version__, "
            "'cudnn': torch.backends.cudnn.version() if c else None, 'gpus': torch.cuda.device_count(), "
            "'gpu': torch.cuda.get_device_name(0) if c else None}))")
    facts = {"python": platform.python_version(), "cpus": os.cpu_count()}
    try:
        facts.update(json.loads(subprocess.check_output([sys.executable, "-c", code], text=True).splitlines()[-1]))
        facts["mmcv"] = subprocess.check_output([sys.executable, "-c", "import mmcv; print(mmcv.__version__)"],
                                                text=True, stderr=subprocess.DEVNULL).strip()
    except (subprocess.CalledProcessError, ValueError, IndexError) as exc:
        facts["error"] = f"{type(exc).__name__}: {exc}"
    return facts


def run_tests(log, seconds_left: float) -> dict:
    tests = [t for t in TESTS + sorted(str(p.relative_to(ROOT)) for p in (ROOT / "tests" / "gpu").rglob("test_*.py"))
             if (ROOT / t).exists()]
    with tempfile.TemporaryDirectory() as tmp:
        junit = Path(tmp) / "junit.xml"
        start = time.perf_counter()
        try:   # a hung NCCL collective must not eat the machine's time: each test and the whole run are capped
            rc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider",
                                 f"--junitxml={junit}", "--timeout=240", *tests], cwd=ROOT, stdout=log,
                                stderr=subprocess.STDOUT, timeout=max(seconds_left, 60)).returncode
        except subprocess.TimeoutExpired:
            rc = 124
            log.write(f"\n=== gpu_selfcheck: pytest stopped after {seconds_left:.0f} s (the check's time budget)\n".encode())
        seconds = time.perf_counter() - start
        cases = _cases(junit) if junit.exists() else []
    count = {k: sum(c["outcome"] == k for c in cases) for k in ("passed", "failed", "skipped")}
    gpu = [c for c in cases if "test_gpu_" in c["file"] or "/gpu/" in c["file"]]
    return {"rc": rc, "seconds": round(seconds, 1), **count,
            "gpu_passed": sum(c["outcome"] == "passed" for c in gpu), "gpu_total": len(gpu), "cases": cases}


def _cases(junit: Path) -> list[dict]:
    out = []
    for case in ET.parse(junit).getroot().iter("testcase"):
        outcome, message = "passed", None
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                outcome = "skipped" if child.tag == "skipped" else "failed"
                message = (child.get("message") or "")[:300]
        out.append({"file": case.get("classname", "").replace(".", "/") + ".py", "name": case.get("name"),
                    "outcome": outcome, "seconds": round(float(case.get("time") or 0), 2), "message": message})
    return out


def run_benchmark(log, gpus: int, seconds_left: float) -> dict | None:
    """The fast/stock evaluation benchmark (issue #12) on EVA-02-L, where it exists and a GPU is there."""
    if not BENCHMARK.exists():
        return None
    if not gpus:
        return {"rc": 0, "seconds": 0.0, "skipped": "no CUDA device", "tail": []}
    timeout = min(BENCHMARK_TIMEOUT_S, seconds_left)
    if timeout < 45:
        return {"rc": 0, "seconds": 0.0, "skipped": f"out of time ({seconds_left:.0f} s left)", "tail": []}
    argv = [sys.executable, str(BENCHMARK), *BENCHMARK_ARGS]
    start = time.perf_counter()
    try:
        proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
        rc, output = proc.returncode, proc.stdout + proc.stderr
    except subprocess.TimeoutExpired as exc:
        partial = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        rc, output = 124, f"{partial}\ntimed out after {timeout:.0f} s"
    log.write(f"=== benchmark: {' '.join(argv)}\n{output}".encode())
    return {"rc": rc, "seconds": round(time.perf_counter() - start, 1), "argv": argv[1:],
            "tail": [ln for ln in output.splitlines() if ln.strip()][-12:]}


def read_steps(path: Path | None) -> list[dict]:
    if path is None or not path.exists():
        return []
    rows = [line.split("\t") for line in path.read_text().splitlines() if line.strip()]
    return [{"step": r[0], "rc": int(r[1]), "seconds": float(r[2]), **({"detail": r[3]} if len(r) > 3 else {})}
            for r in rows]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("gpu_check.json"))
    parser.add_argument("--steps", type=Path, help="install steps timed by tools/gpu_check.sh")
    parser.add_argument("--started", type=float, help="epoch seconds when the whole check started")
    parser.add_argument("--budget", type=float, default=470,
                        help="seconds the whole check may take, counted from --started [default: 470]")
    parser.add_argument("--log", type=Path, help="where pytest's and the benchmark's output go [default: beside --out]")
    args = parser.parse_args()
    started = args.started or time.time()
    steps = read_steps(args.steps)
    log_path = args.log or args.out.with_suffix(".log")
    report = {"environment": environment(), "steps": steps}
    with open(log_path, "ab") as log:
        report["tests"] = run_tests(log, started + args.budget - 30 - time.time())
        report["benchmark"] = run_benchmark(log, report["environment"].get("gpus") or 0,
                                            started + args.budget - 10 - time.time())
    t = report["tests"]
    ok = (all(s["rc"] == 0 for s in steps if not s["step"].startswith("optional_")) and t["rc"] == 0 and t["gpu_total"] > 0
          and t["gpu_passed"] == t["gpu_total"] and (report["benchmark"] or {}).get("rc", 0) == 0)
    report["status"] = "PASS" if ok else "FAIL"
    report["total_seconds"] = round(time.time() - started, 1)
    env = report["environment"]
    build = next((s for s in steps if s["step"] == "build_mmcv"), None)
    bench = report["benchmark"]
    report["summary"] = (
        f"gpu_check {report['status']}: torch {env.get('torch')} (CUDA {env.get('torch_cuda')}) on "
        f"{env.get('gpus')}x {env.get('gpu')}, python {env.get('python')}, numpy {env.get('numpy')}"
        + (f", mmcv build {build['seconds']:.0f}s" if build else "")
        + f"; gpu tests {t['gpu_passed']}/{t['gpu_total']} passed, all tests {t['passed']} passed {t['failed']} "
          f"failed {t['skipped']} skipped in {t['seconds']:.0f}s"
        + (f"; benchmark skipped ({bench['skipped']})" if bench and bench.get("skipped") else
           f"; benchmark rc {bench['rc']}: {bench['tail'][-1] if bench['tail'] else ''}" if bench else "")
        + f"; total {report['total_seconds']:.0f}s -> {args.out}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    partial = args.out.with_name(args.out.name + ".part")
    partial.write_text(json.dumps(report, indent=1))
    os.replace(partial, args.out)
    print(report["summary"], flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
