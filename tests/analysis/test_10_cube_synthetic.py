"""open_scan / open_detections on a tiny synthetic scan output whose values encode their place."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio

import scanner.analysis.cube as cube_mod
from polarscan.common.errors import UsageError
from scanner import open_detections, open_scan
from tests.analysis import synthetic_scan as syn


def _expected(grid_rows: int, grid_cols: int) -> np.ndarray:
    """(time, y, x) probability on the union lattice, built from the generator's formula."""
    out = np.full((len(syn.MOSAICS), grid_rows, grid_cols), np.nan, np.float32)
    for t, m in enumerate(syn.MOSAICS):
        out[t, m.row0 : m.row0 + m.height, m.col0 : m.col0 + m.width] = syn.probability(m, t)
    return out


def test_union_grid_coords_and_crs(synthetic_scan):
    ds = open_scan(synthetic_scan, chunks=16)
    assert ds.probability.dims == ("time", "y", "x")
    assert set(ds.data_vars) == {"probability", "gradcam", "ig"}
    # union: x 0…80 km, y 30…100 km at 2 km → 35 rows x 40 columns, pixel centres
    assert ds.sizes == {"time": 3, "y": 35, "x": 40}
    assert ds.x.values[0] == 1000.0 and ds.x.values[-1] == 79_000.0
    assert ds.y.values[0] == 99_000.0 and ds.y.values[-1] == 31_000.0
    assert ds.rio.crs.to_epsg() == 3413
    assert tuple(ds.rio.transform())[:6] == (2000.0, 0.0, 0.0, 0.0, -2000.0, 100_000.0)
    assert "spatial_ref" in ds.coords
    assert [str(m) for m in ds.mosaic_id.values] == [m.mosaic_id for m in syn.MOSAICS]
    assert list(ds.time.values) == [np.datetime64(m.start, "ns") for m in syn.MOSAICS]
    assert list(ds.stop.values) == [np.datetime64(m.stop, "ns") for m in syn.MOSAICS]
    # one time step per chunk, spatial blocks of 16 (the last ones partial)
    assert ds.probability.chunks == ((1, 1, 1), (16, 16, 3), (16, 16, 8))


def test_values_are_the_cogs_at_the_same_place(synthetic_scan):
    ds = open_scan(synthetic_scan, chunks=16)
    got = ds.probability.values
    np.testing.assert_array_equal(got, _expected(35, 40))  # NaN where expected NaN
    # every valid value decodes to its own (time, row, column) on the grid
    t, r, c = np.nonzero(~np.isnan(got))
    assert all(syn.decode(got[i, j, k]) == (i, j, k) for i, j, k in zip(t, r, c, strict=True))
    # and equals rasterio's own read of the COG at the pixel-centre coordinates
    for i, m in enumerate(syn.MOSAICS):
        path = synthetic_scan / "mosaics" / m.mosaic_id / f"{m.mosaic_id}_probability.tif"
        with rasterio.open(path) as src:
            for x, y in [(ds.x.values[k], ds.y.values[j]) for j, k in [(0, 0), (12, 25), (20, 30)]]:
                row, col = src.index(x, y)
                cube = float(ds.probability.sel(time=ds.time[i], x=x, y=y))
                if 0 <= row < src.height and 0 <= col < src.width:
                    ref = src.read(1, window=((row, row + 1), (col, col + 1)))[0, 0]
                    assert np.array_equal(cube, ref, equal_nan=True), (m.mosaic_id, x, y)
                else:
                    assert np.isnan(cube)


def test_gradcam_and_ig(synthetic_scan):
    ds = open_scan(synthetic_scan, chunks=16)
    cam = ds.gradcam.values
    m = syn.MOSAICS[0]
    r, c, s, _ = max(m.windows, key=lambda w: w[3])
    assert np.all(cam[0, m.row0 + r : m.row0 + r + s, m.col0 + c : m.col0 + c + s] == 0.5)
    assert np.count_nonzero(~np.isnan(cam[0])) == s * s
    ig = ds.ig.values
    assert np.all(np.isnan(ig[:2]))  # the first two mosaics have no IG raster
    assert np.nanmax(ig[2]) == 0.25


