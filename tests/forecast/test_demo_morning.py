"""The forecaster's morning after ``cli.py scan --source demo``: a polar low on the vortex of
each of the demo's two passes in ``polar_lows``, one track through both, the report, the QGIS
project, the webhook and the command, all from the CLI."""

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
    folders = [Path(p) for p in o["mosaics"]]
    assert len(folders) == 2  # one mosaic per pass
    for folder in folders:
        assert (folder / f"{folder.name}_gradcam.qml").is_file()
    if Path(scan_model) != DEMO_MODEL:
        pytest.skip("the vortex check needs the trained demo weights")
    # one polar low per pass, each centre within that pass's vortex, both on one track
    assert o["polar_lows"] == 2 and lows["mosaic_id"].nunique() == 2
    assert lows["track_id"].nunique() == 1
    geod = Geod(ellps="WGS84")
    for (_, low), (lat, lon, radius_km) in zip(
        lows.sort_values("time").iterrows(), demo_source.vortices(), strict=True
    ):
        _, _, dist = geod.inv(lon, lat, low["lon"], low["lat"])
        assert dist < radius_km * 1000, (low["mosaic_id"], dist)  # within the vortex
    tracks = pyogrio.read_dataframe(out / "detections.gpkg", layer="tracks")
    assert len(tracks) == 1 and int(tracks["n_sightings"].iloc[0]) == 2
    html = (out / "report" / "index.html").read_text()
    assert tracks["track_id"].iloc[0] in html  # the report names the track
