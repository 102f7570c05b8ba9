"""Rows written over plain SQLite (``scanner.outputs.gpkg_rows``), checked by GDAL: its reader,
its spatial filter (which goes through the R-tree our inserts fill by trigger), its feature
count and extent, and SQLite's isolation of readers from an open transaction."""

from __future__ import annotations

import math
import sqlite3
from datetime import UTC, datetime

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
from shapely.geometry import LineString, MultiPolygon, Point, Polygon, box

from scanner.outputs import gpkg_rows
from scanner.outputs.gpkg_tx import transaction

CRS = "EPSG:3413"


def _layer(path, layer: str, geoms: list, geometry_type: str, **columns) -> None:
    """Create ``layer`` with GDAL (what the project does), seeded with ``geoms``."""
    df = gpd.GeoDataFrame(columns, geometry=gpd.GeoSeries(geoms, crs=CRS), crs=CRS)
    kwargs = {"append": True} if path.exists() else {"dataset_options": {"VERSION": "1.2"}}
    pyogrio.write_dataframe(df, path, layer=layer, driver="GPKG", geometry_type=geometry_type,
                            **kwargs)  # fmt: skip


def _frame(geoms: list, **columns):
    return gpd.GeoDataFrame(columns, geometry=gpd.GeoSeries(geoms, crs=CRS), crs=CRS)


@pytest.mark.parametrize(
    ("geometry_type", "geoms"),
    [
        ("Point", [Point(-1.5e6, 2.5e5), Point(3.0, -4.0)]),
        ("LineString", [LineString([(0, 0), (10, 5), (20, -5)])]),
        (
            "Polygon",
            [box(0, 0, 100, 50), Polygon([(0, 0), (5, 9), (9, 0)], [[(4, 1), (5, 2), (6, 1)]])],
        ),
        ("MultiPolygon", [MultiPolygon([box(0, 0, 1, 1), box(5, 5, 7, 8)])]),
    ],
)
def test_gdal_reads_back_what_was_inserted(tmp_path, geometry_type, geoms):
    path = tmp_path / "t.gpkg"
    _layer(path, "t", [geoms[0]], geometry_type, name=["gdal"])
    with transaction(path) as con:
        assert gpkg_rows.insert(
            con, "t", _frame(geoms, name=[f"ours{i}" for i in range(len(geoms))])
        ) == len(geoms)
    df = pyogrio.read_dataframe(path, layer="t")
    assert list(df["name"]) == ["gdal", *(f"ours{i}" for i in range(len(geoms)))]
    for got, want in zip(df.geometry.iloc[1:], geoms, strict=True):
        assert got.equals_exact(want, 0) and got.geom_type == want.geom_type


def test_spatial_index_count_and_extent_follow_the_inserts(tmp_path):
    path = tmp_path / "t.gpkg"
    _layer(path, "t", [box(0, 0, 10, 10)], "Polygon", k=[0])
    new = [box(100, 100, 110, 120), box(-50, 30, -40, 35), box(500, -200, 510, -190)]
    with transaction(path) as con:
        gpkg_rows.insert(con, "t", _frame(new, k=[1, 2, 3]))
        con.execute('DELETE FROM "t" WHERE k = 2')  # the R-tree and the count follow deletes too
    info = pyogrio.read_info(path, layer="t")
    assert info["features"] == 3  # GDAL's count (gpkg_ogr_contents), kept by the triggers
    # GDAL's spatial filter reads the R-tree: each box is found by a bbox around it alone
    for k, geom in ((0, box(0, 0, 10, 10)), (1, new[0]), (3, new[2])):
        hit = pyogrio.read_dataframe(path, layer="t", bbox=geom.buffer(1).bounds)
        assert list(hit["k"]) == [k]
    assert len(pyogrio.read_dataframe(path, layer="t", bbox=new[1].buffer(1).bounds)) == 0
    with sqlite3.connect(path) as con:
        rtree = con.execute("SELECT id, minx, maxx, miny, maxy FROM rtree_t_geom ORDER BY id")
        assert [r[1:] for r in rtree] == [
            (0, 10, 0, 10),
            (100, 110, 100, 120),
            (500, 510, -200, -190),
        ]
        extent = con.execute(
            "SELECT min_x, min_y, max_x, max_y FROM gpkg_contents WHERE table_name = 't'"
        )
        # grown to every inserted row; a delete does not shrink it (nor does GDAL's)
        assert extent.fetchone() == (-50, -200, 510, 120)


