"""benchmarks/bench_stream.py keeps working (tiny counts; the figures are in docs/benchmarks.md)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_bench_stream_prints_both_runs_and_the_ratio():
    run = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "bench_stream.py"), "--counts", "1", "2",
         "--workers", "1"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    lines = run.stdout.splitlines()
    assert re.search(r"^\s+1 scenes .*1 mosaics, 1 processed, 0 failed", lines[0])
    assert re.search(r"^\s+2 scenes .*2 mosaics, 2 processed, 0 failed", lines[1])
    ratio = float(re.search(r"(\d+\.\d+)×", lines[2]).group(1))
    assert 0.5 < ratio < 2.0  # two real, comparable peak RSS readings
