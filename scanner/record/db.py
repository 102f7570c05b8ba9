"""The SQLite file under the scan record: connection settings, schema, and error translation.

WAL mode lets readers (``polarscan catalog``, a dashboard) read while a scan writes; every write
is one ``BEGIN IMMEDIATE`` transaction, so a crash (even SIGKILL) leaves either all of it or
none. ``synchronous=NORMAL`` keeps that guarantee for process crashes; only a power cut may lose
the last commits (never corrupt the file).
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import overload

from polarscan.common.errors import ProcessingError, UsageError, as_disk_full

RECORD_NAME = "record.sqlite"
SCHEMA_VERSION = 3  # 2: scenes.mode and scenes.polarisations; 3: the fetches table (each added
# in place to a record of an older version)
BUSY_TIMEOUT_MS = 30_000
WAL_PAGES = 16  # checkpoint the write-ahead log every 16 pages (64 KiB)

SCHEMA = """
CREATE TABLE IF NOT EXISTS scenes (
    source      TEXT NOT NULL,
    id          TEXT NOT NULL,
    name        TEXT NOT NULL,
    footprint   TEXT,               -- WKT, lon/lat
    start       TEXT NOT NULL,      -- ISO 8601 UTC, microseconds: sorts as text
    stop        TEXT NOT NULL,
    published   TEXT,
    size        INTEGER,
    checksum_algorithm TEXT,
    checksum    TEXT,
    url         TEXT,
    attrs       TEXT NOT NULL DEFAULT '{}',
    datatake    TEXT,               -- MISSION_ORBIT_DATATAKE: slices sharing it join into a strip
    mode        TEXT,               -- acquisition mode from the name: EW, IW
    polarisations TEXT,             -- co-pol first: HH+HV, VV+VH
    status      TEXT NOT NULL DEFAULT 'found'
                CHECK (status IN ('found', 'downloaded', 'processed', 'failed', 'skipped')),
    reason      TEXT,
    attempts    INTEGER NOT NULL DEFAULT 0,
    last_error  TEXT,
    local_path  TEXT,
    outputs     TEXT,               -- JSON
    run_id      TEXT,               -- the run that last changed the status
    found_at    TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    PRIMARY KEY (source, id)
);
CREATE INDEX IF NOT EXISTS scenes_status ON scenes (status, start);
CREATE INDEX IF NOT EXISTS scenes_id ON scenes (id);
CREATE INDEX IF NOT EXISTS scenes_datatake ON scenes (datatake);

CREATE TABLE IF NOT EXISTS watermarks (
    source      TEXT NOT NULL,
    aoi_key     TEXT NOT NULL,
    value       TEXT NOT NULL,
    run_id      TEXT,
    updated_at  TEXT NOT NULL,
    PRIMARY KEY (source, aoi_key)
);

