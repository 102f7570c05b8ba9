"""The Arctic AOI: bbox and polygon files, splitting for searches, footprint checks in EPSG:3413."""

from __future__ import annotations

import json
import math

import geopandas as gpd
import pytest
import shapely
from shapely.geometry import MultiPolygon, Point, Polygon, box

from polarscan.common.errors import UsageError
from scanner.aoi import AOI, to_arctic


def _check_search_parts(aoi: AOI) -> list[Polygon]:
    parts = aoi.search_polygons()
    assert parts
    for p in parts:
        w, s, e, n = p.bounds
        assert isinstance(p, Polygon) and p.is_valid
        assert p.exterior.is_ccw
        assert -180 <= w < e <= 180 and e - w <= 90 + 1e-9, p.bounds
        assert not p.contains(Point(0, 90))
        shapely.from_wkt(shapely.to_wkt(p, rounding_precision=6))  # round-trips as WKT
    # the parts cover the area, no more, no less
    union = shapely.union_all(parts)
    assert union.symmetric_difference(aoi.geometry).area < 1e-9
    return parts


def test_bbox_plain_is_one_part():
    aoi = AOI.from_bbox(-30, 60, 60, 82)
    parts = _check_search_parts(aoi)
    assert len(parts) == 1
    assert aoi.geometry.bounds == (-30, 60, 60, 82)
    # edges along parallels are densified so a spherical reading stays near the parallel
    assert len(parts[0].exterior.coords) > 40


def test_bbox_crossing_antimeridian():
    aoi = AOI.from_bbox(170, 60, -170, 75)
    assert isinstance(aoi.geometry, MultiPolygon)
    parts = _check_search_parts(aoi)
    assert sorted(round(p.bounds[0]) for p in parts) == [-180, 170]
    assert math.isclose(aoi.geometry.area, 20 * 15)
    # in EPSG:3413 the two halves are one piece
    assert aoi.arctic_geometry.geom_type == "Polygon"
    # a footprint written with a 356° jump (175 → -179) is read the short way, across 180°
    across = Polygon([(175, 65), (-179, 65), (-179, 70), (175, 70)])
    assert aoi.intersects(across)
    # ...and one on the far side of the globe does not touch it
    assert not aoi.intersects(box(0, 65, 10, 70))
    # a footprint already split at 180° works too
    split = MultiPolygon([box(178, 61, 180, 62), box(-180, 61, -178, 62)])
    assert aoi.intersects(split)
    # a footprint just outside in longitude (east of -170) does not
    assert not aoi.intersects(box(-168, 65, -160, 70))


def test_bbox_with_the_pole():
    aoi = AOI.from_bbox(-180, 70, 180, 90)
    parts = _check_search_parts(aoi)
    assert len(parts) == 4
    arctic = aoi.arctic_geometry
    assert arctic.geom_type == "Polygon" and arctic.is_valid
    assert arctic.contains(Point(0, 0))  # the pole is (0, 0) in EPSG:3413
    # the cap is a disc: its area is pi r² with r the distance of 70°N from the pole
    r = Point(0, 0).distance(to_arctic(box(0, 69.999, 0.001, 70)))
    assert math.isclose(arctic.area, math.pi * r * r, rel_tol=0.01)
    # a footprint around the pole (a ring whose longitudes turn by 360°) intersects
    ring = Polygon([(0, 88), (120, 88), (-120, 88)])
    assert aoi.intersects(ring)
    # a footprint at 88°N over any longitude intersects; one at 60°N does not
    assert aoi.intersects(box(100, 87, 140, 88))
    assert not aoi.intersects(box(100, 60, 140, 65))


def test_wide_box_split_into_sectors():
    aoi = AOI.from_bbox(-100, 65, 100, 80)
    parts = _check_search_parts(aoi)
    assert len(parts) == 3  # 200° of longitude in parts of ≤ 90°


