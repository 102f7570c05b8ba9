"""End to end: ``cli.py scan --source demo`` writes every output; reruns add nothing and
duplicate nothing; a requeued scene replaces its rows and files.

Runs in-process (``cli.main``) and sequentially, so TensorFlow and the model load once per test
session. Uses the demo weights when they exist, else an untrained 192→128 model with the demo
card (the vortex test needs the real demo weights and is skipped without them).
"""

from __future__ import annotations

import json
import sqlite3
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
    assert (c["found"], c["new"], c["processed"], c["failed"]) == (2, 2, 2, 0)
    assert c["mosaics"] == 1 and c["windows"] > 4
    [folder] = [Path(p) for p in s["outputs"]["mosaics"]]
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
    assert counts["scenes"] == 2 and counts["runs"] == 1
    with sqlite3.connect(gpkg) as con:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert con.execute("PRAGMA application_id").fetchone()[0] == 0x47504B47
        assert con.execute("SELECT COUNT(*) FROM layer_styles").fetchone()[0] >= 3

    catalog = json.loads((out / "stac" / "catalog.json").read_text())
    assert any(link["rel"] == "item" for link in catalog["links"])
    item = json.loads((out / "stac" / mid / f"{mid}.json").read_text())
    assert {"rgb", "probability", "gradcam", "detections"} <= set(item["assets"])

    from scanner.record import Record

    with Record.open(out) as rec:
        assert rec.counts()["processed"] == 2
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
    # an explicit window finds both scenes again, but the record knows they are done
    rc, s, err = run_scan(
        "--source", "demo", "--out", str(out), "--sequential", "--model", str(scan_model),
        "--since", "2022-11-29", "--until", "2022-12-01",
    )  # fmt: skip
    assert rc == 0, err
    c = s["counts"]
    assert (c["found"], c["new"], c["processed"], c["skipped"]) == (2, 0, 0, 2)
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
    assert s["counts"]["processed"] == 2
    ig = folder / f"{folder.name}_ig.tif"  # asked for this time: written in the mosaic's grid
    import rasterio

    with rasterio.open(ig) as ds, rasterio.open(prob) as ref:
        assert (ds.transform, ds.shape, ds.crs) == (ref.transform, ref.shape, ref.crs)
        assert ds.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
    item = json.loads((out / "stac" / folder.name / f"{folder.name}.json").read_text())
    assert {"gradcam", "ig"} <= set(item["assets"])
    after = layer_counts(out / "detections.gpkg")
    for layer in ("windows", "detections", "scenes"):
        assert after[layer] == before[layer], layer
    assert prob.stat().st_mtime_ns != stamp  # rewritten, not left over
    assert not list(folder.glob(".*.tmp"))  # no temporary leftovers


@pytest.mark.skipif(not DEMO_MODEL.is_file(), reason="demo weights not built yet")
def test_demo_top_detection_contains_the_vortex(first_run):
    import pyogrio
    from pyproj import Transformer
    from shapely.geometry import Point

    out, s = first_run
    assert s["counts"]["detections"] >= 1
    det = pyogrio.read_dataframe(out / "detections.gpkg", layer="detections")
    top = det.sort_values("probability", ascending=False).iloc[0]
    lat, lon, _ = demo_source.VORTEX
    x, y = Transformer.from_crs("EPSG:4326", det.crs, always_xy=True).transform(lon, lat)
    assert top.geometry.contains(Point(x, y)), (top.probability, top.window_id)


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
    assert lines[-1].startswith("time: ") and "ran: sequential" in text