CREATE TABLE IF NOT EXISTS claims (
    scene_id    TEXT PRIMARY KEY,
    run_id      TEXT NOT NULL,
    pid         INTEGER NOT NULL,
    proc_start  TEXT,               -- the pid's start time: tells a reused pid apart
    host        TEXT NOT NULL,
    claimed_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS claims_run ON claims (run_id);

CREATE TABLE IF NOT EXISTS locks (
    name        TEXT PRIMARY KEY,
    run_id      TEXT NOT NULL,
    pid         INTEGER NOT NULL,
    proc_start  TEXT,
    host        TEXT NOT NULL,
    acquired_at TEXT NOT NULL,
    expires_at  TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS fetches (  -- bytes fetched from a source, for its monthly quota
    id          INTEGER PRIMARY KEY,
    at          TEXT NOT NULL,      -- ISO 8601 UTC: when the stage that fetched them finished
    month       TEXT NOT NULL,      -- YYYY-MM of ``at`` (UTC): the quota's month
    source      TEXT NOT NULL,
    scene_id    TEXT NOT NULL,
    run_id      TEXT,
    stage       TEXT NOT NULL,      -- download | mosaic
    access      TEXT NOT NULL,      -- download | s3 | mount
    bytes       INTEGER NOT NULL CHECK (bytes >= 0),
    estimated   INTEGER NOT NULL DEFAULT 0,  -- of ``bytes``, worked out rather than counted
    product_size INTEGER            -- the product's size in the catalogue, when known
);
CREATE INDEX IF NOT EXISTS fetches_month ON fetches (month, source);

CREATE TABLE IF NOT EXISTS runs (
    run_id      TEXT PRIMARY KEY,
    started     TEXT NOT NULL,
    finished    TEXT,
    status      TEXT NOT NULL DEFAULT 'running',
    pid         INTEGER,
    host        TEXT,
    parameters  TEXT NOT NULL DEFAULT '{}',
    counts      TEXT NOT NULL DEFAULT '{}'
);
"""


def record_path(out_dir: str | Path) -> Path:
    """Where a scan writing to ``out_dir`` keeps its record."""
    return Path(out_dir) / RECORD_NAME


def now_utc() -> datetime:
    return datetime.now(UTC)


@overload
def iso(dt: datetime) -> str: ...
@overload
def iso(dt: None) -> None: ...
def iso(dt: datetime | None) -> str | None:
    """Fixed-width ISO 8601 in UTC, so text order is time order (naive values are taken as UTC)."""
    if dt is None:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC).isoformat(timespec="microseconds")


@overload
def from_iso(text: str) -> datetime: ...
@overload
def from_iso(text: None) -> None: ...
def from_iso(text: str | None) -> datetime | None:
    if text is None:
        return None
    dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def _corrupt(path: Path, err: Exception) -> UsageError:
    return UsageError(
        f"the scan record {path} is not a readable SQLite database ({err})",
        f"move it aside (mv {path} {path}.broken) and rerun: the next scan finds the scenes again "
        "and skips outputs already on disk",
    )


@contextlib.contextmanager
def translate_errors(path: Path) -> Iterator[None]:
    """Turn sqlite3 failures into the project's errors: a corrupt file is the user's to move
    aside (exit 2); a lock held past the busy timeout is a runtime failure (exit 1)."""
    try:
        yield
    except sqlite3.OperationalError as err:
        msg = str(err).lower()
        full = as_disk_full(err, path)
        if full is not None:
            raise full from None
        if "locked" in msg or "busy" in msg:
            raise ProcessingError(
                f"the scan record {path} stayed locked for {BUSY_TIMEOUT_MS // 1000} s ({err})",
                "another process holds a long write transaction; retry when it has finished",
            ) from None
        if "unable to open" in msg or "readonly" in msg or "read-only" in msg:
            raise UsageError(
                f"cannot open the scan record {path} for writing ({err})",
                "check that the output folder is writable and on a local disk",
                key="out",
            ) from None
        if "no such table" in msg or "no such column" in msg:
            raise _corrupt(path, err) from None
        raise
    except sqlite3.DatabaseError as err:
        if isinstance(err, sqlite3.IntegrityError | sqlite3.ProgrammingError):
            raise
        raise _corrupt(path, err) from None


def connect(path: Path, create: bool = True) -> sqlite3.Connection:
    """Open (and if needed create) the record, in WAL mode, with the schema in place."""
    path = Path(path)
    if not create and not path.is_file():
        raise UsageError(
            f"no scan record at {path}",
            "check the output folder (the record is <out>/record.sqlite, written by a scan)",
            key="out",
        )
    if path.exists() and not path.is_file():
        raise UsageError(
            f"the scan record {path} is not a file", "give the folder of a scan", key="out"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    with translate_errors(path):
        conn = sqlite3.connect(
            path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
        )
        try:
            conn.row_factory = sqlite3.Row
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode.lower() != "wal":  # e.g. a network file system without shared memory
                raise UsageError(
                    f"the scan record {path} cannot use SQLite WAL mode (got {mode!r})",
                    "put the output folder on a local disk (SQLite WAL needs shared memory)",
                    key="out",
                )
            conn.execute("PRAGMA synchronous = NORMAL")
            # keep the write-ahead log small: checkpoint every WAL_PAGES pages and truncate the
            # log back afterwards (the default lets it grow to 4 MB beside a 100 KB record)
            conn.execute(f"PRAGMA wal_autocheckpoint = {WAL_PAGES}")
            conn.execute(f"PRAGMA journal_size_limit = {WAL_PAGES * 4096}")
            conn.execute("PRAGMA foreign_keys = ON")
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise UsageError(
                    f"the scan record {path} has schema version {version}, newer than this "
                    f"polarscan understands ({SCHEMA_VERSION})",
                    "upgrade polarscan, or use another output folder",
                    key="out",
                )
            if version < SCHEMA_VERSION:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    _create_schema(conn)
                    _migrate(conn)
                    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
            else:  # touch every table once, so a damaged schema fails here with a clear message
                for table in ("scenes", "watermarks", "claims", "locks", "fetches", "runs"):
                    conn.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchall()
        except BaseException:
            conn.close()
            raise
    return conn


def _create_schema(conn: sqlite3.Connection) -> None:
    """Run the DDL statement by statement (``executescript`` would commit our transaction)."""
    for stmt in SCHEMA.split(";"):
        body = "\n".join(line.split("--")[0] for line in stmt.splitlines()).strip()
        if body:
            conn.execute(body)


#: columns added to ``scenes`` since schema version 1, with their SQL type
ADDED_SCENE_COLUMNS = {"mode": "TEXT", "polarisations": "TEXT"}


def _migrate(conn: sqlite3.Connection) -> None:
    """Bring a record of an older schema up to date in place (inside the caller's
    transaction; :func:`_create_schema` has added any missing table, such as ``fetches``):
    add the ``scenes`` columns it lacks and fill mode and polarisations from each scene's
    product name. Safe to repeat: only missing columns are added, only empty values filled."""
    from scanner.sources.base import name_acquisition

    have = {r["name"] for r in conn.execute("PRAGMA table_info(scenes)")}
    for column, sql_type in ADDED_SCENE_COLUMNS.items():
        if column not in have:
            conn.execute(f"ALTER TABLE scenes ADD COLUMN {column} {sql_type}")
    rows = conn.execute("SELECT source, id, name FROM scenes WHERE mode IS NULL").fetchall()
    for r in rows:
        acq = name_acquisition(r["name"])
        if acq is not None:
            conn.execute(
                "UPDATE scenes SET mode = ?, polarisations = ? WHERE source = ? AND id = ?",
                (acq[0], "+".join(acq[1]), r["source"], r["id"]),
            )


@contextlib.contextmanager
def write_tx(conn: sqlite3.Connection, path: Path) -> Iterator[sqlite3.Connection]:
    """One atomic write: ``BEGIN IMMEDIATE`` takes the write lock up front (no upgrade
    deadlocks between concurrent runs), commit on success, roll back on any error."""
    with translate_errors(path):
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException:
            # a failed COMMIT (disk full) may leave the transaction open: never leave it so
            if conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            raise
