"""One scan run, end to end: check, search, record, group, run the stages, publish, summarise.

Everything the user can get wrong is checked before any work starts, cheapest first and
without creating anything (area, source and its credentials, output folder, model file, its
card, an existing record and its lock, scheduler); then the model is loaded once (its file and
geometry checked) — all before the demo data is made, anything is downloaded or a worker
starts. Faults of the machine (a full disk, SIGTERM, a killed worker) are listed with what the
run does about each in docs/faults.md. Then the run takes the record's
run lock, searches, claims the scenes that need work, groups them into mosaics (consecutive
slices of a datatake), keeps those that fit in the month's data quota (:mod:`scanner.scan.quota`;
the rest are released for a later run) and hands the jobs to the
:class:`~scanner.scan.runner.Runner`; the :class:`~scanner.scan.publish.Publisher` writes the
finished mosaics in batches as they arrive.
"""

from __future__ import annotations

import contextlib
import logging
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from polarscan.common.atomic import sweep_leftovers
from polarscan.common.runlog import run_log
from scanner.outputs.gpkg_tx import recover
from scanner.scan import quota
from scanner.scan.checks import (
    check_card_file,
    check_out,
    check_record,
    load_card,
    prepare_out,
    resolve_model,
)
from scanner.scan.config import ScanConfig, fit_to_card
from scanner.scan.plan import claim_work, plan_work, skip_unaccepted
from scanner.scan.publish import Publisher, gpkg_path
from scanner.scan.request import ScanRequest, resolve_aoi, time_window
from scanner.scan.runner import ClusterSpec, Runner
from scanner.scan.stages import STAGES, RunContext, start
from scanner.scan.summary import Counts, ScanSummary

log = logging.getLogger(__name__)


def cluster_spec(config: ScanConfig) -> ClusterSpec:
    """How the runner runs, from the scan config."""
    return ClusterSpec(
        sequential=config.sequential,
        workers=config.workers,
        threads_per_worker=config.threads_per_worker,
        scheduler=config.scheduler,
        connect_timeout_s=config.scheduler_timeout_s,
        max_in_flight=config.max_in_flight,
    )


# --- the run -----------------------------------------------------------------------------------


