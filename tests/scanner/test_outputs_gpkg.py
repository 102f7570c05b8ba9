"""detections.gpkg: layers, CRS, GeoPackage version, styles, replacement on rerun, crash safety."""

from __future__ import annotations

import os
import re
import sqlite3
import xml.etree.ElementTree as ET
from dataclasses import replace
from datetime import UTC, datetime

import numpy as np
import pyogrio
import pytest
from rasterio.transform import from_origin
from shapely.geometry import box

from polarscan.common.errors import ProcessingError, UsageError
from scanner.mosaic.result import MosaicResult, Provenance, SceneRecord
from scanner.outputs import gpkg as gpkg_mod
from scanner.outputs.gpkg import read_layer, write_results
from scanner.outputs.styles import STYLE_NAME, style_rows
from scanner.tiling import window_grid
from training.card import ModelCard

CARD = ModelCard(input_size=64, crop=32, window_px=64, pixel_spacing_m=2000)
TRANSFORM = from_origin(-500_000.0, 1_500_000.0, 2000.0, 2000.0)
START = datetime(2022, 11, 30, 1, 43, 42, tzinfo=UTC)
STOP = datetime(2022, 11, 30, 1, 44, 46, tzinfo=UTC)
NAME = "S1A_EW_GRDM_1SDH_20221130T014342_20221130T014446_046117_058549_BB15"


def result(mosaic_id: str, run_id: str = "run-1", seed: int = 0, n_rows: int = 100):
    windows = window_grid(n_rows, 80, CARD, 0.5)
    probs = np.random.default_rng(seed).random(len(windows))
    scene = SceneRecord(NAME, START, STOP, box(60.0, 77.0, 70.0, 80.0))
    return MosaicResult(mosaic_id, "EPSG:3413", TRANSFORM, windows=tuple(windows),
                        probabilities=probs, scenes=(scene,))  # fmt: skip


def prov(run_id: str = "run-1") -> Provenance:
    return Provenance(run_id, "demo-192", 0.5)


def run_record(run_id: str = "run-1") -> dict:
    return {
        "run_id": run_id,
        "started": START,
        "finished": STOP,
        "status": "ok",
        "model_id": "demo-192",
        "n_scenes": 1,
        "parameters": {"bbox": [-20, 65, 60, 82], "threshold": 0.5},
        "versions": {"polarscan": "0.1.0"},
        "timings": {"inference_s": 1.5},
        "host": "node1",  # not a standard column: kept in 'extra'
    }


def test_layers_rows_crs_and_version(tmp_path):
    path = tmp_path / "detections.gpkg"
    res = result("m1")
    write_results(path, [res], prov(), run_record())
    layers = dict(pyogrio.list_layers(path))
    assert layers == {
        "detections": "Polygon",
        "windows": "Polygon",
        "scenes": "MultiPolygon",
        "runs": None,
        "layer_styles": None,
    }
    probs = np.asarray(res.probabilities)
    win = read_layer(path, "windows")
    det = read_layer(path, "detections")
    assert len(win) == len(res.windows)
    assert len(det) == int((probs >= 0.5).sum()) > 0
    assert (det["probability"] >= 0.5).all() and (det["threshold"] == 0.5).all()
    assert win.crs.to_epsg() == 3413 and det.crs.to_epsg() == 3413
    assert set(det.columns) >= {"mosaic_id", "scenes", "start", "stop", "model_id", "run_id"}
    assert det["start"].iloc[0] == START and det["stop"].iloc[0] == STOP
    assert det["scenes"].iloc[0] == NAME
    # a detection polygon is the crop footprint
    first = win.iloc[0]
    w = res.windows[0]
    assert first["window_id"] == w.id
    assert first.geometry.equals(w.crop_footprint(TRANSFORM))
    np.testing.assert_allclose(win["probability"], probs)
    scenes = read_layer(path, "scenes")
    assert len(scenes) == 1 and scenes.crs.to_epsg() == 3413
    assert scenes["max_probability"].iloc[0] == pytest.approx(probs.max())
    lon_lat = scenes.to_crs(4326).geometry.iloc[0].bounds
    np.testing.assert_allclose(lon_lat, (60.0, 77.0, 70.0, 80.0), atol=1e-6)
    runs = read_layer(path, "runs")
    assert runs["run_id"].tolist() == ["run-1"]
    assert '"host": "node1"' in runs["extra"].iloc[0]
    assert runs["parameters"].iloc[0] == '{"bbox": [-20, 65, 60, 82], "threshold": 0.5}'
    with sqlite3.connect(path) as con:
        assert con.execute("PRAGMA application_id").fetchone()[0] == 0x47504B47
        assert con.execute("PRAGMA user_version").fetchone()[0] == 10200
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert not list(tmp_path.glob(".*tmp*")), "temporary files left behind"


