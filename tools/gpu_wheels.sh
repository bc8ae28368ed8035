#!/usr/bin/env bash
# Fill the folder that tools/gpu_check.sh installs from on a GPU machine without internet (x86-64, Python 3.12,
# a system torch already installed): the mmcv-full 1.7.2 sdist (compiled there), the build's own tools
# (setuptools<70 + wheel for the build, setuptools>=77 restored afterwards, ninja for parallel compiles),
# mmsegmentation 0.29.1 and the small pure-Python packages mmcv/mmseg import that such a machine may lack.
#
#   tools/gpu_wheels.sh [DIR]        # default .gpu-wheels/ (git-ignored); a few MiB
#
# Environment: PYTHON (an interpreter with torch and setuptools<70 or pkg_resources, used only to fetch the
# sdist: pip runs its setup.py for metadata; default .nox/engine/bin/python, else python3),
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
# the mmcv-full sdist (no wheel exists for torch 2.x); pip prepares its metadata with setup.py: no isolation
"$py" -m pip download -q --no-deps --no-binary :all: --no-build-isolation "mmcv-full==1.7.2" -d "$dir"
ls -l "$dir"
du -sh "$dir"
