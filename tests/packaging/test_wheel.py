"""The wheel carries what a user needs: installed with --no-deps into a fresh target, it runs
the offline demo scan from an unrelated folder, and it installs no generic top-level names."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.support.scan_helpers import demo_cache

__all__ = ["demo_cache"]

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    dist = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(dist), str(REPO)],
        check=True, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    [whl] = dist.glob("polarscan-*.whl")
    return whl


def test_wheel_contents(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert top == {"polarscan", "scanner", "training"}  # no `common`, `commands`, `cli`
    for resource in (
        "polarscan/_bundled/configs/scan.yaml",
        "polarscan/_bundled/configs/mosaic.yaml",
        "polarscan/_bundled/models/demo/polarlow-demo-192.keras",
        "polarscan/_bundled/models/demo/polarlow-demo-192.keras.card.yaml",
        "polarscan/py.typed",
        "scanner/py.typed",
        "training/py.typed",
    ):
        assert resource in names, resource
    sample = [n for n in names if n.startswith("scanner/demo/sample/") and "EW_GRDM" in n]
    assert any(n.endswith("manifest.safe") for n in sample)
    assert sum(n.endswith(".xml") for n in sample) >= 6  # annotation, calibration, noise × 2


def test_installed_wheel_runs_the_demo_from_any_folder(wheel, tmp_path, demo_cache):
    target, cwd = tmp_path / "site", tmp_path / "elsewhere"
    cwd.mkdir()
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target),
         str(wheel)],
        check=True, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(target), "POLARSCAN_CACHE": str(demo_cache)}
    where = subprocess.run(
        [sys.executable, "-c", "import polarscan, scanner; print(polarscan.__file__, "
         "scanner.__file__)"],
        cwd=cwd, env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert all(p.startswith(str(target)) for p in where.stdout.split()), where.stdout
    out = tmp_path / "scan"
    run = subprocess.run(
        [sys.executable, str(target / "bin" / "polarscan"), "-q", "scan", "--source", "demo",
         "--out", str(out), "--sequential", "--json"],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    assert '"processed": 4' in run.stdout  # the demo's two passes of two slices
    assert (out / "detections.gpkg").is_file() and (out / "stac" / "catalog.json").is_file()
    assert not list(cwd.iterdir())  # nothing written where it ran