def scan(request: ScanRequest, config: ScanConfig, *, progress: bool = True) -> ScanSummary:
    """Run one scan; returns its :class:`ScanSummary`."""
    from scanner.access.eodata import configure_access
    from scanner.record import Record, RunStatus, new_run_id
    from scanner.sources import get_source

    t0 = time.monotonic()
    started = datetime.now(UTC)
    kind = config.source.split(":", 1)[0]
    # Checks, cheapest first; none creates anything (no folder, no download, no demo data,
    # no model in memory, no worker).
    aoi = resolve_aoi(request) if request.has_area or kind != "demo" else None
    source = get_source(config.source, modes=config.modes)
    configure_access(source, config.access, config.twin)  # s3/mount: read in place
    source.check_credentials()
    check_out(config.out_dir)
    model_path = resolve_model(config)
    check_card_file(model_path, config)
    check_record(config.out_dir)
    spec = cluster_spec(config)
    run_id = new_run_id()
    with contextlib.ExitStack() as stack:
        runner = stack.enter_context(Runner(spec))  # a scheduler must answer before work
        card = load_card(model_path, config)  # the model file itself, and its geometry
        config = fit_to_card(config, card)
        aoi = aoi or resolve_aoi(request, source, kind)  # the demo's data is made here
        out = prepare_out(config.out_dir)
        rec = stack.enter_context(Record.open(out))
        lock = stack.enter_context(rec.lock(run_id, config.claim_ttl_s))
        sweep_leftovers(out)  # what a killed run left half-written (we hold the lock)
        recover(gpkg_path(out))  # and its unfinished GeoPackage transaction
        log_file = stack.enter_context(run_log(out, run_id, config.keep_logs))
        rec.start_run(run_id, _parameters(request, config, aoi, model_path))
        stack.push(_run_closer(rec, run_id))  # a run that dies says so in the record
        begin, end, published_after = time_window(
            request, rec.watermark(source.name, aoi.key), kind
        )
        log.info("searching %s over %r (%s … %s)", config.source, aoi, begin, end or "now")
        found = list(source.search(aoi, begin, end, published_after=published_after))
        stats = rec.upsert(found)
        todo = claim_work(rec, run_id, source.name, aoi, config)
        plan = plan_work(todo, config.mosaic.max_gap_s, card)
        skip_unaccepted(rec, plan, run_id)  # final, before anything is downloaded
        budget, guard = _budget(rec, source.name, config, out, plan.jobs)
        jobs, deferred = quota.fit(plan.jobs, budget) if budget else (plan.jobs, [])
        ctx = RunContext(run_id, str(out), config.source, str(model_path), config, card)
        todo_ids = {s.id for job in plan.jobs for s in job.scenes}
        todo_ids |= {s.id for job, _ in plan.refused for s in job.scenes}
        summary = ScanSummary(
            run_id=run_id,
            source=config.source,
            model=str(model_path),
            threshold=card.threshold,
            aoi=aoi.to_wkt(),
            window={"start": begin, "end": end, "published_after": published_after},
            counts=Counts(
                found=len(found),
                new=stats.new,
                skipped=sum(1 for s in found if s.id not in todo_ids),
                mosaics=len(jobs),
                unaccepted=len(plan.unaccepted),
            ),
            skipped_by_source=_skip_counts(source),
            outputs={
                "folder": str(out),
                "gpkg": str(gpkg_path(out)),
                "stac": str(out / "stac" / "catalog.json"),
                "record": str(rec.path),
                **({"log": str(log_file)} if log_file else {}),
            },
            started=started,
        )
        planned = [*jobs, *(job for job, _ in plan.refused)]
        pub = Publisher(ctx, rec, summary, planned, lock, guard)
        pub.defer(deferred)  # released now: still pending, for a later run
        for job, err in plan.refused:  # failed in the record, listed in the summary
            pub.failed(job, "plan", err)
        log.info("%d scene(s) found, %d to process in %d mosaic(s)", len(found),
                 sum(len(j.scenes) for j in jobs), len(jobs))  # fmt: skip
        try:
            facts = runner.run(
                jobs,
                start,
                STAGES,
                ctx,
                key=lambda job: f"{job.mosaic_id}-{run_id}",
                on_done=pub.done,
                on_failed=pub.failed,
                on_stage=pub.stage_done,
                admit=pub.admit,
                progress=progress,
            )
        finally:
            runner.close()  # no worker writes any more: write what finished, release, clear
            _flush(pub)
            _release(rec, run_id, out)
        if stats.newest_published is not None:
            # Failed scenes stay pending in the record and are retried whatever the
            # watermark, so it may advance even when some scenes failed.
            rec.advance_watermark(source.name, aoi.key, stats.newest_published, run_id)
        pub.summary = _finished(pub.summary, facts, t0)
        if budget is not None:
            pub.summary = _quota_summary(pub.summary, rec, budget, pub.fetched_bytes)
        pub.publish_run()
        status = RunStatus.PARTIAL if pub.summary.counts.failed else RunStatus.OK
        rec.finish_run(run_id, pub.summary.counts.to_dict(), status=status)
    return pub.summary


def _budget(rec, source_name: str, config: ScanConfig, out: Path, jobs):
    """(budget, guard) of a run from a remote source, else (None, None): nothing is counted."""
    if not quota.counts_bytes(config.source):
        return None, None
    have = {}
    if config.access == "download":  # what downloads/ holds of the products costs nothing
        have = quota.on_disk(out / "downloads", (s for job in jobs for s in job.scenes))
    budget = quota.plan_budget(rec, source_name, config.quota_gb_per_month, config.access, have)
    log.info("monthly quota %s: %.2f GB of %s used from %s", budget.month,
             budget.used / quota.GB, quota.limit_text(budget.limit), source_name)  # fmt: skip
    guard = quota.QuotaGuard(budget, lambda month: rec.fetched_in_month(month, source_name))
    return budget, guard