def test_layer_styles_are_graduated_qml(tmp_path):
    path = tmp_path / "detections.gpkg"
    write_results(path, [result("m1")], prov(), run_record())
    with sqlite3.connect(path) as con:
        cols = [r[1] for r in con.execute("PRAGMA table_info(layer_styles)")]
        rows = con.execute(
            "SELECT f_table_name, f_geometry_column, styleName, styleQML, useAsDefault "
            "FROM layer_styles ORDER BY f_table_name"
        ).fetchall()
        registered = con.execute(
            "SELECT data_type FROM gpkg_contents WHERE table_name = 'layer_styles'"
        ).fetchone()
    for c in ("f_table_catalog", "f_table_schema", "f_table_name", "f_geometry_column",
              "styleName", "styleQML", "styleSLD", "useAsDefault", "description", "owner", "ui",
              "update_time"):  # fmt: skip
        assert c in cols
    assert registered == ("attributes",)
    assert [r[0] for r in rows] == ["detections", "polar_low_footprints", "polar_lows",
                                    "scenes", "tracks", "windows"]  # fmt: skip
    graduated = [r for r in rows if r[0] in ("detections", "scenes", "windows")]
    for table, geom_col, style, qml, default in graduated:
        assert geom_col == "geom" and style == STYLE_NAME and default == 1
        root = ET.fromstring(qml.split("\n", 1)[1])  # after the DOCTYPE line
        renderer = root.find("renderer-v2")
        assert renderer.get("type") == "graduatedSymbol"
        attr = "max_probability" if table == "scenes" else "probability"
        assert renderer.get("attr") == attr
        ranges = renderer.findall("ranges/range")
        assert [float(r.get("lower")) for r in ranges] == [0.0, 0.25, 0.5, 0.75, 0.9]
        assert float(ranges[-1].get("upper")) == 1.0
        assert len(renderer.findall("symbols/symbol")) == len(ranges)


def test_rerun_replaces_rows_and_keeps_others(tmp_path):
    path = tmp_path / "detections.gpkg"
    write_results(path, [result("m1"), result("m2", seed=1)], prov(), run_record("run-1"))
    n1 = len(read_layer(path, "windows"))
    # rerun m1 only, with other scores and a smaller grid: its rows are replaced, m2's kept
    write_results(
        path, [result("m1", "run-2", seed=5, n_rows=50)], prov("run-2"), run_record("run-2")
    )
    write_results(
        path, [result("m1", "run-2", seed=5, n_rows=50)], prov("run-2"), run_record("run-2")
    )
    win = read_layer(path, "windows")
    m1 = win[win["mosaic_id"] == "m1"]
    assert len(m1) == len(result("m1", n_rows=50).windows)
    assert set(m1["run_id"]) == {"run-2"}
    assert len(win[win["mosaic_id"] == "m2"]) == n1 // 2
    np.testing.assert_allclose(m1["probability"], result("m1", seed=5, n_rows=50).probabilities)
    det = read_layer(path, "detections")
    assert set(det.groupby("mosaic_id")["run_id"].unique().explode()) == {"run-1", "run-2"}
    assert not det.duplicated(["mosaic_id", "window_id"]).any()
    assert sorted(read_layer(path, "runs")["run_id"]) == ["run-1", "run-2"]
    assert len(read_layer(path, "scenes")) == 2
    with sqlite3.connect(path) as con:
        n_styles = con.execute("SELECT count(*) FROM layer_styles").fetchone()[0]
        assert n_styles == len(style_rows())  # one per styled layer, not duplicated
        assert con.execute("PRAGMA user_version").fetchone()[0] == 10200
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        # the spatial index follows the deletes
        n_rtree = con.execute('SELECT count(*) FROM "rtree_windows_geom"').fetchone()[0]
        # DATETIMEs in the spec's form, milliseconds included (GDAL 3.6 warns otherwise)
        texts = [r[0] for r in con.execute("SELECT start FROM windows UNION SELECT stop FROM "
                 "scenes UNION SELECT started FROM runs UNION SELECT update_time FROM layer_styles")]  # fmt: skip
    assert texts and all(
        re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", t) for t in texts
    ), texts
    assert n_rtree == len(win)


def test_empty_results_still_create_layers(tmp_path):
    path = tmp_path / "detections.gpkg"
    empty = MosaicResult("m0", "EPSG:3413", TRANSFORM)
    write_results(path, [empty], Provenance("run-0", "demo", 0.5), {"run_id": "run-0"})
    assert dict(pyogrio.list_layers(path))["detections"] == "Polygon"
    assert len(read_layer(path, "detections")) == 0
    assert pyogrio.read_info(path, layer="windows")["crs"] == "EPSG:3413"


def test_other_crs_reprojected_to_the_files(tmp_path):
    path = tmp_path / "detections.gpkg"
    write_results(path, [result("m1")], prov())
    # same numbers, another polar stereographic: must be reprojected
    other = replace(result("m9"), crs="EPSG:3995")
    write_results(path, [other], prov())
    win = read_layer(path, "windows")
    assert win.crs.to_epsg() == 3413
    assert len(win) == 2 * len(other.windows)


