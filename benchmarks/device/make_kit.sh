#!/usr/bin/env bash
# Wheels that a GPU machine without Keras needs for bench_gpu.py's inference half, made here
# (where the package index is reachable) and carried there: Keras and the two dependencies such
# images lack (namex, optree), and pydantic for the scan's window code that the one-scene
# measurement calls. Everything else (numpy, h5py, ml-dtypes, rich, absl, typing-extensions,
# JAX/PyTorch) is expected there already.
#
#   bash benchmarks/device/make_kit.sh                 # for the device's Python 3.12, x86-64
#   PY=3.11 bash benchmarks/device/make_kit.sh         # for a local rehearsal
#
# The scan-scaling half is not in the kit: rasterio and pyogrio each bundle their own GDAL
# (39 + 33 MB as cp312 wheels), which with the repository (~32 MB) is over the 64 MiB a device
# call may carry. Measure it on a machine with the project installed.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-3.12}
KIT=${KIT:-.devkit}
PIP=${PIP:-.venv/bin/pip}
KERAS=$(.venv/bin/python -c 'from importlib.metadata import version; print(version("keras"))')
PYDANTIC=$(.venv/bin/python -c 'from importlib.metadata import version; print(version("pydantic"))')
PYDANTIC_CORE=$(.venv/bin/python -c 'from importlib.metadata import version; print(version("pydantic-core"))')
rm -rf "$KIT/wheels"
mkdir -p "$KIT/wheels"
"$PIP" download --quiet --only-binary=:all: --no-deps --implementation cp \
  --python-version "$PY" --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 -d "$KIT/wheels" "keras==$KERAS" namex optree \
  "pydantic==$PYDANTIC" "pydantic-core==$PYDANTIC_CORE" typing-inspection annotated-types
du -sh "$KIT/wheels"
ls "$KIT/wheels"
