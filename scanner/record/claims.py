"""Claims and the run lock: how two cron runs avoid doing the same scene twice.

A *claim* marks one scene as being worked on by one run (``run_id``, pid, host). Claims are
taken in one ``BEGIN IMMEDIATE`` transaction, so of two runs asking for the same scene exactly
one gets it. A claim becomes free again when its scene reaches a final or failed status, when
its run releases it, or when its holder is known to be gone: on this host at once when its
process has died (pid and process start time checked, however long a live run takes); a run on
another host, whose pid cannot be checked, after its time-to-live.

The *run lock* is one row in ``locks``: at most one scan per output folder at a time. A second
run fails fast with a message naming the holder and how to clear a stale lock.
"""

from __future__ import annotations

import logging
import os
import socket
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from polarscan.common.errors import UsageError
from scanner.record.db import from_iso, iso, now_utc
from scanner.record.status import FINAL, RunStatus

if TYPE_CHECKING:
    from scanner.record.store import Record

log = logging.getLogger(__name__)

HOST = socket.gethostname()
RUN_LOCK = "scan"


def process_start(pid: int) -> str | None:
    """When process ``pid`` started (clock ticks since boot, from /proc on Linux), or None.
    Stored with a claim so a pid reused by an unrelated process is not taken for the holder."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[-1].split()
    return fields[19] if len(fields) > 19 else None


def pid_alive(pid: int, started: str | None = None) -> bool:
    """Whether process ``pid`` (started at ``started``, if known) still runs on this host."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        pass
    if started is not None:
        now = process_start(pid)
        return now is None or now == started
    return True


@dataclass(frozen=True)
class Holder:
    """Who holds a claim or the lock."""

    run_id: str
    pid: int
    host: str
    since: datetime
    expires: datetime
    proc_start: str | None = None

    @classmethod
    def from_row(cls, row: sqlite3.Row, since_col: str) -> Holder:
        return cls(
            run_id=row["run_id"],
            pid=row["pid"],
            host=row["host"],
            since=from_iso(row[since_col]),
            expires=from_iso(row["expires_at"]),
            proc_start=row["proc_start"],
        )

    def alive_here(self) -> bool:
        """Whether the holder is a live process on this host."""
        return self.host == HOST and pid_alive(self.pid, self.proc_start)

    def is_stale(self, now: datetime) -> bool:
        """On this host: its process is gone (however long it has run). On another host, where
        its pid cannot be checked: its time-to-live has passed."""
        if self.host == HOST:
            return not pid_alive(self.pid, self.proc_start)
        return self.expires <= now

    def describe(self) -> str:
        return f"run {self.run_id} (pid {self.pid} on {self.host}, since {self.since:%Y-%m-%d %H:%M:%S} UTC)"


def claim(
    conn: sqlite3.Connection,
    scene_ids: list[str],
    run_id: str,
    ttl: float,
    pid: int,
    now: datetime,
) -> list[str]:
    """Claim what is free among ``scene_ids`` for ``run_id``; return the ids now held.

    Runs inside the caller's ``BEGIN IMMEDIATE``. Already held by this run: renewed. Held by a
    stale run: taken over, and the scene's ``attempts`` counts the crash (a scene that kills
    every worker must not be retried forever). Finished scenes (processed/skipped) are refused.
    """
    expires = iso(now + timedelta(seconds=ttl))
    started = process_start(pid)
    got: list[str] = []
    for sid in dict.fromkeys(scene_ids):
        status = conn.execute(
            "SELECT status FROM scenes WHERE id = ? AND status IN (?, ?)", (sid, *FINAL)
        ).fetchone()
        if status is not None:
            continue
        row = conn.execute("SELECT * FROM claims WHERE scene_id = ?", (sid,)).fetchone()
        if row is not None and row["run_id"] != run_id:
            holder = Holder.from_row(row, "claimed_at")
            if not holder.is_stale(now):
                continue
            log.warning("scene %s: taking over the claim of %s", sid, holder.describe())
            conn.execute(
                "UPDATE scenes SET attempts = attempts + 1, last_error = ?, updated_at = ? "
                "WHERE id = ? AND status NOT IN (?, ?)",
                (
                    f"interrupted: {holder.describe()} stopped while working on it",
                    iso(now),
                    sid,
                    *FINAL,
                ),
            )
        conn.execute(
            "INSERT OR REPLACE INTO claims "
            "(scene_id, run_id, pid, proc_start, host, claimed_at, expires_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (sid, run_id, pid, started, HOST, iso(now), expires),
        )
        got.append(sid)
    return got