def test_values_are_written_as_gdal_reads_them(tmp_path):
    path = tmp_path / "t.gpkg"
    t = pd.Timestamp("2026-01-02T03:04:05.678Z")
    seed = dict(
        when=pd.Series([t], dtype="datetime64[ms, UTC]"),
        p=[0.5], n=pd.Series([1], dtype="int64"), ok=[True], s=["a"],
    )  # fmt: skip
    _layer(path, "t", [Point(0, 0)], "Point", **seed)
    rows = dict(
        when=pd.Series([t + pd.Timedelta(seconds=1), pd.Timestamp("2026-02-01T00:00:00Z"), pd.NaT],
                       dtype="datetime64[ms, UTC]"),
        p=[float("nan"), 2.25, np.float64(-1.0)],
        n=pd.Series([7, -3, 2**40], dtype="int64"),
        ok=[False, True, False],
        s=["é ü", None, "x,y"],
    )  # fmt: skip
    with transaction(path) as con:
        gpkg_rows.insert(con, "t", _frame([Point(1, 1), Point(2, 2), Point(3, 3)], **rows))
    df = pyogrio.read_dataframe(path, layer="t").iloc[1:]
    when = pd.to_datetime(df["when"], utc=True)
    assert list(when[:2]) == [t + pd.Timedelta(seconds=1), pd.Timestamp("2026-02-01T00:00:00Z")]
    assert pd.isna(when.iloc[2])
    assert math.isnan(df["p"].iloc[0]) and list(df["p"].iloc[1:]) == [2.25, -1.0]
    assert list(df["n"]) == [7, -3, 2**40]
    assert list(df["ok"]) == [False, True, False]
    assert df["s"].iloc[0] == "é ü" and pd.isna(df["s"].iloc[1]) and df["s"].iloc[2] == "x,y"
    with sqlite3.connect(path) as con:  # the one DATETIME form, a zero millisecond included
        texts = [r[0] for r in con.execute('SELECT "when" FROM t WHERE fid > 1 ORDER BY fid')]
    assert texts == ["2026-01-02T03:04:06.678Z", "2026-02-01T00:00:00.000Z", None]


def test_blob_round_trip_and_header():
    blob = gpkg_rows.blob(box(1, 2, 3, 4), 3413)
    assert blob[:4] == b"GP\x00\x03" and int.from_bytes(blob[4:8], "little") == 3413
    assert gpkg_rows.geometry(blob).equals(box(1, 2, 3, 4))
    empty = gpkg_rows.blob(Polygon(), 3413)
    assert empty[3] & 0x10 and gpkg_rows.geometry(empty).is_empty
    assert gpkg_rows.blob(None, 3413) is None and gpkg_rows.geometry(None) is None
    with pytest.raises(ValueError, match="GP"):
        gpkg_rows.geometry(b"\x01\x01\x00\x00\x00")
    assert gpkg_rows.datetime_text(datetime(2026, 1, 2, 3, 4, 5, 999_999, tzinfo=UTC)) == (
        "2026-01-02T03:04:05.999Z"
    )


def test_readers_see_the_file_before_the_commit_then_after(tmp_path):
    """Another process's reader (GDAL, read-only, as QGIS or the report) is not blocked by an
    open transaction and sees none of it; after the commit it sees all of it."""
    path = tmp_path / "t.gpkg"
    _layer(path, "t", [box(0, 0, 1, 1)], "Polygon", k=[0])
    with transaction(path) as con:
        gpkg_rows.insert(con, "t", _frame([box(2, 2, 3, 3), box(4, 4, 5, 5)], k=[1, 2]))
        con.execute('DELETE FROM "t" WHERE k = 0')
        assert list(pyogrio.read_dataframe(path, layer="t")["k"]) == [0]
    assert list(pyogrio.read_dataframe(path, layer="t")["k"]) == [1, 2]


def test_an_error_rolls_everything_back(tmp_path):
    path = tmp_path / "t.gpkg"
    _layer(path, "t", [box(0, 0, 1, 1)], "Polygon", k=[0])
    before = path.read_bytes()
    with pytest.raises(RuntimeError, match="boom"), transaction(path) as con:
        gpkg_rows.insert(con, "t", _frame([box(2, 2, 3, 3)], k=[1]))
        con.execute('DELETE FROM "t" WHERE k = 0')
        raise RuntimeError("boom")
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.gpkg"]  # no journal left


def test_a_reader_that_holds_the_file_too_long_fails_the_commit_clearly(tmp_path):
    """A reader in the middle of a statement (a shared lock) past the timeout: the commit
    fails with a message naming the file and the fix, and the transaction is rolled back."""
    from polarscan.common.errors import ProcessingError

    path = tmp_path / "t.gpkg"
    _layer(path, "t", [box(i, i, i + 1, i + 1) for i in range(300)], "Polygon", k=list(range(300)))
    with sqlite3.connect(path) as reader:
        rows = reader.execute('SELECT k FROM "t"')
        rows.fetchone()  # the statement is open: a shared lock until it ends
        locked = pytest.raises(ProcessingError, match="stayed locked")
        with locked as info, transaction(path, timeout_s=0.3) as con:
            gpkg_rows.insert(con, "t", _frame([box(-5, -5, -4, -4)], k=[-1]))
        assert "QGIS" in str(info.value) and "nothing was changed" in str(info.value)
        rows.fetchall()
    assert len(pyogrio.read_dataframe(path, layer="t")) == 300
