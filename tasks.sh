#!/usr/bin/env bash
# Bootstrap-and-run: creates .venv on first use (Python >= 3.11 and pip are all it needs), then
#   bash tasks.sh demo   scan the embedded synthetic demo scene offline → demo-output/
#   bash tasks.sh test   lint (ruff), type-check (mypy) and run the default test suite (slow tests excluded)
# Extra arguments go to the command (e.g. `bash tasks.sh test -m slow`).
set -euo pipefail
cd "$(dirname "$0")"
VENV=${VENV:-.venv}
PY=${PYTHON:-python3}
stamp="$VENV/.installed"
if [ ! -x "$VENV/bin/python" ] || [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "tasks.sh: installing into $VENV (first run takes a few minutes)…" >&2
  "$PY" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q -e ".[dev]"
  touch "$stamp"
fi
export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-3}
cmd=${1:-}
shift || true
case "$cmd" in
  demo) exec "$VENV/bin/python" cli.py scan --source demo --out demo-output "$@" ;;
  test)
    "$VENV/bin/ruff" check .
    "$VENV/bin/mypy"  # scanner/, training/, polarscan/, cli.py (config in pyproject.toml)
    exec "$VENV/bin/python" -m pytest "$@" ;;
  *) echo "usage: bash tasks.sh demo|test [args…]" >&2; exit 2 ;;
esac
