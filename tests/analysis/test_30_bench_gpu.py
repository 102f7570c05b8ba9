"""benchmarks/bench_gpu.py: its --quick run on CPU prints a full table; its arithmetic."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "benchmarks"))

import bench_gpu  # noqa: E402

ROW = re.compile(
    r"^\s*(?P<model>\d+-\d+)\s+(?P<precision>fp32|bf16|fp16)\s+(?P<xla>on|off)\s+"
    r"(?P<batch>\d+)\s+(?P<rate>[\d.]+)\s+(?P<diff>[\d.e+-]+)\s*$"
)

SCENE = re.compile(
    r"one EW scene's windows on the device \((?P<n>\d+) x 64->32, fp32\): "
    r"score (?P<score>[\d.]+) s, Grad-CAM (?P<cam>[\d.]+) s"
)

ACROSS = re.compile(
    r"4 scenes' windows: one batch per mosaic (?P<apart>[\d.]+) s, one batch across the "
    r"mosaics (?P<together>[\d.]+) s: batching across mosaics (?P<ratio>[\d.]+)x"
)


def _run_quick(backend: str, *extra: str) -> str:
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run(
        [sys.executable, "benchmarks/bench_gpu.py", "--quick", *extra],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc.stdout


def _check_table(stdout: str, backend: str) -> None:
    assert f"backend {backend}" in stdout.splitlines()[0]
    rows = [m.groupdict() for line in stdout.splitlines() if (m := ROW.match(line))]
    # every precision x XLA mode of the one quick model at batch 2, none failed
    assert {(r["precision"], r["xla"]) for r in rows} == {
        (p, x) for p in ("fp32", "bf16", "fp16") for x in ("off", "on")
    }
    assert len(rows) == 6 and "failed" not in stdout
    assert all(r["model"] == "64-32" and r["batch"] == "2" for r in rows)
    assert all(float(r["rate"]) > 0 for r in rows)
    # XLA-on rows come first within each precision (the mode a scan uses, kept by a time limit)
    assert [r["xla"] for r in rows[:2]] == ["on", "off"]
    scene = SCENE.search(stdout)
    assert scene, stdout[-1500:]
    assert scene["n"] == "9" and 0 < float(scene["score"]) < 60 and 0 < float(scene["cam"]) < 60
    across = ACROSS.search(stdout)
    assert across, stdout[-1500:]
    apart, together = float(across["apart"]), float(across["together"])
    assert apart > 0 and together > 0
    # the printed ratio is of the unrounded times: within what the 4-decimal rounding allows
    slack = apart / together * (5e-5 / apart + 5e-5 / together) + 0.005
    assert abs(float(across["ratio"]) - apart / together) <= slack
    for r in rows:
        diff = float(r["diff"])
        if r["precision"] == "fp32":
            assert diff < 1e-5  # fp32, XLA or not, is the reference within rounding
        else:
            assert 0 < diff < 0.05  # half precision differs, but only a little


def test_quick_run_prints_the_table():
    _check_table(_run_quick("tensorflow"), "tensorflow")


@pytest.mark.slow
def test_quick_run_under_jax():
    """Without TensorFlow's trainer (the GPU machine has JAX and PyTorch only); ~70 s on 2 cores."""
    _check_table(_run_quick("jax"), "jax")


@pytest.mark.slow
def test_quick_scan_scaling():
    out = _run_quick(
        "tensorflow",
        "--precisions",
        "fp32",
        "--xla",
        "on",
        "--workers",
        "1,2",
        "--products",
        "2",
        "--scale",
        "0.125",
    )
    lines = out.splitlines()
    i = next(k for k, line in enumerate(lines) if line.split()[:2] == ["workers", "wall"])
    table = [line.split() for line in lines[i + 1 : i + 3]]
    assert [t[0] for t in table] == ["1", "2"]
    assert float(table[0][3]) == 1.0


def test_time_limit_skips_what_it_does_not_reach():
    """--time-limit 0: every row, the scene and the scan scaling say skipped; nothing runs."""
    out = _run_quick("tensorflow", "--time-limit", "0", "--workers", "1")
    rows = [line.split() for line in out.splitlines() if line.strip().startswith("64-32")]
    assert len(rows) == 6 and all(r[4] == "skipped" for r in rows)
    assert "one EW scene's windows: skipped (time limit)" in out
    assert "scan scaling: skipped (time limit)" in out and "synthetic products" not in out


def test_efficiency_arithmetic():
    # 4 scenes: 1 worker 40 s (360/h), 2 workers 25 s (576/h: 1.6x, 80 %), 4 workers 10 s (1440/h)
    got = bench_gpu.efficiency({1: 40.0, 2: 25.0, 4: 10.0}, 4)
    assert [(n, w) for n, w, _, _ in got] == [(1, 40.0), (2, 25.0), (4, 10.0)]
    assert [round(r, 6) for _, _, r, _ in got] == [360.0, 576.0, 1440.0]
    assert [round(e, 6) for _, _, _, e in got] == [1.0, 0.8, 1.0]


def test_format_row_failed_and_ok():
    ok = bench_gpu.format_row(bench_gpu.Row("800-512", "bf16", "on", 64, 1234.5, 1.2e-3))
    assert ROW.match(ok) and "1234.5" in ok
    bad = bench_gpu.format_row(
        bench_gpu.Row("1536-1024", "fp16", "off", 128, None, None, "ResourceExhaustedError: OOM")
    )
    assert "failed" in bad and "OOM" in bad and not ROW.match(bad)
