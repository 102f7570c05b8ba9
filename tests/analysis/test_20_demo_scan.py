"""open_scan, open_detections and the notebook-style example against a real demo scan output."""

from __future__ import annotations

import json
import runpy
import sys
from pathlib import Path

import numpy as np
import pyogrio
import rasterio

from scanner import open_detections, open_scan

REPO = Path(__file__).resolve().parents[2]


def _mosaic_dirs(out: Path) -> list[Path]:
    return sorted(p for p in (out / "mosaics").iterdir() if p.is_dir())


def test_cube_equals_the_cogs(demo_scan):
    ds = open_scan(demo_scan, chunks=128)
    folders = _mosaic_dirs(demo_scan)
    assert len(folders) == 2  # the demo's two passes, one mosaic each
    scenes = pyogrio.read_dataframe(
        demo_scan / "detections.gpkg", layer="scenes", read_geometry=False
    )
    # one time step per mosaic, in sensing order
    starts = scenes.groupby("mosaic_id")["start"].min().sort_values()
    assert [str(m) for m in ds.mosaic_id.values] == list(starts.index)
    assert sorted(starts.index) == [f.name for f in folders]
    left, top = float(ds.x.values[0]), float(ds.y.values[0])  # pixel centres
    for i, mid in enumerate(starts.index):
        folder = demo_scan / "mosaics" / mid
        for var in ("probability", "gradcam"):
            plane = ds[var].isel(time=i).values
            with rasterio.open(folder / f"{mid}_{var}.tif") as src:
                ref = src.read(1)
                assert ds.rio.crs == src.crs
                res = src.res[0]
                assert (ds.rio.resolution()[0], -ds.rio.resolution()[1]) == src.res
                # the mosaic sits on the union grid's pixel edges: its block equals the COG
                x0, y0 = src.xy(0, 0)
                col0, row0 = round((x0 - left) / res), round((top - y0) / res)
                assert (col0, row0) == ((x0 - left) / res, (top - y0) / res)
                h, w = ref.shape
                np.testing.assert_array_equal(plane[row0 : row0 + h, col0 : col0 + w], ref)
                rest = plane.copy()
                rest[row0 : row0 + h, col0 : col0 + w] = np.nan
                assert np.isnan(rest).all()  # NaN outside this mosaic
                # and single pixels picked by coordinate equal rasterio's lookup there
                for row, col in [(h // 2, w // 3), (h // 3, w // 2)]:
                    x, y = src.xy(row, col)
                    got = float(ds[var].sel(x=x, y=y).isel(time=i))
                    assert np.array_equal(got, ref[row, col], equal_nan=True)
        p = ds.probability.isel(time=i).values
        assert np.isnan(p).any() and np.isfinite(p).any()  # NaN outside the swath
        # sensing time: the scenes layer's earliest start, and within 1 ms of the RGB COG's tag
        with rasterio.open(folder / f"{mid}_rgb.tif") as src:
            tag = np.datetime64(src.tags()["start"].replace("+00:00", ""), "ns")
        assert abs(ds.time.values[i] - tag) < np.timedelta64(1, "ms")
        first = starts[mid].tz_convert("UTC").tz_localize(None).to_datetime64()
        assert ds.time.values[i] == first


def test_open_detections_matches_the_gpkg(demo_scan):
    d = open_detections(demo_scan)
    gpkg = demo_scan / "detections.gpkg"
    for layer in ("detections", "windows", "scenes"):
        info = pyogrio.read_info(gpkg, layer=layer)
        assert len(getattr(d, layer)) == info["features"]
    assert len(d.detections) == int((d.windows["detected"]).sum()) >= 1
    assert d.runs is not None and len(d.runs) == 1


def test_example_runs_and_counts_match_the_gpkg(demo_scan, tmp_path, monkeypatch):
    figures = tmp_path / "figures"
    monkeypatch.setattr(sys, "argv", ["example_datacube.py", str(demo_scan), str(figures)])
    ns = runpy.run_path(str(REPO / "docs" / "example_datacube.py"), run_name="__main__")
    for name in ("max_probability.png", "detection_gradcam.png", "detection_sigma0.png"):
        png = figures / name
        assert png.is_file() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # independent count: the detections layer read with pyogrio, per UTC day of its start
    det = pyogrio.read_dataframe(demo_scan / "detections.gpkg", layer="detections")
    expected = det.groupby(det["start"].dt.strftime("%Y-%m-%d")).size()
    assert ns["per_day"].to_dict() == expected.to_dict()
    # the scan's own summary agrees too
    runs = pyogrio.read_dataframe(demo_scan / "detections.gpkg", layer="runs")
    assert int(ns["per_day"].sum()) == int(runs["n_detections"].sum())
    assert json.loads(runs["parameters"].iloc[0])  # a real scan's runs row