def test_near_pole_footprint_in_small_aoi():
    # a small area at 85°N, 0°E..30°E; a footprint at 86°N spanning 20°W..40°E overlaps it
    aoi = AOI.from_bbox(0, 84, 30, 86)
    assert aoi.intersects(Polygon([(-20, 85.5), (40, 85.5), (40, 87), (-20, 87)]))
    # one on the opposite side of the pole (150°E..170°E at 86°N) does not
    assert not aoi.intersects(box(150, 85.5, 170, 87))


def test_key_is_stable_and_distinguishes():
    a = AOI.from_bbox(170, 60, -170, 75)
    b = AOI.from_bbox(170, 60, -170, 75)
    c = AOI.from_bbox(170, 60, -170, 76)
    assert a.key == b.key and a == b and len(a.key) == 12
    assert a.key != c.key
    assert "bbox 170 60 -170 75" in repr(a)
    assert a.to_wkt().startswith("MULTIPOLYGON")


@pytest.mark.parametrize(
    ("bbox", "words"),
    [
        ((0, 80, 10, 70), "south (80) is not below north (70)"),
        ((0, 70, 10, 70), "south (70) is not below north (70)"),
        ((0, 60, 10, 91), "north latitude 91 is outside"),
        ((0, -91, 10, 60), "south latitude -91 is outside"),
        ((-181, 60, 10, 70), "west longitude -181 is outside"),
        ((0, 60, 200, 70), "east longitude 200 is outside"),
        ((10, 60, 10, 70), "the box is empty"),
        ((float("nan"), 60, 10, 70), "not a number"),
        ((-60, -75, -30, -60), "south of the equator (to latitude -75)"),  # the Weddell Sea
        ((0, -5, 10, 60), "south of the equator (to latitude -5)"),
    ],
)
def test_bbox_refused(bbox, words):
    with pytest.raises(UsageError) as exc:
        AOI.from_bbox(*bbox)
    assert words in str(exc.value)
    assert exc.value.exit_code == 2
    assert exc.value.fix


def test_geojson_file(tmp_path):
    f = tmp_path / "area.geojson"
    f.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [
                    {
                        "type": "Feature",
                        "properties": {"name": "Barents"},
                        "geometry": {
                            "type": "Polygon",
                            "coordinates": [[[15, 70], [55, 70], [55, 80], [15, 80], [15, 70]]],
                        },
                    },
                    {
                        "type": "Feature",
                        "properties": {"name": "Nordic"},
                        "geometry": {
                            "type": "Polygon",
                            "coordinates": [[[-20, 62], [15, 62], [15, 75], [-20, 75], [-20, 62]]],
                        },
                    },
                ],
            }
        )
    )
    aoi = AOI.from_file(f)
    assert aoi.label == "area.geojson"
    assert aoi.geometry.bounds == (-20, 62, 55, 80)
    assert math.isclose(aoi.geometry.area, 40 * 10 + 35 * 13)
    _check_search_parts(aoi)
    assert aoi.intersects(box(30, 72, 35, 74))
    assert not aoi.intersects(box(-60, 50, -55, 55))


def test_gpkg_in_polar_stereo_containing_the_pole(tmp_path):
    # a 1000 km square around the pole drawn in EPSG:3413 (what an Arctic user may have)
    sq = box(-500_000, -500_000, 500_000, 500_000)
    f = tmp_path / "cap.gpkg"
    gpd.GeoDataFrame({"name": ["cap"]}, geometry=[sq], crs="EPSG:3413").to_file(f)
    aoi = AOI.from_file(f)
    w, s, e, n = aoi.geometry.bounds
    assert (w, e, n) == (-180, 180, 90)
    assert 83 < s < 84  # the corners lie ~707 km from the pole, ~83.5°N
    parts = _check_search_parts(aoi)
    assert len(parts) >= 4
    # back in EPSG:3413 it is the same square (within densification error)
    back = aoi.arctic_geometry
    assert back.symmetric_difference(sq).area / sq.area < 0.01
    assert aoi.intersects(Polygon([(0, 88), (120, 88), (-120, 88)]))
    assert not aoi.intersects(box(0, 70, 10, 75))


