"""The forecaster's layers of ``detections.gpkg``: ``polar_lows``, ``polar_low_footprints``,
``tracks``.

:func:`forecast_update` returns a step that :func:`scanner.outputs.gpkg.write_results` runs on
its working copy, inside the same copy-on-write transaction as the mosaic's other rows: the
mosaics' polar lows replace their previous rows, then the tracks are linked again where that can
change them, and the file ends as if every polar low in it had been linked again
(:func:`scanner.forecast.tracks.build_tracks`). Links join only polar lows at most
``max_gap_s`` apart, so the polar lows in time order fall into clusters no track crosses; the
step grows the time span of the rows it replaced and added to whole clusters
(:func:`relink_span`, reading only the ``time`` column near the span), links the polar lows of
that span, gives them their track ids and replaces the ``tracks`` rows that start in it. Tracks
outside it keep their rows and ids, so a publish costs what its neighbourhood holds, not the
whole archive. The tracking settings apply where a publish re-links: tracks elsewhere keep the
settings they were linked with.

Times are compared in SQL as text, which is time order because every DATETIME is in the one
form ``YYYY-MM-DDTHH:MM:SS.SSSZ`` (:func:`scanner.outputs.gpkg_sql.normalise_datetimes`, run on
these layers before any comparison, since GDAL writes a whole second without its milliseconds).
SQLite indexes on ``polar_lows.time`` and on ``polar_low_id`` (:data:`INDEXES`) keep the reads
and updates to the rows concerned.

A file written before these layers existed gets them added on the first update; nothing else in
it changes.

``tracks`` holds tracks of two or more sightings (a line needs two points); a lone sighting
still carries its own track id, which a later sighting may extend.

After the tracking settings change, :func:`relink_all` (``polarscan catalog --relink-tracks``)
links every polar low again with the new ones, in the same kind of transaction.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from scanner.forecast.config import TrackingConfig
from scanner.forecast.objects import PolarLow
from scanner.forecast.tracks import Sighting, Track, build_tracks, within_gap
from scanner.outputs import gpkg_sql
from scanner.outputs.frames import FORECAST_GEOMETRY_TYPES, frame

LOW_LAYERS = ("polar_lows", "polar_low_footprints")
#: SQLite indexes (table, column): the span's time reads and the track id updates by polar low
INDEXES = (
    ("polar_lows", "time"),
    ("polar_lows", "polar_low_id"),
    ("polar_low_footprints", "polar_low_id"),
)
TIME_INDEX = gpkg_sql.index_name("polar_lows", "time")

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


def read_sightings(
    path: Path, span: tuple[datetime, datetime] | None = None
) -> tuple[list[Sighting], dict[str, float]]:
    """The polar lows in the file (those of ``span``, first and last time included, if given)
    as :class:`Sighting` (x, y in the file CRS), and their peak probability by id."""
    import pandas as pd
    import pyogrio

    if "polar_lows" not in gpkg_sql.tables(path):
        return [], {}
    where = None
    if span is not None:
        where = "\"time\" >= '{}' AND \"time\" <= '{}'".format(*map(time_text, span))
    df = pyogrio.read_dataframe(path, layer="polar_lows", where=where)
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
    """The step replacing ``mosaic_ids``' polar lows with ``lows`` and re-linking the tracks
    around them."""

    def step(tmp: Path, crs: Any) -> None:
        from scanner.outputs.gpkg import append_layer

        present = gpkg_sql.tables(tmp)
        # the time index marks a file whose polar-low times were all normalised before
        after = gpkg_sql.rowid_marks(tmp) if gpkg_sql.has_index(tmp, TIME_INDEX) else None
        replaced = low_times(tmp, mosaic_ids) if "polar_lows" in present else []
        gpkg_sql.delete_rows(tmp, [(layer, "mosaic_id", list(mosaic_ids)) for layer in LOW_LAYERS])
        for layer, df in lows_frames(lows, crs).items():
            if len(df) or layer not in present:
                append_layer(tmp, df, layer, FORECAST_GEOMETRY_TYPES[layer])
        # one datetime form (the rows just written may lack the milliseconds): text order is
        # time order for the comparisons below
        gpkg_sql.normalise_datetimes(tmp, only=(*LOW_LAYERS, "tracks"), after=after)
        gpkg_sql.create_indexes(tmp, INDEXES)
        if "tracks" not in present:  # the first update: every polar low (there are only ours)
            relink(tmp, crs, None, tracking, replace_tracks=False)
        elif changed := replaced + low_times(tmp, mosaic_ids):
            with gpkg_sql.connect(tmp) as con:
                span = relink_span(con, changed, tracking.max_gap_s)
            relink(tmp, crs, span, tracking, replace_tracks=True)

    return step


@dataclass
class Relinked:
    """What :func:`relink_all`'s step changed, filled in as it runs on the working copy."""

    polar_lows: int = 0
    #: ids of the ``tracks`` rows (tracks of two or more sightings) before and after
    tracks_before: list[str] = field(default_factory=list)
    tracks_after: list[str] = field(default_factory=list)
    #: polar low id → (track id before, after), for those whose track id changed
    changed: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)


