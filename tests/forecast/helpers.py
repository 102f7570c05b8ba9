"""Small mosaics with known detections and Grad-CAM peaks, for the forecast tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from rasterio.transform import from_origin
from shapely.geometry import box

from scanner.mosaic.result import MosaicResult, Provenance, SceneRecord
from scanner.tiling import Window

CRS = "EPSG:3413"
PIXEL = 2000.0
T0 = datetime(2022, 11, 30, 1, 43, 42, tzinfo=UTC)
H, W = 100, 80


def crop(r: int, c: int, size: int = 32) -> Window:
    """A window whose central crop has its top-left at mosaic pixel (r, c)."""
    return Window(row=r - size // 2, col=c - size // 2, size=2 * size, crop_offset=size // 2,
                  crop_size=size)  # fmt: skip


def transform_at(x0: float = -500_000.0, y0: float = 1_500_000.0):
    return from_origin(x0, y0, PIXEL, PIXEL)


def mosaic(
    mosaic_id: str,
    windows: list[Window],
    probs: list[float],
    *,
    start: datetime = T0,
    transform=None,
    rasters: dict | None = None,
    footprint=None,
) -> MosaicResult:
    stop = start + timedelta(minutes=2)
    scene = SceneRecord(f"S1A_EW_GRDM_1SDH_{mosaic_id}", start, stop,
                        footprint if footprint is not None else box(0, 60, 180, 90))  # fmt: skip
    return MosaicResult(mosaic_id, CRS, transform or transform_at(), shape=(H, W),
                        start=start, stop=stop, scenes=(scene,), windows=tuple(windows),
                        probabilities=np.asarray(probs, np.float32),
                        rasters=dict(rasters or {}))  # fmt: skip


def prov(run_id: str = "run-1", threshold: float = 0.5) -> Provenance:
    return Provenance(run_id, "demo-192", threshold)


def write_gradcam(path: Path, values: np.ndarray, transform=None) -> str:
    from scanner.outputs.rasters import write_float_cog

    write_float_cog(path, values, transform=transform or transform_at(), crs=CRS, name="gradcam")
    return str(path)


def assert_full_relink(gpkg: Path, tracking) -> None:
    """The file holds what ``build_tracks`` over every polar low in it gives with ``tracking``:
    the track id of each polar low in both low layers, and every ``tracks`` row."""
    from scanner.forecast.tracks import build_tracks
    from scanner.outputs.gpkg import read_layer
    from scanner.outputs.gpkg_forecast import read_sightings
    from scanner.outputs.gpkg_sql import connect

    with connect(gpkg) as con:
        sightings, max_prob = read_sightings(con)
    tracks = build_tracks(sightings, tracking.max_gap_s, tracking.max_speed_ms)
    expected = {s.id: t.id for t in tracks for s in t.sightings}
    for layer in ("polar_lows", "polar_low_footprints"):
        df = read_layer(gpkg, layer)
        assert dict(zip(df["polar_low_id"], df["track_id"], strict=True)) == expected, layer
    drawn = {t.id: t for t in tracks if len(t.sightings) > 1}
    got = read_layer(gpkg, "tracks")
    assert got["track_id"].is_unique
    assert sorted(got["track_id"]) == sorted(drawn)
    for row in got.itertuples():
        t = drawn[row.track_id]
        assert row.polar_low_ids == ",".join(s.id for s in t.sightings)
        assert (row.n_sightings, row.first_time, row.last_time) == (len(t.sightings), t.first,
                                                                     t.last)  # fmt: skip
        assert (row.mean_speed_ms, row.heading_deg) == (t.mean_speed_ms, t.heading_deg)
        assert row.distance_km == t.distance_m / 1000
        assert row.max_probability == max(max_prob[s.id] for s in t.sightings)
        assert list(row.geometry.coords) == [(s.x, s.y) for s in t.sightings]
