"""The GeoPackage layers of one mosaic as (Geo)DataFrames: pure, with explicit column schemas.

Layers (all in the mosaic's CRS; the writer reprojects to the file's):
- ``windows``: every scored window (crop footprint) with its probability and ``detected``;
- ``detections``: the windows at or above the threshold (same columns, without ``detected``);
- ``scenes``: scene footprints with the mosaic they went into, its acquisition mode and
  polarisations (``EW``/``IW``, ``HH+HV``/``VV+VH``) and its highest probability;
- ``runs``: one row per run (parameters, versions, counts, timings as JSON), no geometry;
- ``polar_lows`` / ``polar_low_footprints`` / ``tracks``: the forecaster's layers
  (:data:`FORECAST_SCHEMAS`, built in :mod:`scanner.outputs.gpkg_forecast`).

An empty layer gets its schema from :data:`SCHEMAS`, never from a dummy row.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np

from polarscan.common.errors import UsageError
from scanner.mosaic.result import MosaicResult, Provenance

WINDOW_COLUMNS: dict[str, str] = {
    "mosaic_id": "object",
    "window_id": "object",
    "crop_row": "int64",
    "crop_col": "int64",
    "crop_px": "int64",
    "probability": "float64",
    "threshold": "float64",
    "detected": "bool",
    "scenes": "object",
    "start": "datetime64[ms, UTC]",
    "stop": "datetime64[ms, UTC]",
    "model_id": "object",
    "run_id": "object",
}
SCHEMAS: dict[str, dict[str, str]] = {
    "windows": WINDOW_COLUMNS,
    "detections": {k: v for k, v in WINDOW_COLUMNS.items() if k != "detected"},
    "scenes": {
        "scene_name": "object",
        "mosaic_id": "object",
        "mode": "object",  # EW | IW (None when unknown)
        "polarisations": "object",  # co-pol first: HH+HV | VV+VH
        "start": "datetime64[ms, UTC]",
        "stop": "datetime64[ms, UTC]",
        "max_probability": "float64",
        "n_windows": "int64",
        "n_detections": "int64",
        "model_id": "object",
        "run_id": "object",
    },
}
#: the forecaster's layers (:mod:`scanner.outputs.gpkg_forecast`), written beside the above
FORECAST_SCHEMAS: dict[str, dict[str, str]] = {
    "polar_lows": {
        "polar_low_id": "object",
        "track_id": "object",
        "time": "datetime64[ms, UTC]",
        "lat": "float64",
        "lon": "float64",
        "max_probability": "float64",
        "mean_probability": "float64",
        "n_windows": "int64",
        "window_ids": "object",
        "centre_method": "object",
        "mosaic_id": "object",
        "model_id": "object",
        "run_id": "object",
    },
    "polar_low_footprints": {
        "polar_low_id": "object",
        "track_id": "object",
        "time": "datetime64[ms, UTC]",
        "max_probability": "float64",
        "n_windows": "int64",
        "mosaic_id": "object",
        "run_id": "object",
    },
    "tracks": {
        "track_id": "object",
        "first_time": "datetime64[ms, UTC]",
        "last_time": "datetime64[ms, UTC]",
        "n_sightings": "int64",
        "mean_speed_ms": "float64",
        "heading_deg": "float64",
        "distance_km": "float64",
        "polar_low_ids": "object",
        "max_probability": "float64",
    },
}
SCHEMAS.update(FORECAST_SCHEMAS)
FORECAST_GEOMETRY_TYPES = {
    "polar_lows": "Point",
    "polar_low_footprints": "MultiPolygon",
    "tracks": "LineString",
}
GEOMETRY_TYPES = {"detections": "Polygon", "windows": "Polygon", "scenes": "MultiPolygon"}
FEATURE_LAYERS = tuple(GEOMETRY_TYPES)
RUN_COLUMNS = (
    "run_id",
    "started",
    "finished",
    "status",
    "model_id",
    "n_scenes",
    "n_mosaics",
    "n_windows",
    "n_detections",
    "n_failed",
    "parameters",
    "versions",
    "timings",
    "errors",
    "extra",
)


def _frame(layer: str, data: Mapping[str, Any], geoms: list, crs: Any):
    """A GeoDataFrame of ``layer`` with exactly its schema's columns and dtypes."""
    import geopandas as gpd
    import pandas as pd

    cols = {}
    for name, dtype in SCHEMAS[layer].items():
        values = list(data[name])
        if dtype.startswith("datetime64"):
            cols[name] = pd.to_datetime(pd.Series(values, dtype="object"), utc=True)
        else:
            cols[name] = pd.Series(values, dtype=dtype)
    return gpd.GeoDataFrame(cols, geometry=gpd.GeoSeries(geoms, crs=crs), crs=crs)


