"""End to end: ``cli.py scan --source demo`` writes every output for its two passes (two
datatakes of two slices, one mosaic each); the polar low seen on both is one track at the
generator's speed; reruns add nothing and duplicate nothing; a requeued scene replaces its rows
and files.

Runs in-process (``cli.main``) and sequentially, so TensorFlow and the model load once per test
session. Uses the demo weights when they exist, else an untrained 192→128 model with the demo
card (the vortex test needs the real demo weights and is skipped without them).
"""

from __future__ import annotations

import json
import sqlite3
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest

from scanner.demo import source as demo_source
from scanner.scan.config import DEMO_MODEL
from tests.support.scan_helpers import demo_cache, layer_counts, run_scan, scan_model

__all__ = ["demo_cache", "scan_model"]  # fixtures used by name


@pytest.fixture(scope="module")
def first_run(tmp_path_factory, demo_cache, scan_model):
    out = tmp_path_factory.mktemp("demo-output")
    rc, summary, err = run_scan(
        "--source", "demo", "--out", str(out), "--sequential", "--model", str(scan_model)
    )
    assert rc == 0, err
    return out, summary


def test_demo_scan_writes_every_output(first_run):
    import rasterio

    out, s = first_run
    c = s["counts"]
    # two passes, each a datatake of two slices: four scenes, one mosaic per datatake
    assert (c["found"], c["new"], c["processed"], c["failed"]) == (4, 4, 4, 0)
    assert c["mosaics"] == 2 and c["windows"] > 8
    folders = [Path(p) for p in s["outputs"]["mosaics"]]
    assert len(folders) == 2
    assert len({f.name.split("_")[2] for f in folders}) == 2  # two datatake ids
    for folder in folders:
        mid = folder.name
        files = {p.name for p in folder.iterdir()}
        assert {f"{mid}_rgb.tif", f"{mid}_probability.tif", f"{mid}_gradcam.tif"} <= files
        with rasterio.open(folder / f"{mid}_rgb.tif") as rgb:
            assert rgb.crs.to_epsg() == 3413 and rgb.count == 3
            assert rgb.res == (2000.0, 2000.0)  # the demo card's pixel spacing, not 500 m
            grid = (rgb.transform, rgb.shape)
        for kind in ("probability", "gradcam"):
            with rasterio.open(folder / f"{mid}_{kind}.tif") as ds:
                assert (ds.transform, ds.shape) == grid
                assert ds.dtypes[0] == "float32" and np.isnan(ds.nodata)
                # a COG (a raster this small needs no overviews: it fits in one 512 px block)
                assert ds.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
                prob = ds.read(1)
                assert np.isfinite(prob).any()

    gpkg = out / "detections.gpkg"
    counts = layer_counts(gpkg)
    assert counts["windows"] == c["windows"]
    assert counts["detections"] == c["detections"]
    assert counts["scenes"] == 4 and counts["runs"] == 1
    with sqlite3.connect(gpkg) as con:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert con.execute("PRAGMA application_id").fetchone()[0] == 0x47504B47
        assert con.execute("SELECT COUNT(*) FROM layer_styles").fetchone()[0] >= 3

    catalog = json.loads((out / "stac" / "catalog.json").read_text())
    assert [link["href"] for link in catalog["links"] if link["rel"] == "child"] == [
        "./2022/11/catalog.json"
    ]  # month sub-catalogs (scanner/outputs/stac.py)
    for folder in folders:
        mid = folder.name
        item = json.loads((out / "stac" / "2022" / "11" / mid / f"{mid}.json").read_text())
        assert {"rgb", "probability", "gradcam", "detections"} <= set(item["assets"])

    from scanner.record import Record

    with Record.open(out) as rec:
        assert rec.counts()["processed"] == 4
        row = rec.scenes(status="processed")[0]
        assert row.outputs["probability"].endswith("_probability.tif")


def test_rerun_processes_nothing_new_and_duplicates_nothing(first_run, scan_model):
    out, s1 = first_run
    before = layer_counts(out / "detections.gpkg")
    # --since last (the default): the watermark hides what was published before
    rc, s, err = run_scan(
        "--source", "demo", "--out", str(out), "--sequential", "--model", str(scan_model)
    )
    assert rc == 0, err
    assert s["counts"]["found"] == 0 and s["counts"]["processed"] == 0
    # an explicit window finds all four scenes again, but the record knows they are done
    rc, s, err = run_scan(
        "--source", "demo", "--out", str(out), "--sequential", "--model", str(scan_model),
        "--since", "2022-11-29", "--until", "2022-12-01",
    )  # fmt: skip
    assert rc == 0, err
    c = s["counts"]
    assert (c["found"], c["new"], c["processed"], c["skipped"]) == (4, 0, 0, 4)
    after = layer_counts(out / "detections.gpkg")
    assert after["windows"] == before["windows"] and after["scenes"] == before["scenes"]
    assert after["runs"] == before["runs"] + 2