def test_nothing_read_until_computed(synthetic_scan, monkeypatch):
    calls: list[str] = []
    real = cube_mod.read_block

    def counting(ref, *a, **k):
        calls.append(ref.path)
        return real(ref, *a, **k)

    monkeypatch.setattr(cube_mod, "read_block", counting)
    ds = open_scan(synthetic_scan, chunks=16)
    assert calls == []
    # a block no mosaic reaches needs no read; the third mosaic (10x10 px at row 5, col 5) sits
    # in the first 16x16 block only
    assert np.isnan(ds.probability.isel(time=2, y=slice(16, 32), x=slice(16, 32)).values).all()
    assert calls == []
    assert np.isfinite(ds.probability.isel(time=2).values).sum() > 0
    assert len(calls) == 1
    assert ds.probability.max("time").values.shape == (35, 40)
    # blocks each mosaic reaches: rows 0-19 x cols 0-29 → 2x2; rows 10-34 x cols 20-39 → 3x2; 1
    assert len(calls) == 1 + 4 + 6 + 1


def test_custom_grid_is_warped_like_a_rasterio_lookup(synthetic_scan):
    # 3 km pixels from (1 km, 99 km): every centre falls strictly inside a 2 km source pixel
    ds = open_scan(synthetic_scan, resolution=3000, bounds=(1000, 31_000, 79_000, 99_000), chunks=8)
    assert ds.sizes["x"] == 26 and ds.sizes["y"] == 23
    assert tuple(ds.rio.transform())[:6] == (3000.0, 0.0, 1000.0, 0.0, -3000.0, 99_000.0)
    got = ds.probability.values
    for i, m in enumerate(syn.MOSAICS):
        path = synthetic_scan / "mosaics" / m.mosaic_id / f"{m.mosaic_id}_probability.tif"
        with rasterio.open(path) as src:
            data = src.read(1)
            for j, y in enumerate(ds.y.values):
                for k, x in enumerate(ds.x.values):
                    row, col = src.index(x, y)
                    inside = 0 <= row < src.height and 0 <= col < src.width
                    ref = data[row, col] if inside else np.nan
                    assert np.array_equal(got[i, j, k], ref, equal_nan=True), (i, x, y)


def test_other_crs_on_request(synthetic_scan):
    ds = open_scan(synthetic_scan, crs="EPSG:3995", resolution=4000)
    assert ds.rio.crs.to_epsg() == 3995
    p = ds.probability.values
    assert np.nanmax(p) <= np.nanmax(_expected(35, 40)) and np.isfinite(p).sum() > 100


def test_open_detections(synthetic_scan):
    d = open_detections(synthetic_scan)
    assert len(d.windows) == sum(len(m.windows) for m in syn.MOSAICS)
    assert (d.detections["probability"] >= syn.THRESHOLD).all()
    assert len(d.detections) == sum(syn.PER_DAY.values())
    assert set(d.scenes["mosaic_id"]) == {m.mosaic_id for m in syn.MOSAICS}
    assert d.detections.crs.to_epsg() == 3413
    assert d.runs is not None and d.runs["run_id"].tolist() == ["run-1"]
    assert d.polar_lows is None and d.tracks is None


# ---- bad input: UsageError naming the problem and the fix ----


def test_not_a_scan_output(tmp_path):
    for path, what in [
        (tmp_path / "missing", "does not exist"),
        (tmp_path, "neither detections.gpkg nor mosaics/"),
    ]:
        with pytest.raises(UsageError, match=what) as err:
            open_scan(path)
        assert "pass the folder a scan wrote" in str(err.value)
    (tmp_path / "f.txt").write_text("x")
    with pytest.raises(UsageError, match="is a file"):
        open_detections(tmp_path / "f.txt")
    (tmp_path / "mosaics").mkdir()
    with pytest.raises(UsageError, match="no mosaics/<id>/<id>_probability.tif"):
        open_scan(tmp_path)
    with pytest.raises(UsageError, match="no detections.gpkg"):
        open_detections(tmp_path)


