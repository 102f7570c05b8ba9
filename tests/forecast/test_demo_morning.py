"""The forecaster's morning after ``cli.py scan --source demo``: a polar low on the vortex in
``polar_lows``, the report, the QGIS project, the webhook and the command, all from the CLI."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from scanner.demo import source as demo_source
from scanner.scan.config import DEMO_MODEL
from tests.support.loopback import LoopbackServer
from tests.support.scan_helpers import demo_cache, run_scan, scan_model

__all__ = ["demo_cache", "scan_model"]  # fixtures used by name


def test_demo_morning(tmp_path, demo_cache, scan_model):
    import pyogrio
    from pyproj import Geod

    out = tmp_path / "out"
    seen = tmp_path / "seen.json"
    cmd = f"{sys.executable} -c " + json.dumps(
        f"import shutil, sys; shutil.copy(sys.argv[1], {str(seen)!r})"
    )
    with LoopbackServer() as srv:
        srv.add_json("/hook", {"ok": True})
        rc, s, err = run_scan("--source", "demo", "--out", str(out), "--sequential",
                              "--model", str(scan_model), "--notify", srv.url + "/hook",
                              "--on-detection", cmd)  # fmt: skip
        posted = srv.requests_to("/hook")
    assert rc == 0, err
    o = s["outputs"]
    assert Path(o["report"]).is_file() and (out / "report" / "index.html").is_file()
    assert Path(o["qgis_project"]) == out / "polarscan.qgz" and (out / "polarscan.qgz").is_file()
    lows = pyogrio.read_dataframe(out / "detections.gpkg", layer="polar_lows")
    assert o["polar_lows"] == len(lows) and lows["track_id"].notna().all()
    assert set(lows["run_id"]) == {s["run_id"]}
    if not lows.empty:
        assert o["notify"] == {"webhook": {"ok": True, "status": 200, "attempts": 1},
                               "command": {"ok": True}}  # fmt: skip
        assert json.loads(posted[0].body) == json.loads(seen.read_text())
    [folder] = [Path(p) for p in o["mosaics"]]
    assert (folder / f"{folder.name}_gradcam.qml").is_file()
    if Path(scan_model) != DEMO_MODEL:
        pytest.skip("the vortex check needs the trained demo weights")
    lat, lon, radius_km = demo_source.VORTEX
    top = lows.sort_values("max_probability").iloc[-1]
    _, _, dist = Geod(ellps="WGS84").inv(lon, lat, top["lon"], top["lat"])
    assert dist < radius_km * 1000  # the centre estimate lies within the vortex