def relink_all(tracking: TrackingConfig) -> tuple[Step, Relinked]:
    """A step linking every polar low in the file again with ``tracking`` (what
    :func:`~scanner.forecast.tracks.build_tracks` over all of them gives), setting their track
    ids in both polar low layers and rewriting the whole ``tracks`` layer; and the
    :class:`Relinked` it fills in. A file without ``polar_lows`` is left as it is."""
    done = Relinked()

    def step(tmp: Path, crs: Any) -> None:
        present = gpkg_sql.tables(tmp)
        if "polar_lows" not in present:
            return
        gpkg_sql.normalise_datetimes(tmp, only=(*LOW_LAYERS, "tracks"))
        gpkg_sql.create_indexes(tmp, INDEXES)
        before = _low_track_ids(tmp)
        done.tracks_before = _track_rows(tmp) if "tracks" in present else []
        relink(tmp, crs, None, tracking, replace_tracks="tracks" in present)
        after = _low_track_ids(tmp)
        done.polar_lows = len(after)
        done.tracks_after = _track_rows(tmp)
        done.changed = {
            low: (before.get(low), track)
            for low, track in after.items()
            if before.get(low) != track
        }

    return step, done


def _low_track_ids(path: Path) -> dict[str, str | None]:
    with gpkg_sql.connect(path) as con:
        return dict(con.execute('SELECT "polar_low_id", "track_id" FROM "polar_lows"').fetchall())


def _track_rows(path: Path) -> list[str]:
    with gpkg_sql.connect(path) as con:
        sql = 'SELECT "track_id" FROM "tracks" ORDER BY "first_time", "track_id"'
        return [t for (t,) in con.execute(sql)]


def relink(
    path: Path,
    crs: Any,
    span: tuple[datetime, datetime] | None,
    tracking: TrackingConfig,
    replace_tracks: bool,
) -> None:
    """Link the polar lows of ``span`` (every one if None), set their track ids and write their
    tracks, replacing the ``tracks`` rows that start in ``span`` if ``replace_tracks``.

    ``span`` must hold whole time clusters (:func:`relink_span`): then every track touching
    it lies in it, before and after, and no other track changes."""
    from scanner.outputs.gpkg import append_layer

    sightings, max_prob = read_sightings(path, span)
    tracks = build_tracks(sightings, tracking.max_gap_s, tracking.max_speed_ms)
    set_track_ids(path, {s.id: t.id for t in tracks for s in t.sightings})
    if replace_tracks:
        with gpkg_sql.connect(path) as con:
            if span is None:
                con.execute('DELETE FROM "tracks"')
            else:
                con.execute(
                    'DELETE FROM "tracks" WHERE "first_time" >= ? AND "first_time" <= ?',
                    tuple(map(time_text, span)),
                )
    frame_ = tracks_frame(tracks, crs, max_prob)
    if len(frame_) or not replace_tracks:
        append_layer(path, frame_, "tracks", FORECAST_GEOMETRY_TYPES["tracks"])


def relink_span(
    con: sqlite3.Connection, changed: Sequence[datetime], max_gap_s: float
) -> tuple[datetime, datetime]:
    """First and last time of the polar lows to link again after a change at the times
    ``changed`` (of the rows replaced and of their replacements): from the earliest to the
    latest of ``changed``, grown until no polar low in the file lies within ``max_gap_s`` before
    the first or after the last (:func:`scanner.forecast.tracks.within_gap`), i.e. to whole time
    clusters of the file's polar lows together with the replaced ones. No link crosses the
    span's ends, so linking inside it gives what linking every polar low gives.

    Reads only ``polar_lows.time`` (through its index), a gap's worth beyond an end at a time;
    ``con`` is a connection to the file, its times in the one form (see the module)."""
    lo, hi = min(changed), max(changed)
    while (t := _farthest(con, lo, max_gap_s, before=True)) is not None:
        lo = t
    while (t := _farthest(con, hi, max_gap_s, before=False)) is not None:
        hi = t
    return lo, hi


def _farthest(
    con: sqlite3.Connection, edge: datetime, max_gap_s: float, before: bool
) -> datetime | None:
    """The time of the farthest polar low before (or after) ``edge`` and within ``max_gap_s``
    of it; None if there is none."""
    reach = timedelta(seconds=max_gap_s + 1)  # a second wider than the gap: within_gap decides
    if before:
        times = _times(con, edge - reach, edge)
        return min((t for t in times if t < edge and within_gap(t, edge, max_gap_s)), default=None)
    times = _times(con, edge, edge + reach)
    return max((t for t in times if t > edge and within_gap(edge, t, max_gap_s)), default=None)


def _times(con: sqlite3.Connection, first: datetime, last: datetime) -> list[datetime]:
    """Times of the polar lows from ``first`` to ``last`` (to the millisecond, both included)."""
    sql = 'SELECT "time" FROM "polar_lows" WHERE "time" >= ? AND "time" <= ?'
    return [parse_time(t) for (t,) in con.execute(sql, (time_text(first), time_text(last)))]


def low_times(path: Path, mosaic_ids: Sequence[str]) -> list[datetime]:
    """Times of the mosaics' rows in ``polar_lows``."""
    if not mosaic_ids:
        return []
    marks = ",".join("?" * len(mosaic_ids))
    sql = f'SELECT "time" FROM "polar_lows" WHERE "mosaic_id" IN ({marks})'
    with gpkg_sql.connect(path) as con:
        return [parse_time(t) for (t,) in con.execute(sql, list(mosaic_ids))]


def time_text(t: datetime) -> str:
    """``t`` in the file's DATETIME form ``YYYY-MM-DDTHH:MM:SS.SSSZ`` (UTC; milliseconds cut,
    as GDAL writes them)."""
    t = t.astimezone(UTC)
    return f"{t:%Y-%m-%dT%H:%M:%S}.{t.microsecond // 1000:03d}Z"


def parse_time(text: str) -> datetime:
    """A DATETIME of the file (either form GDAL writes) as an aware UTC datetime."""
    return datetime.fromisoformat(text).astimezone(UTC)


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