def _quota_summary(summary: ScanSummary, rec, budget: quota.Budget, this_run: int):
    """The summary with the month's usage, and a notice when scenes were deferred."""
    from dataclasses import replace

    month = quota.this_month()
    used = rec.fetched_in_month(month, budget.source)
    gb = quota.GB
    section = {
        "month": month,
        "source": budget.source,
        "budget_gb": None if budget.limit is None else budget.limit / gb,
        "used_gb": round(used / gb, 3),
        "this_run_gb": round(this_run / gb, 3),
        "deferred_scenes": summary.counts.deferred,
    }
    summary = replace(summary, quota=section)
    text = quota.notice(used, budget.limit, summary.counts.deferred, month)
    return summary.add_notice(text) if text else summary


def _finished(summary: ScanSummary, facts: dict[str, Any], t0: float) -> ScanSummary:
    from dataclasses import replace

    return replace(
        summary,
        cluster=dict(facts),
        seconds=round(time.monotonic() - t0, 2),
        finished=datetime.now(UTC),
    )


def _skip_counts(source: Any) -> dict[str, int]:
    """What the source's last search skipped, by reason (foreign product, COG twin merged…)."""
    stats = source.last_search_stats
    return {} if stats is None else {k: v for k, v in stats.skipped.items() if v}


def _run_closer(rec, run_id: str):
    """An exit callback marking the run FAILED (an error) or INTERRUPTED (SIGTERM, Ctrl-C) if
    it ended without :meth:`finish_run`."""

    def close(exc_type, exc, tb) -> bool:
        _close_run(rec, run_id, exc)
        return False

    return close


def _close_run(rec, run_id: str, exc: BaseException | None = None) -> None:
    from scanner.record import RunStatus

    interrupted = isinstance(exc, KeyboardInterrupt)
    status = RunStatus.INTERRUPTED if interrupted else RunStatus.FAILED
    try:
        if any(r["run_id"] == run_id and not r["finished"] for r in rec.runs(limit=5)):
            counts = {} if exc is None else {"error": f"{type(exc).__name__}: {exc}"[:2000]}
            rec.finish_run(run_id, counts, status=status)
            if interrupted:
                log.warning("run %s interrupted: the scenes in progress were released; the next "
                            "run takes them up", run_id)  # fmt: skip
    except Exception as err:  # noqa: BLE001 - never mask the original error
        log.warning("could not close run %s in the record: %s", run_id, err)


def _flush(pub: Publisher) -> None:
    """Write the mosaics that finished but wait in a batch. On an error path (SIGTERM, a lost
    scheduler) a failure here is logged, never raised over the original: those mosaics' scenes
    are released and the next run redoes them."""
    import sys

    failing = sys.exc_info()[1] is not None
    waiting = len(pub.pending)
    try:
        pub.flush()
    except Exception as err:  # noqa: BLE001
        if not failing:
            raise
        log.warning("could not write the %d finished mosaic(s) still pending: %s (the next run "
                    "redoes them)", waiting, err)  # fmt: skip


def _release(rec, run_id: str, out: Path) -> None:
    """Give the run's claims back and remove temporaries that stopped workers left; on an
    error path a failure here (a full disk) is logged, never raised over the original."""
    import sys

    failing = sys.exc_info()[1] is not None
    try:
        rec.release(run_id)
    except Exception as err:  # noqa: BLE001
        if not failing:
            raise
        log.warning("could not release the claims of run %s: %s (the next run takes them "
                    "over)", run_id, err)  # fmt: skip
    sweep_leftovers(out)


def _parameters(request: ScanRequest, config: ScanConfig, aoi, model_path: Path) -> dict:
    return {
        "bbox": request.bbox,
        "aoi_file": request.aoi_file,
        "aoi_key": aoi.key,
        "since": request.since,
        "until": request.until,
        "model": str(model_path),
        "config": config.model_dump(mode="json"),
    }
