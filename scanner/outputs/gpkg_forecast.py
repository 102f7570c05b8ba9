"""The forecaster's layers of ``detections.gpkg``: ``polar_lows``, ``polar_low_footprints``,
``tracks``.

:func:`forecast_update` returns a step that :func:`scanner.outputs.gpkg.write_results` runs
inside the same SQLite transaction as the mosaic's other rows: the
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
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from scanner.forecast.config import TrackingConfig
from scanner.forecast.objects import PolarLow
from scanner.forecast.tracks import Sighting, Track, build_tracks, within_gap
from scanner.outputs import gpkg_rows, gpkg_sql
from scanner.outputs.frames import frame
from scanner.outputs.gpkg_tx import Step

LOW_LAYERS = ("polar_lows", "polar_low_footprints")
#: SQLite indexes (table, column): the span's time reads and the track id updates by polar low
INDEXES = (
    ("polar_lows", "time"),
    ("polar_lows", "polar_low_id"),
    ("polar_low_footprints", "polar_low_id"),
)
TIME_INDEX = gpkg_sql.index_name("polar_lows", "time")


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
    con: sqlite3.Connection, span: tuple[datetime, datetime] | None = None
) -> tuple[list[Sighting], dict[str, float]]:
    """The polar lows in the file (those of ``span``, first and last time included, if given)
    as :class:`Sighting` (x, y in the file CRS), and their peak probability by id."""
    if "polar_lows" not in gpkg_sql.table_names(con):
        return [], {}
    geom = gpkg_rows.geometry_column(con, "polar_lows")
    sql = (
        f'SELECT "polar_low_id", "mosaic_id", "time", "lon", "lat", "max_probability", "{geom}" '
        'FROM "polar_lows"'
    )
    params: tuple = ()
    if span is not None:
        sql += ' WHERE "time" >= ? AND "time" <= ?'
        params = tuple(map(time_text, span))
    sightings, max_prob = [], {}
    for low, mosaic, time, lon, lat, prob, point in gpkg_rows.rows(
        con, sql + " ORDER BY fid", params
    ):
        sightings.append(
            Sighting(low, mosaic, parse_time(time), float(lon), float(lat), point.x, point.y)
        )
        max_prob[low] = float("nan") if prob is None else float(prob)
    return sightings, max_prob


def forecast_update(
    lows: Sequence[PolarLow], mosaic_ids: Sequence[str], tracking: TrackingConfig
) -> Step:
    """The step replacing ``mosaic_ids``' polar lows with ``lows`` and re-linking the tracks
    around them."""

    def apply(con: sqlite3.Connection, crs: Any) -> None:
        # a file whose tracks layer is new or empty: link every polar low (there are few)
        fresh = con.execute('SELECT 1 FROM "tracks" LIMIT 1').fetchone() is None
        # the time index marks a file whose polar-low times were all normalised before
        after = gpkg_sql.rowid_marks(con) if gpkg_sql.has_index(con, TIME_INDEX) else None
        replaced = low_times(con, mosaic_ids)
        gpkg_sql.delete_rows(con, [(layer, "mosaic_id", list(mosaic_ids)) for layer in LOW_LAYERS])
        for layer, df in lows_frames(lows, crs).items():
            gpkg_rows.insert(con, layer, df)
        # one datetime form (rows GDAL wrote before may lack the milliseconds): text order is
        # time order for the comparisons below
        gpkg_sql.normalise_datetimes(con, only=(*LOW_LAYERS, "tracks"), after=after)
        gpkg_sql.create_indexes(con, INDEXES)
        if fresh:
            relink(con, crs, None, tracking)
        elif changed := replaced + low_times(con, mosaic_ids):
            relink(con, crs, relink_span(con, changed, tracking.max_gap_s), tracking)

    return Step(apply, layers=(*LOW_LAYERS, "tracks"))


@dataclass
class Relinked:
    """What :func:`relink_all`'s step changed, filled in as it runs in the transaction."""

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

    def apply(con: sqlite3.Connection, crs: Any) -> None:
        present = gpkg_sql.table_names(con)
        if "polar_lows" not in present:
            return
        gpkg_sql.normalise_datetimes(con, only=(*LOW_LAYERS, "tracks"))
        gpkg_sql.create_indexes(con, INDEXES)
        before = _low_track_ids(con)
        done.tracks_before = _track_rows(con)
        relink(con, crs, None, tracking)
        after = _low_track_ids(con)
        done.polar_lows = len(after)
        done.tracks_after = _track_rows(con)
        done.changed = {
            low: (before.get(low), track)
            for low, track in after.items()
            if before.get(low) != track
        }

    # a file with polar lows from before the tracks layer gets it (created empty first)
    return Step(apply, layers=("tracks",)), done


def _low_track_ids(con: sqlite3.Connection) -> dict[str, str | None]:
    return dict(con.execute('SELECT "polar_low_id", "track_id" FROM "polar_lows"').fetchall())


def _track_rows(con: sqlite3.Connection) -> list[str]:
    sql = 'SELECT "track_id" FROM "tracks" ORDER BY "first_time", "track_id"'
    return [t for (t,) in con.execute(sql)]


def relink(
    con: sqlite3.Connection,
    crs: Any,
    span: tuple[datetime, datetime] | None,
    tracking: TrackingConfig,
) -> None:
    """Link the polar lows of ``span`` (every one if None), set their track ids and write their
    tracks, replacing the ``tracks`` rows that start in ``span`` (every row if None).

    ``span`` must hold whole time clusters (:func:`relink_span`): then every track touching
    it lies in it, before and after, and no other track changes."""
    sightings, max_prob = read_sightings(con, span)
    tracks = build_tracks(sightings, tracking.max_gap_s, tracking.max_speed_ms)
    set_track_ids(con, {s.id: t.id for t in tracks for s in t.sightings})
    if span is None:
        con.execute('DELETE FROM "tracks"')
    else:
        con.execute(
            'DELETE FROM "tracks" WHERE "first_time" >= ? AND "first_time" <= ?',
            tuple(map(time_text, span)),
        )
    gpkg_rows.insert(con, "tracks", tracks_frame(tracks, crs, max_prob))


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


def low_times(con: sqlite3.Connection, mosaic_ids: Sequence[str]) -> list[datetime]:
    """Times of the mosaics' rows in ``polar_lows``."""
    if not mosaic_ids:
        return []
    marks = ",".join("?" * len(mosaic_ids))
    sql = f'SELECT "time" FROM "polar_lows" WHERE "mosaic_id" IN ({marks})'
    return [parse_time(t) for (t,) in con.execute(sql, list(mosaic_ids))]


time_text = gpkg_rows.datetime_text


def parse_time(text: str) -> datetime:
    """A DATETIME of the file (either form GDAL writes) as an aware UTC datetime."""
    return datetime.fromisoformat(text).astimezone(UTC)


def set_track_ids(con: sqlite3.Connection, ids: dict[str, str]) -> None:
    rows = [(track, low) for low, track in ids.items()]
    for layer in LOW_LAYERS:
        con.executemany(f'UPDATE "{layer}" SET track_id = ? WHERE polar_low_id = ?', rows)


def _multi(geom):
    from shapely.geometry import MultiPolygon

    if geom.geom_type == "Polygon":
        return MultiPolygon([geom])
    return MultiPolygon([g for g in getattr(geom, "geoms", []) if g.geom_type == "Polygon"])
