"""Plain-SQL work on a GeoPackage over a ``sqlite3`` connection (inside the publish's one
transaction, :func:`scanner.outputs.gpkg_tx.transaction`): layer list, columns, row deletion,
indexes, datetime form.

GDAL's R-tree triggers call SQL functions (``ST_IsEmpty``, ``ST_MinX``…) that a bare
``sqlite3`` connection lacks; :func:`register_gpkg_functions` adds them, reading the envelope of
the GeoPackage geometry header (or the WKB when a blob has none, as GDAL writes points), so that
inserts, deletes and updates keep the spatial index without SpatiaLite.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Collection, Iterator, Mapping, Sequence
from pathlib import Path

from scanner.outputs import gpkg_rows

GPKG_APPLICATION_ID = 0x47504B47  # "GPKG"

DATETIME_COLUMNS = {
    "detections": ("start", "stop"),
    "windows": ("start", "stop"),
    "scenes": ("start", "stop"),
    "runs": ("started", "finished"),
    "layer_styles": ("update_time",),
    "polar_lows": ("time",),
    "polar_low_footprints": ("time",),
    "tracks": ("first_time", "last_time"),
}


@contextlib.contextmanager
def connect(path: Path) -> Iterator[sqlite3.Connection]:
    """A connection with the GeoPackage SQL functions; one transaction, closed on exit."""
    with contextlib.closing(sqlite3.connect(path)) as con, con:
        register_gpkg_functions(con)
        yield con


def is_geopackage(path: Path) -> bool:
    from scanner.outputs.gpkg_tx import recover

    recover(path)  # a hot journal of a killed writer fails read-only connections
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as con:
            return con.execute("PRAGMA application_id").fetchone()[0] == GPKG_APPLICATION_ID
    except sqlite3.DatabaseError:
        return False


def tables(path: Path) -> set[str]:
    """The layers (tables in ``gpkg_contents``) of the file at ``path``."""
    with contextlib.closing(sqlite3.connect(path)) as con:
        return table_names(con)


def table_names(con: sqlite3.Connection) -> set[str]:
    return {r[0] for r in con.execute("SELECT table_name FROM gpkg_contents")}


def columns(con: sqlite3.Connection, table: str) -> list[str]:
    """The table's columns in their order in the file (none if there is no such table)."""
    return [r[1] for r in con.execute(f'PRAGMA table_info("{table}")')]


def add_columns(con: sqlite3.Connection, table: str, columns: Sequence[tuple[str, str]]) -> None:
    """``ALTER TABLE … ADD COLUMN`` for each (name, SQL type)."""
    for name, sql_type in columns:
        con.execute(f'ALTER TABLE "{table}" ADD COLUMN "{name}" {sql_type}')


def delete_rows(con: sqlite3.Connection, where: Sequence[tuple[str, str, Sequence[str]]]) -> None:
    """``DELETE FROM table WHERE column IN (...)`` for each (table, column, values); tables not
    in the file are passed over."""
    present = table_names(con)
    for table, column, values in where:
        if table in present and values:
            marks = ",".join("?" * len(values))
            con.execute(f'DELETE FROM "{table}" WHERE "{column}" IN ({marks})', list(values))


def index_name(table: str, column: str) -> str:
    """The name :func:`create_indexes` gives the index of ``table``'s ``column``."""
    return f"idx_{table}_{column}"


def create_indexes(con: sqlite3.Connection, indexes: Sequence[tuple[str, str]]) -> None:
    """An ordinary SQLite index (:func:`index_name`) on each (table, column) that lacks one
    (tables not in the file are passed over). The GeoPackage spec allows them beside its own
    tables; GDAL and QGIS read and append through them."""
    present = table_names(con)
    for table, column in indexes:
        if table in present:
            name = index_name(table, column)
            con.execute(f'CREATE INDEX IF NOT EXISTS "{name}" ON "{table}" ("{column}")')


def normalise_datetimes(
    con: sqlite3.Connection,
    only: Collection[str] | None = None,
    after: Mapping[str, int] | None = None,
) -> None:
    """Write every DATETIME (of the tables ``only``, if given) as ``YYYY-MM-DDTHH:MM:SS.SSSZ``,
    the form the GeoPackage spec requires. GDAL drops a zero millisecond part, which GDAL 3.6
    (QGIS 3.22 on Debian) reads with a "Non-conformant content" warning per row. In the one
    form, text order is time order, so SQL can compare times as text. Rows this project writes
    (:mod:`scanner.outputs.gpkg_rows`) are in that form already; files GDAL wrote are not.

    ``after`` (:func:`rowid_marks` taken before a write) limits each table named in it to the
    rows written since, so a publish does not scan the archive; tables not named are done
    whole."""
    present = table_names(con) if only is None else table_names(con) & set(only)
    sql = (
        'UPDATE "{t}" SET "{c}" = substr("{c}", 1, 19) || \'.000Z\' '
        "WHERE \"{c}\" GLOB '????-??-??T??:??:??Z'"
    )
    for table, cols in DATETIME_COLUMNS.items():
        if table in present:
            since = (
                "" if after is None or table not in after else f" AND rowid > {int(after[table])}"
            )
            for col in cols:
                con.execute(sql.format(t=table, c=col) + since)


def rowid_marks(con: sqlite3.Connection) -> dict[str, int]:
    """The largest row id each AUTOINCREMENT table (every table GDAL creates in a GeoPackage)
    has ever used: rows written later have larger ids, whatever was deleted in between."""
    try:
        return {
            name: int(seq) for name, seq in con.execute("SELECT name, seq FROM sqlite_sequence")
        }
    except sqlite3.OperationalError:  # no AUTOINCREMENT table yet
        return {}


def has_index(con: sqlite3.Connection, name: str) -> bool:
    row = con.execute("SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = ?", (name,))
    return row.fetchone() is not None


def _is_empty(blob):
    head = gpkg_rows.header(blob)
    return None if head is None else int(gpkg_rows.is_empty(head[0]))


def _bound(i: int):
    def f(blob):
        head = gpkg_rows.header(blob)
        if head is None or gpkg_rows.is_empty(head[0]):
            return None
        env = head[1]
        if env is None:  # no envelope (GDAL writes points without one): from the WKB
            minx, miny, maxx, maxy = gpkg_rows.geometry(blob).bounds
            env = (minx, maxx, miny, maxy)
        return env[i]

    return f


def register_gpkg_functions(con: sqlite3.Connection) -> None:
    """The SQL functions GDAL's R-tree triggers call, for a connection without SpatiaLite."""
    con.create_function("ST_IsEmpty", 1, _is_empty, deterministic=True)
    for i, name in enumerate(("ST_MinX", "ST_MaxX", "ST_MinY", "ST_MaxY")):
        con.create_function(name, 1, _bound(i), deterministic=True)
