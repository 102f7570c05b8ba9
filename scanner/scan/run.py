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
import os
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from polarscan.common.atomic import sweep_leftovers
from polarscan.common.errors import UsageError
from scanner.scan import quota
from scanner.scan.config import DEMO_MODEL, ScanConfig, fit_to_card
from scanner.scan.publish import Publisher, gpkg_path
from scanner.scan.request import ScanRequest, resolve_aoi, time_window
from scanner.scan.runner import ClusterSpec, Runner
from scanner.scan.stages import STAGES, MosaicJob, RunContext, start
from scanner.scan.summary import Counts, ScanSummary

log = logging.getLogger(__name__)


# --- checks (nothing is created until they all pass) ------------------------------------------


def resolve_model(config: ScanConfig) -> Path:
    if config.model:
        path = Path(config.model).expanduser()
    elif config.source == "demo":
        path = DEMO_MODEL
    else:
        raise UsageError(
            "no model given",
            "set `model:` in the scan config to a .keras model with its card, or the authors' "
            "legacy .h5",
            key="model",
        )
    if not path.is_file():
        raise UsageError(f"model file not found: {path}", "give an existing model file", key="model")
    return path.resolve()


def check_out(out_dir: Path) -> None:
    """The output folder is (or can be made) writable — checked without creating anything."""
    existing = out_dir
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    problem = None
    if not existing.is_dir():
        problem = f"{existing} is a file"
    elif not os.access(existing, os.W_OK | os.X_OK):
        problem = f"no write permission on {existing}"
    if problem:
        raise UsageError(
            f"output folder {out_dir} is not writable ({problem})",
            "choose a writable output folder",
            key="out",
        )


def prepare_out(out_dir: Path) -> Path:
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        probe = out_dir / f".write-test-{uuid.uuid4().hex[:8]}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise UsageError(
            f"output folder {out_dir} is not writable ({err.strerror or err})",
            "choose a writable output folder",
            key="out",
        ) from None
    return out_dir


def check_card_file(model_path: Path, config: ScanConfig) -> None:
    """The model's card file, when there is one, is valid and agrees with the config: read as
    text, before the model itself is loaded (its geometry is checked against the model then)."""
    from polarscan.common.config import load_config
    from training.card import ModelCard, card_path

    path = card_path(model_path)
    if path.is_file():
        fit_to_card(config, load_config(ModelCard, path))


def check_record(out_dir: Path) -> None:
    """An existing record is readable, of a known schema, and not locked by a live run."""
    from scanner.record import Record, record_path
    from scanner.record.claims import refuse_if_live
    from scanner.record.db import now_utc

    path = record_path(out_dir)
    if not path.exists() and not path.is_symlink():
        return
    with Record(path) as rec:  # it exists: opening creates nothing
        refuse_if_live(rec.lock_holder(), rec.path, now_utc())


def load_card(model_path: Path, config: ScanConfig):
    """Load the model once here (validates the file) and read its card, with the threshold."""
    from scanner.infer import cached_model
    from training.card import model_card

    card = model_card(model_path, cached_model(str(model_path)))
    if config.threshold is not None:
        card = card.model_copy(update={"threshold": config.threshold})
    return card


# --- grouping ----------------------------------------------------------------------------------


def _datatake(scene):
    return scene.datatake_key


def plan_jobs(scenes, max_gap_s: float, refused: list | None = None) -> list[MosaicJob]:
    """Consecutive slices of one datatake form one mosaic (:func:`scanner.mosaic.group_products`,
    the project's one grouping and id scheme); anything else stands alone. A slice whose mode
    or polarisations differ from the rest of its datatake is left out, and appended to
    ``refused`` as a :class:`~scanner.mosaic.mosaic.Refusal` (scene and error) when given."""
    from scanner.mosaic import group_id, group_products

    groups = group_products(scenes, max_gap_s, key=_datatake, refused=refused)
    return [MosaicJob(mosaic_id=group_id(g, _datatake), scenes=tuple(g)) for g in groups]


@dataclass(frozen=True)
class Plan:
    """What a run does with the scenes it claimed: ``jobs`` (mosaics to make); ``refused``
    slices left out of their strip, each as a one-scene job and the error (they fail); and
    ``unaccepted`` scenes of a mode the model card does not accept, with the reason (they
    are skipped)."""

    jobs: list[MosaicJob]
    refused: list[tuple[MosaicJob, Exception]] = field(default_factory=list)
    unaccepted: list[tuple[Any, str]] = field(default_factory=list)


def plan_work(scenes, max_gap_s: float, card) -> Plan:
    """Split claimed scenes into a :class:`Plan`: scenes whose mode (from the name)
    ``card.accepts`` not are set aside first, the rest grouped by :func:`plan_jobs`."""
    from scanner.mosaic import group_id

    accepted, unaccepted = [], []
    for scene in scenes:
        mode = scene.mode
        if mode is None or card.accepts(mode):
            accepted.append(scene)
        else:
            why = (f"mode {mode}: the model card ({card.name}) accepts "
                   f"{', '.join(card.modes)} only")  # fmt: skip
            unaccepted.append((scene, why))
    refusals: list = []
    jobs = plan_jobs(accepted, max_gap_s, refusals)
    refused = [(MosaicJob(group_id([r.item], _datatake), (r.item,)), r.error) for r in refusals]
    return Plan(jobs, refused, unaccepted)


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


def claim_work(rec, run_id: str, source_name: str, aoi, config: ScanConfig) -> list:
    """Pending scenes of this source over this area (new, or failed with attempts left),
    claimed for this run; scenes another live run holds are left to it."""
    pending = [
        row
        for row in rec.pending(config.max_attempts, source=source_name)
        if row.footprint_wkt is None or aoi.intersects(row.to_scene().footprint)
    ]
    held = set(rec.claim([r.id for r in pending], run_id, config.claim_ttl_s))
    if len(held) < len(pending):
        log.warning("%d scene(s) are claimed by another run", len(pending) - len(held))
    return [r.to_scene() for r in pending if r.id in held]


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
        budget, guard = _budget(rec, source.name, config)
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


def _budget(rec, source_name: str, config: ScanConfig):
    """(budget, guard) of a run from a remote source, else (None, None): nothing is counted."""
    if not quota.counts_bytes(config.source):
        return None, None
    budget = quota.plan_budget(rec, source_name, config.quota_gb_per_month, config.access)
    used = budget.used / quota.GB
    limit = "no budget" if budget.limit is None else f"{budget.limit / quota.GB:g} GB"
    log.info("monthly quota %s: %.2f GB of %s used from %s", budget.month, used, limit,
             source_name)  # fmt: skip
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


def skip_unaccepted(rec, plan: Plan, run_id: str) -> None:
    """Mark the plan's scenes of a mode the model card does not accept SKIPPED with the
    reason (final: no later run claims them until the operator re-queues them)."""
    from scanner.record import SceneStatus

    for scene, why in plan.unaccepted:
        rec.mark(scene.id, SceneStatus.SKIPPED, reason=why, run_id=run_id, source=scene.source)
    if plan.unaccepted:
        log.warning("%d scene(s) skipped: %s", len(plan.unaccepted), plan.unaccepted[0][1])


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