def test_requeued_scenes_replace_their_rows_and_files(first_run, scan_model):
    from scanner.record import Record

    out, s1 = first_run
    folder = Path(s1["outputs"]["mosaics"][0])
    prob = folder / f"{folder.name}_probability.tif"
    stamp = prob.stat().st_mtime_ns
    before = layer_counts(out / "detections.gpkg")
    with Record.open(out) as rec:
        rec.requeue(status="processed")
    rc, s, err = run_scan(
        "--source", "demo", "--out", str(out), "--sequential", "--model", str(scan_model),
        "--saliency", "gradcam,ig",
    )  # fmt: skip
    assert rc == 0, err
    assert s["counts"]["processed"] == 4
    ig = folder / f"{folder.name}_ig.tif"  # asked for this time: written in the mosaic's grid
    import rasterio

    with rasterio.open(ig) as ds, rasterio.open(prob) as ref:
        assert (ds.transform, ds.shape, ds.crs) == (ref.transform, ref.shape, ref.crs)
        assert ds.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
    [item_file] = (out / "stac").glob(f"*/*/{folder.name}/{folder.name}.json")
    item = json.loads(item_file.read_text())
    assert {"gradcam", "ig"} <= set(item["assets"])
    after = layer_counts(out / "detections.gpkg")
    for layer in ("windows", "detections", "scenes"):
        assert after[layer] == before[layer], layer
    assert prob.stat().st_mtime_ns != stamp  # rewritten, not left over
    assert not list(folder.glob(".*.tmp"))  # no temporary leftovers


@pytest.mark.skipif(not DEMO_MODEL.is_file(), reason="demo weights not built yet")
def test_demo_top_detection_contains_the_vortex(first_run):
    """On each pass, the mosaic's top detection contains where the generator put the low."""
    import pyogrio
    from pyproj import Transformer
    from shapely.geometry import Point

    out, s = first_run
    assert s["counts"]["detections"] >= 2
    det = pyogrio.read_dataframe(out / "detections.gpkg", layer="detections")
    to_crs = Transformer.from_crs("EPSG:4326", det.crs, always_xy=True)
    mosaics = sorted(det["mosaic_id"].unique(), key=lambda m: det[det.mosaic_id == m].start.min())
    assert len(mosaics) == 2
    for mosaic_id, (lat, lon, _) in zip(mosaics, demo_source.vortices(), strict=True):
        mine = det[det.mosaic_id == mosaic_id]
        top = mine.sort_values("probability", ascending=False).iloc[0]
        x, y = to_crs.transform(lon, lat)
        assert top.geometry.contains(Point(x, y)), (mosaic_id, top.probability, top.window_id)


@pytest.mark.skipif(not DEMO_MODEL.is_file(), reason="demo weights not built yet")
def test_demo_tracks_the_low_at_the_generators_speed(first_run):
    """One track of two sightings whose speed is within 20 % of the generator's: the geodesic
    distance between where it put the low on each pass over the time between the passes."""
    import pyogrio
    from pyproj import Geod

    out, s = first_run
    gpkg = out / "detections.gpkg"
    (lat1, lon1, _), (lat2, lon2, _) = demo_source.vortices()
    _, _, moved_m = Geod(ellps="WGS84").inv(lon1, lat1, lon2, lat2)
    assert moved_m >= 300e3  # the set displacement is a real move, not the centre's error
    # the passes are 4 Sentinel-1 orbits apart (175 orbits in 12 days), as the scenes say
    gap = timedelta(days=12) / 175 * demo_source.ORBITS_LATER
    scenes = pyogrio.read_dataframe(gpkg, layer="scenes", read_geometry=False)
    firsts = sorted(scenes.groupby("mosaic_id")["start"].min())
    assert len(firsts) == 2 and abs((firsts[1] - firsts[0]) - gap) < timedelta(milliseconds=1)
    speed = moved_m / gap.total_seconds()
    assert speed <= 30.0  # within the tracking default (tracking.max_speed_ms)

    tracks = pyogrio.read_dataframe(gpkg, layer="tracks")
    assert len(tracks) == 1, tracks.drop(columns="geometry").to_dict("records")
    [track] = tracks.itertuples()
    assert track.n_sightings == 2
    assert abs(track.mean_speed_ms - speed) <= 0.2 * speed, (track.mean_speed_ms, speed)
    lows = pyogrio.read_dataframe(gpkg, layer="polar_lows")
    assert len(lows) == 2 and set(lows["track_id"]) == {track.track_id}
    assert lows["mosaic_id"].nunique() == 2  # one polar low per pass


def test_text_summary_fits_one_screen(first_run):
    from polarscan.commands.scan import format_summary

    out, s = first_run
    c = s["counts"]
    text = format_summary(s)
    lines = text.splitlines()
    assert len(lines) <= 24 and max(len(line) for line in lines) <= 200
    assert f"scenes: {c['found']} found, {c['new']} new, {c['processed']} processed" in text
    assert f"windows scored: {c['windows']}  detections: {c['detections']}" in text
    assert str(out / "detections.gpkg") in text
    o = s["outputs"]
    [forecast] = [line for line in lines if line.startswith("forecast: ")]
    assert f"{o['polar_lows']} polar low(s)" in forecast and "tracks" in forecast
    assert str(Path(o["report"]).relative_to(out)) in forecast
    assert "QGIS project: polarscan.qgz" in forecast
    assert lines[-1].startswith("time: ") and "ran: sequential" in text
