#!/usr/bin/env bash
# Fill the folder that tools/gpu_check.sh installs from on a GPU machine without internet (x86-64, Python 3.12,
# a system torch already installed): the mmcv-full 1.7.2 sdist (compiled there), the build's own tools
# (setuptools<70 + wheel for the build, setuptools>=77 restored afterwards, ninja for parallel compiles),
# mmsegmentation 0.29.1, the small pure-Python packages mmcv/mmseg import that such a machine may lack, and
# Python's C headers in case that machine's interpreter came without them.
#
#   tools/gpu_wheels.sh [DIR]        # default .gpu-wheels/ (git-ignored); a few MiB
#
# Environment: PYTHON (the pip that downloads; default .nox/engine/bin/python, else python3),
# GPU_PY (target Python version, default 3.12), GPU_PLATFORM (default manylinux2014_x86_64).
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-.gpu-wheels}
py=${PYTHON:-.nox/engine/bin/python}
[ -x "$py" ] || py=python3
target=(--only-binary=:all: --no-deps --python-version "${GPU_PY:-3.12}" --implementation cp
        --platform "${GPU_PLATFORM:-manylinux2014_x86_64}" -d "$dir")
mkdir -p "$dir"
# pure-Python or manylinux wheels for the target interpreter, one pin each (mmcv/mmseg's runtime imports)
for req in "setuptools<70" "setuptools>=77" wheel ninja mmsegmentation==0.29.1 addict "yapf==0.43.0" \
           platformdirs prettytable wcwidth packaging; do
  "$py" -m pip download -q "${target[@]}" "$req"
done
# the mmcv-full sdist (no wheel exists for torch 2.x). pip prepares its metadata by running its setup.py, which
# imports pkg_resources: a throw-away venv with setuptools<70, without build isolation
if ! ls "$dir"/mmcv-full-1.7.2.tar.gz >/dev/null 2>&1; then
  scratch=$(mktemp -d)
  "$py" -m venv "$scratch/venv"
  "$scratch/venv/bin/python" -m pip install -q "setuptools<70" wheel
  "$scratch/venv/bin/python" -m pip download -q --no-deps --no-binary :all: --no-build-isolation "mmcv-full==1.7.2" \
    -d "$dir"
  rm -rf "$scratch"
fi
# Python's C headers, used on the GPU machine only if its interpreter has none (no python3.X-dev package): mmcv's
# ops include Python.h. Any x86-64 Linux CPython of the same minor version has the same ABI.
gpu_py=${GPU_PY:-3.12}
inc=${GPU_PY_INCLUDE:-$("python$gpu_py" -c 'import sysconfig; print(sysconfig.get_paths()["include"])' 2>/dev/null || true)}
for candidate in "$inc" "$HOME"/.pyenv/versions/"$gpu_py"*/include/"python$gpu_py" /usr/include/"python$gpu_py"; do
  [ -f "$candidate/Python.h" ] && inc=$candidate && break
done
if [ -n "$inc" ] && [ -f "$inc/Python.h" ]; then
  rm -rf "$dir/python$gpu_py-include" && cp -r "$inc" "$dir/python$gpu_py-include"
else
  echo "note: no python$gpu_py with C headers here; the GPU machine must have its own (python$gpu_py-dev)" >&2
fi
ls -l "$dir"
du -sh "$dir"
