"""``polarscan status``: is the nightly scan into a folder healthy? Read from its record only,
for a person in the morning or a monitoring check (exit 1 on a problem).

Problems (each with its fix): no run yet; no run finished within ``max_age_h`` (while no scan
runs), or the running scan started longer ago than that (it may hang); the last run failed; scenes that failed ``max_attempts`` times, which no run retries. Warnings: the last run
was partial, interrupted or abandoned; a dead run left the scan lock (the next run takes it
over); the month's fetched bytes are past 90 % of the data quota. The rest is information: the last
run, the lock, the scenes by status, the quota.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from polarscan.common.runlog import log_path
from scanner.record.db import from_iso
from scanner.record.fetches import month_of
from scanner.record.status import RunStatus, SceneStatus
from scanner.record.store import DEFAULT_MAX_ATTEMPTS, Record

QUOTA_WARNING = 0.9  # of the month's budget


@dataclass(frozen=True)
class Item:
    level: str  # problem | warning
    what: str
    fix: str = ""


@dataclass
class Health:
    out: str
    last_run: dict[str, Any] | None = None
    lock: str = "free"
    scenes: dict[str, int] = field(default_factory=dict)
    out_of_attempts: int = 0
    quota: dict[str, Any] = field(default_factory=dict)
    items: list[Item] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(i.level == "problem" for i in self.items)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def health(out: Path, rec: Record, max_age_h: float, now: datetime | None = None) -> Health:
    """The state of the scans into ``out`` (whose record is ``rec``) at ``now``."""
    now = now or datetime.now(UTC)
    h = Health(str(out), scenes={k: v for k, v in rec.counts().items() if v})
    runs = rec.runs(limit=50)
    config = rec.last_config()
    max_attempts = int(config.get("max_attempts") or DEFAULT_MAX_ATTEMPTS)
    running = _lock(h, rec, now)
    _runs(h, out, runs, max_age_h, now, running)
    failed = rec.scenes(status=SceneStatus.FAILED.value)
    h.out_of_attempts = sum(1 for r in failed if r.attempts >= max_attempts)
    if h.out_of_attempts:
        h.items.append(Item(
            "problem",
            f"{h.out_of_attempts} scene(s) failed {max_attempts} times: no run retries them",
            f"see why: polarscan catalog --out {out} --status failed; then --requeue ID… "
            "(after fixing the cause) or --skip ID… --reason …",
        ))  # fmt: skip
    _quota(h, rec, config, now)
    return h


def _lock(h: Health, rec: Record, now: datetime) -> datetime | None:
    """Say who holds the scan lock; the start of a live holder's run (None if none)."""
    holder = rec.lock_holder()
    if holder is None:
        return None
    if holder.is_stale(now):
        h.lock = f"stale: {holder.describe()}"
        h.items.append(Item("warning", f"the scan lock of a dead {holder.describe()} is left",
                            "nothing to do: the next run takes it over (or catalog "
                            "--clear-lock)"))  # fmt: skip
        return None
    h.lock = f"held by {holder.describe()}"
    return holder.since


def _runs(
    h: Health, out: Path, runs: list[dict], max_age_h: float, now: datetime,
    running: datetime | None,
) -> None:  # fmt: skip
    if not runs:
        h.items.append(Item("problem", "no scan has run into this folder yet",
                            "run polarscan scan --out … (cron: see the README)"))  # fmt: skip
        return
    last = runs[0]
    h.last_run = {k: last.get(k) for k in ("run_id", "status", "started", "finished", "counts")}
    log = log_path(out, last["run_id"])
    if log.is_file():
        h.last_run["log"] = str(log)
    finished = [r for r in runs if r.get("finished")]
    newest = max((from_iso(r["finished"]) for r in finished), default=None)
    age_h = None if newest is None else (now - newest).total_seconds() / 3600
    if running is not None and (now - running).total_seconds() / 3600 > max_age_h:
        h.items.append(Item("problem", f"the running scan started more than {max_age_h:g} h ago "
                            f"({running:%Y-%m-%d %H:%M} UTC)", "see its log; if it hangs, stop "
                            "it (SIGTERM releases its scenes)"))  # fmt: skip
    elif running is None and (age_h is None or age_h > max_age_h):
        since = "ever" if newest is None else f"since {newest:%Y-%m-%d %H:%M} UTC"
        h.items.append(Item("problem", f"no run has finished {since} (more than {max_age_h:g} h)",
                            "check the cron job or systemd timer, and the last run's log"))  # fmt: skip
    done = finished[0] if finished else None
    if done is None:
        return
    status = done.get("status")
    see = f"read its log (logs/{done['run_id']}.log) or the morning report"
    if status == RunStatus.FAILED:
        h.items.append(Item("problem", f"the last finished run {done['run_id']} failed", see))
    elif status in (RunStatus.PARTIAL, RunStatus.INTERRUPTED, RunStatus.ABANDONED):
        what = {"partial": "had failed scenes (retried by the next run)",
                "interrupted": "was interrupted (its scenes were released)",
                "abandoned": "died without a word (its scenes were taken over)"}[status]  # fmt: skip
        h.items.append(Item("warning", f"the last finished run {done['run_id']} {what}", see))


def _quota(h: Health, rec: Record, config: dict, now: datetime) -> None:
    month = month_of(now)
    used = rec.fetched_in_month(month)
    budget = config.get("quota_gb_per_month")
    h.quota = {"month": month, "used_gb": round(used / 1e9, 3), "budget_gb": budget}
    if budget and used >= QUOTA_WARNING * budget * 1e9:
        h.items.append(Item(
            "warning", f"{used / 1e9:.2f} of {budget:g} GB of {month}'s data quota fetched",
            "mosaics past it wait, pending, for next month (quota_gb_per_month)",
        ))  # fmt: skip
