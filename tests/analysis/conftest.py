"""Fixtures: a tiny synthetic scan output (rasterio/geopandas, exact layout) and one real demo scan."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def synthetic_scan(tmp_path_factory) -> Path:
    from tests.analysis.synthetic_scan import write_scan

    return write_scan(tmp_path_factory.mktemp("synthetic-scan"))


@pytest.fixture(scope="session")
def demo_scan(tmp_path_factory) -> Path:
    """The real ``scan --source demo --sequential`` output (about 20 s on 2 cores), made once."""
    out = tmp_path_factory.mktemp("demo-scan") / "out"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run(
        [
            sys.executable,
            "cli.py",
            "scan",
            "--source",
            "demo",
            "--out",
            str(out),
            "--sequential",
            "--json",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    return out
