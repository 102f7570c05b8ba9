"""The forecaster's layers in detections.gpkg: polar lows, footprints, tracks; reruns replace,
later nights extend tracks, an older file without the layers is upgraded in place."""

from __future__ import annotations

import sqlite3
from datetime import timedelta

import numpy as np
import pyogrio
import pytest
from pyproj import Geod, Transformer

from scanner.forecast import TrackingConfig, find_polar_lows
from scanner.outputs.gpkg import read_layer, write_results
from scanner.outputs.gpkg_forecast import forecast_update
from tests.forecast.helpers import T0, crop, mosaic, prov, transform_at

DX = 150_000.0  # the vortex moves 150 km in +x of EPSG:3413 between passes
HOURS = 6


def night(mosaic_id: str, hours: float, dx: float, run_id: str):
    ws = [crop(0, 0), crop(0, 16), crop(60, 40)]
    m = mosaic(mosaic_id, ws, [0.8, 0.9, 0.3], start=T0 + timedelta(hours=hours),
               transform=transform_at(-500_000.0 + dx))  # fmt: skip
    return m, prov(run_id)


def publish(gpkg, m, p, tracking: TrackingConfig | None = None):
    lows = find_polar_lows(m, p)
    step = forecast_update(lows, [m.mosaic_id], tracking or TrackingConfig())
    return write_results(gpkg, [m], p, also=[step])


def counts(gpkg):
    return {name: pyogrio.read_info(gpkg, layer=name)["features"]
            for name, _ in pyogrio.list_layers(gpkg)}  # fmt: skip


def test_upgrade_in_place_then_track_across_nights(tmp_path):
    gpkg = tmp_path / "detections.gpkg"
    m1, p1 = night("m1", 0, 0.0, "run-1")
    write_results(gpkg, [m1], p1, {"run_id": "run-1"})  # a file from before polar lows
    before = counts(gpkg)
    assert "polar_lows" not in before
    publish(gpkg, m1, p1)  # the first publish with the new layers
    after = counts(gpkg)
    assert {k: after[k] for k in before} == before  # nothing lost
    assert (after["polar_lows"], after["polar_low_footprints"], after["tracks"]) == (1, 1, 0)
    types = {n: t for n, t in pyogrio.list_layers(gpkg)}
    assert types["polar_lows"] == "Point" and types["polar_low_footprints"] == "MultiPolygon"
    assert types["tracks"] == "LineString"

    m2, p2 = night("m2", HOURS, DX, "run-2")
    publish(gpkg, m2, p2)
    publish(gpkg, m2, p2)  # a rerun replaces, never duplicates
    lows = read_layer(gpkg, "polar_lows").sort_values("time")
    assert list(lows["mosaic_id"]) == ["m1", "m2"]
    assert lows["track_id"].nunique() == 1 and lows["track_id"].notna().all()
    tracks = read_layer(gpkg, "tracks")
    assert len(tracks) == 1 and tracks["n_sightings"][0] == 2
    assert tracks["track_id"][0] == lows["track_id"].iloc[0]
    # the expected speed and heading, from the centres placed by hand
    x = (16 * 0.8 + 32 * 0.9) / 1.7  # probability-weighted centroid of the two crop centres
    x0, y0 = transform_at() @ (x, 16.0)
    to_ll = Transformer.from_crs("EPSG:3413", "EPSG:4326", always_xy=True)
    (lon0, lon1), (lat0, lat1) = to_ll.transform([x0, x0 + DX], [y0, y0])
    az, _, dist = Geod(ellps="WGS84").inv(lon0, lat0, lon1, lat1)
    assert tracks["mean_speed_ms"][0] == pytest.approx(dist / (HOURS * 3600), rel=1e-6)
    assert tracks["heading_deg"][0] == pytest.approx(az % 360, abs=1e-6)
    line = tracks.geometry[0]
    assert line.coords[0] == pytest.approx((x0, y0)) and line.coords[-1] == pytest.approx(
        (x0 + DX, y0)
    )
    fps = read_layer(gpkg, "polar_low_footprints")
    assert fps["track_id"].nunique() == 1 and fps.geometry.area.iloc[0] == pytest.approx(
        32 * 48 * 2000.0**2
    )
    with sqlite3.connect(gpkg) as con:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert con.execute("SELECT time FROM polar_lows LIMIT 1").fetchone()[0].endswith(".000Z")


def test_too_fast_is_two_tracks_and_config_is_used(tmp_path):
    gpkg = tmp_path / "detections.gpkg"
    for mid, h, run in (("m1", 0, "r1"), ("m2", 1, "r2")):  # 150 km in 1 h = 42 m/s
        m, p = night(mid, h, DX * h, run)
        publish(gpkg, m, p)
    assert len(read_layer(gpkg, "tracks")) == 0
    assert read_layer(gpkg, "polar_lows")["track_id"].nunique() == 2
    m, p = night("m2", 1, DX, "r3")
    publish(gpkg, m, p, TrackingConfig(max_speed_ms=50))
    assert len(read_layer(gpkg, "tracks")) == 1


def test_mosaic_without_polar_lows_creates_empty_layers(tmp_path):
    gpkg = tmp_path / "detections.gpkg"
    m = mosaic("m0", [crop(0, 0)], np.array([0.1]))
    publish(gpkg, m, prov())
    c = counts(gpkg)
    assert (c["polar_lows"], c["polar_low_footprints"], c["tracks"]) == (0, 0, 0)
    info = pyogrio.read_info(gpkg, layer="polar_lows")
    assert {"polar_low_id", "track_id", "time", "lat", "lon", "max_probability"} <= set(
        info["fields"]
    )