def test_mosaics_in_different_crs(synthetic_scan, tmp_path):
    out = shutil.copytree(synthetic_scan, tmp_path / "out")
    m = syn.MOSAICS[1]
    path = out / "mosaics" / m.mosaic_id / f"{m.mosaic_id}_probability.tif"
    with rasterio.open(path, "r+") as dst:
        dst.crs = "EPSG:3995"
    with pytest.raises(UsageError, match="2 different CRSs") as err:
        open_scan(out)
    assert "pass crs='EPSG:3413'" in str(err.value)
    with pytest.raises(UsageError, match="no resolution"):
        open_scan(out, crs="EPSG:3413")
    ds = open_scan(out, crs="EPSG:3413", resolution=2000)
    assert ds.rio.crs.to_epsg() == 3413


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"chunks": 0}, "chunks"),
        ({"resolution": -1}, "resolution"),
        ({"bounds": (5, 5, 1, 1)}, "bounds"),
        ({"crs": "EPSG:99999999"}, "crs"),
        ({"resampling": "cubicish"}, "resampling"),
        ({"variables": ["prob"]}, "unknown variable"),
    ],
)
def test_bad_arguments(synthetic_scan, kwargs, match):
    with pytest.raises(UsageError, match=match):
        open_scan(synthetic_scan, **kwargs)


def test_corrupt_cog_and_gpkg(synthetic_scan, tmp_path):
    out = shutil.copytree(synthetic_scan, tmp_path / "out")
    m = syn.MOSAICS[0]
    (out / "mosaics" / m.mosaic_id / f"{m.mosaic_id}_gradcam.tif").write_bytes(b"not a tiff")
    with pytest.raises(UsageError, match="cannot be read as a raster") as err:
        open_scan(out)
    assert "rerun the scan" in str(err.value)
    (out / "detections.gpkg").write_bytes(b"garbage")
    with pytest.raises(UsageError, match="not a GeoPackage"):
        open_detections(out)


def test_time_from_rgb_tags_without_gpkg(synthetic_scan, tmp_path):
    out = Path(shutil.copytree(synthetic_scan, tmp_path / "out"))
    (out / "detections.gpkg").unlink()
    ds = open_scan(out)
    assert list(ds.time.values) == [np.datetime64(m.start, "ns") for m in syn.MOSAICS]


def test_every_chunk_is_its_own_task(synthetic_scan):
    """No task of the cube feeds more than one chunk. A NaN block shared by every mosaic (one
    ``da.full`` key) made dask run every reduction before combining any, so the memory of a
    ``max`` over time grew with the number of nights (``benchmarks/bench_cube.py``)."""
    from dask.core import get_deps

    ds = open_scan(synthetic_scan, chunks=16)
    for var in ds.data_vars.values():
        graph = dict(var.data.__dask_graph__())
        _, dependents = get_deps(graph)
        shared = {k: len(v) for k, v in dependents.items() if len(v) > 1}
        assert not shared, (var.name, list(shared.items())[:3])
        outputs = [k for k, v in dependents.items() if not v]  # nothing depends on a chunk
        assert len(outputs) == var.data.npartitions


KILLED = """
import os, signal, sys
from pathlib import Path
from scanner.outputs.gpkg_tx import transaction

with transaction(Path(sys.argv[1])) as con:
    con.execute("PRAGMA cache_size = 1")  # changed pages reach the file before a commit
    con.execute('DELETE FROM "scenes"')
    con.execute('DELETE FROM "windows"')
    os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_killed_scans_unfinished_update_is_rolled_back_first(synthetic_scan, tmp_path):
    """The hot journal a killed writer leaves makes GDAL's read-only open fail ("attempt to
    write a readonly database"); open_detections and open_scan roll it back first."""
    import subprocess
    import sys

    import pyogrio

    out = shutil.copytree(synthetic_scan, tmp_path / "out")
    gpkg = out / "detections.gpkg"
    want = open_detections(out)
    proc = subprocess.run(
        [sys.executable, "-c", KILLED, str(gpkg)], cwd=Path(__file__).resolve().parents[2]
    )
    assert proc.returncode == -9 and gpkg.with_name("detections.gpkg-journal").exists()
    with pytest.raises(pyogrio.errors.DataSourceError, match="readonly"):
        pyogrio.read_dataframe(gpkg, layer="scenes")  # why the readers roll back first
    got = open_detections(out)
    assert len(got.scenes) == len(want.scenes) and len(got.windows) == len(want.windows)
    assert not gpkg.with_name("detections.gpkg-journal").exists()

    proc = subprocess.run(
        [sys.executable, "-c", KILLED, str(gpkg)], cwd=Path(__file__).resolve().parents[2]
    )
    assert proc.returncode == -9
    ds = open_scan(out, chunks=16)  # its sensing times come from the scenes layer
    assert ds.sizes["time"] == len(syn.MOSAICS)
    assert not gpkg.with_name("detections.gpkg-journal").exists()
