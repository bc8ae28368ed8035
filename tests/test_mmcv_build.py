"""tools/build_mmcv_wheel.py: CPU ops with the GPUs hidden on every host, CUDA ops only when asked and only with a
matching nvcc, and a wheel cache keyed by mmcv version, Python tag, torch version and ops flavour.

These run the script's real plan (its --dry-run, in a subprocess with this interpreter and its torch) and its
real nvcc check against small executables standing in for other CUDA toolkits; nothing is compiled."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "tools" / "build_mmcv_wheel.py"
sys.path.insert(0, str(SCRIPT.parent))
import build_mmcv_wheel as bmw  # noqa: E402

pytest.importorskip("torch")


def _dry_run(tmp_path: Path, **env_changes) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    for key, value in env_changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return subprocess.run([sys.executable, str(SCRIPT), "--python", sys.executable, "--wheelhouse",
                           str(tmp_path / "wh"), "--dry-run"], capture_output=True, text=True, env=env, timeout=300)


def _fake_toolkit(root: Path, release: str) -> Path:
    """A CUDA_HOME whose bin/nvcc reports `release`, as a real toolkit's nvcc --version does."""
    (root / "bin").mkdir(parents=True)
    nvcc = root / "bin" / "nvcc"
    nvcc.write_text("#!/bin/sh\necho 'nvcc: NVIDIA (R) Cuda compiler driver'\n"
                    f"echo 'Cuda compilation tools, release {release}, V{release}.1'\n")
    nvcc.chmod(0o755)
    return root


def test_default_plan_hides_gpus_and_keys_by_torch(tmp_path):
    """Even with a GPU visible and FORCE_CUDA set by the user, the default build sees no GPU and builds CPU ops."""
    import torch
    proc = _dry_run(tmp_path, CUDA_VISIBLE_DEVICES="0", FORCE_CUDA="1", REPRO_MMCV_OPS=None)
    assert proc.returncode == 0, proc.stderr
    plan = json.loads(proc.stdout)
    assert plan["flavour"] == "cpu"
    assert plan["env"]["CUDA_VISIBLE_DEVICES"] == ""
    assert "FORCE_CUDA" not in plan["env"]
    assert plan["env"]["MMCV_WITH_OPS"] == "1"
    assert plan["facts"]["torch"] == torch.__version__
    tag = f"cp{sys.version_info[0]}{sys.version_info[1]}"
    assert plan["key"] == f"mmcv-full-{bmw.MMCV_VERSION}_{tag}_torch{torch.__version__.replace('+', '_')}_cpu"
    assert Path(plan["folder"]) == tmp_path / "wh" / plan["key"]


def test_build_process_sees_no_gpu():
    """What the build runs: mmcv's setup.py asks torch.cuda.is_available(); in the build env torch sees no device."""
    env = bmw.build_env("cpu", dict(os.environ, CUDA_VISIBLE_DEVICES="0", FORCE_CUDA="1"))
    out = subprocess.check_output([sys.executable, "-c", "import os, torch; "
                                   "print(torch.cuda.device_count(), os.environ.get('FORCE_CUDA'))"],
                                  env=env, text=True, timeout=300)
    assert out.split() == ["0", "None"]
    cuda_env = bmw.build_env("cuda", dict(os.environ, CUDA_VISIBLE_DEVICES="3"))
    assert cuda_env["FORCE_CUDA"] == "1" and cuda_env["CUDA_VISIBLE_DEVICES"] == "3"   # asked for: left alone


def test_key_differs_by_everything_that_changes_the_wheel():
    base = {"tag": "cp311", "torch": "2.14.1+cu130", "torch_cuda": "13.0"}
    keys = {bmw.cache_key(base, "cpu"), bmw.cache_key(base, "cuda"),
            bmw.cache_key(dict(base, torch="2.14.1+cpu"), "cpu"), bmw.cache_key(dict(base, torch="2.11.0+cu130"), "cpu"),
            bmw.cache_key(dict(base, tag="cp312"), "cpu")}
    assert len(keys) == 5
    assert all(bmw.MMCV_VERSION in key and "/" not in key and "+" not in key for key in keys)


def test_wheel_under_another_key_is_never_returned(tmp_path):
    facts = {"tag": "cp311", "torch": "2.14.1+cu130", "torch_cuda": "13.0"}
    wanted, other = bmw.cache_key(facts, "cpu"), bmw.cache_key(dict(facts, torch="2.11.0+cu130"), "cpu")
    wheel = f"mmcv_full-{bmw.MMCV_VERSION}-cp311-cp311-linux_x86_64.whl"
    for folder in (tmp_path / other, tmp_path / bmw.cache_key(facts, "cuda"), tmp_path):   # old flat layout too
        folder.mkdir(exist_ok=True)
        (folder / wheel).write_bytes(b"PK")
    assert bmw.cached_wheel(tmp_path, wanted) is None
    (tmp_path / wanted).mkdir()
    (tmp_path / wanted / (wheel + ".part")).write_bytes(b"PK")   # a build killed while copying
    assert bmw.cached_wheel(tmp_path, wanted) is None
    (tmp_path / wanted / wheel).write_bytes(b"PK")
    assert bmw.cached_wheel(tmp_path, wanted) == tmp_path / wanted / wheel


def test_cuda_ops_need_a_matching_nvcc(tmp_path):
    assert bmw.check_nvcc("13.0", {"CUDA_HOME": str(_fake_toolkit(tmp_path / "cuda13", "13.0"))}) == "13.0"
    with pytest.raises(bmw.BuildError, match="CUDA 12.4 but torch was built with CUDA 13.0"):
        bmw.check_nvcc("13.0", {"CUDA_HOME": str(_fake_toolkit(tmp_path / "cuda12", "12.4"))})
    with pytest.raises(bmw.BuildError, match="none was found"):
        bmw.check_nvcc("13.0", {"PATH": str(tmp_path / "empty")})
    with pytest.raises(bmw.BuildError, match="CPU build"):
        bmw.check_nvcc(None, {})


def test_cuda_flavour_without_matching_nvcc_is_one_line_error(tmp_path):
    import torch
    if not torch.version.cuda:
        pytest.skip("this torch is a CPU build; the mismatch needs a CUDA torch")
    proc = _dry_run(tmp_path, REPRO_MMCV_OPS="cuda", CUDA_HOME=str(_fake_toolkit(tmp_path / "old", "11.8")))
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()   # the last line is the error; no traceback before it
    assert "Traceback" not in proc.stderr, proc.stderr
    assert "nvcc" in lines[-1] and "11.8" in lines[-1] and "REPRO_MMCV_OPS" in lines[-1], proc.stderr
    assert not (tmp_path / "wh").exists()   # nothing made


def test_unknown_flavour_is_one_line_error(tmp_path):
    proc = _dry_run(tmp_path, REPRO_MMCV_OPS="rocm")
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr and "'rocm'" in proc.stderr.strip().splitlines()[-1], proc.stderr
