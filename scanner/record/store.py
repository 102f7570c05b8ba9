"""The scan record: what every scene went through, so nightly scans do each scene once.

One SQLite file per output folder (``<out>/record.sqlite``). Searches *upsert* scenes (status
``found``; metadata refreshed, status never touched, so a processed scene stays processed); the
scan *claims* what it will work on, *marks* each step (``downloaded`` → ``processed``, or
``failed`` with the error, or ``skipped`` with a reason), and after a successful run *advances
the watermark* of each (source, area) so the next run asks only for newer products.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import threading
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from polarscan.common.errors import UsageError
from scanner.record import claims as _claims
from scanner.record import fetches as _fetches
from scanner.record.db import (
    connect,
    from_iso,
    iso,
    now_utc,
    record_path,
    translate_errors,
    write_tx,
)
from scanner.record.rows import SceneRow, scene_params
from scanner.record.status import PENDING, RunStatus, SceneStatus

if TYPE_CHECKING:
    from scanner.sources.base import Scene

log = logging.getLogger(__name__)

STATUSES = tuple(s.value for s in SceneStatus)
DEFAULT_MAX_ATTEMPTS = 3
_CHUNK = 500  # ids per IN (...) query, below SQLite's variable limit

_UPSERT = """
INSERT INTO scenes (source, id, name, footprint, start, stop, published, size,
    checksum_algorithm, checksum, url, attrs, datatake, mode, polarisations, found_at, updated_at)
VALUES (:source, :id, :name, :footprint, :start, :stop, :published, :size,
    :checksum_algorithm, :checksum, :url, :attrs, :datatake, :mode, :polarisations, :now, :now)
ON CONFLICT (source, id) DO UPDATE SET
    name = excluded.name, footprint = excluded.footprint, start = excluded.start,
    stop = excluded.stop, published = excluded.published, size = excluded.size,
    checksum_algorithm = excluded.checksum_algorithm, checksum = excluded.checksum,
    url = excluded.url, attrs = excluded.attrs, datatake = excluded.datatake,
    mode = excluded.mode, polarisations = excluded.polarisations,
    updated_at = excluded.updated_at
WHERE scenes.name IS NOT excluded.name OR scenes.footprint IS NOT excluded.footprint
    OR scenes.start IS NOT excluded.start OR scenes.stop IS NOT excluded.stop
    OR scenes.published IS NOT excluded.published OR scenes.size IS NOT excluded.size
    OR scenes.checksum IS NOT excluded.checksum OR scenes.url IS NOT excluded.url
    OR scenes.attrs IS NOT excluded.attrs OR scenes.mode IS NOT excluded.mode
    OR scenes.polarisations IS NOT excluded.polarisations
