"""Scenes shaped like real EW GRDM products, and child-process bodies for scan-record tests
(they live here so a ``spawn`` child can import them)."""

from __future__ import annotations

import os
import signal
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from shapely.geometry import box

from scanner.sources.base import Scene

T0 = datetime(2024, 1, 15, 5, 0, 0, tzinfo=UTC)


def make_scene(i: int, source: str = "cdse", published_h: float | None = None) -> Scene:
    """Scene ``i``: a 64 s slice of datatake ``i // 3`` (three slices per strip)."""
    start = T0 + timedelta(seconds=64 * i)
    stop = start + timedelta(seconds=64)
    orbit, datatake = 52000 + i // 3, 0x05A000 + i // 3
    name = (
        f"S1A_EW_GRDM_1SDH_{start:%Y%m%dT%H%M%S}_{stop:%Y%m%dT%H%M%S}_{orbit:06d}_"
        f"{datatake:06X}_{i % 0x10000:04X}"
    )
    lon = (i * 7) % 340 - 170
    return Scene(
        id=f"{i:08d}-0000-4000-8000-{i:012d}",
        name=name,
        source=source,
        start=start,
        stop=stop,
        footprint=box(lon, 70, lon + 12, 74),
        size=450_000_000 + i,
        checksum=("MD5", f"{i:032x}"),
        published=start + timedelta(hours=published_h if published_h is not None else 3),
        url=f"https://download.example/odata/v1/Products({i})/$value",
        attrs={"orbitDirection": "DESCENDING", "sliceNumber": i % 3 + 1},
    )


def make_scenes(n: int, first: int = 0, **kw) -> list[Scene]:
    return [make_scene(i, **kw) for i in range(first, first + n)]


# ---- child-process bodies ---------------------------------------------------------------------


def claim_worker(path: str, ids: list[str], run_id: str, barrier, queue) -> None:
    """Wait for every sibling, then claim all ``ids`` at once; report what was won."""
    from scanner.record import Record

    rec = Record(path)
    barrier.wait(timeout=60)
    got = rec.claim(ids, run_id, ttl=600)
    queue.put((run_id, got))
    rec.close()


def drain_worker(path: str, run_id: str, barrier, queue) -> None:
    """A run loop: claim pending scenes a few at a time and mark them processed by this run."""
    from scanner.record import Record

    rec = Record(path)
    barrier.wait(timeout=60)
    done: list[str] = []
    while True:
        todo = [r.id for r in rec.pending()][:7]
        if not todo:
            break
        got = rec.claim(todo, run_id, ttl=600)
        for sid in got:
            rec.mark(sid, "processed", outputs={"run": run_id}, run_id=run_id)
            done.append(sid)
    queue.put((run_id, done))
    rec.close()


def hold_claims_then_hang(path: str, ids: list[str], run_id: str, ready) -> None:
    """Claim ``ids`` and hang (the parent kills us: a crashed run)."""
    from scanner.record import Record

    rec = Record(path)
    rec.claim(ids, run_id, ttl=3600)
    ready.set()
    time.sleep(120)


def hold_lock_then_hang(path: str, run_id: str, ready) -> None:
    from scanner.record import Record

    rec = Record(path)
    rec.lock(run_id).acquire()
    ready.set()
    time.sleep(120)


def die_inside_transaction(path: str, n: int, ready) -> None:
    """Open a write transaction, upsert ``n`` scenes, then get SIGKILLed before COMMIT."""
    from scanner.record import Record
    from scanner.record.rows import scene_params
    from scanner.record.store import _UPSERT

    rec = Record(path)
    with rec.write() as conn:
        conn.executemany(
            _UPSERT, [scene_params(s, "2024-01-01T00:00:00") for s in make_scenes(n, 10_000)]
        )
        conn.execute("UPDATE scenes SET status = 'processed'")
        ready.set()
        os.kill(os.getpid(), signal.SIGKILL)


def hold_write_open(path: str, ready) -> None:
    """Upsert scenes inside a write transaction and hang before COMMIT (the parent kills us)."""
    from scanner.record import Record

    rec = Record(path)
    with rec.write() as conn:
        conn.execute("UPDATE scenes SET status = 'failed', attempts = 1, last_error = 'x'")
        ready.set()
        time.sleep(120)


def upsert_forever(path: str, batch: int, ready) -> None:
    """Upsert batches of fresh scenes in a loop until killed (to kill mid-write)."""
    from scanner.record import Record

    rec = Record(path)
    first = 100_000
    ready.set()
    while True:
        rec.upsert(make_scenes(batch, first), batch=batch)
        first += batch


def record_file(out: Path) -> Path:
    return out / "record.sqlite"


def v2_schema() -> str:
    """The record's schema of version 2: today's without the ``fetches`` table (version 3)."""
    from scanner.record.db import SCHEMA

    return ";".join(s for s in SCHEMA.split(";") if "fetches" not in s)


def insert_old_scene(con, s: Scene, status: str, attempts: int, **extra) -> None:
    """Scene ``s`` inserted with plain SQL, as an older version's record held it (its schema
    may lack today's columns, so no ``upsert``); ``extra`` gives more columns (``mode``…)."""
    cols = {"source": s.source, "id": s.id, "name": s.name, "start": s.start.isoformat(),
            "stop": s.stop.isoformat(), "status": status, "attempts": attempts,
            "found_at": s.start.isoformat(), "updated_at": s.start.isoformat(), **extra}  # fmt: skip
    marks = ", ".join("?" * len(cols))
    con.execute(f"INSERT INTO scenes ({', '.join(cols)}) VALUES ({marks})", tuple(cols.values()))