frame = _frame  # public name for the other layer builders (scanner.outputs.gpkg_forecast)


def empty_frame(layer: str, crs: Any):
    """A layer with no rows, its schema intact."""
    return _frame(layer, {k: [] for k in SCHEMAS[layer]}, [], crs)


def mosaic_frames(m: MosaicResult, prov: Provenance) -> dict[str, Any]:
    """The ``windows``, ``detections`` and ``scenes`` frames of one mosaic; windows are built
    once and detections are their rows at or above the threshold."""
    windows = _windows_frame(m, prov)
    detections = windows[windows["detected"]].drop(columns="detected").reset_index(drop=True)
    return {"detections": detections, "windows": windows, "scenes": _scenes_frame(m, prov)}


def _windows_frame(m: MosaicResult, prov: Provenance):
    n = len(m.windows)
    probs = np.asarray(m.probabilities, dtype=np.float64)
    data = {
        "mosaic_id": [m.mosaic_id] * n,
        "window_id": [w.id for w in m.windows],
        "crop_row": [w.crop_row for w in m.windows],
        "crop_col": [w.crop_col for w in m.windows],
        "crop_px": [w.crop_size for w in m.windows],
        "probability": probs,
        "threshold": [float(prov.threshold)] * n,
        "detected": probs >= prov.threshold,
        "scenes": [",".join(s.name for s in m.scenes)] * n,
        "start": [m.sensing_start] * n,
        "stop": [m.sensing_stop] * n,
        "model_id": [prov.model_id] * n,
        "run_id": [prov.run_id] * n,
    }
    return _frame("windows", data, [w.crop_footprint(m.transform) for w in m.windows], m.crs)


def _scenes_frame(m: MosaicResult, prov: Provenance):
    import geopandas as gpd
    import shapely

    probs = np.asarray(m.probabilities, dtype=np.float64)
    n = len(m.scenes)
    data = {
        "scene_name": [s.name for s in m.scenes],
        "mosaic_id": [m.mosaic_id] * n,
        "mode": [m.mode or None] * n,
        "polarisations": ["+".join(m.polarisations) or None] * n,
        "start": [s.start for s in m.scenes],
        "stop": [s.stop for s in m.scenes],
        "max_probability": [float(probs.max()) if probs.size else float("nan")] * n,
        "n_windows": [len(probs)] * n,
        "n_detections": [int((probs >= prov.threshold).sum())] * n,
        "model_id": [prov.model_id] * n,
        "run_id": [prov.run_id] * n,
    }
    # densify first: straight lon/lat edges are curves in a polar stereographic grid
    lonlat = [shapely.segmentize(s.footprint, 0.1) for s in m.scenes]
    geoms = gpd.GeoSeries(lonlat, crs="EPSG:4326").to_crs(m.crs)
    # parts split at the antimeridian touch again in a polar grid: merge them
    merged = [_multi(shapely.make_valid(shapely.union_all([g]))) for g in geoms]
    return _frame("scenes", data, merged, m.crs)


def _multi(geom):
    """Scene footprints may be split at the antimeridian: store every one as a MultiPolygon."""
    from shapely.geometry import MultiPolygon

    if geom.geom_type == "Polygon":
        return MultiPolygon([geom])
    if geom.geom_type == "MultiPolygon":
        return geom
    return MultiPolygon([g for g in getattr(geom, "geoms", []) if g.geom_type == "Polygon"])


def runs_frame(run: Mapping[str, Any]):
    """One-row DataFrame (no geometry) of a run record; nested values become JSON text and
    keys outside :data:`RUN_COLUMNS` go into ``extra``."""
    import pandas as pd

    if not run.get("run_id"):
        raise UsageError("run record has no run_id", "pass {'run_id': ..., ...}")
    extra = {k: v for k, v in run.items() if k not in RUN_COLUMNS}
    row: dict[str, Any] = {}
    for col in RUN_COLUMNS:
        v: Any = extra if col == "extra" else run.get(col)
        if col in ("started", "finished"):
            row[col] = pd.to_datetime(pd.Series([v], dtype="object"), utc=True)
        elif col.startswith("n_"):
            row[col] = pd.Series([int(v) if v is not None else -1], dtype="int64")
        elif isinstance(v, (dict, list, tuple)):
            row[col] = pd.Series([json.dumps(v, default=str, sort_keys=True)], dtype="object")
        else:
            row[col] = pd.Series([None if v is None else str(v)], dtype="object")
    return pd.DataFrame(row)
