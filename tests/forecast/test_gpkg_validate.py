"""GDAL's own GeoPackage validator (``validate_gpkg.py``, Debian ``python3-gdal``) on a file
that several publishes, reruns and track relinks have written, with the project's extra SQLite
indexes: it must be a conformant GeoPackage 1.2 with no warning."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.forecast.test_gpkg_forecast import DX, HOURS, night, publish

SYSTEM_PYTHON = Path("/usr/bin/python3")
VALIDATOR = Path("/usr/lib/python3/dist-packages/osgeo_utils/samples/validate_gpkg.py")


def _validator_runs() -> bool:
    if not (SYSTEM_PYTHON.is_file() and VALIDATOR.is_file()):
        return False
    probe = subprocess.run([str(SYSTEM_PYTHON), "-c", "from osgeo import gdal"],
                           capture_output=True)  # fmt: skip
    return probe.returncode == 0


@pytest.mark.skipif(not _validator_runs(), reason="GDAL's validate_gpkg.py not available "
                    "(apt-get install python3-gdal)")  # fmt: skip
def test_published_file_passes_gdal_validate_gpkg(tmp_path):
    import sqlite3

    gpkg = tmp_path / "detections.gpkg"
    for i in range(3):
        m, p = night(f"m{i}", i * HOURS, i * DX, f"run-{i}")
        publish(gpkg, m, p)
    publish(gpkg, *night("m1", HOURS, DX, "run-9"))  # a rerun: rows replaced, tracks relinked
    with sqlite3.connect(gpkg) as con:
        indexes = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    assert {"idx_windows_mosaic_id", "idx_polar_lows_time"} <= indexes  # the extras are there
    proc = subprocess.run(
        [str(SYSTEM_PYTHON), str(VALIDATOR), "--warning-as-error", str(gpkg)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