"""


@dataclass(frozen=True)
class UpsertStats:
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    newest_published: datetime | None = None  # the watermark candidate of this search


def new_run_id() -> str:
    """Sortable and unique: ``20260125T021500-<pid>-<4 hex>``."""
    return f"{now_utc():%Y%m%dT%H%M%S}-{os.getpid()}-{uuid.uuid4().hex[:4]}"


class Record:
    """The scan record of one output folder. Thread-safe; pickles as its path, so a task may
    receive one and reopen it (though only the orchestrator should write)."""

    def __init__(self, path: str | Path, create: bool = True) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()
        self._conn = connect(self.path, create=create)

    @classmethod
    def open(cls, out_dir: str | Path, create: bool = True) -> Record:
        """The record of the scan folder ``out_dir`` (``<out_dir>/record.sqlite``)."""
        return cls(record_path(out_dir), create=create)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> Record:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __reduce__(self):
        return (Record, (str(self.path), False))

    def __repr__(self) -> str:
        return f"Record({str(self.path)!r})"

    @contextlib.contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One atomic write transaction (``BEGIN IMMEDIATE``)."""
        with self._lock, write_tx(self._conn, self.path) as conn:
            yield conn

    def _read(self, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]:
        with self._lock, translate_errors(self.path):
            return self._conn.execute(sql, tuple(params)).fetchall()

    # ---- scenes --------------------------------------------------------------------------------

    def upsert(self, scenes: Iterable[Scene], batch: int = 5000) -> UpsertStats:
        """Record search results: new scenes are ``found``; known ones get fresh metadata but
        keep their status, attempts and outputs. One transaction per ``batch`` scenes."""
        new = updated = unchanged = 0
        newest: datetime | None = None
        buf: list[Scene] = []

        def flush() -> None:
            nonlocal new, updated, unchanged
            now = iso(now_utc())
            params = [scene_params(s, now) for s in buf]
            with self.write() as conn:
                known = _existing(conn, [(p["source"], p["id"]) for p in params])
                before = conn.total_changes
                conn.executemany(_UPSERT, params)
                changed = conn.total_changes - before
            fresh = sum((p["source"], p["id"]) not in known for p in params)
            new += fresh
            updated += changed - fresh
            unchanged += len(params) - changed
            buf.clear()

        for scene in scenes:
            buf.append(scene)
            if scene.published is not None and (newest is None or scene.published > newest):
                newest = scene.published
            if len(buf) >= batch:
                flush()
        if buf:
            flush()
        return UpsertStats(new, updated, unchanged, newest)

    def get(self, scene_id: str, source: str | None = None) -> SceneRow | None:
        rows = self._rows_for(scene_id, source)
        return SceneRow.from_row(rows[0]) if rows else None

    def _rows_for(self, scene_id: str, source: str | None) -> list[sqlite3.Row]:
        if source is None:
            return self._read("SELECT * FROM scenes WHERE id = ?", (scene_id,))
        return self._read("SELECT * FROM scenes WHERE id = ? AND source = ?", (scene_id, source))

    def scenes(
        self,
        status: str | Iterable[str] | None = None,
        source: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        time: str = "start",
        limit: int | None = None,
    ) -> list[SceneRow]:
        """Recorded scenes, oldest first, filtered by status, source, and a time column
        (``start`` = sensing, ``published``, ``updated_at`` = last change)."""
        if time not in ("start", "published", "updated_at", "found_at"):
            raise UsageError(f"unknown time column {time!r}", "use start, published or updated_at")
        where, params = [], []
        if status is not None:
            wanted = _check_statuses([status] if isinstance(status, str) else list(status))
            where.append(f"status IN ({','.join('?' * len(wanted))})")
            params += [w.value for w in wanted]
        if source is not None:
            where.append("source = ?")
            params.append(source)
        if since is not None:
            where.append(f"{time} >= ?")
            params.append(iso(since))
        if until is not None:
            where.append(f"{time} < ?")
            params.append(iso(until))
        sql = "SELECT * FROM scenes" + (f" WHERE {' AND '.join(where)}" if where else "")
        sql += f" ORDER BY {time}, source, id"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [SceneRow.from_row(r) for r in self._read(sql, params)]

    def counts(self) -> dict[str, int]:
        rows = self._read("SELECT status, COUNT(*) AS n FROM scenes GROUP BY status")
        return {s: 0 for s in STATUSES} | {r["status"]: r["n"] for r in rows}

    def pending(
        self, max_attempts: int = DEFAULT_MAX_ATTEMPTS, source: str | None = None
    ) -> list[SceneRow]:
        """What a run should work on, oldest sensing first: found or downloaded scenes, and
        failed ones with attempts left. Claim them before working on them."""
        sql = "SELECT * FROM scenes WHERE (status IN (?, ?) OR (status = ? AND attempts < ?))"
        params: list[Any] = [*PENDING, SceneStatus.FAILED, max_attempts]
        if source is not None:
            sql += " AND source = ?"
            params.append(source)
        return [SceneRow.from_row(r) for r in self._read(sql + " ORDER BY start, id", params)]

    def mark(
        self,
        scene_id: str,
        status: SceneStatus | str,
        *,
        error: str | None = None,
        reason: str | None = None,
        outputs: dict | None = None,
        local_path: str | Path | None = None,
        run_id: str | None = None,
        source: str | None = None,
        attempt: bool = True,
    ) -> SceneRow:
        """Move a scene to ``status``. ``failed`` counts an attempt (unless ``attempt=False``:
        a fault of the machine, such as a full disk, not of the scene) and keeps ``error``;
        ``skipped`` needs a ``reason``; ``processed`` stores ``outputs`` (JSON). A final or
        failed status releases the scene's claim."""
        status = _check_statuses([status])[0]
        if status == SceneStatus.FAILED and not error:
            raise ValueError("mark(..., 'failed') needs the error text")
        if status == SceneStatus.SKIPPED and not reason:
            raise ValueError("mark(..., 'skipped') needs a reason")
        now = iso(now_utc())
        sets = ["status = ?", "updated_at = ?", "run_id = COALESCE(?, run_id)"]
        params: list[Any] = [status.value, now, run_id]
        if status == SceneStatus.FAILED:
            sets += ["attempts = attempts + 1" if attempt else "attempts = attempts",
                     "last_error = ?"]  # fmt: skip
            params.append((error or "")[:4000])
        if status == SceneStatus.PROCESSED:
            sets += ["outputs = ?", "reason = NULL"]
            params.append(json.dumps(outputs or {}, sort_keys=True, default=str))
        if status == SceneStatus.SKIPPED or reason is not None:
            sets.append("reason = ?")
            params.append(reason)
        if local_path is not None:
            sets.append("local_path = ?")
            params.append(str(local_path))
        where, wparams = "id = ?", [scene_id]
        if source is not None:
            where += " AND source = ?"
            wparams.append(source)
        with self.write() as conn:
            n = conn.execute("SELECT COUNT(*) FROM scenes WHERE " + where, wparams).fetchone()[0]
            if n != 1:
                raise UsageError(
                    f"scene {scene_id!r} is {'not in' if n == 0 else 'ambiguous in'} the record "
                    f"{self.path}",
                    "search for it first" if n == 0 else "pass its source too",
                )
            conn.execute(f"UPDATE scenes SET {', '.join(sets)} WHERE {where}", params + wparams)
            if status != SceneStatus.DOWNLOADED:
                conn.execute("DELETE FROM claims WHERE scene_id = ?", (scene_id,))
            row = conn.execute("SELECT * FROM scenes WHERE " + where, wparams).fetchone()
        return SceneRow.from_row(row)

    def requeue(
        self, status: str | None = None, ids: Iterable[str] | None = None
    ) -> list[SceneRow]:
        """Make scenes pending again with a fresh attempt count: all in ``status`` (e.g.
        ``failed``) or the given ``ids``. Unknown ids change nothing and raise UsageError."""
        if (status is None) == (ids is None):
            raise ValueError("requeue() takes a status or ids")
        now = iso(now_utc())
        with self.write() as conn:
            if status is not None:
                wanted = _check_statuses([status])[0]
                rows = conn.execute("SELECT * FROM scenes WHERE status = ?", (wanted,)).fetchall()
            else:
                rows = _rows_by_ids(conn, list(ids or ()), self.path)
            for r in rows:
                on_disk = r["local_path"] and Path(r["local_path"]).exists()
                back = SceneStatus.DOWNLOADED if on_disk else SceneStatus.FOUND
                conn.execute(
                    "UPDATE scenes SET status = ?, attempts = 0, reason = NULL, updated_at = ? "
                    "WHERE source = ? AND id = ?",
                    (back.value, now, r["source"], r["id"]),
                )
                conn.execute("DELETE FROM claims WHERE scene_id = ?", (r["id"],))
            keys = [(r["source"], r["id"]) for r in rows]
            fresh = [
                conn.execute("SELECT * FROM scenes WHERE source = ? AND id = ?", k).fetchone()
                for k in keys
            ]
        return [SceneRow.from_row(r) for r in fresh]

    def skip(self, ids: Iterable[str], reason: str) -> list[SceneRow]:
        """Mark scenes SKIPPED with ``reason`` (an operator's decision, e.g. a product that
        always crashes the reader): no scan claims them again until they are re-queued.
        Unknown ids change nothing and raise UsageError."""
        if not reason.strip():
            raise UsageError("skipping scenes needs a reason", "say why, for the record", key="reason")
        with self.write() as conn:
            rows = _rows_by_ids(conn, list(ids), self.path)
        return [
            self.mark(r["id"], SceneStatus.SKIPPED, reason=reason, source=r["source"]) for r in rows
        ]

    def forget(self, ids: Iterable[str]) -> list[SceneRow]:
        """Delete scenes from the record (the next search finds them as new). Unknown ids
        change nothing and raise UsageError."""
        with self.write() as conn:
            rows = _rows_by_ids(conn, list(ids), self.path)
            for r in rows:
                conn.execute(
                    "DELETE FROM scenes WHERE source = ? AND id = ?", (r["source"], r["id"])
                )
                conn.execute("DELETE FROM claims WHERE scene_id = ?", (r["id"],))
        return [SceneRow.from_row(r) for r in rows]

    # ---- claims ------------------------------------------------------------------------------

    def claim(
        self,
        scene_ids: Iterable[str],
        run_id: str,
        ttl: float = 3600,
        pid: int | None = None,
    ) -> list[str]:
        """Atomically claim the free ones of ``scene_ids`` for ``run_id``; returns those held.
        Stale claims (expired, or whose process died on this host) are taken over."""
        ids = list(scene_ids)
        with self.write() as conn:
            return _claims.claim(conn, ids, run_id, ttl, pid or os.getpid(), now_utc())

    def release(self, run_id: str, scene_ids: Iterable[str] | None = None) -> int:
        """Drop this run's claims: all of them (the scan does so when it ends, however it
        ends), or those on ``scene_ids`` (scenes it will not work on after all)."""
        with self.write() as conn:
            before = conn.total_changes
            if scene_ids is None:
                conn.execute("DELETE FROM claims WHERE run_id = ?", (run_id,))
            else:
                conn.executemany("DELETE FROM claims WHERE run_id = ? AND scene_id = ?",
                                 [(run_id, sid) for sid in scene_ids])  # fmt: skip
            return conn.total_changes - before

    def claimed(self, run_id: str | None = None) -> dict[str, str]:
        """scene id → run id of the current claims (of one run, or all)."""
        sql, params = "SELECT scene_id, run_id FROM claims", tuple[str, ...]()
        if run_id is not None:
            sql, params = sql + " WHERE run_id = ?", (run_id,)
        return {r["scene_id"]: r["run_id"] for r in self._read(sql, params)}

    def lock(self, run_id: str, ttl: float = 6 * 3600) -> _claims.RunLock:
        """The run lock of this record (a context manager)."""
        return _claims.RunLock(self, run_id, ttl)

    def lock_holder(self) -> _claims.Holder | None:
        with self._lock, translate_errors(self.path):
            return _claims.lock_holder(self._conn)

    def clear_lock(self) -> _claims.Holder | None:
        """Remove the run lock (and its run's claims) if its holder is not alive on this host.
        Returns the holder that was cleared, or None when there was no lock."""
        with self.write() as conn:
            holder = _claims.lock_holder(conn)
            if holder is None:
                return None
            if holder.alive_here():
                raise UsageError(
                    f"the scan lock is held by a live process: {holder.describe()}",
                    f"let it finish, or stop it first (kill {holder.pid}), then clear the lock",
                )
            conn.execute("DELETE FROM locks WHERE name = ?", (_claims.RUN_LOCK,))
            conn.execute("DELETE FROM claims WHERE run_id = ?", (holder.run_id,))
            conn.execute(
                "UPDATE runs SET status = ?, finished = ? WHERE run_id = ? AND finished IS NULL",
                (RunStatus.ABANDONED.value, iso(now_utc()), holder.run_id),
            )
        return holder

    # ---- bytes fetched (the provider's monthly quota) --------------------------------------

    def add_fetches(self, rows: Iterable[_fetches.FetchRow]) -> None:
        """Record bytes fetched from a source (:class:`~scanner.record.fetches.FetchRow`)."""
        rows = list(rows)
        if rows:
            with self.write() as conn:
                _fetches.insert(conn, rows)

    def fetched_in_month(self, month: str, source: str | None = None) -> int:
        """Bytes fetched in the UTC month ``YYYY-MM`` (from ``source``, or from all)."""
        with self._lock, translate_errors(self.path):
            return _fetches.month_bytes(self._conn, month, source)

    def usage(self, months: int | None = None) -> list[_fetches.MonthUsage]:
        """Bytes fetched per month and source, newest first."""
        with self._lock, translate_errors(self.path):
            return _fetches.usage(self._conn, months)

    def in_place_fraction(self, source: str | None = None) -> float | None:
        """Bytes read in place ÷ product size over the latest scenes read in place."""
        with self._lock, translate_errors(self.path):
            return _fetches.in_place_fraction(self._conn, source)

    # ---- watermarks ----------------------------------------------------------------------

    def watermark(self, source: str, aoi_key: str) -> datetime | None:
        """The newest publication (or sensing) time a successful run has seen for this
        source and area: search for products newer than this next time."""
        rows = self._read(
            "SELECT value FROM watermarks WHERE source = ? AND aoi_key = ?", (source, aoi_key)
        )
        return from_iso(rows[0]["value"]) if rows else None

    def advance_watermark(
        self, source: str, aoi_key: str, value: datetime, run_id: str | None = None
    ) -> datetime:
        """Move the watermark forward to ``value`` (never backwards); call only after the
        run succeeded, so a failed run's scenes are searched for again. Returns the mark."""
        with self.write() as conn:
            row = conn.execute(
                "SELECT value FROM watermarks WHERE source = ? AND aoi_key = ?", (source, aoi_key)
            ).fetchone()
            if row is not None and from_iso(row["value"]) >= value:
                return from_iso(row["value"])
            conn.execute(
                "INSERT OR REPLACE INTO watermarks (source, aoi_key, value, run_id, updated_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (source, aoi_key, iso(value), run_id, iso(now_utc())),
            )
        return value

    # ---- runs ----------------------------------------------------------------------------

    def start_run(self, run_id: str, parameters: dict | None = None) -> None:
        with self.write() as conn:
            conn.execute(
                "INSERT INTO runs (run_id, started, pid, host, parameters) VALUES (?, ?, ?, ?, ?)",
                (
                    run_id,
                    iso(now_utc()),
                    os.getpid(),
                    _claims.HOST,
                    json.dumps(parameters or {}, sort_keys=True, default=str),
                ),
            )

    def finish_run(
        self, run_id: str, counts: dict | None = None, status: RunStatus | str = RunStatus.OK
    ) -> None:
        status = RunStatus(status)
        with self.write() as conn:
            conn.execute(
                "UPDATE runs SET finished = ?, status = ?, counts = ? WHERE run_id = ?",
                (iso(now_utc()), status.value, json.dumps(counts or {}, sort_keys=True), run_id),
            )

    def last_config(self) -> dict[str, Any]:
        """The scan config the latest run recorded (empty before any run): what the next run
        applies if its config is unchanged."""
        runs = self.runs(limit=1)
        return (runs[0]["parameters"].get("config") or {}) if runs else {}

    def runs(self, limit: int = 20) -> list[dict[str, Any]]:
        rows = self._read("SELECT * FROM runs ORDER BY started DESC LIMIT ?", (limit,))
        return [
            dict(r) | {"parameters": json.loads(r["parameters"]), "counts": json.loads(r["counts"])}
            for r in rows
        ]


