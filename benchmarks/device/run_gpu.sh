#!/usr/bin/env bash
# On the GPU machine (device tool), from the repository root, with the kit carried:
#
#   run(command="bash benchmarks/device/run_gpu.sh", carry=[".devkit"], timeout_s=560)
#
# Installs the kit's wheels into a scratch folder (no index, no network), then runs
# bench_gpu.py's inference half and one scene's windows under KERAS_BACKEND (default jax),
# stopping new measurements at TIME_LIMIT seconds (default 420) so the call ends in its slot.
# Everything printed is also written to $OUT/bench_gpu.txt (with nvidia-smi's view before and
# after), which comes back even when the call is cut. Extra arguments go to bench_gpu.py.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-$(mktemp -d)}
PY=${PYTHON:-python3}
SITE=${SITE:-/tmp/polarscan-kit}
KIT=${KIT:-.devkit}
export KERAS_BACKEND=${KERAS_BACKEND:-jax} PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=3
export PYTHONPATH="$SITE:$PWD${PYTHONPATH:+:$PYTHONPATH}"
{
  date -u +%FT%TZ
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm --format=csv 2>&1 || true
  "$PY" -m pip install --quiet --upgrade --no-index --no-deps --target "$SITE" "$KIT"/wheels/*.whl
  "$PY" -c 'import sys, keras; print("python", sys.version.split()[0], "keras", keras.__version__)'
  "$PY" benchmarks/bench_gpu.py --no-scan --time-limit "${TIME_LIMIT:-420}" "$@"
  echo "exit $?"
  nvidia-smi --query-gpu=name,memory.used,clocks.sm --format=csv 2>&1 || true
} 2>&1 | tee "$OUT/bench_gpu.txt"
