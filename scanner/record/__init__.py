"""The scan record (``<out>/record.sqlite``): scenes and their status, watermarks, claims, runs.

Typical use by a scan::

    rec = Record.open(out_dir)
    run_id = new_run_id()
    with rec.lock(run_id):                       # one scan per folder; a stale lock is taken over
        rec.start_run(run_id, {"bbox": ...})
        since = rec.watermark("cdse", aoi.key)   # "new since last run"
        stats = rec.upsert(source.search(aoi, published_after=since))
        todo = rec.claim([s.id for s in rec.pending()], run_id)
        ...  rec.mark(id, "processed", outputs={...}) / rec.mark(id, "failed", error=str(err))
        if all_ok and stats.newest_published:
            rec.advance_watermark("cdse", aoi.key, stats.newest_published, run_id)
        rec.finish_run(run_id, rec.counts())
"""

from __future__ import annotations

from scanner.record.claims import Holder, RunLock, pid_alive
from scanner.record.db import RECORD_NAME, record_path
from scanner.record.status import RunStatus, SceneStatus
from scanner.record.store import (
    DEFAULT_MAX_ATTEMPTS,
    STATUSES,
    Record,
    SceneRow,
    UpsertStats,
    new_run_id,
)

__all__ = [
    "DEFAULT_MAX_ATTEMPTS",
    "RECORD_NAME",
    "STATUSES",
    "Holder",
    "Record",
    "RunLock",
    "RunStatus",
    "SceneRow",
    "SceneStatus",
    "UpsertStats",
    "new_run_id",
    "pid_alive",
    "record_path",
]