def _check_statuses(statuses: list[str]) -> list[SceneStatus]:
    bad = [s for s in statuses if s not in STATUSES]
    if bad:
        raise UsageError(f"unknown scene status {bad[0]!r}", f"use one of {', '.join(STATUSES)}")
    return [SceneStatus(s) for s in statuses]


def _existing(conn: sqlite3.Connection, keys: list[tuple[str, str]]) -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    by_source: dict[str, list[str]] = {}
    for src, sid in keys:
        by_source.setdefault(src, []).append(sid)
    for src, ids in by_source.items():
        for i in range(0, len(ids), _CHUNK):
            chunk = ids[i : i + _CHUNK]
            rows = conn.execute(
                f"SELECT id FROM scenes WHERE source = ? AND id IN ({','.join('?' * len(chunk))})",
                (src, *chunk),
            ).fetchall()
            found.update((src, r[0]) for r in rows)
    return found


def _rows_by_ids(conn: sqlite3.Connection, ids: list[str], path: Path) -> list[sqlite3.Row]:
    rows: list[sqlite3.Row] = []
    missing = []
    for sid in dict.fromkeys(ids):
        got = conn.execute("SELECT * FROM scenes WHERE id = ? OR name = ?", (sid, sid)).fetchall()
        if not got:
            missing.append(sid)
        rows += got
    if missing:
        raise UsageError(
            f"not in the record {path}: {', '.join(missing[:5])}"
            + (f" and {len(missing) - 5} more" if len(missing) > 5 else ""),
            "check the ids with `polarscan catalog --out DIR` (nothing was changed)",
        )
    return rows