def test_gpkg_in_polar_stereo_crossing_180(tmp_path):
    # a box in EPSG:3413 centred on 180° at ~71°N (180° points along (-1, 1) in EPSG:3413)
    x0, y0 = -1_414_000, 1_414_000
    sq = box(x0 - 300_000, y0 - 300_000, x0 + 300_000, y0 + 300_000)
    f = tmp_path / "chukchi.gpkg"
    gpd.GeoDataFrame(geometry=[sq], crs="EPSG:3413").to_file(f)
    aoi = AOI.from_file(f)
    assert isinstance(aoi.geometry, MultiPolygon)  # split at the antimeridian
    parts = _check_search_parts(aoi)
    assert {round(p.bounds[2]) for p in parts} >= {180}
    assert aoi.arctic_geometry.symmetric_difference(sq).area / sq.area < 0.01


def test_file_refused(tmp_path):
    with pytest.raises(UsageError, match="area file not found"):
        AOI.from_file(tmp_path / "missing.geojson")
    garbage = tmp_path / "garbage.geojson"
    garbage.write_text("{not json")
    with pytest.raises(UsageError, match="cannot read area file") as exc:
        AOI.from_file(garbage)
    assert exc.value.exit_code == 2
    empty = tmp_path / "empty.geojson"
    empty.write_text('{"type": "FeatureCollection", "features": []}')
    with pytest.raises(UsageError, match="no geometries"):
        AOI.from_file(empty)
    pts = tmp_path / "points.geojson"
    gpd.GeoDataFrame(geometry=[Point(10, 70)], crs="EPSG:4326").to_file(pts)
    with pytest.raises(UsageError, match="only polygons define an area"):
        AOI.from_file(pts)
    bow = tmp_path / "bowtie.geojson"
    bow.write_text(
        json.dumps(
            {
                "type": "Feature",
                "properties": {},
                "geometry": {
                    "type": "Polygon",
                    "coordinates": [[[0, 70], [10, 80], [10, 70], [0, 80], [0, 70]]],
                },
            }
        )
    )
    with pytest.raises(UsageError, match="invalid polygon.*Self-intersection"):
        AOI.from_file(bow)


@pytest.mark.parametrize(
    "aoi",
    [
        AOI.from_bbox(-30, 65, 60, 82),
        AOI.from_bbox(170, 60, -170, 75),
        AOI.from_bbox(-180, 78, 180, 90),
        AOI.from_bbox(-100, 65, 100, 80),
    ],
    ids=repr,
)
def test_lonlat_fast_path_agrees_with_epsg3413(aoi):
    """``intersects`` skips the projection for ordinary footprints: same answers as EPSG:3413
    for a grid of 400 km-ish footprints over the Arctic (borderline cases within 2 km aside)."""
    arctic = aoi.arctic_geometry
    checked = hits = 0
    for lon in range(-180, 180, 7):
        for lat in range(56, 86, 3):
            fp = box(lon, lat, min(lon + 12, 180), lat + 3.5)
            projected = to_arctic(fp)
            if arctic.boundary.distance(projected.boundary) < 2000:
                continue  # borderline: densification decides
            assert aoi.intersects(fp) == arctic.intersects(projected), fp.bounds
            checked += 1
            hits += aoi.intersects(fp)
    assert checked > 300 and 0 < hits < checked


def test_an_antarctic_area_file_is_refused(tmp_path):
    """A polygon in Antarctic polar stereographic (EPSG:3031) around the Ross Sea."""
    f = tmp_path / "ross.gpkg"
    ross = box(-500_000, -1_500_000, 500_000, -1_000_000)
    gpd.GeoDataFrame(geometry=[ross], crs="EPSG:3031").to_file(f, engine="pyogrio")
    with pytest.raises(UsageError, match="south of the equator") as exc:
        AOI.from_file(f)
    assert "northern hemisphere" in exc.value.fix
