"""The provider's monthly data quota: what a run may still fetch, and which mosaics fit in it.

CDSE allows 6 TB a month per account; past it the account is throttled until the 1st (which
would also cripple the nightly run). A scan counts every byte it fetches from a remote source
into its record (:mod:`scanner.record.fetches`) and plans within ``quota_gb_per_month``:

- at planning time (:func:`fit`), the mosaics are taken in plan order (oldest first) while the
  month's bytes so far plus each one's expected bytes fit; the first that does not, and all
  after it, are deferred: released, still pending, for a later run (next month's first takes
  them at once). Expected: a download, its products' sizes from the search (unknown: 1 GB)
  less what ``downloads/`` already holds of them (a finished download is reused, a ``.part``
  resumed: :func:`on_disk`); in place, their sizes times the fraction this record measured
  over its latest scenes read in place (none yet: :data:`DEFAULT_IN_PLACE_FRACTION`);
- while the run goes (:class:`QuotaGuard`), a mosaic is only submitted if the month's measured
  bytes, plus what the mosaics in flight are still expected to fetch, plus its own, fit: an
  estimate that was too low stops the run from going past the budget.

Only remote sources count (:data:`REMOTE_SOURCES`); ``local:`` and ``demo`` fetch nothing.
"""

from __future__ import annotations

import glob
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

GB = 10**9
REMOTE_SOURCES = ("cdse", "asf", "dhus")
#: expected bytes read in place ÷ product size before this record has measured any: COG twins
#: read from their overviews measured 4.2 % (docs/benchmarks.md), with room to spare
DEFAULT_IN_PLACE_FRACTION = 0.06
UNKNOWN_SIZE = 10**9  # a product of unknown size counts as 1 GB (about the largest GRD)


def counts_bytes(source: str) -> bool:
    """Whether bytes fetched from ``source`` (a config value: ``cdse``, ``local:PATH``…) count
    against a provider's quota."""
    return source.split(":", 1)[0] in REMOTE_SOURCES


def this_month(now: datetime | None = None) -> str:
    from scanner.record.fetches import month_of

    return month_of(now or datetime.now(UTC))


@dataclass(frozen=True)
class Budget:
    """A run's quota: ``limit`` bytes per month (None: no limit) from ``source``, of which
    ``used`` were fetched this ``month`` before the run; how products are read (``access``)
    and the fraction of a product's size a read in place is expected to cost."""

    source: str
    month: str
    limit: int | None
    used: int
    access: str = "download"
    fraction: float = DEFAULT_IN_PLACE_FRACTION
    #: scene id → bytes of its product already on disk (downloads only; :func:`on_disk`)
    have: Mapping[str, int] = field(default_factory=dict)

    def expected(self, job: Any) -> int:
        """Bytes ``job`` (a :class:`~scanner.scan.stages.MosaicJob`) is expected to fetch."""
        if self.access != "download":
            sizes = sum(s.size if s.size else UNKNOWN_SIZE for s in job.scenes)
            return round(sizes * self.fraction)
        return sum(
            max(0, (s.size if s.size else UNKNOWN_SIZE) - self.have.get(s.id, 0))
            for s in job.scenes
        )


def plan_budget(
    record: Any,
    source: str,
    limit_gb: float | None,
    access: str,
    have: Mapping[str, int] | None = None,
) -> Budget:
    """The budget of a run from ``source`` (its name) into ``record``, this UTC month; ``have``
    as :attr:`Budget.have`."""
    month = this_month()
    fraction = DEFAULT_IN_PLACE_FRACTION
    if access != "download":
        fraction = record.in_place_fraction(source) or DEFAULT_IN_PLACE_FRACTION
    limit = None if limit_gb is None else int(limit_gb * GB)
    used = record.fetched_in_month(month, source)
    return Budget(source, month, limit, used, access, fraction, dict(have or {}))


def on_disk(downloads: Path, scenes: Iterable[Any]) -> dict[str, int]:
    """scene id → bytes of its product in ``downloads`` (the scan's ``downloads/``): a finished
    download (``<name>.SAFE.zip``, ``<name>.zip``), which the next fetch reuses, or the
    ``.part`` an interrupted one left, which it resumes; scenes with nothing there are left out.
    Files are found by the product name they start with."""
    if not downloads.is_dir():
        return {}
    have = {}
    for scene in scenes:
        sizes = [p.stat().st_size for p in downloads.glob(glob.escape(scene.name) + "*")
                 if p.is_file()]  # fmt: skip
        if sizes:
            have[scene.id] = max(sizes)
    return have


def fit(jobs: Sequence[Any], budget: Budget) -> tuple[list[Any], list[Any]]:
    """(taken, deferred): jobs in order while the month's bytes so far plus theirs fit in the
    budget; the first that does not and every later one are deferred (the backfill keeps its
    order: next month starts where this one stopped)."""
    if budget.limit is None:
        return list(jobs), []
    total = budget.used
    for i, job in enumerate(jobs):
        total += budget.expected(job)
        if total > budget.limit:
            return list(jobs[:i]), list(jobs[i:])
    return list(jobs), []


class QuotaGuard:
    """Decides, as the run goes, whether one more mosaic may start (:meth:`admit`), from the
    record's bytes of the month (``used()``, read afresh: the publisher records them as stages
    finish) and what the mosaics in flight are still expected to fetch."""

    def __init__(self, budget: Budget, used: Callable[[str], int]) -> None:
        self.budget = budget
        self.used = used  # month → bytes fetched from the budget's source that month
        self._expected: dict[str, int] = {}
        self._spent: dict[str, int] = {}

    def admit(self, job: Any) -> bool:
        """Whether ``job`` fits now; if so it counts as in flight until :meth:`finished`."""
        expected = self.budget.expected(job)
        if self.budget.limit is not None:
            ahead = sum(max(0, e - self._spent.get(m, 0)) for m, e in self._expected.items())
            if self.used(this_month()) + ahead + expected > self.budget.limit:
                return False
        self._expected[job.mosaic_id] = expected
        return True

    def spent(self, job: Any, n: int) -> None:
        """``job`` fetched ``n`` more bytes (now in the record)."""
        self._spent[job.mosaic_id] = self._spent.get(job.mosaic_id, 0) + n

    def finished(self, job: Any) -> None:
        self._expected.pop(job.mosaic_id, None)
        self._spent.pop(job.mosaic_id, None)


def notice(used: int, limit: int | None, deferred_scenes: int, month: str) -> str | None:
    """The line a run with deferred scenes shows (summary, report), or None."""
    from scanner.record.fetches import next_month

    if not deferred_scenes:
        return None
    return (f"monthly quota: {used / GB:.2f} of {limit_text(limit)} used; {deferred_scenes} scene(s) "
            f"deferred to {next_month(month)}")  # fmt: skip


def limit_text(limit: int | None) -> str:
    """A budget in bytes as said in the log and the notices: ``5000 GB`` or ``no budget``."""
    return "no budget" if limit is None else f"{limit / GB:g} GB"
