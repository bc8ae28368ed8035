"""The GitHub Actions workflows users copy: every `./noxw -s X` a job runs names a session `./noxw --list` has, the
GPU matrix is built from the registry's sessions, and the mmcv-full cache key comes from the build's own dry run."""
from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.yml"))
NOXW_SESSION = re.compile(r"\./noxw\s+(?:[^|;&\n]*?\s)?-s\s+(\"[^\"]*\"|'[^']*'|\S+)")


@pytest.fixture(scope="module")
def sessions() -> set[str]:
    """Every session name `./noxw --list` prints (`* name -> ...` selected, `- name -> ...` not)."""
    out = subprocess.run([str(REPO / "noxw"), "--list"], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    names = {m.group(1) for m in re.finditer(r"^[*-] (\S+) -> ", out.stdout, re.M)}
    assert {"lint", "tests", "demo"} <= names, out.stdout
    return names


def _steps(workflow: dict):
    for job_id, job in workflow["jobs"].items():
        for step in job.get("steps", []):
            yield job_id, step


def _noxw_sessions(script: str) -> list[str]:
    return [shlex.split(m.group(1))[0] for m in NOXW_SESSION.finditer(script)]


def test_every_noxw_session_a_job_runs_exists(sessions):
    seen = []
    for path in WORKFLOWS:
        workflow = yaml.safe_load(path.read_text())
        for job_id, step in _steps(workflow):
            for name in _noxw_sessions(step.get("run", "")):
                seen.append(name)
                if "$" in name:        # reproduce($ID): one per id of the matrix, built from the same list
                    family = name.split("(")[0] + "("
                    assert any(s.startswith(family) for s in sessions), f"{path.name}/{job_id}: {name}"
                else:                  # a session, or the name of a parametrized family (all of reproduce(...))
                    assert name in sessions or any(s.startswith(f"{name}(") for s in sessions), \
                        f"{path.name}/{job_id} runs `./noxw -s {name}`, not a session"
    assert {"lint", "tests", "demo", "batch", "compare"} <= set(seen)
    assert any(name.startswith("reproduce(") for name in seen)


def _flag(command: str, flag: str) -> str:
    """The value of `--flag VALUE` or `--flag=VALUE` in a shell line."""
    words = shlex.split(command)
    for i, word in enumerate(words):
        if word == flag:
            return words[i + 1]
        if word.startswith(flag + "="):
            return word.split("=", 1)[1]
    raise AssertionError(f"{flag} not in {command!r}")


def test_ci_publishes_the_files_its_commands_write():
    """The JUnit file the test step writes is the one published and uploaded; the demo's upload paths are where
    `repro demo --work-dir DIR` writes its reports and verify.xml (harness/demo.py)."""
    from harness import demo

    jobs = yaml.safe_load((REPO / ".github" / "workflows" / "ci.yml").read_text())["jobs"]
    tests = " ".join(s.get("run", "") for s in jobs["tests"]["steps"])
    junit = _flag(tests[tests.index("./noxw -s tests"):].split("\n")[0], "--junitxml")
    published = [s["with"] for s in jobs["tests"]["steps"] if "with" in s and ("files" in s["with"] or
                                                                               "path" in s["with"])]
    assert {w.get("files") or w.get("path") for w in published if "junit" in str(w)} == {junit}
    run = next(s["run"] for s in jobs["demo"]["steps"] if "./noxw -s demo" in s.get("run", ""))
    work_dir = _flag(run, "--work-dir")
    upload = next(s["with"]["path"] for s in jobs["demo"]["steps"] if s.get("uses", "").startswith("actions/upload-artifact@"))
    source = Path(demo.__file__).read_text()
    for line in upload.split():
        assert line.startswith(work_dir + "/"), line
        assert f'"{line.removeprefix(work_dir + "/").rstrip("/")}"' in source, f"harness/demo.py writes no {line}"


def test_the_wheel_cache_key_is_the_builds_own(tmp_path):
    """The step that computes the cache key runs the build's --dry-run; its JSON has the key the build uses."""
    ci = yaml.safe_load((REPO / ".github" / "workflows" / "ci.yml").read_text())
    for job in ("tests", "demo"):
        steps = ci["jobs"][job]["steps"]
        key_step = next(s for s in steps if s.get("id") == "mmcv")
        assert "tools/build_mmcv_wheel.py" in key_step["run"] and "--dry-run" in key_step["run"]
        cache = next(s for s in steps if s.get("uses", "").startswith("actions/cache@"))
        assert "steps.mmcv.outputs.key" in cache["with"]["key"] and "steps.mmcv.outputs.key" in cache["with"]["path"]
    pytest.importorskip("torch")
    sys.path.insert(0, str(REPO / "tools"))
    import build_mmcv_wheel
    out = subprocess.run([sys.executable, str(REPO / "tools" / "build_mmcv_wheel.py"), "--python", sys.executable,
                          "--wheelhouse", str(tmp_path), "--dry-run"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    key = json.loads(out.stdout)["key"]
    assert key == build_mmcv_wheel.plan(sys.executable, tmp_path)["key"] and key.startswith("mmcv-full-1.7.2_")


def test_the_gpu_matrix_step_lists_the_registrys_reproductions(tmp_path):
    """The plan job's own script, run here on `./noxw --list --json -s reproduce`: one row per reproduction."""
    gpu = yaml.safe_load((REPO / ".github" / "workflows" / "gpu.yml").read_text())
    step = next(s for s in gpu["jobs"]["plan"]["steps"] if s.get("id") == "matrix")
    script = step["run"].replace("./noxw", str(REPO / "noxw"))
    output = tmp_path / "github_output"
    env = {"PATTERNS": "eva02_L*", "ZOO": "mmseg/segformer_mit-b0_512x512_160k_ade20k", "GITHUB_OUTPUT": str(output),
           "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "HOME": str(Path.home())}
    ran = subprocess.run(["bash", "-e", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=600)
    assert ran.returncode == 0, ran.stderr
    matrix = json.loads(output.read_text().strip().removeprefix("matrix="))["include"]
    ours = sorted(p.parent.name for p in (REPO / "reproductions").glob("eva02_L*/reproduction.toml"))
    assert [r["id"] for r in matrix] == [*ours, "mmseg/segformer_mit-b0_512x512_160k_ade20k"]
    assert [r["session"] for r in matrix] == [f"reproduce({i})" for i in ours] + ["batch"]
    assert matrix[-1]["name"] == "mmseg_segformer_mit-b0_512x512_160k_ade20k"