class RunLock:
    """At most one scan per record: ``with RunLock(record, run_id): …``.

    Raises :class:`UsageError` naming the holder when another live run has the lock. A lock left
    by a dead process on this host, or by another host's run ``ttl`` seconds after its last
    :meth:`refresh`, is taken over with a warning; ``polarscan catalog --out DIR --clear-lock`` removes one by hand.
    """

    def __init__(self, record: Record, run_id: str, ttl: float = 6 * 3600, name: str = RUN_LOCK):
        self.record = record
        self.run_id = run_id
        self.ttl = ttl
        self.name = name
        self.pid = os.getpid()

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc is None:
            self.release()
            return
        try:  # never mask the error that ends the run (e.g. a full disk fails this write too)
            self.release()
        except Exception as err:  # noqa: BLE001
            log.warning("could not release the scan lock of run %s: %s (the next run takes "
                        "it over)", self.run_id, err)  # fmt: skip

    def acquire(self) -> None:
        rec = self.record
        now = now_utc()
        with rec.write() as conn:
            row = conn.execute("SELECT * FROM locks WHERE name = ?", (self.name,)).fetchone()
            if row is not None and row["run_id"] != self.run_id:
                holder = Holder.from_row(row, "acquired_at")
                refuse_if_live(holder, rec.path, now)
                log.warning("taking over the stale scan lock of %s", holder.describe())
                # its run died without closing itself in the record: say so
                conn.execute(
                    "UPDATE runs SET status = ?, finished = ? WHERE run_id = ? AND finished IS NULL",
                    (RunStatus.ABANDONED.value, iso(now), holder.run_id),
                )
            conn.execute(
                "INSERT OR REPLACE INTO locks "
                "(name, run_id, pid, proc_start, host, acquired_at, expires_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    self.name,
                    self.run_id,
                    self.pid,
                    process_start(self.pid),
                    HOST,
                    iso(now),
                    iso(now + timedelta(seconds=self.ttl)),
                ),
            )

    def refresh(self) -> None:
        """Push the expiry of the lock and of the run's claims ``ttl`` seconds ahead: the scan
        calls it as each mosaic finishes, so a backfill longer than ``ttl`` keeps what it holds
        while a crashed run's hold still expires."""
        expires = iso(now_utc() + timedelta(seconds=self.ttl))
        with self.record.write() as conn:
            conn.execute(
                "UPDATE locks SET expires_at = ? WHERE name = ? AND run_id = ?",
                (expires, self.name, self.run_id),
            )
            conn.execute("UPDATE claims SET expires_at = ? WHERE run_id = ?", (expires, self.run_id))

    def release(self) -> None:
        with self.record.write() as conn:
            conn.execute(
                "DELETE FROM locks WHERE name = ? AND run_id = ?", (self.name, self.run_id)
            )
            conn.execute("DELETE FROM claims WHERE run_id = ?", (self.run_id,))


def refuse_if_live(holder: Holder | None, path: Path, now: datetime) -> None:
    """Raise :class:`UsageError` naming ``holder`` when it is a live run (not a stale lock)."""
    if holder is None or holder.is_stale(now):
        return
    raise UsageError(
        f"another scan holds the lock on {path}: {holder.describe()}",
        f"wait for it to finish; if that process is dead, run "
        f"`polarscan catalog --out {path.parent} --clear-lock`",
    )


def lock_holder(conn: sqlite3.Connection, name: str = RUN_LOCK) -> Holder | None:
    row = conn.execute("SELECT * FROM locks WHERE name = ?", (name,)).fetchone()
    return Holder.from_row(row, "acquired_at") if row is not None else None