def test_crash_mid_update_leaves_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "detections.gpkg"
    write_results(path, [result("m1")], prov(), run_record())
    before = path.read_bytes()

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    # the last change of the transaction fails, after every row was replaced
    monkeypatch.setattr(gpkg_mod.gpkg_sql, "normalise_datetimes", boom)
    with pytest.raises(ProcessingError, match="previous file is intact"):
        write_results(path, [result("m1", "run-2", seed=3)], prov("run-2"), run_record("run-2"))
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        ".detections.gpkg.lock",
        "detections.gpkg",
    ]


def test_bad_outputs(tmp_path):
    not_gpkg = tmp_path / "detections.gpkg"
    not_gpkg.write_text("hello")
    with pytest.raises(UsageError, match="not a GeoPackage") as err:
        write_results(not_gpkg, [result("m1")], prov())
    assert err.value.exit_code == 2
    assert not_gpkg.read_text() == "hello"
    if os.geteuid() != 0:  # root writes anywhere
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        with pytest.raises(UsageError, match="not writable"):
            write_results(ro / "d.gpkg", [result("m1")], prov())
    with pytest.raises(UsageError, match="no run_id"):
        write_results(tmp_path / "x.gpkg", [result("m1")], prov(), {"status": "ok"})
    good = result("m1")
    with pytest.raises(UsageError, match="probabilities"):
        bad = replace(good, probabilities=good.probabilities[:-1])
        write_results(tmp_path / "y.gpkg", [bad], prov())
    assert not (tmp_path / "y.gpkg").exists()


def test_scene_split_at_antimeridian_is_a_multipolygon(tmp_path):
    from shapely.geometry import MultiPolygon

    split = MultiPolygon([box(170.0, 75.0, 180.0, 78.0), box(-180.0, 75.0, -175.0, 78.0)])
    res = replace(result("m1"), scenes=(SceneRecord(NAME, START, STOP, split),))
    path = write_results(tmp_path / "detections.gpkg", [res], prov())
    scenes = read_layer(path, "scenes")
    geom = scenes.geometry.iloc[0]
    assert geom.geom_type == "MultiPolygon"
    # densified before projection: a lon/lat edge became a curve with many vertices
    assert len(geom.geoms[0].exterior.coords) > 40
    assert geom.is_valid and len(geom.geoms) == 1  # the halves touch again in EPSG:3413
    from pyproj import Transformer

    to_lonlat = Transformer.from_crs(3413, 4326, always_xy=True)
    c = geom.centroid
    assert to_lonlat.transform(c.x, c.y)[0] % 360 == pytest.approx(177.5, abs=0.5)


def _bare_seconds(gpkg, table: str, col: str, where: str = "") -> int:
    with sqlite3.connect(gpkg) as con:
        q = f'SELECT count(*) FROM "{table}" WHERE "{col}" GLOB \'????-??-??T??:??:??Z\' {where}'
        return con.execute(q).fetchone()[0]


def _strip_millis(gpkg, table: str, col: str) -> int:
    """Write ``col`` as GDAL does for a whole second (no ``.000``): the non-conformant form."""
    from scanner.outputs.gpkg_sql import connect  # the R-tree triggers' SQL functions

    with connect(gpkg) as con:
        con.execute(f'UPDATE "{table}" SET "{col}" = substr("{col}", 1, 19) || \'Z\'')
        return con.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]


def test_a_publish_normalises_only_the_rows_it_writes(tmp_path):
    """A file this version wrote before (its mosaic_id index is there) had every datetime
    normalised: the next publish touches only its own rows, not the archive's."""
    gpkg = tmp_path / "detections.gpkg"
    write_results(gpkg, [result("m1")], prov())
    n_old = _strip_millis(gpkg, "windows", "start")  # as if an old row had escaped
    write_results(gpkg, [result("m2", seed=1)], prov())
    assert _bare_seconds(gpkg, "windows", "start", "AND mosaic_id = 'm1'") == n_old  # untouched
    assert _bare_seconds(gpkg, "windows", "start", "AND mosaic_id = 'm2'") == 0


def test_a_file_from_before_the_index_is_normalised_whole(tmp_path):
    """A file an older version wrote (no mosaic_id index) is normalised entirely, once."""
    gpkg = tmp_path / "detections.gpkg"
    write_results(gpkg, [result("m1")], prov(), run_record())
    with sqlite3.connect(gpkg) as con:
        con.execute('DROP INDEX "idx_windows_mosaic_id"')
    n_old = _strip_millis(gpkg, "windows", "start")
    _strip_millis(gpkg, "runs", "started")
    assert n_old > 0 and _bare_seconds(gpkg, "runs", "started") == 1
    write_results(gpkg, [result("m2", seed=1)], prov())
    assert (
        _bare_seconds(gpkg, "windows", "start") == 0 and _bare_seconds(gpkg, "runs", "started") == 0
    )
    with sqlite3.connect(gpkg) as con:
        [(mark,)] = con.execute(
            "SELECT count(*) FROM sqlite_master WHERE name = 'idx_windows_mosaic_id'"
        ).fetchall()
    assert mark == 1
