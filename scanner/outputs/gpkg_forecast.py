"""The forecaster's layers of ``detections.gpkg``: ``polar_lows``, ``polar_low_footprints``,
``tracks``.

:func:`forecast_update` returns a step that :func:`scanner.outputs.gpkg.write_results` runs on
its working copy, inside the same copy-on-write transaction as the mosaic's other rows: the
mosaics' polar lows replace their previous rows, then every polar low in the file is linked
again (:func:`scanner.forecast.tracks.build_tracks`), each row gets its track id and the
``tracks`` layer is rewritten. A file written before these layers existed gets them added on the
first update; nothing else in it changes.

``tracks`` holds tracks of two or more sightings (a line needs two points); a lone sighting
still carries its own track id, which a later sighting may extend.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from scanner.forecast.config import TrackingConfig
from scanner.forecast.objects import PolarLow
from scanner.forecast.tracks import Sighting, Track, build_tracks
from scanner.outputs import gpkg_sql
from scanner.outputs.frames import FORECAST_GEOMETRY_TYPES, frame

LOW_LAYERS = ("polar_lows", "polar_low_footprints")

Step = Callable[[Path, Any], None]


def lows_frames(lows: Sequence[PolarLow], crs: Any) -> dict[str, Any]:
    """``polar_lows`` (points) and ``polar_low_footprints`` frames, reprojected to ``crs``."""
    import geopandas as gpd
    from shapely.geometry import Point

    out = {}
    for layer in LOW_LAYERS:
        parts = []
        for low in lows:
            row = {
                "polar_low_id": low.id,
                "track_id": low.track_id,
                "time": low.time,
                "lat": low.lat,
                "lon": low.lon,
                "max_probability": low.max_probability,
                "mean_probability": low.mean_probability,
                "n_windows": low.n_windows,
                "window_ids": ",".join(low.window_ids),
                "centre_method": low.centre_method,
                "mosaic_id": low.mosaic_id,
                "model_id": low.model_id,
                "run_id": low.run_id,
            }
            geom = Point(low.x, low.y) if layer == "polar_lows" else _multi(low.footprint)
            data = {k: [row[k]] for k in frame_columns(layer)}
            parts.append(frame(layer, data, [geom], low.crs).to_crs(crs))
        if parts:
            import pandas as pd

            out[layer] = gpd.GeoDataFrame(pd.concat(parts, ignore_index=True), crs=crs)
        else:
            out[layer] = frame(layer, {k: [] for k in frame_columns(layer)}, [], crs)
    return out


def tracks_frame(tracks: Sequence[Track], crs: Any, max_prob: dict[str, float]):
    """The ``tracks`` layer: a line through the centres (x, y in ``crs``) in time order."""
    from shapely.geometry import LineString

    kept = [t for t in tracks if len(t.sightings) > 1]
    data = {
        "track_id": [t.id for t in kept],
        "first_time": [t.first for t in kept],
        "last_time": [t.last for t in kept],
        "n_sightings": [len(t.sightings) for t in kept],
        "mean_speed_ms": [t.mean_speed_ms for t in kept],
        "heading_deg": [t.heading_deg for t in kept],
        "distance_km": [t.distance_m / 1000 for t in kept],
        "polar_low_ids": [",".join(s.id for s in t.sightings) for t in kept],
        "max_probability": [
            max(max_prob.get(s.id, float("nan")) for s in t.sightings) for t in kept
        ],
    }
    geoms = [LineString([(s.x, s.y) for s in t.sightings]) for t in kept]
    return frame("tracks", data, geoms, crs)


def frame_columns(layer: str) -> list[str]:
    from scanner.outputs.frames import FORECAST_SCHEMAS

    return list(FORECAST_SCHEMAS[layer])


def read_sightings(path: Path) -> tuple[list[Sighting], dict[str, float]]:
    """Every polar low in the file as a :class:`Sighting` (x, y in the file CRS), and its peak
    probability by id."""
    import pandas as pd
    import pyogrio

    if "polar_lows" not in gpkg_sql.tables(path):
        return [], {}
    df = pyogrio.read_dataframe(path, layer="polar_lows")
    times = pd.to_datetime(df["time"], utc=True)
    out = [
        Sighting(
            r.polar_low_id,
            r.mosaic_id,
            t.to_pydatetime(),
            float(r.lon),
            float(r.lat),
            float(r.geometry.x),
            float(r.geometry.y),
        )  # fmt: skip
        for r, t in zip(df.itertuples(), times, strict=True)
    ]
    return out, dict(zip(df["polar_low_id"], df["max_probability"].astype(float), strict=True))


def forecast_update(
    lows: Sequence[PolarLow], mosaic_ids: Sequence[str], tracking: TrackingConfig
) -> Step:
    """The step replacing ``mosaic_ids``' polar lows with ``lows`` and re-linking the tracks."""

    def step(tmp: Path, crs: Any) -> None:
        from scanner.outputs.gpkg import append_layer

        present = gpkg_sql.tables(tmp)
        gpkg_sql.delete_rows(tmp, [(layer, "mosaic_id", list(mosaic_ids)) for layer in LOW_LAYERS])
        for layer, df in lows_frames(lows, crs).items():
            if len(df) or layer not in present:
                append_layer(tmp, df, layer, FORECAST_GEOMETRY_TYPES[layer])
        sightings, max_prob = read_sightings(tmp)
        tracks = build_tracks(sightings, tracking.max_gap_s, tracking.max_speed_ms)
        set_track_ids(tmp, {s.id: t.id for t in tracks for s in t.sightings})
        with gpkg_sql.connect(tmp) as con:
            if "tracks" in present:
                con.execute('DELETE FROM "tracks"')
        frame_ = tracks_frame(tracks, crs, max_prob)
        if len(frame_) or "tracks" not in present:
            append_layer(tmp, frame_, "tracks", FORECAST_GEOMETRY_TYPES["tracks"])

    return step


def set_track_ids(path: Path, ids: dict[str, str]) -> None:
    rows = [(track, low) for low, track in ids.items()]
    with gpkg_sql.connect(path) as con:
        for layer in LOW_LAYERS:
            con.executemany(f'UPDATE "{layer}" SET track_id = ? WHERE polar_low_id = ?', rows)


def _multi(geom):
    from shapely.geometry import MultiPolygon

    if geom.geom_type == "Polygon":
        return MultiPolygon([geom])
    return MultiPolygon([g for g in getattr(geom, "geoms", []) if g.geom_type == "Polygon"])
