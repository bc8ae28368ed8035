#!/usr/bin/env bash
# The GPU self-check on a bare GPU machine without internet, from the repository root:
#
#   tools/gpu_check.sh DIR_OF_WHEELS          # DIR made by tools/gpu_wheels.sh (the mmcv-full sdist + small wheels)
#
# It keeps the machine's torch (and records its version), installs from DIR only (PIP_NO_INDEX), compiles
# mmcv-full 1.7.2 with CPU ops on every core (tools/build_mmcv_wheel.py --sdist; GPUs hidden from the build),
# installs mmsegmentation 0.29.1 and this package without dependencies, then runs tools/gpu_selfcheck.py: the
# `gpu` tests and, where it exists, the evaluation benchmark. Writes $OUT/gpu_check.json (./gpu_check.json
# without $OUT) with gpu_check.log beside it, and prints one summary line. PYTHON overrides the interpreter
# (default python3); REPRO_WHEELHOUSE the wheel cache (a folder with a wheel already built for that machine's torch
# skips the build); GPU_CHECK_BUDGET the seconds the whole check may take (default 540). About 5 minutes on a
# 16-core H200 machine.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
wheels=${1:?usage: tools/gpu_check.sh DIR_OF_WHEELS (made by tools/gpu_wheels.sh)}
wheels=$(cd "$wheels" && pwd) || { echo "gpu_check FAIL: no folder $1; make it with tools/gpu_wheels.sh" >&2; exit 2; }
out_dir=${OUT:-.}
mkdir -p "$out_dir" && out_dir=$(cd "$out_dir" && pwd)
log=$out_dir/gpu_check.log
steps=$out_dir/gpu_check.steps.tsv
: >"$log"; : >"$steps"
started=$(date +%s)
py=${PYTHON:-python3}
py=$(command -v "$py") || { echo "gpu_check FAIL: no $py on PATH; set PYTHON" >&2; exit 2; }
pybin=$("$py" -c 'import os, sys; print(os.path.dirname(sys.executable))')
export PATH="$pybin:$PATH"                       # ninja (for parallel compiles) lands beside the interpreter
export PIP_NO_INDEX=1 PIP_FIND_LINKS="$wheels" PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"   # the harness, even if the editable install fails
export MAX_JOBS=${MAX_JOBS:-$(nproc)}
wheelhouse=${REPRO_WHEELHOUSE:-$HOME/.cache/repro/wheelhouse}

step() {   # step NAME COMMAND...: run it into the log, append NAME<TAB>rc<TAB>seconds to the steps file
  local name=$1 t0 rc; shift
  t0=$(date +%s)
  echo "=== $name: $*" >>"$log"
  "$@" >>"$log" 2>&1; rc=$?
  printf '%s\t%s\t%s\n' "$name" "$rc" "$(( $(date +%s) - t0 ))" >>"$steps"
  echo "gpu_check: $name rc=$rc" >&2
  return $rc
}

build_mmcv() {   # prints the cached wheel's path last; kept for install_mmcv
  "$py" tools/build_mmcv_wheel.py --python "$py" --wheelhouse "$wheelhouse" --sdist "$sdist" | tee "$out_dir/mmcv_wheel.txt"
}

install_wheel() {   # the mmcv-full wheel the build put in the cache for this torch (the build's last line)
  local wheel
  wheel=$(tail -n 1 "$out_dir/mmcv_wheel.txt")
  "$py" -m pip install -q --no-deps --force-reinstall "$wheel"
}

# mmcv's ops include Python.h: use the carried headers where this interpreter has none (no python3.X-dev)
pyinc=$("$py" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
pyver=$("$py" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
if [ ! -f "$pyinc/Python.h" ] && [ -f "$wheels/python$pyver-include/Python.h" ]; then
  export CPATH="$wheels/python$pyver-include${CPATH:+:$CPATH}"
  echo "no Python.h in $pyinc: compiling with the carried headers ($CPATH)" >>"$log"
fi

sdist=$(ls "$wheels"/mmcv-full-1.7.2.tar.gz 2>/dev/null || ls "$wheels"/mmcv*full*1.7.2*.tar.gz 2>/dev/null | head -n 1)
step torch "$py" -c 'import torch; print("system torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.is_available())'
step deps "$py" -m pip install -q ninja addict "yapf==0.43.0" prettytable
step mmseg "$py" -m pip install -q --no-deps "mmsegmentation==0.29.1"
step compiler bash -c 'c++ --version | head -n 1; ninja --version'
if [ -n "$sdist" ]; then
  step build_mmcv build_mmcv && step install_mmcv install_wheel
  # a carried wheel built on another machine may not load here (libstdc++/glibc): then compile it here after all
  if ! "$py" -c 'import mmcv.ops' >>"$log" 2>&1 && [ "$wheelhouse" != "$HOME/.cache/repro/wheelhouse" ]; then
    wheelhouse=$HOME/.cache/repro/wheelhouse
    step rebuild_mmcv build_mmcv && step reinstall_mmcv install_wheel
  fi
else
  echo "no mmcv-full 1.7.2 sdist in $wheels" >>"$log"; printf 'build_mmcv\t2\t0\n' >>"$steps"
fi
step optional_editable_install "$py" -m pip install -q --no-deps --no-build-isolation -e .   # PYTHONPATH covers it
step engine_import "$py" -c 'import mmcv.ops, mmseg.apis, mmseg.models, harness.engine.modules; print("engine ok")'
"$py" tools/gpu_selfcheck.py --out "$out_dir/gpu_check.json" --steps "$steps" --started "$started" --log "$log" \
  --budget "${GPU_CHECK_BUDGET:-540}"
