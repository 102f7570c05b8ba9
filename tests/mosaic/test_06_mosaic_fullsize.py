"""Full-size scene (2 x 10487 x 10708 UInt16) → 500 m mosaic in a subprocess: bounded memory.

Slow (~1 min: writing the scene dominates); run with ``-m slow``. The benchmark
(``benchmarks/bench_mosaic.py``) reports the timings; this asserts the memory target.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_full_size_scene_peak_rss_under_1_5_gb(tmp_path):
    from scanner.demo.synthetic_product import write_product

    product = write_product(tmp_path / "p", scale=1.0, compress="deflate")
    out = tmp_path / "m.tif"
    cmd = [
        sys.executable,
        str(REPO / "benchmarks" / "bench_mosaic.py"),
        "--child",
        "mosaic",
        str(product),
        str(out),
        "500",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, check=False)
    assert proc.returncode == 0, proc.stderr
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    assert res["rss_mb"] < 1500
    h, w = res["shape"]
    assert 900 < h < 1200 and 900 < w < 1200  # ~420 x 430 km swath, rotated, at 500 m
    assert out.exists()
