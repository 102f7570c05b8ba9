"""Rows of a GeoPackage layer written and read over a plain ``sqlite3`` connection, so that
every change of a publish is one SQLite transaction on the file in place
(:func:`scanner.outputs.gpkg_tx.transaction`).

GDAL (pyogrio) creates the layers: tables, geometry columns, R-tree and feature-count triggers.
Rows are then inserted here, by column name, as GDAL would write them:

- geometries as GeoPackage binary (OGC 12-128r18 §2.1.3): ``GP``, version 0, flags (little
  endian; an ``[minx, maxx, miny, maxy]`` envelope, or the empty bit), the layer's ``srs_id``,
  then ISO WKB. The envelope is what the R-tree triggers read
  (:func:`scanner.outputs.gpkg_sql.connect` registers ``ST_MinX``…);
- DATETIME as ``YYYY-MM-DDTHH:MM:SS.SSSZ`` (the one form the spec requires), BOOLEAN as 0/1,
  NaN and NaT as NULL;
- the layer's extent in ``gpkg_contents`` grown to the new rows and ``last_change`` set, which
  GDAL does when it closes a layer it wrote (QGIS zooms to that extent).

Insert triggers keep ``gpkg_ogr_contents.feature_count`` (GDAL's fast count) and the R-tree.
"""

from __future__ import annotations

import math
import sqlite3
import struct
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

#: size in bytes of the envelope for each envelope contents indicator (flags bits 1-3)
_ENVELOPE_BYTES = {0: 0, 1: 32, 2: 48, 3: 48, 4: 64}
_LITTLE_ENDIAN = 0x01
_ENVELOPE_XY = 0x01 << 1
_EMPTY = 0x01 << 4


def blob(geom: Any, srs_id: int) -> bytes | None:
    """``geom`` (shapely) as a GeoPackage geometry blob; None stays NULL."""
    import shapely

    if geom is None:
        return None
    wkb = shapely.to_wkb(geom, output_dimension=2, byte_order=1, flavor="iso")
    if geom.is_empty:
        return b"GP" + bytes([0, _LITTLE_ENDIAN | _EMPTY]) + struct.pack("<i", srs_id) + wkb
    minx, miny, maxx, maxy = geom.bounds
    head = b"GP" + bytes([0, _LITTLE_ENDIAN | _ENVELOPE_XY]) + struct.pack("<i", srs_id)
    return head + struct.pack("<4d", minx, maxx, miny, maxy) + wkb


def header(data: bytes | None) -> tuple[int, tuple[float, ...] | None] | None:
    """(flags, envelope) of a GeoPackage blob, the envelope ``(minx, maxx, miny, maxy)`` or
    None when the blob has none; None for NULL or what is not such a blob."""
    if data is None or len(data) < 8 or data[:2] != b"GP":
        return None
    flags = data[3]
    order = "<" if flags & _LITTLE_ENDIAN else ">"
    has_envelope = (flags >> 1) & 0b111
    return flags, struct.unpack_from(order + "4d", data, 8) if has_envelope else None


def is_empty(flags: int) -> bool:
    return bool(flags & _EMPTY)


def geometry(data: bytes | None) -> Any:
    """The shapely geometry of a GeoPackage blob (either byte order, any envelope)."""
    import shapely

    if data is None:
        return None
    if data[:2] != b"GP":
        raise ValueError("not a GeoPackage geometry blob (no 'GP' magic)")
    kind = (data[3] >> 1) & 0b111
    return shapely.from_wkb(bytes(data[8 + _ENVELOPE_BYTES[kind] :]))


def srs_id(con: sqlite3.Connection, layer: str) -> int | None:
    """The ``srs_id`` of ``layer``'s geometry column (None for a table without geometry)."""
    row = con.execute(
        "SELECT srs_id FROM gpkg_geometry_columns WHERE lower(table_name) = lower(?)", (layer,)
    ).fetchone()
    return None if row is None else int(row[0])


def geometry_column(con: sqlite3.Connection, layer: str) -> str | None:
    row = con.execute(
        "SELECT column_name FROM gpkg_geometry_columns WHERE lower(table_name) = lower(?)",
        (layer,),
    ).fetchone()
    return None if row is None else str(row[0])


def insert(con: sqlite3.Connection, layer: str, frame: Any) -> int:
    """Append the rows of ``frame`` ((Geo)DataFrame, in the layer's CRS) to ``layer`` by column
    name (the frame's columns must exist in the table); returns the number of rows."""
    if not len(frame):
        return 0
    import geopandas as gpd

    geom_col = geometry_column(con, layer)
    frame_geom = frame.geometry.name if isinstance(frame, gpd.GeoDataFrame) else None
    names = [c for c in frame.columns if c != frame_geom]
    values = [_column(frame[c]) for c in names]
    cols = [f'"{c}"' for c in names]
    if geom_col is not None:
        srs = srs_id(con, layer)
        assert srs is not None
        geoms = list(frame.geometry)
        values.append([blob(g, srs) for g in geoms])
        cols.append(f'"{geom_col}"')
    marks = ",".join("?" * len(cols))
    sql = f'INSERT INTO "{layer}" ({",".join(cols)}) VALUES ({marks})'
    con.executemany(sql, zip(*values, strict=True))
    if geom_col is not None:
        _grow_extent(con, layer, (g.bounds for g in geoms if g is not None and not g.is_empty))
    con.execute(
        "UPDATE gpkg_contents SET last_change = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') "
        "WHERE lower(table_name) = lower(?)",
        (layer,),
    )
    return len(frame)


def rows(con: sqlite3.Connection, sql: str, params: Iterable[Any] = ()) -> Iterator[tuple]:
    """The rows of ``sql`` with its GeoPackage blobs (by the ``GP`` magic) as geometries."""
    for row in con.execute(sql, tuple(params)):
        yield tuple(geometry(v) if isinstance(v, bytes) and v[:2] == b"GP" else v for v in row)


def datetime_text(t: datetime) -> str:
    """``t`` as a GeoPackage DATETIME, ``YYYY-MM-DDTHH:MM:SS.SSSZ`` (UTC, milliseconds cut)."""
    t = t.astimezone(UTC)
    return f"{t:%Y-%m-%dT%H:%M:%S}.{t.microsecond // 1000:03d}Z"


def _column(series: Any) -> list:
    kind = series.dtype.kind
    if kind == "M":  # datetime64 (the frames' are UTC-aware)
        return [None if v is None or v != v else datetime_text(v.to_pydatetime()) for v in series]
    if kind == "b":
        return [int(v) for v in series]
    if kind in "iu":
        return [int(v) for v in series]
    if kind == "f":
        return [None if math.isnan(v) else float(v) for v in series]
    return [_value(v) for v in series]


def _value(v: Any) -> Any:
    if v is None or isinstance(v, str | bytes | int):
        return v
    if isinstance(v, float):
        return None if math.isnan(v) else v
    if isinstance(v, datetime):
        return datetime_text(v)
    if hasattr(v, "item"):  # a numpy scalar
        return _value(v.item())
    return str(v)


def _grow_extent(con: sqlite3.Connection, layer: str, bounds: Iterable[tuple]) -> None:
    boxes = list(bounds)
    if not boxes:
        return
    minx = min(b[0] for b in boxes)
    miny = min(b[1] for b in boxes)
    maxx = max(b[2] for b in boxes)
    maxy = max(b[3] for b in boxes)
    # min()/max() of SQLite with NULL (no extent yet) give NULL: take ours then
    con.execute(
        "UPDATE gpkg_contents SET "
        "min_x = coalesce(min(min_x, ?), ?), min_y = coalesce(min(min_y, ?), ?), "
        "max_x = coalesce(max(max_x, ?), ?), max_y = coalesce(max(max_y, ?), ?) "
        "WHERE lower(table_name) = lower(?)",
        (minx, minx, miny, miny, maxx, maxx, maxy, maxy, layer),
    )
